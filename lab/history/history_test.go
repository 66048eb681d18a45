//go:build lab

// Package historylab is serve's history on the real kernel: a private
// tmpfs filled at a steady rate under `serve --interval 1s` gets a rate
// and a time until full within 10% of the truth before it is full, read
// back by `check --history-dir` while serve writes; and serve killed with
// SIGKILL while it records, 20 times, never leaves a store that does not
// open, and loses at most the check under way: every snapshot served
// before the kill is in the store after it, and a restart goes on with
// the history.
//
// Every process is the test's own, the history in a temp dir, the tmpfs
// private; every wait is bounded; everything is killed, unmounted and
// removed even when the test fails.
package historylab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

func TestMain(m *testing.M) { labkit.Main(m) }

const (
	source = "enospc-lab-history"
	// nrInodes at perSecond files a second: full in about 150 s.
	nrInodes  = 3000
	perSecond = 20
)

func TestRateAndETAOfAFillingTmpfs(t *testing.T) {
	dir := labkit.MountTmpfs(t, source, fmt.Sprintf("size=64m,nr_inodes=%d,mode=0755", nrInodes))
	scope := fmt.Sprintf("%s (tmpfs %s)", dir, source)
	histDir := t.TempDir()
	addr := labkit.FreeAddr(t)
	srv := startServe(t, addr, histDir)
	defer srv.stop(t)
	waitFor(t, "serve /healthz", 30*time.Second, func() (bool, string) {
		b, err := get("http://" + addr + "/healthz")
		return err == nil && string(b) == "ok\n", fmt.Sprintf("%q %v", b, err)
	})

	// Fill at a steady rate in the background, until ENOSPC or 5 min.
	type fillEnd struct {
		at      time.Time
		created int
		err     error
	}
	fillStart := time.Now()
	done := make(chan fillEnd, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// The count follows the clock, not the ticks: a tick the
		// scheduler drops on a loaded machine is made up at the next,
		// so the rate stays perSecond.
		tick := time.NewTicker(time.Second / perSecond)
		defer tick.Stop()
		i := 0
		for {
			select {
			case <-stop:
				done <- fillEnd{time.Now(), i, errors.New("stopped")}
				return
			case <-tick.C:
			}
			for want := int(time.Since(fillStart).Seconds() * perSecond); i < want; i++ {
				f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
				if err != nil {
					done <- fillEnd{time.Now(), i, err}
					return
				}
				f.Close()
			}
			if time.Since(fillStart) > 5*time.Minute {
				done <- fillEnd{time.Now(), i, errors.New("not full after 5 min")}
				return
			}
		}
	}()

	// The first trend with an ETA, from /api/v1/check, before full.
	var pred limits.Finding
	var predAt time.Time
	waitFor(t, "a rate and an ETA for the filling tmpfs", 130*time.Second, func() (bool, string) {
		var rep check.Report
		if err := getJSON("http://"+addr+"/api/v1/check", &rep); err != nil {
			return false, err.Error()
		}
		for _, f := range rep.Findings {
			if f.Limit == "inodes" && f.Scope == scope {
				if f.History != nil && f.History.ETASeconds != nil && time.Since(fillStart) > history.MinSpan+5*time.Second {
					pred, predAt = f, rep.Time
					return true, ""
				}
				return false, fmt.Sprintf("row %d/%d, history %+v", f.Used, f.Max, f.History)
			}
		}
		return false, "no row for " + scope
	})
	if pred.Used >= pred.Max {
		t.Fatalf("the tmpfs was full (%d/%d) before a rate was given", pred.Used, pred.Max)
	}
	h := pred.History
	trueRate := float64(perSecond * 3600)
	t.Logf("at %s (%d/%d): rate %.0f/h (truth %.0f/h), eta %.0f s; %s", predAt.Format(time.RFC3339), pred.Used, pred.Max,
		h.RatePerHour, trueRate, *h.ETASeconds, check.TrendWords(pred))
	if math.Abs(h.RatePerHour-trueRate) > 0.1*trueRate {
		t.Errorf("rate %.0f/h, want within 10%% of %.0f/h", h.RatePerHour, trueRate)
	}

	// A reader beside the writer: check --history-dir gives the row the
	// same kind of trend.
	rep, _ := labkit.RunCheck(t, "--only", "inodes", "--no-runtimes", "--history-dir", histDir)
	if f := labkit.Find(t, rep, "inodes", labkit.ScopeIs(scope)); f.History == nil || f.History.RatePerHour <= 0 {
		t.Errorf("check --history-dir beside serve: %+v", f.History)
	}

	var end fillEnd
	select {
	case end = <-done:
	case <-time.After(4 * time.Minute):
		t.Fatal("the fill did not end within 4 min")
	}
	if !errors.Is(end.err, unix.ENOSPC) {
		t.Fatalf("fill ended after %d files with %v, want ENOSPC", end.created, end.err)
	}
	actual := end.at.Sub(predAt).Seconds()
	t.Logf("full at %s after %d files: %.1f s after the prediction of %.1f s", end.at.Format(time.RFC3339), end.created, actual, *h.ETASeconds)
	if math.Abs(*h.ETASeconds-actual) > 0.1*actual {
		t.Errorf("ETA %.1f s, the tmpfs was full %.1f s later: want within 10%%", *h.ETASeconds, actual)
	}

	// The page's data and `enospc history` show the full tmpfs at its
	// peak.
	waitFor(t, "the full tmpfs critical with its peak", 30*time.Second, func() (bool, string) {
		var rep check.Report
		if err := getJSON("http://"+addr+"/api/v1/check", &rep); err != nil {
			return false, err.Error()
		}
		for _, f := range rep.Findings {
			if f.Limit == "inodes" && f.Scope == scope {
				return f.Used == f.Max && f.History != nil && f.History.Peak == f.Max && f.Severity == limits.Critical,
					fmt.Sprintf("%d/%d %v %+v", f.Used, f.Max, f.Severity, f.History)
			}
		}
		return false, "no row"
	})
	out := run(t, labkit.Bin(), "history", "--history-dir", histDir, "--only", "inodes", "--scope", scope, "-o", "csv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 100 || !strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf(",%d,%d,critical", nrInodes, nrInodes)) {
		t.Errorf("history -o csv: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	png := run(t, labkit.Bin(), "history", "--history-dir", histDir, "--only", "inodes", "--scope", scope, "-o", "png")
	if !strings.HasPrefix(png, "\x89PNG") {
		t.Errorf("history -o png is not a PNG: %q", png[:min(len(png), 16)])
	}

	// Full for a few seconds more, then freed again: the tmpfs is not
	// near its max now, and explain on the
	// error the fill got confirms it as past, from the history, with
	// when it was full.
	time.Sleep(5 * time.Second)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	freed := time.Now()
	waitFor(t, "serve to record the freed tmpfs", 30*time.Second, func() (bool, string) {
		var rep check.Report
		if err := getJSON("http://"+addr+"/api/v1/check", &rep); err != nil {
			return false, err.Error()
		}
		for _, f := range rep.Findings {
			if f.Limit == "inodes" && f.Scope == scope {
				return f.Used < nrInodes/10 && rep.Time.After(freed), fmt.Sprintf("%d/%d at %s", f.Used, f.Max, rep.Time)
			}
		}
		return false, "no row"
	})
	var res struct {
		Causes []struct {
			Limit     string            `json:"limit"`
			Confirmed bool              `json:"confirmed"`
			Past      []history.Episode `json:"past"`
		} `json:"causes"`
		Note string `json:"note"`
	}
	cmd := exec.Command(labkit.Bin(), "explain", "-o", "json", "--history-dir", histDir, "--since", "1h", end.err.Error())
	out2, _ := cmd.Output() // exit 0: a cause confirmed as past
	if err := json.Unmarshal(out2, &res); err != nil || len(res.Causes) == 0 {
		t.Fatalf("explain %q: %v\n%s", end.err, err, out2)
	}
	// Other inodes rows of this shared machine may be near their max now
	// (then inodes is confirmed on the host as well): what is asserted is
	// the past episode of this tmpfs.
	var ep *history.Episode
	for _, c := range res.Causes {
		t.Logf("explain %q: %s confirmed=%v past=%+v; %s", end.err, c.Limit, c.Confirmed, c.Past, res.Note)
		for i, e := range c.Past {
			if c.Limit == "inodes" && e.Scope == scope {
				ep = &c.Past[i]
			}
		}
	}
	if ep == nil || !ep.Full || ep.Peak != nrInodes {
		t.Fatalf("explain after the tmpfs was freed: %+v, want inodes confirmed as past, full on %s", res.Causes, scope)
	}
	// Full from the fill's end (within serve's 1 s interval) until it was
	// freed.
	if d := ep.To.Sub(ep.FullFrom); d < 3*time.Second {
		t.Errorf("episode full for %s, want the 5 s it was held full (within the interval)", d)
	}
	if ep.FullFrom.Before(end.at.Add(-2*time.Second)) || ep.FullFrom.After(end.at.Add(3*time.Second)) || ep.To.Before(ep.FullFrom) || ep.To.After(freed.Add(3*time.Second)) || ep.From.Before(fillStart) {
		t.Errorf("episode %s (full from %s) .. %s, want it full from the fill's end %s until the freeing %s", ep.From, ep.FullFrom, ep.To, end.at, freed)
	}
}

// TestKill9WhileRecording: 20 times, serve records at 1 s intervals and
// is killed with SIGKILL at a moment that moves across the interval.
// After each kill the store opens read-only, holds every snapshot serve
// served before the kill, and the next serve opens it for writing.
func TestKill9WhileRecording(t *testing.T) {
	histDir := t.TempDir()
	var served []time.Time
	for round := range 20 {
		addr := labkit.FreeAddr(t)
		srv := startServe(t, addr, histDir)
		waitFor(t, "serve /healthz", 30*time.Second, func() (bool, string) {
			b, err := get("http://" + addr + "/healthz")
			return err == nil && string(b) == "ok\n", fmt.Sprintf("%q %v", b, err)
		})
		// Let a few checks be recorded, then kill at an offset that
		// moves by 1/20 of the interval each round.
		deadline := time.Now().Add(2*time.Second + time.Duration(round)*time.Second/20)
		var last time.Time
		for time.Now().Before(deadline) {
			var rep check.Report
			if err := getJSON("http://"+addr+"/api/v1/check", &rep); err == nil {
				last = rep.Time
			}
			time.Sleep(20 * time.Millisecond)
		}
		srv.kill(t)
		if last.IsZero() {
			t.Fatalf("round %d: no snapshot served", round)
		}
		served = append(served, last)

		var rep history.Report
		out := run(t, labkit.Bin(), "history", "--history-dir", histDir, "--only", "pids", "--scope", "host", "--since", "1h", "-o", "json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("round %d: history -o json after kill -9: %v\n%s", round, err, out)
		}
		if len(rep.Series) != 1 {
			t.Fatalf("round %d: %d series for pids host", round, len(rep.Series))
		}
		have := map[int64]bool{}
		for _, s := range rep.Series[0].Samples {
			have[s.T.UnixMilli()] = true
		}
		for i, at := range served {
			if !have[at.UnixMilli()] {
				t.Errorf("round %d: the snapshot of %s served in round %d is not in the store (%d samples)", round, at.Format(time.RFC3339Nano), i, len(have))
			}
		}
		t.Logf("round %d: %d samples after kill -9", round, len(have))
	}
}

type serveProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	log    *bytes.Buffer
}

func startServe(t *testing.T, addr, histDir string) *serveProc {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(labkit.Bin(), "serve", "--listen", addr, "--interval", "1s", "--no-runtimes", "--history-dir", histDir)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p := &serveProc{cmd: cmd, exited: make(chan struct{}), log: &log}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("CLEANUP FAILED: serve (pid %d) survives SIGKILL", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("serve output:\n%s", log.String())
		}
	})
	return p
}

func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not die of SIGKILL")
	}
}

func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("serve did not stop within 10 s of SIGTERM")
	}
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not end within 60 s", bin, strings.Join(args, " "))
	}
	return stdout.String()
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var why string
	for time.Now().Before(deadline) {
		var done bool
		if done, why = ok(); done {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %s", what, within, why)
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, err
}

func getJSON(url string, v any) error {
	b, err := get(url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
