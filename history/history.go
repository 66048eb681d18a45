// Package history is the node's memory of its limits: serve records every
// row at each check into an embedded Prometheus TSDB under its history
// directory, and check, explain and `enospc history` read it back, while
// serve writes, for a row's rate, its time until exhaustion and its peak.
//
// The directory holds two TSDBs (the Prometheus storage engine, which
// promtool reads too): raw/ keeps every sample for RawRetention, and
// coarse/ keeps one sample per CoarseStep for Retention: the highest use
// of the step, at the time it was reached, so that a peak is never
// averaged away. Each row is three series, enospc_limit_used,
// enospc_limit_max and enospc_limit_severity, labelled limit and scope.
//
// One writer, many readers: Open takes the TSDB's lock file (a second
// serve on the same directory is refused); OpenReadOnly takes no lock and
// reads the immutable blocks and replays the write-ahead log into a
// private head of its own, so a reader never waits for the writer nor
// changes anything it writes. Crash safety is the TSDB's: a sample is in
// the write-ahead log once Record returns, and a torn tail is repaired
// when the writer opens the directory again.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/enospc/enospc/limits"
)

const (
	// DefaultRetention is how long rows are kept, at CoarseStep.
	DefaultRetention = 14 * 24 * time.Hour
	// RawRetention is how long every sample is kept.
	RawRetention = 48 * time.Hour
	// CoarseStep is the resolution of data older than RawRetention.
	CoarseStep = 10 * time.Minute
)

// Names of the series of a row.
const (
	metricUsed     = "enospc_limit_used"
	metricMax      = "enospc_limit_max"
	metricSeverity = "enospc_limit_severity"
)

// ErrNoHistory is returned by OpenReadOnly for a directory that holds no
// history.
var ErrNoHistory = errors.New("no history recorded there")

// Options tune a store.
type Options struct {
	// Retention is how long rows are kept (DefaultRetention when zero).
	Retention time.Duration
}

// Store is a history directory, opened by Open to record or by
// OpenReadOnly to read.
type Store struct {
	dir       string
	retention time.Duration

	// The writer's databases.
	raw, coarse *tsdb.DB
	mu          sync.Mutex // serialises Record
	// refs are the series references of each database, by name, limit
	// and scope: a reference is only meaningful to the database that
	// gave it.
	rawRefs, coarseRefs map[seriesKey]storage.SeriesRef
	coarseUpTo          int64 // ms: coarse windows before this are written

	// A reader's scratch directory (nil databases: a reader opens them
	// for each query, see readQuery).
	sandbox string
}

// Open opens (creating it if need be, mode 0700) the history directory
// for recording. Only one process may hold it open this way.
func Open(dir string, o Options) (*Store, error) {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < RawRetention {
		return nil, fmt.Errorf("history retention %s is shorter than the %s kept at full resolution", o.Retention, RawRetention)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("history directory: %w", err)
	}
	s := &Store{dir: dir, retention: o.Retention, rawRefs: map[seriesKey]storage.SeriesRef{}, coarseRefs: map[seriesKey]storage.SeriesRef{}}
	var err error
	if s.raw, err = openDB(filepath.Join(dir, "raw"), RawRetention, 6*time.Hour); err != nil {
		return nil, err
	}
	if s.coarse, err = openDB(filepath.Join(dir, "coarse"), o.Retention, 24*time.Hour); err != nil {
		s.raw.Close()
		return nil, err
	}
	// Coarse windows are written once the raw samples of a whole window
	// are in; after a restart, from the end of the last one written.
	if mt := s.coarse.Head().MaxTime(); mt != math.MinInt64 {
		s.coarseUpTo = (mt/stepMs + 1) * stepMs
	} else if bs := s.coarse.Blocks(); len(bs) > 0 {
		s.coarseUpTo = (bs[len(bs)-1].Meta().MaxTime/stepMs + 1) * stepMs
	}
	return s, nil
}

const stepMs = int64(CoarseStep / time.Millisecond)

