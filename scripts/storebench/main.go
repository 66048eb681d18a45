// Command storebench measures the embedded stores enospc could keep its
// history in, on the workload of `serve --history-dir`: every check
// writes one sample (used, max) of every row in one batch; a reader asks
// for one row's last hours.
//
//	cd scripts/storebench && go run . -series 2000 -steps 960
//
// It prints, per store: write cost per sample, bytes on disk per sample
// (after the store's own compaction), and the time to read one row's
// samples. scripts/storebench/size.sh measures the binary size each adds.
// A separate module, so that the candidates not chosen stay out of
// enospc's go.mod.
package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	bolt "go.etcd.io/bbolt"
	_ "modernc.org/sqlite"
)

var (
	nSeries = flag.Int("series", 2000, "rows recorded at each check")
	nSteps  = flag.Int("steps", 960, "checks recorded (960 at 30 s: 8 h)")
	step    = flag.Duration("step", 30*time.Second, "time between checks")
	rounds  = flag.Int("rounds", 3, "repeat each store this often; medians are printed")
	only    = flag.String("only", "", "measure only this store: tsdb, bbolt or sqlite")
)

// workload is the value of series i at step j: a count that mostly stays,
// sometimes moves by a few, and a max that does not change.
func workload(i, j int, r *rand.Rand) (used, max float64) {
	base := float64(1000 + i*7)
	if r.IntN(10) == 0 {
		base += float64(r.IntN(5))
	}
	return base + float64(j/20), 65536
}

type store interface {
	write(t0 time.Time) error // every step
	read(i int, from, to time.Time) (int, error)
	close() error
}

func main() {
	flag.Parse()
	type result struct{ write, bytes, read []float64 }
	names := []string{"tsdb", "bbolt", "sqlite"}
	res := map[string]*result{}
	for _, name := range names {
		if *only != "" && *only != name {
			continue
		}
		res[name] = &result{}
		for range *rounds {
			dir, err := os.MkdirTemp("", "storebench-"+name)
			if err != nil {
				log.Fatal(err)
			}
			w, b, rd := run(name, dir)
			os.RemoveAll(dir)
			res[name].write = append(res[name].write, w)
			res[name].bytes = append(res[name].bytes, b)
			res[name].read = append(res[name].read, rd)
		}
	}
	fmt.Printf("%d series x %d steps of %s (%d samples), median of %d rounds\n", *nSeries, *nSteps, *step, *nSeries**nSteps, *rounds)
	fmt.Printf("%-8s %14s %14s %18s\n", "store", "ns/sample", "bytes/sample", "read 1 row (ms)")
	for _, name := range names {
		r := res[name]
		if r == nil {
			continue
		}
		fmt.Printf("%-8s %14.0f %14.2f %18.2f\n", name, median(r.write), median(r.bytes), median(r.read))
	}
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func run(name, dir string) (nsPerSample, bytesPerSample, readMs float64) {
	var s store
	var err error
	switch name {
	case "tsdb":
		s, err = openTSDB(dir)
	case "bbolt":
		s, err = openBolt(dir)
	case "sqlite":
		s, err = openSQLite(dir)
	}
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	for j := range *nSteps {
		if err := s.write(t0.Add(time.Duration(j) * *step)); err != nil {
			log.Fatalf("%s write: %v", name, err)
		}
	}
	took := time.Since(start)
	end := t0.Add(time.Duration(*nSteps) * *step)
	rstart := time.Now()
	const reads = 20
	for k := range reads {
		n, err := s.read((k*97)%*nSeries, t0, end)
		if err != nil || n != *nSteps {
			log.Fatalf("%s read: %d samples, %v", name, n, err)
		}
	}
	rd := time.Since(rstart)
	if err := s.close(); err != nil {
		log.Fatalf("%s close: %v", name, err)
	}
	samples := float64(*nSeries * *nSteps)
	return float64(took.Nanoseconds()) / samples, float64(du(dir)) / samples, float64(rd.Microseconds()) / 1000 / reads
}

func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// --- Prometheus TSDB: two series (used, max) per row.

type tsdbStore struct {
	db   *tsdb.DB
	lset [][2]labels.Labels
	refs [][2]storage.SeriesRef
	r    *rand.Rand
	step int
}

func openTSDB(dir string) (store, error) {
	o := tsdb.DefaultOptions()
	o.RetentionDuration = int64(14 * 24 * time.Hour / time.Millisecond)
	db, err := tsdb.Open(dir, nil, nil, o, nil)
	if err != nil {
		return nil, err
	}
	s := &tsdbStore{db: db, r: rand.New(rand.NewPCG(1, 2))}
	for i := range *nSeries {
		sc := fmt.Sprintf("/run/containerd/io.containerd.runtime.v2.task/k8s.io/%d", i)
		s.lset = append(s.lset, [2]labels.Labels{
			labels.FromStrings("__name__", "used", "limit", "inodes", "scope", sc),
			labels.FromStrings("__name__", "max", "limit", "inodes", "scope", sc),
		})
	}
	s.refs = make([][2]storage.SeriesRef, *nSeries)
	return s, nil
}

func (s *tsdbStore) write(t time.Time) error {
	app := s.db.Appender(context.Background())
	ms := t.UnixMilli()
	for i := range s.lset {
		u, m := workload(i, s.step, s.r)
		var err error
		if s.refs[i][0], err = app.Append(s.refs[i][0], s.lset[i][0], ms, u); err != nil {
			return err
		}
		if s.refs[i][1], err = app.Append(s.refs[i][1], s.lset[i][1], ms, m); err != nil {
			return err
		}
	}
	s.step++
	return app.Commit()
}

func (s *tsdbStore) read(i int, from, to time.Time) (int, error) {
	q, err := s.db.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return 0, err
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "used"),
		labels.MustNewMatcher(labels.MatchEqual, "scope", s.lset[i][0].Get("scope")))
	n := 0
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
	}
	return n, ss.Err()
}

