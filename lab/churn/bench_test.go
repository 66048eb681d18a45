//go:build lab

package churn_test

// The speed of churn on a private containerd: a run/kill/delete loop by
// churn against the same loop by ctr from a shell
// (scripts/churn-ctr-loop), and the share of the loop's time that
// sampling takes at --sample-every 10. Run it with scripts/bench-churn.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

var (
	loopLine   = regexp.MustCompile(`(\d+) cycles in ([0-9.]+)(ms|s)`)
	sampleLine = regexp.MustCompile(`sampling: \d+ samples, ([0-9.]+)(ms|s) \(([0-9.]+)% of the loop\)`)
	ctrLine    = regexp.MustCompile(`([0-9.]+) cycles/s, (\d+) given up`)
)

func seconds(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	if unit == "ms" {
		f /= 1000
	}
	return f
}

// churnTable runs churn with its table output; exit 1 (a leak, here of
// the host's other work) is an answer, not a failure.
func churnTable(b *testing.B, args ...string) string {
	cmd := exec.Command(labkit.Bin(), append([]string{"churn"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
		b.Fatalf("churn: %v\n%s", err, out)
	}
	return string(out)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func BenchmarkChurnVsCtr(b *testing.B) {
	cycles, rounds := 100, 3
	if s := os.Getenv("BENCH_CYCLES"); s != "" {
		cycles, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	script, err := filepath.Abs("../../scripts/churn-ctr-loop")
	if err != nil {
		b.Fatal(err)
	}
	l := newContainerdLab(b, 100000)
	ctrNS := fmt.Sprintf("enospc-lab-ctrloop-%d", os.Getpid())
	tar := l.args[slices.Index(l.args, "--image-tar")+1]
	if _, err := l.c.Ctr(2*time.Minute, "-n", ctrNS, "images", "import", "--snapshotter", "native", tar); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		l.c.Ctr(time.Minute, "-n", ctrNS, "images", "rm", "enospc.lab/busybox:lab")
		labkit.KillCgroups(b, ctrNS)
		labkit.RemoveCgroups(b, ctrNS)
	})
	dir := b.TempDir()
	var ctrRate, loopRate, wallRate, samplePct []float64
	for r := 0; r < rounds; r++ {
		out, err := labkit.Run(30*time.Minute, script, l.c.Sock, ctrNS, "enospc.lab/busybox:lab", strconv.Itoa(cycles),
			"--snapshotter", "native", "--fifo-dir", l.c.FifoDir, "--runc-root", l.c.RuncRoot)
		if err != nil {
			b.Fatalf("ctr loop: %v", err)
		}
		m := ctrLine.FindStringSubmatch(out)
		if m == nil || m[2] != "0" {
			b.Fatalf("ctr loop: %s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		ctrRate = append(ctrRate, v)

		// The same loop by churn, sampled at its start and end only.
		out = churnTable(b, append([]string{"--steps", "run,kill,delete",
			"--cycles", strconv.Itoa(cycles), "--sample-every", strconv.Itoa(cycles),
			"--steps-csv", filepath.Join(dir, "s.csv"), "--samples-csv", filepath.Join(dir, "m.csv")}, l.args...)...)
		lm, sm := loopLine.FindStringSubmatch(out), sampleLine.FindStringSubmatch(out)
		if lm == nil || sm == nil {
			b.Fatalf("churn output: %s", out)
		}
		elapsed, sampling := seconds(lm[2], lm[3]), seconds(sm[1], sm[2])
		loopRate = append(loopRate, float64(cycles)/(elapsed-sampling))
		wallRate = append(wallRate, float64(cycles)/elapsed)

		// The seed's steps sampled every 10 cycles.
		out = churnTable(b, append([]string{
			"--cycles", strconv.Itoa(cycles), "--sample-every", "10",
			"--steps-csv", filepath.Join(dir, "s.csv"), "--samples-csv", filepath.Join(dir, "m.csv")}, l.args...)...)
		sm = sampleLine.FindStringSubmatch(out)
		if sm == nil {
			b.Fatalf("churn output: %s", out)
		}
		pct, _ := strconv.ParseFloat(sm[3], 64)
		samplePct = append(samplePct, pct)
		b.Logf("round %d: ctr %.2f cycles/s; churn %.2f cycles/s (loop) %.2f (with its two samples); sampling every 10 cycles: %.1f%% of the loop",
			r+1, ctrRate[r], loopRate[r], wallRate[r], samplePct[r])
	}
	b.Logf("median of %d rounds of %d cycles: ctr from a shell %.2f cycles/s; churn %.2f cycles/s (%.1fx); sampling at --sample-every 10: %.1f%% of the loop",
		rounds, cycles, median(ctrRate), median(loopRate), median(loopRate)/median(ctrRate), median(samplePct))
}
