// Package serve is `enospc serve`: the check as Prometheus metrics, as
// JSON, and as a web page, for one node of a fleet. Read-only: nothing is
// ever fixed over HTTP.
//
// Every consumer of a snapshot (scrapes, the API, the page) shares one
// check: concurrent requests wait for the check under way (single-flight)
// and a snapshot younger than the cache time is served as is, so fifty
// scrapers cost about what one does.
package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Options tune a server.
type Options struct {
	// NewHost returns the host to check; called for every check.
	NewHost func() *host.Host
	// Check are the options of every check.
	Check check.Options
	// Cache is how long a snapshot is served before the next check.
	Cache time.Duration
	// Timeout bounds one check.
	Timeout time.Duration
	// TopScopes is how many scopes per limit are exported as series; the
	// rest are summed into scope="other".
	TopScopes int
	// HistoryPoints is how many snapshots the page's charts keep.
	HistoryPoints int
	// Now is the clock (tests).
	Now func() time.Time
}

// Server serves the snapshots.
type Server struct {
	opts Options
	sf   singleflight.Group

	mu       sync.Mutex
	last     *check.Report
	lastErr  error
	lastAt   time.Time
	lastTook time.Duration
	history  map[string]*series // by limit + "\x00" + scope
	started  time.Time
}

// series is the history of one row: its ratio at each snapshot.
type series struct {
	Limit  string    `json:"limit"`
	Scope  string    `json:"scope"`
	Times  []int64   `json:"t"` // unix seconds
	Ratios []float64 `json:"r"`
}

// New returns a server.
func New(opts Options) *Server {
	if opts.Cache <= 0 {
		opts.Cache = 5 * time.Second
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
	return &Server{opts: opts, history: map[string]*series{}, started: opts.Now()}
}

// Snapshot returns the latest check, running one when the cached one is
// older than the cache time; concurrent callers share that one run.
func (s *Server) Snapshot(ctx context.Context) (*check.Report, time.Duration, error) {
	s.mu.Lock()
	if s.last != nil && s.opts.Now().Sub(s.lastAt) < s.opts.Cache {
		rep, took := s.last, s.lastTook
		s.mu.Unlock()
		return rep, took, nil
	}
	s.mu.Unlock()
	ch := s.sf.DoChan("check", func() (any, error) {
		// Not the request's context: one caller going away must not
		// cancel the check the others wait for.
		cctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		start := time.Now()
		rep, err := check.Run(cctx, s.opts.NewHost(), s.opts.Check)
		took := time.Since(start)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lastErr = err
		if err == nil {
			s.last, s.lastAt, s.lastTook = rep, s.opts.Now(), took
			s.record(rep)
		}
		return rep, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, 0, r.Err
		}
		s.mu.Lock()
		took := s.lastTook
		s.mu.Unlock()
		return r.Val.(*check.Report), took, nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
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
	for k, h := range s.history {
		if !seen[k] && len(h.Times) > 0 && t-h.Times[len(h.Times)-1] > int64(s.opts.HistoryPoints)*int64(s.opts.Cache/time.Second+1) {
			delete(s.history, k)
		}
	}
}

// Handler is the HTTP interface: /metrics, /api/v1/check,
// /api/v1/history, /healthz and the page at /.
func (s *Server) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{s: s})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /api/v1/check", s.serveCheck)
	mux.HandleFunc("GET /api/v1/history", s.serveHistory)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
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

func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request) {
	rep, _, err := s.Snapshot(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, rep)
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.Snapshot(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	out := make([]series, 0, len(s.history))
	for _, h := range s.history {
		out = append(out, series{Limit: h.Limit, Scope: h.Scope, Times: append([]int64(nil), h.Times...), Ratios: append([]float64(nil), h.Ratios...)})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Limit+out[i].Scope < out[j].Limit+out[j].Scope })
	writeJSON(w, map[string]any{"started": s.started.Unix(), "series": out})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
