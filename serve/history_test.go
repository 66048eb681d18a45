package serve

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// TestHistoryTrend: checks 30 s apart of a host whose filesystems lose
// 10 inodes a check give every inodes row a rate of 1200/h and the time
// until full, in /api/v1/check and /metrics; a restart keeps them.
func TestHistoryTrend(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	n := 0
	newHost := func() *host.Host {
		h := fixtureHost()
		now := start.Add(time.Duration(n) * 30 * time.Second)
		free := uint64(900 - 10*n)
		h.Now = func() time.Time { return now }
		h.StatfsFunc = func(string) (host.Statfs, error) {
			return host.Statfs{BlockSize: 4096, Blocks: 1000, BlocksFree: 500, BlocksAvail: 500, Files: 1000, FilesFree: free}, nil
		}
		n++
		return h
	}
	var log strings.Builder
	clock := func() time.Time { return start.Add(time.Duration(n) * 30 * time.Second) }
	srv := New(Options{NewHost: newHost, Check: check.Options{Inventory: attrib.NewInventory()}, HistoryDir: dir, Log: &log, Now: clock})
	for range 12 {
		srv.CheckOnce(context.Background())
	}
	var rep check.Report
	if err := json.Unmarshal(srv.snap.Load().check.plain, &rep); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range rep.Findings {
		if f.Limit != "inodes" {
			continue
		}
		seen++
		h := f.History
		if h == nil || h.ETASeconds == nil {
			t.Fatalf("inodes %q: no trend: %+v", f.Scope, h)
		}
		// 10 inodes every 30 s; 790 free at the last check.
		if h.RatePerHour != 1200 || *h.ETASeconds != 790*3 {
			t.Errorf("inodes %q: rate %v/h eta %v s, want 1200/h and 2370 s", f.Scope, h.RatePerHour, *h.ETASeconds)
		}
		if f.Severity.String() != "critical" || !strings.Contains(f.Reason, "exhausted within 4 h") {
			t.Errorf("inodes %q at %d/%d: %v %q, want critical by its trend", f.Scope, f.Used, f.Max, f.Severity, f.Reason)
		}
	}
	if seen == 0 {
		t.Fatal("no inodes rows")
	}
	metrics := string(srv.snap.Load().metrics)
	if !strings.Contains(metrics, "enospc_limit_eta_seconds{limit=\"inodes\"") || !strings.Contains(metrics, "enospc_history_recording 1") {
		t.Errorf("metrics lack the ETA or recording:\n%s", metrics)
	}
	// The page's chart of a row: an SVG image of its history.
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var scope string
	for _, f := range rep.Findings {
		if f.Limit == "inodes" {
			scope = f.Scope
			break
		}
	}
	code, ctype, body := get(t, ts.URL+"/api/v1/chart?"+url.Values{"limit": {"inodes"}, "scope": {scope}}.Encode())
	if code != 200 || ctype != "image/svg+xml" || !strings.Contains(body, "<svg") || !strings.Contains(body, "projection") {
		t.Errorf("/api/v1/chart: %d %s %.300s", code, ctype, body)
	}
	if err := xml.Unmarshal([]byte(body), new(struct{})); err != nil {
		t.Errorf("/api/v1/chart is not XML: %v", err)
	}
	for _, q := range []string{"limit=nope&scope=x", "limit=inodes", "limit=inodes&scope=x&since=1000h"} {
		if code, _, _ := get(t, ts.URL+"/api/v1/chart?"+q); code != 400 {
			t.Errorf("/api/v1/chart?%s: %d, want 400", q, code)
		}
	}
	if code, _, _ := get(t, ts.URL+"/api/v1/chart?limit=inodes&scope=never"); code != 404 {
		t.Errorf("/api/v1/chart of a row never recorded: %d, want 404", code)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if log.Len() != 0 {
		t.Errorf("log: %q", log.String())
	}

	srv = New(Options{NewHost: newHost, Check: check.Options{Inventory: attrib.NewInventory()}, HistoryDir: dir})
	defer srv.Close()
	srv.CheckOnce(context.Background())
	if !strings.Contains(string(srv.snap.Load().check.plain), `"rate_per_hour": 1200`) {
		t.Errorf("after a restart the trend is gone")
	}
}

// TestHistoryUnwritable: a history directory that cannot be made turns
// recording off with a message and a metric; serving goes on.
func TestHistoryUnwritable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	srv, ts, _ := fixtureServer(t, Options{HistoryDir: filepath.Join(f, "history"), Log: &log})
	defer srv.Close()
	code, _, body := get(t, ts.URL+"/metrics")
	if code != 200 || !strings.Contains(body, "enospc_history_recording 0") {
		t.Errorf("/metrics %d:\n%s", code, body)
	}
	if !strings.Contains(log.String(), "history recording off") || !strings.Contains(log.String(), "not a directory") {
		t.Errorf("log: %q", log.String())
	}
	if code, _, _ := get(t, ts.URL+"/api/v1/check"); code != 200 {
		t.Errorf("/api/v1/check %d", code)
	}
}
