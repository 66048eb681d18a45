// Package history is the node's memory of its limits: serve records every
// row at each check into a store under its history directory, and check,
// explain and `enospc history` read it back, while serve writes, for a
// row's rate, its time until exhaustion and its peak.
//
// The store (store.go) keeps every sample for RawRetention and, for
// Retention, one sample per CoarseStep: the highest use of the step, at
// the time it was reached, so that a peak is never averaged away.
//
// One writer, many readers: Open takes the directory's writer lock (a
// second serve on the same directory is refused) and opens the file only
// for the time of a write; OpenReadOnly takes nothing and opens the file
// read-only for the time of each query, so a reader waits at most for
// one check to be written. Crash safety is bbolt's: a check is on disk,
// synced, once Record returns, and a write cut short is not there at all.
package history

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

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

const stepMs = int64(CoarseStep / time.Millisecond)

// ErrNoHistory is returned by OpenReadOnly for a directory that holds no
// history.
var ErrNoHistory = errors.New("no history recorded there")

// ErrBusy is returned when the store stayed held by the other side (a
// reader for the writer, the writer for a reader) longer than it waits:
// the call may be tried again.
var ErrBusy = errors.New("history is busy")

// fileName is the store's file in the history directory; lockName the
// writer's lock.
const (
	fileName = "history.db"
	lockName = "writer.lock"
)

// How long a writer waits for readers to finish a query, and a reader for
// the writer to finish a check, before giving up with ErrBusy (variables
// for the tests).
var (
	writerWait = 30 * time.Second
	readerWait = 10 * time.Second
)

// syncWrites is false only in this package's tests and benchmarks, which
// record thousands of checks: bbolt then skips fsync.
var syncWrites = true

// clockSlack is how far back a check's time may be from the last one
// recorded and still be taken for the same clock (the check is then left
// out); a step further back is a clock that was set back, and what was
// recorded after it goes (see rewind).
const clockSlack = 10 * time.Minute

// expireStep bounds how much further expiry goes at one fold than at the
// one before: a check with the clock days ahead must not delete the days
// before it. Folds are hourly, so a store catches up an hour an hour.
const expireStep = 2 * time.Hour

// Options tune a store.
type Options struct {
	// Retention is how long rows are kept (DefaultRetention when zero).
	Retention time.Duration
}

// Store is a history directory, opened by Open to record or by
// OpenReadOnly to read.
type Store struct {
	dir, path string
	retention time.Duration
	writer    bool
	lock      *os.File // the writer's lock, held until Close

	mu sync.Mutex // serialises the writer's Record
	// ids are the writer's series ids by row; nil when they must be read
	// from the store again.
	ids map[seriesKey]uint32
	// headFrom is the time (ms) of the oldest check not yet folded into
	// chunks, 0 when none.
	headFrom int64

	// skipped counts the damaged entries and chunks passed over.
	skipped int
}

// Skipped is how many damaged check entries and chunks the store has
// passed over (and the writer deleted) since it was opened: a damaged
// part of the file costs its samples, not the history.
func (s *Store) Skipped() int { return s.skipped }

// skip counts a damaged part passed over.
func (s *Store) skip(error) { s.skipped++ }

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
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history directory: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("history directory %s is being recorded by another process", dir)
		}
		return nil, fmt.Errorf("history directory %s: lock: %w", dir, err)
	}
	s := &Store{dir: dir, path: filepath.Join(dir, fileName), retention: o.Retention, writer: true, lock: lock}
	// Make the file and its buckets, and read the writer's state.
	if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens a history directory that a serve may be writing, to
// read it. It writes nothing.
func OpenReadOnly(dir string) (*Store, error) {
	path := filepath.Join(dir, fileName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dir, ErrNoHistory)
		}
		return nil, fmt.Errorf("history directory: %w", err)
	}
	return &Store{dir: dir, path: path}, nil
}

// Close releases the writer's lock; every check recorded is on disk
// already.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// update runs fn in a write transaction of the writer, with the buckets
// made and the writer's state read.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer damaged(s.path, &err)
	if !s.writer || s.lock == nil {
		return errors.New("history opened read-only")
	}
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: writerWait, NoSync: !syncWrites, OpenFile: openNoFollow})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%w: %s held by a reader for over %s", ErrBusy, s.path, writerWait)
	}
	if err != nil {
		return fmt.Errorf("open history %s: %w", s.path, err)
	}
	defer func() {
		if err != nil {
			// What was assigned in a transaction that did not commit is
			// read again from the store.
			s.ids = nil
		}
		err = errors.Join(err, db.Close())
	}()
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if s.ids == nil {
			s.ids = map[seriesKey]uint32{}
			err := tx.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
				sk, err := decodeSeries(v)
				if err != nil || len(k) != 4 {
					return fmt.Errorf("malformed history: series %x", k)
				}
				s.ids[sk] = binary.BigEndian.Uint32(k)
				return nil
			})
			if err != nil {
				return err
			}
			s.headFrom = 0
			if k, _ := tx.Bucket(bucketHead).Cursor().First(); len(k) == 8 {
				s.headFrom = int64(binary.BigEndian.Uint64(k))
			}
		}
		return fn(tx)
	})
}

