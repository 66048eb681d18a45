package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/fixture"
	"github.com/enospc/enospc/limits"
)

// clock is a settable clock for staleness.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixtureHost is the Jenkins fixture host (internal/fixture), its statfs
// numbers and clock served as the golden tests serve them.
func fixtureHost() *host.Host {
	f, err := fixture.Load("../testdata/hosts/jenkins-keyring")
	if err != nil {
		panic(err)
	}
	return f.New(nil)
}

// fixtureServer serves one check of the Jenkins fixture host; checks
// counts the checks run.
func fixtureServer(t *testing.T, opts Options) (*Server, *httptest.Server, *atomic.Int64) {
	t.Helper()
	var checks atomic.Int64
	opts.NewHost = func() *host.Host { checks.Add(1); return fixtureHost() }
	opts.Check = check.Options{Inventory: attrib.NewInventory()}
	srv := New(opts)
	srv.CheckOnce(context.Background())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return srv, ts, &checks
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	// Ask for identity: the transport would otherwise ask for gzip and
	// undo it, and the plain bodies would go untested.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestMetrics(t *testing.T) {
	_, ts, _ := fixtureServer(t, Options{TopScopes: 1})
	code, ctype, body := get(t, ts.URL+"/metrics")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %s\n%s", code, ctype, body)
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
		"\nenospc_check_success 1\n",
		"\nenospc_snapshot_stale 0\n",
		"\nenospc_snapshot_age_seconds ",
		"\nenospc_snapshot_timestamp_seconds ",
		"\nenospc_rows_unexported 0\n",
		"# TYPE enospc_limit_used gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `enospc_limit_used{limit="keys.bytes",scope="uid 0"}`) {
		t.Error("a scope past the top ones is a series of its own")
	}
}

// The gzip body is one ordinary gzip member that holds exactly the plain
// body, age included.
func TestMetricsGzip(t *testing.T) {
	now := time.Now()
	_, ts, _ := fixtureServer(t, Options{Now: func() time.Time { return now }})
	_, _, plain := get(t, ts.URL+"/metrics")
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "br;q=1.0, gzip;q=0.8")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if rest, _ := io.ReadAll(resp.Body); len(rest) != 0 {
		t.Errorf("%d bytes after the gzip member", len(rest))
	}
	if string(got) != plain {
		t.Errorf("gunzipped body differs from the plain one:\n%s\n---\n%s", got, plain)
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "deflate"} {
		req.Header.Set("Accept-Encoding", ae)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ce := resp.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", ae, ce)
		}
	}
}

func TestAPIHealthPageReadOnly(t *testing.T) {
	_, ts, _ := fixtureServer(t, Options{})
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

// Fifty concurrent scrapes and API reads run no check: they copy the
// snapshot.
func TestScrapesRunNoCheck(t *testing.T) {
	_, ts, checks := fixtureServer(t, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			for _, p := range []string{"/metrics", "/api/v1/check"} {
				if code, _, _ := get(t, ts.URL+p); code != 200 {
					t.Errorf("%s: %d", p, code)
				}
			}
		})
	}
	wg.Wait()
	if n := checks.Load(); n != 1 {
		t.Errorf("100 requests after one check ran %d checks in all, want 1", n)
	}
}

