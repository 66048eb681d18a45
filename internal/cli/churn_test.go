package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/churn"
)

func TestChurnUsage(t *testing.T) {
	dir := t.TempDir()
	csvs := []string{"--steps-csv", filepath.Join(dir, "s.csv"), "--samples-csv", filepath.Join(dir, "m.csv")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"churn", "--runtime", "podman"}, "want containerd, cri, docker or runc"},
		{[]string{"churn", "--runtime", "containerd", "--cycles", "0"}, "want at least 1"},
		{[]string{"churn", "--runtime", "runc", "--fault", "kill-shim"}, "runc has no shim"},
		{[]string{"churn", "--runtime", "cri", "--steps", "run,pause,delete"}, "the CRI has no pause"},
		{[]string{"churn", "--runtime", "containerd", "-o", "yaml"}, "want table or json"},
		{[]string{"churn", "--runtime", "containerd", "--plot-format", "gif"}, "want png or svg"},
		{[]string{"churn", "--cleanup-only"}, "want containerd, cri, docker or runc"},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), append(tc.args, csvs...), &stdout, &stderr)
		if code != 3 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestChurnTable(t *testing.T) {
	e := int64(126219)
	r := &churn.Result{Runtime: "containerd", Cycles: 50, Steps: 250, Elapsed: 25 * time.Second, Sampling: time.Second, Samples: 11,
		Leaks: []churn.Leak{{Limit: "leak.fifo", Scope: "/run/containerd/fifo", PerCycle: 4, CI: [2]float64{4, 4}, CyclesToExhaustion: &e}},
		Series: []*churn.Series{
			{Limit: "leak.fifo", Scope: "/run/containerd/fifo", Unit: "inodes", Points: []churn.Point{{Cycle: 0}, {Cycle: 50, Used: 200, Max: 505078}},
				Slope: churn.Slope{PerCycle: 4, Lo: 4, Hi: 4}, Leaking: true, Exhaustion: e},
			{Limit: "inodes", Scope: "/mnt/\x1b[31mevil", Unit: "inodes", Points: []churn.Point{{Cycle: 0, Used: 5}, {Cycle: 50, Used: 6}},
				Slope: churn.Slope{PerCycle: 0.02, Lo: 0, Hi: 0.1}, Exhaustion: -1},
			{Limit: "pids", Scope: "host", Unit: "pids", Points: []churn.Point{{Cycle: 0, Used: 5}, {Cycle: 50, Used: 5}}, Exhaustion: -1},
		}}
	var b bytes.Buffer
	writeChurnTable(&b, r, false)
	out := b.String()
	for _, want := range []string{"50 cycles in 25s, 2.00 cycles/s", "(4.0% of the loop)", "leak.fifo", "126219", "LEAK", "(1 more series did not move"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("a scope's escape sequence reached the terminal:\n%q", out)
	}
}
