package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// fixtureServer serves the Jenkins fixture host; checks counts the checks
// run.
func fixtureServer(t *testing.T, top int, cache time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	dir := "../testdata/hosts/jenkins-keyring"
	var checks atomic.Int64
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	srv := New(Options{
		NewHost: func() *host.Host {
			checks.Add(1)
			h := host.New(dir+"/proc", dir+"/sys", dir+"/root")
			h.Now = func() time.Time { return now }
			h.StatfsFunc = func(string) (host.Statfs, error) {
				return host.Statfs{BlockSize: 4096, Blocks: 1000, BlocksFree: 500, BlocksAvail: 500, Files: 1000, FilesFree: 500}, nil
			}
			return h
		},
		Check:     check.Options{Inventory: attrib.NewInventory()},
		Cache:     cache,
		TopScopes: top,
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, &checks
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestMetrics(t *testing.T) {
	ts, _ := fixtureServer(t, 1, time.Minute)
	code, _, body := get(t, ts.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`enospc_limit_used{limit="keys.bytes",scope="uid 1001"} 19926`,
		`enospc_limit_max{limit="keys.bytes",scope="uid 1001"} 20000`,
		`enospc_limit_severity{limit="keys.bytes",scope="uid 1001"} 3`,
		// keys.bytes has two scopes: with one series per limit, uid 0
		// goes into "other".
		`enospc_limit_used{limit="keys.bytes",scope="other"} 40`,
		`enospc_scrape_collector_success{collector="keyrings"} 1`,
		`enospc_scrape_collector_duration_seconds{collector="keyrings"}`,
		`enospc_check_success 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `enospc_limit_used{limit="keys.bytes",scope="uid 0"}`) {
		t.Error("a scope past the top ones is a series of its own")
	}
}

func TestAPIHealthPageReadOnly(t *testing.T) {
	ts, _ := fixtureServer(t, 10, time.Minute)
	code, ctype, body := get(t, ts.URL+"/api/v1/check")
	var rep check.Report
	if code != 200 || !strings.HasPrefix(ctype, "application/json") || json.Unmarshal([]byte(body), &rep) != nil || rep.Host != "jenkins-keyring" || len(rep.Findings) == 0 {
		t.Fatalf("/api/v1/check: %d %s %.200s", code, ctype, body)
	}
	if code, _, body := get(t, ts.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, ctype, body = get(t, ts.URL+"/")
	if code != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, `src="/static/app.js"`) || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("/: %d %s, the page must load only from this server", code, ctype)
	}
	if code, _, body := get(t, ts.URL+"/static/app.js"); code != 200 || !strings.Contains(body, "/api/v1/check") {
		t.Errorf("/static/app.js: %d", code)
	}
	code, _, body = get(t, ts.URL+"/api/v1/history")
	var hist struct {
		Series []series `json:"series"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &hist) != nil || len(hist.Series) == 0 {
		t.Errorf("/api/v1/history: %d %.200s", code, body)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, ts.URL+"/api/v1/check", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 405", m, resp.StatusCode)
		}
	}
}

// Fifty concurrent scrapes share one check, and a fresh snapshot is served
// from the cache.
func TestSingleFlightAndCache(t *testing.T) {
	ts, checks := fixtureServer(t, 10, time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, _ := get(t, ts.URL+"/metrics"); code != 200 {
				t.Errorf("scrape: %d", code)
			}
		}()
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Errorf("50 concurrent scrapes ran %d checks, want 1", n)
	}
	get(t, ts.URL+"/api/v1/check")
	if n := checks.Load(); n != 1 {
		t.Errorf("a request within the cache time ran a check (%d)", n)
	}
}

func TestSnapshotError(t *testing.T) {
	s := New(Options{NewHost: func() *host.Host { return host.New("/nonexistent", "/x", "/x") }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Snapshot(ctx); err == nil {
		t.Error("a snapshot of a host without /proc succeeded")
	}
}