func openDB(dir string, retention, maxBlock time.Duration) (*tsdb.DB, error) {
	o := tsdb.DefaultOptions()
	o.RetentionDuration = retention.Milliseconds()
	o.MaxBlockDuration = maxBlock.Milliseconds()
	o.WALSegmentSize = 16 << 20
	// A node's few thousand series, not a Prometheus server's millions:
	// the defaults (16,384 stripes of series maps, a 4 MiB buffer of head
	// chunks per database) cost serve some 20 MiB of memory for nothing.
	o.StripeSize = 256
	o.HeadChunksWriteBufferSize = chunks.MinWriteBufferSize
	db, err := tsdb.Open(dir, nil, nil, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", dir, err)
	}
	return db, nil
}

// OpenReadOnly opens a history directory that a serve may be writing, to
// read it. It writes only a private scratch directory (in dir when it
// may, for the hard links of the head's chunk files, else in the system's
// temporary directory), removed by Close.
func OpenReadOnly(dir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "raw")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, ErrNoHistory)
		}
		return nil, fmt.Errorf("history directory: %w", err)
	}
	sandbox, err := os.MkdirTemp(dir, ".reader-")
	if err != nil {
		sandbox, err = os.MkdirTemp("", "enospc-history-")
		if err != nil {
			return nil, fmt.Errorf("history scratch directory: %w", err)
		}
	}
	return &Store{dir: dir, sandbox: sandbox}, nil
}

// Close closes the store; a writer's samples are all on disk (in the
// write-ahead log) already.
func (s *Store) Close() error {
	var errs []error
	for _, db := range []*tsdb.DB{s.raw, s.coarse} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if s.sandbox != "" {
		errs = append(errs, os.RemoveAll(s.sandbox))
	}
	return errors.Join(errs...)
}

