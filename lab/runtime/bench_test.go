//go:build lab

package runtime

// What attribution costs on a host running many containers: a private
// containerd with BENCH_CONTAINERS (default 200) containers, then hyperfine
// times, in the same run, `check` before attribution existed (the binary
// in ENOSPC_BASELINE_BIN, built by scripts/bench-containers), `check
// --no-runtimes` (cgroup paths only) and the full `check` asking
// containerd. Run it with scripts/bench-containers, not with the lab.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/lab/labkit"
)

func BenchmarkCheckContainers(b *testing.B) {
	n := 200
	if s := os.Getenv("BENCH_CONTAINERS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("BENCH_CONTAINERS=%q: want a positive number", s)
		}
	}
	baseline := os.Getenv("ENOSPC_BASELINE_BIN")
	if baseline == "" {
		b.Fatal("ENOSPC_BASELINE_BIN is not set: run scripts/bench-containers, which builds the check of before attribution")
	}
	hyperfine := labkit.RequireTool(b, "hyperfine")
	ctr := labkit.RequireTool(b, "ctr")
	const image = "enospc.lab/busybox:lab"
	c := startContainerd(b)
	c.ImportBusybox(b, image)
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.RunDetached(image, fmt.Sprintf("bench-%03d", i), "sleep", "3600"); err != nil {
			b.Fatalf("container %d: %v\n%s", i, err, c.Log())
		}
	}
	b.Logf("%d containers running, started in %s", n, time.Since(start).Round(time.Second))
	// In process, without the start of a binary: the library's cost.
	h := host.New("/proc", "/sys", "/")
	for _, v := range []struct {
		name string
		opts check.Options
	}{
		{"library-no-runtimes", check.Options{FifoDir: c.FifoDir, ContainerdState: c.State}},
		{"library-containerd", check.Options{FifoDir: c.FifoDir, ContainerdState: c.State, Runtimes: &attrib.Options{ContainerdAddress: c.Sock, Timeout: 5 * time.Second}}},
	} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := check.Run(context.Background(), h, v.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if os.Getenv("BENCH_LIBRARY_ONLY") != "" {
		return
	}
	common := fmt.Sprintf("check -o json --fifo-dir %s --containerd-state %s", c.FifoDir, c.State)
	md := filepath.Join(c.Dir, "bench.md")
	cmd := exec.Command(hyperfine, "-N", "-i", "--warmup", "3", "--min-runs", "40", "--export-markdown", md,
		"-n", "before attribution", baseline+" "+common,
		"-n", "check --no-runtimes", labkit.Bin()+" "+common+" --no-runtimes",
		"-n", "check (containerd asked)", labkit.Bin()+" "+common+" --docker-host= --crio-socket= --containerd-address "+c.Sock,
		"-n", "ctr task ls", ctr+" -a "+c.Sock+" -n "+c.NS+" task ls",
		"-n", "ctr container ls", ctr+" -a "+c.Sock+" -n "+c.NS+" container ls")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("hyperfine: %v", err)
	}
	out, _ := os.ReadFile(md)
	fmt.Printf("\n%d containers\n%s\n", n, out)

	// hyperfine runs all of one command, then all of the next: a machine
	// whose speed drifts (a shared VM) biases the comparison. Interleaved
	// rounds, the order rotating, give each variant the same conditions.
	variants := []struct{ name, bin, extra string }{
		{"before attribution", baseline, ""},
		{"check --no-runtimes", labkit.Bin(), "--no-runtimes"},
		{"check (containerd asked)", labkit.Bin(), "--docker-host= --crio-socket= --containerd-address " + c.Sock},
	}
	const rounds = 60
	took := make([][]time.Duration, len(variants))
	for r := 0; r < rounds; r++ {
		for k := range variants {
			v := variants[(r+k)%len(variants)]
			i := (r + k) % len(variants)
			start := time.Now()
			if err := exec.Command(v.bin, strings.Fields(common+" "+v.extra)...).Run(); err != nil {
				if _, ok := err.(*exec.ExitError); !ok {
					b.Fatalf("%s: %v", v.name, err)
				}
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	fmt.Printf("interleaved, %d rounds: median (mean) per check\n", rounds)
	base := median(took[0])
	for i, v := range variants {
		m := median(took[i])
		fmt.Printf("  %-26s %6.1f ms (%6.1f ms)  %+5.1f%%\n", v.name, ms(m), ms(mean(took[i])), 100*(float64(m)/float64(base)-1))
	}
	for _, v := range variants {
		args := append([]string{"-f", "%M", v.bin}, strings.Fields(common+" "+v.extra)...)
		res, _ := exec.Command("/usr/bin/time", args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(res)), "\n")
		fmt.Printf("peak RSS %s: %s KiB\n", v.name, lines[len(lines)-1])
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t / time.Duration(len(ds))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
