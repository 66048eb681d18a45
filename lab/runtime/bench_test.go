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
	const image = "enospc.lab/busybox:lab"
	c := startContainerd(b)
	c.ImportBusybox(b, image)
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.RunDetached(image, fmt.Sprintf("bench-%03d", i), "sleep", "3600"); err != nil {
			b.Fatalf("container %d: %v\n%s", i, err, c.log())
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
		"-n", "ctr task ls", c.ctr+" -a "+c.Sock+" -n "+c.NS+" task ls",
		"-n", "ctr container ls", c.ctr+" -a "+c.Sock+" -n "+c.NS+" container ls")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("hyperfine: %v", err)
	}
	out, _ := os.ReadFile(md)
	fmt.Printf("\n%d containers\n%s\n", n, out)
	for _, v := range []struct{ name, bin, extra string }{
		{"before attribution", baseline, ""},
		{"check --no-runtimes", labkit.Bin(), "--no-runtimes"},
		{"check (containerd asked)", labkit.Bin(), "--docker-host= --crio-socket= --containerd-address " + c.Sock},
	} {
		args := append([]string{"-f", "%M", v.bin}, strings.Fields(common+" "+v.extra)...)
		res, _ := exec.Command("/usr/bin/time", args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(res)), "\n")
		fmt.Printf("peak RSS %s: %s KiB\n", v.name, lines[len(lines)-1])
	}
}
