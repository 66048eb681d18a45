// Package serve is `enospc serve`: the check as Prometheus metrics, as
// JSON, and as a web page, for one node of a fleet. Read-only: nothing is
// ever fixed over HTTP.
//
// A request never waits for a check. Run checks the host in the
// background, the first time at once and then every Interval; each check
// is encoded once (the /metrics text and its gzip form, the JSON of
// /api/v1/check and /api/v1/history) into an immutable snapshot, and a
// request copies the bytes of the latest one. A check that does not end
// (a family stuck in a read that ignores its context) holds up the next
// check, never a request: the snapshot ages, and once it is older than
// StaleAfter it is reported as stale, in /metrics and with a 503 from
// /healthz and /api/v1/check.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
	"github.com/enospc/enospc/trace"
)

// Options tune a server.
type Options struct {
	// NewHost returns the host to check; called for every check.
	NewHost func() *host.Host
	// Check are the options of every check.
	Check check.Options
	// Interval is the time from the start of one check to the start of
	// the next (30 s when zero).
	Interval time.Duration
	// Timeout bounds one check (30 s when zero).
	Timeout time.Duration
	// TopScopes is how many scopes per limit are exported as series; the
	// rest are summed into scope="other".
	TopScopes int
	// HistoryPoints is how many snapshots the page's charts keep.
	HistoryPoints int
	// ExposeHolders serves the holders' process ids and names and the
	// names users gave their keys and IPC objects; by default they are
	// hidden (see redact).
	ExposeHolders bool
	// FirstWait is how long a request that comes before the first
	// snapshot waits for it before it is answered 503 "no snapshot yet"
	// (0: not at all). It bounds the wait for a check that will not end.
	FirstWait time.Duration
	// HistoryDir is where every check's rows are recorded (history.Open)
	// and read back for each row's trend; empty: no history.
	HistoryDir string
	// HistoryRetention is how long the history keeps rows (0: the
	// default, history.DefaultRetention).
	HistoryRetention time.Duration
	// Log receives what serve has to say while it runs (recording turned
	// off and on); nil discards it.
	Log io.Writer
	// Now is the clock (tests).
	Now func() time.Time
	// Failures, when set, is what a trace running beside the server
	// (serve --trace) records: served at /api/v1/failures and as
	// enospc_syscall_failures_total.
	Failures *trace.Recorder
}

// StaleAfter is the age past which a snapshot is stale: three intervals,
// or one interval plus the timeout when that is longer, so that one slow
// check that still ends within its timeout never makes it stale, and a
// check that hangs does within a few intervals.
func (o Options) StaleAfter() time.Duration {
	return max(3*o.Interval, o.Interval+o.Timeout)
}

// Server checks the host in the background and serves the snapshots.
type Server struct {
	opts Options

	snap atomic.Pointer[snapshot]
	// first is closed when the first snapshot is published.
	first     chan struct{}
	firstOnce sync.Once
	// running is when the check under way started (unix nanoseconds; 0
	// when none runs), so that a stale snapshot can say why.
	running atomic.Int64

	mu      sync.Mutex // guards history, used by the one Run loop
	history map[string]*series
	started time.Time

	// rec records into Options.HistoryDir; nil without one.
	rec *recorder
}

// series is the history of one row: its ratio at each snapshot.
type series struct {
	Limit  string    `json:"limit"`
	Scope  string    `json:"scope"`
	Times  []int64   `json:"t"` // unix seconds
	Ratios []float64 `json:"r"`
}

