package check

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

func row(limit string, sev limits.Severity, used, max int64) limits.Finding {
	return limits.Finding{Limit: limit, Scope: "s", Severity: sev, Used: used, Max: max}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []limits.Finding
		want int
	}{
		{"all ok", []limits.Finding{row("a", limits.OK, 1, 10)}, 0},
		{"none", nil, 0},
		{"warning", []limits.Finding{row("a", limits.OK, 1, 10), row("b", limits.Warning, 9, 10)}, 1},
		{"unknown only", []limits.Finding{row("a", limits.Unknown, 0, 0), row("b", limits.OK, 1, 10)}, 3},
		{"warning beats unknown", []limits.Finding{row("a", limits.Unknown, 0, 0), row("b", limits.Warning, 9, 10)}, 1},
		{"critical beats all", []limits.Finding{row("a", limits.Unknown, 0, 0), row("b", limits.Warning, 9, 10), row("c", limits.Critical, 10, 10)}, 2},
	} {
		if got := ExitCode(tc.rows); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSortWorstFirst(t *testing.T) {
	rows := []limits.Finding{
		row("disk", limits.OK, 1, 10),
		row("inodes", limits.Unknown, 0, 0),
		row("keys.bytes", limits.Critical, 96, 100),
		row("pids", limits.Warning, 8, 10),
		row("files", limits.OK, 5, 10),
		row("keys.count", limits.Critical, 100, 100),
	}
	Sort(rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.Limit)
	}
	want := "keys.count keys.bytes pids inodes files disk"
	if strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	h := host.New("/proc", "/sys", "/")
	if _, err := Run(context.Background(), h, Options{Thresholds: limits.Thresholds{Warn: 0.9, Crit: 0.5}}); err == nil {
		t.Error("warn above crit accepted")
	}
	if _, err := Run(context.Background(), h, Options{Only: []string{"no.such.limit"}}); err == nil || !strings.Contains(err.Error(), "no.such.limit") {
		t.Errorf("unknown limit: err = %v", err)
	}
}

// TestRunLiveOnly runs the real host restricted to two limits: only those
// rows come back, graded, with remedies exactly on the rows that are not ok.
func TestRunLiveOnly(t *testing.T) {
	rep, err := Run(context.Background(), host.New("/proc", "/sys", "/"), Options{Only: []string{"files", "pids"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Limit != "files" && f.Limit != "pids" {
			t.Errorf("unrequested limit %s in report", f.Limit)
		}
		seen[f.Limit] = true
		if f.Severity == limits.OK && f.Max <= 0 {
			t.Errorf("%s %s is ok without a max", f.Limit, f.Scope)
		}
		if (f.Severity == limits.Warning || f.Severity == limits.Critical) != (len(f.Remedy) > 0) {
			t.Errorf("%s %s: severity %s with %d remedies", f.Limit, f.Scope, f.Severity, len(f.Remedy))
		}
	}
	if !seen["files"] || !seen["pids"] {
		t.Errorf("report lacks files or pids: %v", seen)
	}
	if rep.Kernel == "" || rep.Time.IsZero() {
		t.Errorf("report header incomplete: kernel %q time %v", rep.Kernel, rep.Time)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, host.New("/proc", "/sys", "/"), Options{}); err == nil {
		t.Fatal("a cancelled check returned a report")
	}
}

// A family whose read blocks (a hung mount, a device) is abandoned at its
// deadline, reported unknown with the reason, and not started again while
// it is still blocked; the check answers all the same. A cancelled
// context (SIGTERM) ends the check at once.
func TestBlockedFamilyIsAbandoned(t *testing.T) {
	dir := "../testdata/hosts/run-inodes"
	h := host.New(dir+"/proc", dir+"/sys", dir)
	release := make(chan struct{})
	reads := make(chan struct{}, 10)
	stuck := limits.Family{Name: "stuck", Limits: []limits.Limit{{ID: "stuck.things", Unit: "things"}},
		Read: func(*limits.Env) []limits.Finding {
			reads <- struct{}{}
			<-release
			return []limits.Finding{{Limit: "stuck.things", Scope: "all", Unit: "things", Used: 1, Max: 10}}
		}}
	quick := limits.Family{Name: "quick", Limits: []limits.Limit{{ID: "quick.things", Unit: "things"}},
		Read: func(*limits.Env) []limits.Finding {
			return []limits.Finding{{Limit: "quick.things", Scope: "all", Unit: "things", Used: 1, Max: 10}}
		}}
	opts := Options{Catalog: []limits.Family{stuck, quick}, FamilyTimeout: 100 * time.Millisecond}
	find := func(rep *Report, id string) limits.Finding {
		for _, f := range rep.Findings {
			if f.Limit == id {
				return f
			}
		}
		t.Fatalf("no %s row in %+v", id, rep.Findings)
		return limits.Finding{}
	}

	start := time.Now()
	rep, err := Run(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("check took %s with a family bound of 100ms", d)
	}
	if u := find(rep, "stuck.things"); u.Severity != limits.Unknown || !strings.Contains(u.Reason, "abandoned") {
		t.Errorf("blocked family: %s %q, want unknown and abandoned", u.Severity, u.Reason)
	}
	if u := find(rep, "quick.things"); u.Severity != limits.OK || u.Used != 1 {
		t.Errorf("the other family: %s %d, want ok 1", u.Severity, u.Used)
	}

	// Still blocked: not started again.
	rep, err = Run(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	if u := find(rep, "stuck.things"); u.Severity != limits.Unknown || !strings.Contains(u.Reason, "not started again") {
		t.Errorf("second check: %s %q, want unknown and not started again", u.Severity, u.Reason)
	}
	if n := len(reads); n != 1 {
		t.Errorf("the blocked family was started %d times, want 1", n)
	}

	// It returns: the next check reads it again.
	close(release)
	if !waitUntil(2*time.Second, func() bool { _, blocked := blockedFamilies.Blocked(h.Proc + "\x00stuck"); return !blocked }) {
		t.Fatal("the family returned but is still marked blocked")
	}
	rep, err = Run(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	if u := find(rep, "stuck.things"); u.Severity != limits.OK {
		t.Errorf("after it returned: %s %q, want ok", u.Severity, u.Reason)
	}

	// Cancelled while a family blocks: the check ends with the error.
	block := make(chan struct{})
	defer close(block)
	hang := limits.Family{Name: "hang", Limits: []limits.Limit{{ID: "hang.things", Unit: "things"}},
		Read: func(*limits.Env) []limits.Finding { <-block; return nil }}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	_, err = Run(ctx, h, Options{Catalog: []limits.Family{hang}, FamilyTimeout: time.Hour})
	if err != context.Canceled {
		t.Errorf("cancelled check: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled check took %s", d)
	}
}

func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