// A check that never ends keeps no request waiting: before the first
// snapshot every endpoint answers 503 at once, and once the snapshot is
// older than StaleAfter it is reported stale, with the reason.
func TestHungCheck(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	release := make(chan struct{})
	var calls atomic.Int64
	srv := New(Options{
		Interval: time.Minute, Timeout: 10 * time.Second, Now: clk.Now,
		Check: check.Options{Inventory: attrib.NewInventory()},
		NewHost: func() *host.Host {
			if calls.Add(1) > 1 {
				<-release // the second check hangs
			}
			return fixtureHost()
		},
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })

	gate := make(chan struct{})
	first := srv.opts.NewHost
	srv.opts.NewHost = func() *host.Host { <-gate; return first() }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Run(ctx)

	start := time.Now()
	for _, p := range []string{"/metrics", "/api/v1/check", "/api/v1/history", "/healthz"} {
		if code, _, body := get(t, ts.URL+p); code != 503 || !strings.Contains(body, "no snapshot yet") {
			t.Errorf("%s before the first snapshot: %d %q, want 503 no snapshot yet", p, code, body)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("requests before the first snapshot took %s", d)
	}
	clk.Add(time.Minute)
	if code, _, body := get(t, ts.URL+"/healthz"); code != 503 || !strings.Contains(body, "no snapshot yet") || !strings.Contains(body, "started 1m0s ago and not ended") {
		t.Errorf("/healthz with the first check past its timeout: %d %q", code, body)
	}
	close(gate) // the first check runs; the second, an interval later, hangs
	waitUntil(t, func() bool { code, _, _ := get(t, ts.URL+"/healthz"); return code == 200 })

	// Still fresh within StaleAfter (interval + timeout < 3 intervals).
	clk.Add(2 * time.Minute)
	if code, _, _ := get(t, ts.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz at 2 intervals: %d, want 200", code)
	}
	// The second check starts (a real interval is a minute: start it by
	// hand) and hangs; past 3 intervals the snapshot is stale.
	go srv.CheckOnce(ctx)
	waitUntil(t, func() bool { return srv.running.Load() != 0 })
	clk.Add(2 * time.Minute)
	code, _, body := get(t, ts.URL+"/healthz")
	if code != 503 || !strings.Contains(body, "stale snapshot") || !strings.Contains(body, "has not ended") {
		t.Errorf("/healthz with a hung check: %d %q", code, body)
	}
	if code, _, _ := get(t, ts.URL+"/api/v1/check"); code != 503 {
		t.Errorf("/api/v1/check of a stale snapshot: %d, want 503", code)
	}
	code, _, body = get(t, ts.URL+"/metrics")
	if code != 200 || !strings.Contains(body, "\nenospc_snapshot_stale 1\n") || !strings.Contains(body, "\nenospc_snapshot_age_seconds 240\n") {
		t.Errorf("/metrics of a stale snapshot: %d, want enospc_snapshot_stale 1 and age 240:\n%s", code, tailOf(body))
	}
}

func tailOf(s string) string { return s[max(0, len(s)-600):] }

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("timed out")
}

func TestCheckFails(t *testing.T) {
	srv := New(Options{NewHost: func() *host.Host { return host.New("/nonexistent", "/x", "/x") }})
	srv.CheckOnce(context.Background())
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if code, _, body := get(t, ts.URL+"/healthz"); code != 503 || !strings.Contains(body, "check failed") {
		t.Errorf("/healthz after a failed check: %d %q", code, body)
	}
	if code, _, _ := get(t, ts.URL+"/metrics"); code != 503 {
		t.Errorf("/metrics with no report: %d", code)
	}
}

// A scope that is not valid UTF-8 (a mount point made with fusermount)
// no longer costs other rows: 20 of 20 scrapes hold the critical ptys
// row, every label is valid UTF-8, and two scopes that differ stay two.
func TestInvalidUTF8Scope(t *testing.T) {
	srv := New(Options{NewHost: fixtureHost})
	rep := &check.Report{Host: "h", Time: time.Now(), Findings: []limits.Finding{
		{Limit: "inodes", Scope: "/mnt/\xff\xfe", Used: 9, Max: 10, Unit: "inodes", Severity: limits.Warning},
		{Limit: "inodes", Scope: "/mnt/\\xff\xfe", Used: 8, Max: 10, Unit: "inodes", Severity: limits.Warning},
		{Limit: "inodes", Scope: `/mnt/\xff\xfe`, Used: 7, Max: 10, Unit: "inodes", Severity: limits.OK},
		{Limit: "ptys", Scope: "host", Used: 4096, Max: 4096, Unit: "ptys", Severity: limits.Critical},
	}}
	srv.publish(rep, time.Second, nil)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for i := range 20 {
		_, _, body := get(t, ts.URL+"/metrics")
		if !strings.Contains(body, `enospc_limit_severity{limit="ptys",scope="host"} 3`) {
			t.Fatalf("scrape %d lacks the critical ptys row:\n%s", i, body)
		}
		if !utf8.ValidString(body) {
			t.Fatalf("scrape %d is not valid UTF-8", i)
		}
		if !strings.Contains(body, "\nenospc_rows_unexported 0\n") {
			t.Errorf("scrape %d: rows unexported", i)
		}
		if n := strings.Count(body, `enospc_limit_used{limit="inodes"`); n != 3 {
			t.Fatalf("scrape %d: %d inodes series, want 3:\n%s", i, n, body)
		}
	}
}

