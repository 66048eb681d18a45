//go:build lab

package kernel

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/lab/labkit"
)

// TestInotifyInstancesPeakInHistory: serve records every second while a
// dedicated uid takes every inotify instance it may and then lets them
// go. Afterwards the history holds the peak at 100% with its time, and
// explain, given the error a program of that uid printed, confirms the
// limit as past: full, for as long as it was held.
func TestInotifyInstancesPeakInHistory(t *testing.T) {
	maxInst := lowerSysctl(t, "fs.inotify.max_user_instances", 16384, 1024)
	uid := labkit.UID(9)
	scope := "uid " + strconv.Itoa(uid)
	histDir := t.TempDir()
	addr := labkit.FreeAddr(t)
	serve := exec.Command(labkit.Bin(), "serve", "--listen", addr, "--interval", "1s", "--no-runtimes", "--history-dir", histDir)
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := serve.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
		serve.Wait()
	})
	time.Sleep(3 * time.Second) // a few samples before

	bin := helperBinary(t)
	h := startHelper(t, bin, "inotify-instances", uid)
	took := time.Now()
	if syscall.Errno(h.Report.Errno) != syscall.EMFILE || int64(h.Report.Count) != maxInst {
		t.Fatalf("the helper got %d instances, then %s; want %d, then EMFILE", h.Report.Count, h.Report.Err, maxInst)
	}
	time.Sleep(4 * time.Second) // held full across several checks
	h.stdin.Close()
	h.cmd.Process.Kill()
	h.cmd.Wait()
	freed := time.Now()
	time.Sleep(3 * time.Second) // and released across several more

	out, err := exec.Command(labkit.Bin(), "history", "--history-dir", histDir, "--only", "inotify.instances", "--scope", scope, "--since", "1h", "-o", "json").Output()
	if err != nil {
		t.Fatalf("enospc history: %v\n%s", err, out)
	}
	var rep history.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("enospc history -o json: %v\n%s", err, out)
	}
	series := rep.Series
	if len(series) != 1 || len(series[0].Samples) == 0 {
		t.Fatalf("history of inotify.instances %s: %s", scope, out)
	}
	var peak int64
	var peakAt time.Time
	last := series[0].Samples[len(series[0].Samples)-1]
	for _, s := range series[0].Samples {
		if s.Used > peak {
			peak, peakAt = s.Used, s.T
		}
	}
	t.Logf("history: %d samples, peak %d of %d at %s (instances taken %s, freed %s), last %d", len(series[0].Samples), peak, maxInst, peakAt.Format(time.RFC3339Nano), took.Format(time.RFC3339Nano), freed.Format(time.RFC3339Nano), last.Used)
	if peak != maxInst || peakAt.Before(took.Add(-2*time.Second)) || peakAt.After(freed.Add(time.Second)) {
		t.Errorf("peak %d at %s, want %d (100%%) between %s and %s", peak, peakAt, maxInst, took, freed)
	}
	// Released, the uid holds no instance and its row is gone: its last
	// sample is from before the release, or lower.
	if last.Used >= maxInst && last.T.After(freed.Add(1500*time.Millisecond)) {
		t.Errorf("a sample at %s, after the release, still holds %d", last.T, last.Used)
	}

	msg := "inotify_init1 failed: " + h.Report.Err
	var res struct {
		Causes []struct {
			Limit string            `json:"limit"`
			Past  []history.Episode `json:"past"`
		} `json:"causes"`
	}
	eout, _ := exec.Command(labkit.Bin(), "explain", "-o", "json", "--history-dir", histDir, "--since", "1h", msg).Output()
	if err := json.Unmarshal(eout, &res); err != nil {
		t.Fatalf("explain %q: %v\n%s", msg, err, eout)
	}
	var ep *history.Episode
	for _, c := range res.Causes {
		for i, e := range c.Past {
			if c.Limit == "inotify.instances" && e.Scope == scope {
				ep = &c.Past[i]
			}
		}
	}
	if ep == nil || !ep.Full || ep.Peak != maxInst {
		t.Fatalf("explain %q after the release: %s; want inotify.instances %s confirmed as past, full", msg, eout, scope)
	}
	t.Logf("explain: inotify.instances %s full from %s to %s", scope, ep.FullFrom.Format(time.RFC3339), ep.To.Format(time.RFC3339))
	if d := ep.To.Sub(ep.FullFrom); d < time.Second || d > 8*time.Second {
		t.Errorf("full for %s, want about the 4 s it was held", d)
	}
}
