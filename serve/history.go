package serve

import (
	"fmt"
	"io"
	"sync"
	"time"

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

	mu      sync.Mutex
	store   *history.Store
	off     string // why recording is off; empty when on
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
	r.store, r.off = st, ""
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

// annotate is check.Options.History: the trend of every row from the
// history, when it is open.
func (r *recorder) annotate(now time.Time, rows []limits.Usage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open(now)
	if r.store == nil {
		return nil
	}
	return r.store.Annotate(now, rows)
}

// record appends a check's rows.
func (r *recorder) record(now time.Time, rows []limits.Usage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open(now)
	if r.store == nil {
		return
	}
	if err := r.store.Record(now, rows); err != nil {
		r.fail(now, err)
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