// New returns a server; Run starts its checks.
func New(opts Options) *Server {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.TopScopes <= 0 {
		opts.TopScopes = 10
	}
	if opts.HistoryPoints <= 0 {
		opts.HistoryPoints = 720
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	s := &Server{opts: opts, history: map[string]*series{}, started: opts.Now(), first: make(chan struct{})}
	if opts.HistoryDir != "" {
		s.rec = &recorder{dir: opts.HistoryDir, retention: opts.HistoryRetention, log: opts.Log, trendEvery: min(trendEvery, 10*s.opts.Interval)}
		s.opts.Check.History = s.rec.annotate
	}
	return s
}

// Close closes the history; the server is not to be run again.
func (s *Server) Close() error {
	if s.rec == nil {
		return nil
	}
	return s.rec.close()
}

// Run checks the host now and then every Interval until ctx ends. A check
// that takes longer than half the interval delays the next one, so that
// the background work never takes more than half the time. A check that
// does not end holds up the next one rather than leaving it running
// beside a new one.
func (s *Server) Run(ctx context.Context) {
	for {
		start := time.Now()
		s.CheckOnce(ctx)
		took := time.Since(start)
		wait := max(s.opts.Interval-took, took)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// CheckOnce runs one check under Timeout and publishes its snapshot.
func (s *Server) CheckOnce(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.running.Store(s.opts.Now().UnixNano())
	start := time.Now()
	rep, err := check.Run(cctx, s.opts.NewHost(), s.opts.Check)
	took := time.Since(start)
	s.running.Store(0)
	if ctx.Err() != nil {
		return // shutting down: the snapshot would say nothing true
	}
	if err == nil && s.rec != nil {
		s.rec.record(rep.Time, rep.Findings)
	}
	s.publish(rep, took, err)
}

// publish makes a check the snapshot served. A check that failed keeps
// the previous report, with its age, and says it failed.
func (s *Server) publish(rep *check.Report, took time.Duration, err error) {
	now := s.opts.Now()
	if err != nil {
		prev := s.snap.Load()
		var old *check.Report
		var at time.Time
		if prev != nil {
			old, at = prev.rep, prev.at
		}
		s.snap.Store(s.encode(old, at, took, err))
		s.firstOnce.Do(func() { close(s.first) })
		return
	}
	if !s.opts.ExposeHolders {
		rep = redact(rep)
	}
	s.mu.Lock()
	s.record(rep)
	s.mu.Unlock()
	s.snap.Store(s.encode(rep, now, took, nil))
	s.firstOnce.Do(func() { close(s.first) })
}

// record adds a snapshot to the history; s.mu is held.
func (s *Server) record(rep *check.Report) {
	t := rep.Time.Unix()
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Severity == limits.Unknown {
			continue
		}
		k := f.Limit + "\x00" + f.Scope
		seen[k] = true
		h := s.history[k]
		if h == nil {
			h = &series{Limit: f.Limit, Scope: f.Scope}
			s.history[k] = h
		}
		h.Times = append(h.Times, t)
		h.Ratios = append(h.Ratios, f.Ratio())
		if n := len(h.Times) - s.opts.HistoryPoints; n > 0 {
			h.Times, h.Ratios = h.Times[n:], h.Ratios[n:]
		}
	}
	// Rows that are gone (a container's namespace) leave the history
	// once their last point is older than the kept window.
	window := int64(s.opts.HistoryPoints) * int64(s.opts.Interval/time.Second+1)
	for k, h := range s.history {
		if !seen[k] && len(h.Times) > 0 && t-h.Times[len(h.Times)-1] > window {
			delete(s.history, k)
		}
	}
}

// historySeries copies the history, sorted; s.mu is held.
func (s *Server) historySeries() []series {
	out := make([]series, 0, len(s.history))
	for _, h := range s.history {
		out = append(out, series{Limit: h.Limit, Scope: h.Scope, Times: append([]int64(nil), h.Times...), Ratios: append([]float64(nil), h.Ratios...)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Limit != out[j].Limit {
			return out[i].Limit < out[j].Limit
		}
		return out[i].Scope < out[j].Scope
	})
	return out
}

// errNoSnapshot is what a request gets before the first check has ended.
var errNoSnapshot = errors.New("no snapshot yet: the first check is under way")

// state is the latest snapshot as a request sees it: its age, and why it
// is stale (empty when it is not). Before the first snapshot it waits
// for it, at most FirstWait.
func (s *Server) state(ctx context.Context) (*snapshot, time.Duration, string) {
	sn := s.snap.Load()
	if sn == nil && s.opts.FirstWait > 0 {
		t := time.NewTimer(s.opts.FirstWait)
		select {
		case <-s.first:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		sn = s.snap.Load()
	}
	now := s.opts.Now()
	if sn == nil {
		why := errNoSnapshot.Error()
		if d := s.hungFor(now); d > 0 {
			why += fmt.Sprintf(", started %s ago and not ended (timeout %s)", d.Round(time.Second), s.opts.Timeout)
		}
		return nil, 0, why
	}
	if sn.rep == nil {
		return sn, 0, fmt.Sprintf("no snapshot: the check failed: %v", sn.err)
	}
	age := now.Sub(sn.at)
	if age <= s.opts.StaleAfter() {
		return sn, age, ""
	}
	why := fmt.Sprintf("stale snapshot: %s old, more than %s (3 intervals, or interval + timeout)", age.Round(time.Second), s.opts.StaleAfter())
	if d := s.hungFor(now); d > 0 {
		why += fmt.Sprintf("; the check under way started %s ago and has not ended (timeout %s)", d.Round(time.Second), s.opts.Timeout)
	} else if sn.err != nil {
		why += fmt.Sprintf("; the last check failed: %v", sn.err)
	}
	return sn, age, why
}

// hungFor is how long the check under way has run when that is past its
// timeout, else 0.
func (s *Server) hungFor(now time.Time) time.Duration {
	r := s.running.Load()
	if r == 0 {
		return 0
	}
	if d := now.Sub(time.Unix(0, r)); d > s.opts.Timeout {
		return d
	}
	return 0
}

// Handler is the HTTP interface: /metrics, /api/v1/check,
// /api/v1/history, /healthz and the page at /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	mux.HandleFunc("GET /api/v1/check", s.serveCheck)
	mux.HandleFunc("GET /api/v1/history", s.serveHistory)
	mux.HandleFunc("GET /api/v1/chart", s.serveChart)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	if s.opts.Failures != nil {
		mux.HandleFunc("GET /api/v1/failures", s.serveFailures)
	}
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	return readOnly(mux)
}

// readOnly refuses every method but GET and HEAD: nothing is changed over
// HTTP.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "enospc serve is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	_, _, why := s.state(r.Context())
	if why != "" {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// serveMetrics answers with the snapshot's encoded metrics and the age
// and staleness of the moment; a stale snapshot is still served, marked
// enospc_snapshot_stale 1, so that an alert can tell old numbers from
// none.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	sn, age, why := s.state(r.Context())
	if sn == nil || sn.rep == nil {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	tail := metricsTail(age, why != "")
	if s.opts.Failures != nil {
		tail = append(tail, s.opts.Failures.Metrics()...)
	}
	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		writeBody(w, sn.metricsGz.head, sn.metricsGz.tail(tail))
		return
	}
	writeBody(w, sn.metrics, tail)
}

func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request) {
	sn, age, why := s.state(r.Context())
	if why != "" {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Age", fmt.Sprint(int64(age.Seconds())))
	writeCached(w, r, sn.check)
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	sn, _, _ := s.state(r.Context())
	if sn == nil || sn.rep == nil {
		http.Error(w, errNoSnapshot.Error(), http.StatusServiceUnavailable)
		return
	}
	writeCached(w, r, sn.history)
}

// serveFailures answers with the failures the trace caught, newest first,
// holders hidden unless ExposeHolders.
func (s *Server) serveFailures(w http.ResponseWriter, _ *http.Request) {
	fs, st := s.opts.Failures.Recent()
	if !s.opts.ExposeHolders {
		for i := range fs {
			fs[i] = fs[i].Redacted()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(jsonBytes(struct {
		Trace    trace.TraceState `json:"trace"`
		Failures []trace.Failure  `json:"failures"`
	}{st, fs}))
}
