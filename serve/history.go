package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/enospc/enospc/chart"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/limits"
)

// historyRetry is how long recording stays off after the history
// directory failed (a full disk, a directory that cannot be written)
// before serve opens it again.
const historyRetry = 5 * time.Minute

// recorder records each check into the history directory and gives each
// check's rows their trend from it. A failure turns recording off, says
// why once (on Options.Log and in enospc_history_recording), and serve
// goes on serving; the directory is tried again after historyRetry.
type recorder struct {
	dir       string
	retention time.Duration
	log       io.Writer

	// trendEvery is how often the rows' trends are read from the store;
	// between two reads each row's ETA and peak are worked out from the
	// rate read last and the row's use now (trends).
	trendEvery time.Duration

	mu      sync.Mutex
	trends  map[[2]string]limits.Trend
	trendAt time.Time
	store   *history.Store
	off     string // why recording is off; empty when on
	busy    bool   // the last check was not recorded: a reader held the store
	skipped int    // the store's damaged parts said so far
	retryAt time.Time
	closed  bool
}

// open opens the store when it is not open and may be tried; r.mu is held.
func (r *recorder) open(now time.Time) {
	if r.store != nil || r.closed || now.Before(r.retryAt) {
		return
	}
	st, err := history.Open(r.dir, history.Options{Retention: r.retention})
	if err != nil {
		r.fail(now, err)
		return
	}
	if r.off != "" {
		fmt.Fprintf(r.log, "enospc serve: history recording on again in %s\n", r.dir)
	}
	r.store, r.off, r.skipped, r.busy = st, "", 0, false
}

// fail turns recording off; r.mu is held.
func (r *recorder) fail(now time.Time, err error) {
	if r.store != nil {
		r.store.Close()
		r.store = nil
	}
	r.retryAt = now.Add(historyRetry)
	why := err.Error()
	if why != r.off {
		fmt.Fprintf(r.log, "enospc serve: history recording off: %s; serving goes on without it, trying again every %s\n", why, historyRetry)
	}
	r.off = why
}

// trendEvery bounds how often serve reads the rows' trends from the
// store: a read of six hours of every row was about 370 ms of CPU a check
// with 2,000 rows, and a rate over six hours moves little in five
// minutes (at short intervals, every 10 intervals).
const trendEvery = 5 * time.Minute

// annotate is check.Options.History: the trend of every row from the
// history, when it is open. The store is read every trendEvery; in
// between, a row's ETA is worked out again from the rate read last and
// its use now, and its peak raised to its use now when that is higher.
func (r *recorder) annotate(now time.Time, rows []limits.Finding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open(now)
	if r.store == nil {
		return nil
	}
	if r.trends != nil && now.Sub(r.trendAt) < r.trendEvery && !now.Before(r.trendAt) {
		for i := range rows {
			u := &rows[i]
			t, ok := r.trends[[2]string{u.Limit, u.Scope}]
			if !ok || u.Severity == limits.Unknown {
				continue
			}
			if u.Used > t.Peak {
				t.Peak, t.PeakAt = u.Used, now.UTC()
			}
			t.ETASeconds = nil
			if perSec := t.RatePerHour / 3600; perSec > 0 && u.Max > 0 {
				eta := max(0, float64(u.Max-u.Used)/perSec)
				t.ETASeconds = &eta
			}
			u.History = &t
		}
		return nil
	}
	if err := r.store.Annotate(now, rows); err != nil {
		return err
	}
	r.trends, r.trendAt = make(map[[2]string]limits.Trend, len(rows)), now
	for _, u := range rows {
		if u.History != nil {
			r.trends[[2]string{u.Limit, u.Scope}] = *u.History
		}
	}
	return nil
}

// record appends a check's rows.
func (r *recorder) record(now time.Time, rows []limits.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open(now)
	if r.store == nil {
		return
	}
	err := r.store.Record(now, rows)
	if n := r.store.Skipped(); n > r.skipped {
		fmt.Fprintf(r.log, "enospc serve: history %s: %d damaged entries or chunks skipped (their samples are lost; the rest is recorded)\n", r.dir, n-r.skipped)
		r.skipped = n
	}
	switch {
	case errors.Is(err, history.ErrBusy):
		// A reader held the store for longer than a check waits: this
		// check goes unrecorded, recording stays on.
		if !r.busy {
			fmt.Fprintf(r.log, "enospc serve: %v; the check of %s is not recorded\n", err, now.UTC().Format(time.RFC3339))
		}
		r.busy = true
	case err != nil:
		r.fail(now, err)
	default:
		r.busy = false
	}
}

// recording says whether recording is on, and why not.
func (r *recorder) recording() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.off == "" && r.store != nil, r.off
}

func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.store == nil {
		return nil
	}
	err := r.store.Close()
	r.store = nil
	return err
}

// chartSince bounds the span a chart of the page may ask for.
const chartSince = 14 * 24 * time.Hour

// serveChart draws one row's history as SVG: GET
// /api/v1/chart?limit=L&scope=S[&since=48h], what `enospc history -o svg`
// draws. The page shows it when a row is clicked.
func (s *Server) serveChart(w http.ResponseWriter, r *http.Request) {
	if s.rec == nil {
		http.Error(w, "no history: serve runs without --history-dir", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	limit, scope := q.Get("limit"), q.Get("scope")
	if _, ok := limits.Lookup(limits.ID(limit)); !ok || scope == "" {
		http.Error(w, "want ?limit=<a limit ID>&scope=<its scope>", http.StatusBadRequest)
		return
	}
	since := 48 * time.Hour
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > chartSince {
			http.Error(w, fmt.Sprintf("since: want a duration up to %s", chartSince), http.StatusBadRequest)
			return
		}
		since = d
	}
	now := s.opts.Now()
	rep, err := s.rec.report(limit, scope, now.Add(-since), now)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	p, err := rep.Plot()
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	var b bytes.Buffer
	if err := chart.Render(&b, p, "svg", 0, 0); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	// The chart is an image: nothing in it may run or load.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Write(b.Bytes())
}

// report reads one row's history from the open store.
func (r *recorder) report(limit, scope string, since, until time.Time) (*history.Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store == nil {
		return nil, fmt.Errorf("history recording is off: %s", r.off)
	}
	return r.store.Report([]string{limit}, scope, since, until)
}