func TestLabelValue(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/docker":  "/var/lib/docker",
		`C:\ok`:            `C:\ok`,
		"/mnt/\xff":        `/mnt/\xff`,
		"/mnt/\\\xff":      `/mnt/\\\xff`,
		"caf\xc3\xa9\x80x": `café\x80x`,
	} {
		if got := labelValue(in); got != want || !utf8.ValidString(got) {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
	ls := labelSet{}
	a, b, c := ls.unique("/mnt/\xff"), ls.unique(`/mnt/\xff`), ls.unique(`/mnt/\xff`)
	if a == b || b == c || a == c {
		t.Errorf("distinct rows share a label: %q %q %q", a, b, c)
	}
}

func TestRedact(t *testing.T) {
	uid := 1001
	rep := &check.Report{Host: "h", Time: time.Now(), Findings: []limits.Finding{
		{Limit: "keys.keys", Scope: "uid 1001", Used: 200, Max: 200, Severity: limits.Critical,
			Reason:    "the biggest, pid 4242 (x)y) holds 3",
			Remedy:    []string{"stop pid 4242 (secretd), then retry"},
			Consumers: []limits.Consumer{{PID: 4242, UID: &uid, Comm: "secretd", Name: "user password=hunter2", Container: "abc", Count: 3}}},
		{Limit: "files.process", Scope: "pid 77 (leaky)", Used: 1000, Max: 1024, Severity: limits.Critical},
		{Limit: "leak.fifo", Scope: "/run/containerd/fifo", Consumers: []limits.Consumer{{Name: "/run/containerd/fifo/123", Count: 3}}},
	}, Groups: []check.Group{{Key: "abc", Holdings: []check.Holding{{Limit: "files.process", Scope: "pid 77 (leaky)"}}}}}
	out := redact(rep)
	b, _ := json.Marshal(out)
	for _, secret := range []string{"secretd", "hunter2", "4242", "leaky", "pid 77", "x)y"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("redacted report holds %q:\n%s", secret, b)
		}
	}
	for _, kept := range []string{`"uid":1001`, `"container":"abc"`, `"count":3`, `"scope":"process #1"`, "/run/containerd/fifo/123", "the biggest, a process holds 3", "stop a process, then retry"} {
		if !bytes.Contains(b, []byte(kept)) {
			t.Errorf("redacted report lacks %q:\n%s", kept, b)
		}
	}
	if orig, _ := json.Marshal(rep); !bytes.Contains(orig, []byte("hunter2")) {
		t.Error("redact changed the report it was given")
	}
}

// The default server hides holders; --expose-holders shows them.
func TestExposeHolders(t *testing.T) {
	for _, expose := range []bool{false, true} {
		_, ts, _ := fixtureServer(t, Options{ExposeHolders: expose})
		_, _, body := get(t, ts.URL+"/api/v1/check")
		var rep check.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatal(err)
		}
		named := 0
		for _, f := range rep.Findings {
			for _, c := range f.Consumers {
				if c.Comm != "" || c.PID != 0 || (c.UID != nil && c.Name != "") {
					named++
				}
			}
		}
		if expose != (named > 0) {
			t.Errorf("ExposeHolders %v: %d holders named", expose, named)
		}
	}
}

// The page puts host strings into the DOM as text only.
func TestPageRendersText(t *testing.T) {
	b, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Find(b); m != nil {
		t.Errorf("static/app.js uses %s: host strings must go in as text", m)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{"": false, "gzip": true, "GZIP": true, "br, gzip": true, "gzip;q=0": false, "gzip; q=0.5": true, "x-gzip": false, "deflate": false} {
		r := httptest.NewRequest("GET", "/", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v", ae, got)
		}
	}
}

// Before the first snapshot a request waits for it at most FirstWait.
func TestFirstWait(t *testing.T) {
	gate := make(chan struct{})
	srv := New(Options{FirstWait: 300 * time.Millisecond, Check: check.Options{Inventory: attrib.NewInventory()},
		NewHost: func() *host.Host { <-gate; return fixtureHost() }})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)

	start := time.Now()
	code, _, body := get(t, ts.URL+"/healthz")
	if d := time.Since(start); code != 503 || !strings.Contains(body, "no snapshot yet") || d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("/healthz with the first check stuck: %d %q after %s, want 503 after 300ms", code, body, d)
	}
	got := make(chan int, 1)
	go func() { code, _, _ := get(t, ts.URL+"/metrics"); got <- code }()
	time.Sleep(50 * time.Millisecond)
	close(gate)
	if code := <-got; code != 200 {
		t.Errorf("/metrics waiting for the first snapshot: %d, want 200", code)
	}
}
