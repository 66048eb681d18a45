package limits

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// BenchmarkFifoDirs reads leak.fifo over a private tmpfs holding dirs
// containerd-style fifo directories of 3 fifos each, an hour old, none
// held (the bad night of issue 12): scan is readLeaks with no task live,
// scan-livetask with one task that has state (so that every old directory
// is opened for the tasks it names), reference the way it read them before
// (orphanFifoDirsReference, every directory opened), on the same
// directories.
func BenchmarkFifoDirs(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to mount a private tmpfs")
	}
	root := b.TempDir()
	if err := unix.Mount("enospc-bench-fifo", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=64m"); err != nil {
		b.Skipf("mount tmpfs: %v", err)
	}
	b.Cleanup(func() {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			b.Errorf("unmount %s: %v", root, err)
		}
	})
	if err := os.Mkdir(filepath.Join(root, "state"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "state-live", "io.containerd.runtime.v2.task", "default", "live-1"), 0o700); err != nil {
		b.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, dirs := range []int{5000, 20000} {
		fifo := filepath.Join(root, fmt.Sprintf("fifo-%d", dirs))
		if err := os.Mkdir(fifo, 0o700); err != nil {
			b.Fatal(err)
		}
		for i := range dirs {
			d := filepath.Join(fifo, fmt.Sprintf("%09d", 100000000+i*7919%900000000))
			if err := os.Mkdir(d, 0o700); err != nil {
				b.Fatal(err)
			}
			for _, f := range stdio(fmt.Sprintf("task-%d", i)) {
				if err := unix.Mkfifo(filepath.Join(d, f), 0o700); err != nil {
					b.Fatal(err)
				}
			}
			if err := os.Chtimes(d, old, old); err != nil {
				b.Fatal(err)
			}
		}
		h := host.New(root, root, root)
		env := func(state string) *Env {
			return &Env{Ctx: context.Background(), Host: h, Thresholds: DefaultThresholds, Census: &census.Census{},
				FifoDir: "/" + filepath.Base(fifo), ContainerdState: state}
		}
		for _, v := range []struct{ name, state string }{{"scan", "/state"}, {"scan-livetask", "/state-live"}} {
			if rows := readLeaks(env(v.state)); len(rows) != 1 || rows[0].Leaked != int64(dirs) || rows[0].Used != int64(4*dirs) {
				b.Fatalf("readLeaks: %+v, want %d orphans of 4 inodes", rows, dirs)
			}
			b.Run(fmt.Sprintf("dirs=%d/%s", dirs, v.name), func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					readLeaks(env(v.state))
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
		b.Run(fmt.Sprintf("dirs=%d/reference", dirs), func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if o, _, err := orphanFifoDirsReference(fifo, "/fifo", filepath.Join(root, "state"), nil, time.Now()); err != nil || len(o) != dirs {
					b.Fatalf("reference: %d orphans, %v", len(o), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