func (s *tsdbStore) close() error {
	// What the head holds would be cut into blocks by the running DB;
	// compact it so that the bytes measured are those of blocks.
	if err := s.db.CompactHead(tsdb.NewRangeHead(s.db.Head(), s.db.Head().MinTime(), s.db.Head().MaxTime())); err != nil {
		return err
	}
	return s.db.Close()
}

// --- bbolt: a bucket per row, key the big-endian unix second, value two
// varints.

type boltStore struct {
	db   *bolt.DB
	r    *rand.Rand
	step int
}

func openBolt(dir string) (store, error) {
	db, err := bolt.Open(filepath.Join(dir, "history.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	return &boltStore{db: db, r: rand.New(rand.NewPCG(1, 2))}, nil
}

func boltKey(i int) []byte {
	return fmt.Appendf(nil, "inodes\x00/run/containerd/io.containerd.runtime.v2.task/k8s.io/%d", i)
}

func (s *boltStore) write(t time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], uint64(t.Unix()))
		for i := range *nSeries {
			b, err := tx.CreateBucketIfNotExists(boltKey(i))
			if err != nil {
				return err
			}
			b.FillPercent = 1 // keys are appended in order
			u, m := workload(i, s.step, s.r)
			v := binary.AppendUvarint(nil, uint64(u))
			v = binary.AppendUvarint(v, uint64(m))
			if err := b.Put(k[:], v); err != nil {
				return err
			}
		}
		return nil
	})
	s.step++
	return err
}

func (s *boltStore) read(i int, from, to time.Time) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltKey(i))
		if b == nil {
			return fmt.Errorf("no bucket")
		}
		var lo, hi [8]byte
		binary.BigEndian.PutUint64(lo[:], uint64(from.Unix()))
		binary.BigEndian.PutUint64(hi[:], uint64(to.Unix()))
		c := b.Cursor()
		for k, _ := c.Seek(lo[:]); k != nil && string(k) < string(hi[:]); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

func (s *boltStore) close() error { return s.db.Close() }

// --- SQLite (modernc.org/sqlite, pure Go) in WAL mode: a series table
// and a samples table keyed (series, t) without rowid.

type sqliteStore struct {
	db   *sql.DB
	r    *rand.Rand
	step int
}

func openSQLite(dir string) (store, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "history.sqlite")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE series (id INTEGER PRIMARY KEY, limit_id TEXT, scope TEXT, UNIQUE(limit_id, scope))`,
		`CREATE TABLE samples (series INTEGER, t INTEGER, used INTEGER, max INTEGER, PRIMARY KEY(series, t)) WITHOUT ROWID`,
	} {
		if _, err := db.Exec(q); err != nil {
			return nil, err
		}
	}
	for i := range *nSeries {
		if _, err := db.Exec(`INSERT INTO series VALUES (?, 'inodes', ?)`, i, fmt.Sprintf("/run/containerd/io.containerd.runtime.v2.task/k8s.io/%d", i)); err != nil {
			return nil, err
		}
	}
	return &sqliteStore{db: db, r: rand.New(rand.NewPCG(1, 2))}, nil
}

func (s *sqliteStore) write(t time.Time) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	st, err := tx.Prepare(`INSERT INTO samples VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for i := range *nSeries {
		u, m := workload(i, s.step, s.r)
		if _, err := st.Exec(i, t.Unix(), int64(u), int64(m)); err != nil {
			tx.Rollback()
			return err
		}
	}
	st.Close()
	s.step++
	return tx.Commit()
}

func (s *sqliteStore) read(i int, from, to time.Time) (int, error) {
	rows, err := s.db.Query(`SELECT t, used, max FROM samples WHERE series = ? AND t >= ? AND t < ?`, i, from.Unix(), to.Unix())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var t, u, m int64
		if err := rows.Scan(&t, &u, &m); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func (s *sqliteStore) close() error {
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return err
	}
	return s.db.Close()
}
