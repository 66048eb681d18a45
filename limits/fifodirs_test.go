package limits

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// orphanFifoDirsReference is how OrphanFifoDirs worked before the one-pass
// scan: every directory opened with os.ReadDir, its age from its entry's
// Info. It is kept to compare the two on the same directories.
func orphanFifoDirsReference(fifoDir, hostFifoDir, stateDir string, held map[string]bool, now time.Time) (orphans []FifoDir, total int, err error) {
	taskID := func(name string) string {
		for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
			if strings.HasSuffix(name, s) {
				return strings.TrimSuffix(name, s)
			}
		}
		return ""
	}
	live, err := liveTasks(stateDir)
	if err != nil {
		return nil, 0, fmt.Errorf("read containerd state %s: %w", stateDir, err)
	}
	entries, err := os.ReadDir(fifoDir)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		total++
		dir := filepath.Join(fifoDir, e.Name())
		hostPath := filepath.Join(hostFifoDir, e.Name())
		if held[hostPath] {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < fifoGrace {
			continue
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		d := FifoDir{Path: hostPath, Inodes: 1 + int64(len(files)), ModTime: info.ModTime()}
		isLive := false
		seen := map[string]bool{}
		for _, f := range files {
			id := taskID(f.Name())
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			d.Tasks = append(d.Tasks, id)
			if live[id] {
				isLive = true
			}
		}
		if isLive {
			continue
		}
		orphans = append(orphans, d)
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Path < orphans[j].Path })
	return orphans, total, nil
}

// randomFifoTree fills ft with n directories of every kind the rules tell
// apart, at random, and returns the directories (host paths) held open.
func randomFifoTree(t testing.TB, ft *fifoTree, n int, seed uint64, live bool) map[string]bool {
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range 20 {
		if live {
			ft.task("io.containerd.runtime.v2.task", "k8s.io", fmt.Sprintf("live-%d", i))
		}
	}
	held := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("%09d", r.IntN(1e9))
		if _, err := os.Lstat(filepath.Join(ft.fifo, name)); err == nil {
			continue
		}
		age := time.Duration(r.IntN(3)) * fifoGrace // young, at the grace, old
		var files []string
		switch k := r.IntN(10); {
		case k < 5:
			files = stdio(fmt.Sprintf("gone-%d", i))
		case k == 5:
			files = stdio(fmt.Sprintf("live-%d", r.IntN(30))) // some live, some not
		case k == 6:
			files = append(stdio(fmt.Sprintf("b-%d", i)), stdio(fmt.Sprintf("a-%d", i))[:1]...)
		case k == 7:
			files = []string{"-stdin", "notes"}
		case k == 8:
			// More names than one getdents of a small buffer returns.
			for j := range 60 {
				files = append(files, fmt.Sprintf("%s-%03d-stdout", strings.Repeat("x", 40), j))
			}
		}
		ft.dir(name, age, files...)
		if r.IntN(8) == 0 {
			held[filepath.Join(hostFifo, name)] = true
		}
	}
	// What is not a directory is no fifo directory.
	if err := os.WriteFile(filepath.Join(ft.fifo, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ft.state, filepath.Join(ft.fifo, "link")); err != nil {
		t.Fatal(err)
	}
	return held
}

// TestOrphanFifoDirsReference runs the one-pass scan and the reference on
// the same directories: the same orphans, the same count, and readLeaks
// the row the reference's orphans make. As root it does so on a private
// tmpfs too, where the scan counts a directory's entries by its size, and
// opens none when no task has state.
func TestOrphanFifoDirsReference(t *testing.T) {
	t.Run("tempdir", func(t *testing.T) { compareFifoScan(t, newFifoTree(t), true) })
	for _, live := range []bool{true, false} {
		t.Run(fmt.Sprintf("tmpfs/live=%v", live), func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to mount a private tmpfs")
			}
			ft := newFifoTree(t)
			if err := unix.Mount("enospc-test-fifo", ft.fifo, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=16m"); err != nil {
				t.Skipf("mount tmpfs: %v", err)
			}
			t.Cleanup(func() {
				if err := unix.Unmount(ft.fifo, unix.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", ft.fifo, err)
				}
			})
			compareFifoScan(t, ft, live)
		})
	}
}

func compareFifoScan(t *testing.T, ft *fifoTree, live bool) {
	held := randomFifoTree(t, ft, 250, 12, live)
	want, wantTotal, err := orphanFifoDirsReference(ft.fifo, hostFifo, ft.state, held, ft.now)
	if err != nil {
		t.Fatal(err)
	}
	got, total, err := OrphanFifoDirs(ft.fifo, hostFifo, ft.state, held, ft.now)
	if err != nil {
		t.Fatal(err)
	}
	if total != wantTotal || !reflect.DeepEqual(got, want) {
		t.Errorf("OrphanFifoDirs: %d dirs, %d orphans; the reference: %d dirs, %d orphans", total, len(got), wantTotal, len(want))
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("first difference: %+v, reference %+v", got[i], want[i])
				break
			}
		}
	}
	if len(want) < 50 {
		t.Fatalf("only %d orphans: the tree tests too little", len(want))
	}
	checkLeakRow(t, ft, held, want)
}

// checkLeakRow compares readLeaks's leak.fifo row on ft with the row the
// orphans want make: every orphan counted, the biggest listed.
func checkLeakRow(t testing.TB, ft *fifoTree, held map[string]bool, want []FifoDir) {
	t.Helper()
	root := filepath.Dir(ft.fifo)
	h := host.New(root, root, root)
	h.Now = func() time.Time { return ft.now }
	h.StatfsFunc = func(string) (host.Statfs, error) { return host.Statfs{Files: 1 << 20, FilesFree: 1 << 19}, nil }
	var fifos []string
	for d := range held {
		fifos = append(fifos, strings.Replace(d, hostFifo, "/fifo", 1)+"/x-stdout")
	}
	env := &Env{Ctx: context.Background(), Host: h, Thresholds: DefaultThresholds, FifoDir: "/fifo", ContainerdState: "/state",
		Census: &census.Census{Processes: []census.Process{{PID: 1, Fifos: fifos}}}}
	rows := readLeaks(env)
	if len(rows) != 1 {
		t.Fatalf("readLeaks: %d rows", len(rows))
	}
	row := rows[0]
	row.CutConsumers()
	ref := Finding{Limit: "leak.fifo", Scope: "/fifo", Unit: "inodes", Leaked: int64(len(want))}
	var cs []Consumer
	for _, o := range want {
		ref.Used += o.Inodes
		c := Consumer{Name: strings.Replace(o.Path, hostFifo, "/fifo", 1), Count: o.Inodes}
		if len(o.Tasks) > 0 {
			c.Container = o.Tasks[0]
		}
		cs = append(cs, c)
	}
	ref.setConsumers(cs, topConsumers)
	ref.CutConsumers()
	if row.Leaked != ref.Leaked || row.Used != ref.Used || row.ConsumersTotal != ref.ConsumersTotal || !reflect.DeepEqual(row.Consumers, ref.Consumers) {
		t.Errorf("leak.fifo: leaked %d, used %d, %d listed of %d:\n%+v\nthe reference: leaked %d, used %d, %d listed of %d:\n%+v",
			row.Leaked, row.Used, len(row.Consumers), row.ConsumersTotal, row.Consumers,
			ref.Leaked, ref.Used, len(ref.Consumers), ref.ConsumersTotal, ref.Consumers)
	}
}