// Record appends every row of one check taken at t, and writes the coarse
// samples of every CoarseStep window that t closes. Unknown rows are
// recorded as their severity only. A row whose time is not after its last
// sample (a clock set back) is left out.
func (s *Store) Record(t time.Time, rows []limits.Finding) error {
	if s.raw == nil {
		return errors.New("history opened read-only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := t.UnixMilli()
	app := s.raw.Appender(context.Background())
	for _, r := range rows {
		appendTo(app, s.rawRefs, metricSeverity, r.Limit, r.Scope, ms, float64(r.Severity))
		if r.Severity == limits.Unknown && r.Max == 0 {
			continue
		}
		appendTo(app, s.rawRefs, metricUsed, r.Limit, r.Scope, ms, float64(r.Used))
		appendTo(app, s.rawRefs, metricMax, r.Limit, r.Scope, ms, float64(r.Max))
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return s.downsample(ms)
}

// seriesKey names one series of a row.
type seriesKey struct{ name, limit, scope string }

func appendTo(app storage.Appender, refs map[seriesKey]storage.SeriesRef, name, limit, scope string, ms int64, v float64) {
	k := seriesKey{name, limit, scope}
	ref := refs[k]
	var ls labels.Labels
	if ref == 0 {
		// A known series is appended by its reference alone.
		ls = labels.FromStrings(model.MetricNameLabel, name, "limit", limit, "scope", scope)
	}
	ref, err := app.Append(ref, ls, ms, v)
	if err == nil {
		refs[k] = ref
	}
	// An out-of-order or duplicate sample (the clock went back) is the
	// only error Append returns before Commit: that sample is dropped.
}

// downsample writes the coarse samples of the windows that end at or
// before now: per row and window, the highest use with the time it was
// reached, the max and the worst severity then.
func (s *Store) downsample(now int64) error {
	end := now / stepMs * stepMs
	start := s.coarseUpTo
	if oldest := end - RawRetention.Milliseconds(); start < oldest {
		start = oldest
	}
	if start >= end {
		return nil
	}
	series, err := query(s.raw, start, end-1, nil, "", allNames)
	if err != nil {
		return fmt.Errorf("downsample history: %w", err)
	}
	app := s.coarse.Appender(context.Background())
	for _, sr := range series {
		for _, w := range coarsen(sr.Samples) {
			ms := w.T.UnixMilli()
			appendTo(app, s.coarseRefs, metricSeverity, sr.Limit, sr.Scope, ms, float64(w.Severity))
			if w.HasUse {
				appendTo(app, s.coarseRefs, metricUsed, sr.Limit, sr.Scope, ms, float64(w.Used))
				appendTo(app, s.coarseRefs, metricMax, sr.Limit, sr.Scope, ms, float64(w.Max))
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("downsample history: %w", err)
	}
	s.coarseUpTo = end
	return nil
}

// coarsen reduces samples (sorted by time) to one a CoarseStep window:
// the one of highest use (the first, when several are), with the worst
// severity of the window.
func coarsen(in []Sample) []Sample {
	var out []Sample
	for i := 0; i < len(in); {
		w := in[i].T.UnixMilli() / stepMs
		best := in[i]
		worst := in[i].Severity
		j := i + 1
		for ; j < len(in) && in[j].T.UnixMilli()/stepMs == w; j++ {
			if in[j].HasUse && (!best.HasUse || in[j].Used > best.Used) {
				best = in[j]
			}
			worst = max(worst, in[j].Severity)
		}
		best.Severity = worst
		out = append(out, best)
		i = j
	}
	return out
}

// Sample is one row at one check.
type Sample struct {
	T time.Time
	// HasUse is false for an unknown row, which has no numbers.
	HasUse    bool
	Used, Max int64
	Severity  limits.Severity
}

// sampleJSON is a Sample in JSON: used and max are null for an unknown
// row.
type sampleJSON struct {
	T        time.Time       `json:"time"`
	Used     *int64          `json:"used"`
	Max      *int64          `json:"max"`
	Severity limits.Severity `json:"severity"`
}

// MarshalJSON writes {"time", "used", "max", "severity"}.
func (s Sample) MarshalJSON() ([]byte, error) {
	j := sampleJSON{T: s.T, Severity: s.Severity}
	if s.HasUse {
		j.Used, j.Max = &s.Used, &s.Max
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var j sampleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Sample{T: j.T, Severity: j.Severity, HasUse: j.Used != nil && j.Max != nil}
	if s.HasUse {
		s.Used, s.Max = *j.Used, *j.Max
	}
	return nil
}

// Series is one row's samples, oldest first.
type Series struct {
	Limit, Scope string
	Samples      []Sample
}

// Query selects rows by limit (only: empty for all) and scope (empty for
// all) from since to until (until zero: now); a row's samples older than
// its full-resolution ones come from the coarse store.
func (s *Store) Query(only []string, scope string, since, until time.Time) ([]Series, error) {
	if until.IsZero() {
		until = time.Now()
	}
	return s.query(only, scope, since, since, until, allNames)
}

// query reads raw samples from rawSince and coarse ones from since.
func (s *Store) query(only []string, scope string, rawSince, since, until time.Time, names string) ([]Series, error) {
	maxt := until.UnixMilli()
	var raw, coarse []Series
	var err error
	if s.raw != nil {
		if raw, err = query(s.raw, rawSince.UnixMilli(), maxt, only, scope, names); err == nil {
			coarse, err = query(s.coarse, since.UnixMilli(), maxt, only, scope, names)
		}
	} else {
		if raw, err = s.readQuery("raw", rawSince.UnixMilli(), maxt, only, scope, names); err == nil {
			coarse, err = s.readQuery("coarse", since.UnixMilli(), maxt, only, scope, names)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("query history: %w", err)
	}
	return merge(raw, coarse), nil
}

// merge puts the coarse samples older than a row's first raw sample
// before its raw ones.
func merge(raw, coarse []Series) []Series {
	byKey := map[[2]string]int{}
	for i, r := range raw {
		byKey[[2]string{r.Limit, r.Scope}] = i
	}
	for _, c := range coarse {
		i, ok := byKey[[2]string{c.Limit, c.Scope}]
		if !ok {
			byKey[[2]string{c.Limit, c.Scope}] = len(raw)
			raw = append(raw, c)
			continue
		}
		first := raw[i].Samples[0].T
		n := sort.Search(len(c.Samples), func(j int) bool { return !c.Samples[j].T.Before(first) })
		if n > 0 {
			raw[i].Samples = append(c.Samples[:n:n], raw[i].Samples...)
		}
	}
	sortSeries(raw)
	return raw
}

func sortSeries(ss []Series) {
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].Limit != ss[j].Limit {
			return ss[i].Limit < ss[j].Limit
		}
		return ss[i].Scope < ss[j].Scope
	})
}

// readQuery queries one database of a reader. A read-only TSDB replays
// the write-ahead log into a head for its first querier and takes no
// second one, so each query opens it afresh, in a sandbox of its own.
func (s *Store) readQuery(name string, mint, maxt int64, only []string, scope, names string) ([]Series, error) {
	dir := filepath.Join(s.dir, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && name == "coarse" {
		return nil, nil // nothing coarse written yet
	}
	sandbox, err := os.MkdirTemp(s.sandbox, name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(sandbox)
	db, err := tsdb.OpenDBReadOnly(dir, sandbox, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return query(db, mint, maxt, only, scope, names)
}

// querier is what a writing and a read-only TSDB have in common.
type querier interface {
	Querier(mint, maxt int64) (storage.Querier, error)
}

// allNames selects every series of a row; usedOnly only its use, which is
// all a trend reads.
const (
	allNames = metricUsed + "|" + metricMax + "|" + metricSeverity
	usedOnly = metricUsed
)

func query(db querier, mint, maxt int64, only []string, scope, names string) ([]Series, error) {
	q, err := db.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, names)}
	if len(only) > 0 {
		quoted := make([]string, len(only))
		for i, o := range only {
			quoted[i] = regexp.QuoteMeta(o)
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, "limit", strings.Join(quoted, "|")))
	}
	if scope != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "scope", scope))
	}
	set := q.Select(context.Background(), false, nil, ms...)
	// Each series comes once, its samples in time order: a row's three
	// are merged by time, without a map of samples (a trend reads
	// millions of them at every check).
	type key [2]string
	type point struct {
		t int64
		v float64
	}
	rows := map[key]*[3][]point{}
	var order []key
	var it chunkenc.Iterator
	for set.Next() {
		sr := set.At()
		ls := sr.Labels()
		k := key{ls.Get("limit"), ls.Get("scope")}
		var which int
		switch ls.Get(model.MetricNameLabel) {
		case metricUsed:
			which = 0
		case metricMax:
			which = 1
		default:
			which = 2
		}
		r := rows[k]
		if r == nil {
			r = &[3][]point{}
			rows[k] = r
			order = append(order, k)
		}
		it = sr.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			r[which] = append(r[which], point{t, v})
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	if err := set.Err(); err != nil {
		return nil, err
	}
	out := make([]Series, 0, len(rows))
	for _, k := range order {
		r := rows[k]
		sr := Series{Limit: k[0], Scope: k[1], Samples: make([]Sample, 0, max(len(r[0]), len(r[2])))}
		var idx [3]int
		for {
			t := int64(math.MaxInt64)
			for w := range 3 {
				if idx[w] < len(r[w]) && r[w][idx[w]].t < t {
					t = r[w][idx[w]].t
				}
			}
			if t == math.MaxInt64 {
				break
			}
			smp := Sample{T: time.UnixMilli(t).UTC(), Severity: limits.Unknown}
			for w := range 3 {
				if idx[w] < len(r[w]) && r[w][idx[w]].t == t {
					v := r[w][idx[w]].v
					idx[w]++
					switch w {
					case 0:
						smp.Used, smp.HasUse = int64(v), true
					case 1:
						smp.Max = int64(v)
					case 2:
						smp.Severity = limits.Severity(v)
					}
				}
			}
			sr.Samples = append(sr.Samples, smp)
		}
		out = append(out, sr)
	}
	sortSeries(out)
	return out, nil
}