// openNoFollow opens the store's file without following a symlink: in a
// history directory another user can write (serve --history-dir /tmp/h),
// history.db linked to a file of root's would otherwise be written over
// by root.
func openNoFollow(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag|unix.O_NOFOLLOW, perm)
}

// damaged turns bbolt's panic on a damaged page into the error of the
// call: a store broken by a disk error must not take serve or check down
// with it. bbolt reads the file through its mapping, with lengths from
// the pages themselves: update and view set the goroutine to panic,
// rather than die, on a fault in it.
func damaged(path string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("history %s is damaged: %v", path, r)
	}
}

// view runs fn in a read transaction, the file opened read-only for its
// time.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer damaged(s.path, &err)
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: readerWait, OpenFile: openNoFollow})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("%w: %s held by its writer for over %s", ErrBusy, s.path, readerWait)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", s.dir, ErrNoHistory)
		}
		return fmt.Errorf("open history %s: %w", s.path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%s: %w", s.dir, ErrNoHistory)
			}
		}
		return fn(tx)
	})
}

// Record appends every row of one check taken at t, and folds the hours
// of checks before t's into chunks. Unknown rows are recorded as their
// severity only; a row repeated in a check is recorded once (the first).
// A check before 1970, or not after the last one recorded but within
// clockSlack of it, is left out; one further back is a clock set back:
// what was recorded after t is deleted (rewind) and t is recorded.
func (s *Store) Record(t time.Time, rows []limits.Finding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := t.UnixMilli()
	if ms <= 0 {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if last := metaInt(meta, keyLast); last >= ms {
			if last-ms <= clockSlack.Milliseconds() {
				return nil
			}
			if err := s.rewind(tx, ms); err != nil {
				return err
			}
		}
		series := tx.Bucket(bucketSeries)
		hr := make([]headRow, 0, len(rows))
		seen := make(map[uint32]bool, len(rows))
		for _, r := range rows {
			k := seriesKey{r.Limit, r.Scope}
			id, ok := s.ids[k]
			if !ok {
				seq, err := series.NextSequence()
				if err != nil {
					return err
				}
				if seq > math.MaxUint32 {
					return errors.New("out of series ids")
				}
				id = uint32(seq)
				var key [4]byte
				binary.BigEndian.PutUint32(key[:], id)
				if err := series.Put(key[:], encodeSeries(k)); err != nil {
					return err
				}
				s.ids[k] = id
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			p := point{t: ms, used: math.NaN(), max: math.NaN(), sev: r.Severity}
			if r.Severity != limits.Unknown || r.Max != 0 {
				p.used, p.max = float64(r.Used), float64(r.Max)
			}
			hr = append(hr, headRow{id, p})
		}
		if err := tx.Bucket(bucketHead).Put(be64(ms), encodeHead(nil, hr)); err != nil {
			return err
		}
		if err := meta.Put(keyLast, be64(ms)); err != nil {
			return err
		}
		if s.headFrom == 0 {
			s.headFrom = ms
		}
		if hour := floorTo(ms, hourMs); floorTo(s.headFrom, hourMs) < hour {
			if err := s.fold(tx, hour, ms); err != nil {
				return err
			}
			s.headFrom = ms
		}
		return nil
	})
	if err != nil {
		s.ids = nil // read again from the store at the next check
		return fmt.Errorf("record history: %w", err)
	}
	return nil
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
	return s.query(only, scope, since, since, until, false)
}

// query reads raw samples from rawSince and coarse ones from since; with
// usedOnly, only the use (what a trend reads).
func (s *Store) query(only []string, scope string, rawSince, since, until time.Time, usedOnly bool) ([]Series, error) {
	var out []Series
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = readStore(tx, only, scope, rawSince.UnixMilli(), since.UnixMilli(), until.UnixMilli(), usedOnly, s.skip)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query history: %w", err)
	}
	return out, nil
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
