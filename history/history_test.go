package history

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enospc/enospc/limits"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The tests record thousands of checks: without fsync, except where a
// test says otherwise.
func TestMain(m *testing.M) {
	syncWrites = false
	if dir := os.Getenv(damageChildEnv); dir != "" {
		os.Exit(damageChild(dir))
	}
	os.Exit(m.Run())
}

// coarseOf reads every coarse sample of the store.
func coarseOf(t *testing.T, s *Store) []Series {
	t.Helper()
	var out []Series
	err := s.view(func(tx *bolt.Tx) error {
		sel, err := selectSeries(tx, nil, "")
		if err != nil {
			return err
		}
		pts := map[uint32][]Sample{}
		for _, name := range [][]byte{bucketCoarse, bucketPend} {
			if err := readChunks(tx.Bucket(name), sel, coarseSpanMs, 0, math.MaxInt64/2, false, 0, pts, func(err error) { t.Errorf("damaged coarse chunk: %v", err) }); err != nil {
				return err
			}
		}
		out = toSeries(sel, pts)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func row(limit, scope string, used, max int64) limits.Finding {
	return limits.Finding{Limit: limit, Scope: scope, Used: used, Max: max, Severity: limits.OK}
}

func TestTrendLinearWithOutlier(t *testing.T) {
	var smp []Sample
	for i := range 100 {
		u := int64(1000 + 42*i) // 42 a minute
		if i == 50 {
			u = 90000 // one wild sample
		}
		smp = append(smp, Sample{T: t0.Add(time.Duration(i) * time.Minute), HasUse: true, Used: u, Max: 100000})
	}
	now := t0.Add(100 * time.Minute)
	used := int64(1000 + 42*100)
	tr := Trend(smp, now, used, 100000)
	if math.Abs(tr.RatePerHour-42*60) > 1 {
		t.Errorf("rate %v/h, want %v", tr.RatePerHour, 42*60)
	}
	want := float64(100000-used) / 42 * 60
	if tr.ETASeconds == nil || math.Abs(*tr.ETASeconds-want) > want*0.01 {
		t.Errorf("eta %v, want %v", tr.ETASeconds, want)
	}
	if tr.Peak != 90000 || !tr.PeakAt.Equal(t0.Add(50*time.Minute)) {
		t.Errorf("peak %d at %v, want the outlier 90000 at %v", tr.Peak, tr.PeakAt, t0.Add(50*time.Minute))
	}
}

func TestTrendFlatFallingFew(t *testing.T) {
	mk := func(n int, step time.Duration, f func(i int) int64) []Sample {
		var s []Sample
		for i := range n {
			s = append(s, Sample{T: t0.Add(time.Duration(i) * step), HasUse: true, Used: f(i), Max: 1000})
		}
		return s
	}
	flat := mk(30, time.Minute, func(int) int64 { return 500 })
	if tr := Trend(flat, t0.Add(30*time.Minute), 500, 1000); tr.ETASeconds != nil || tr.RatePerHour != 0 {
		t.Errorf("flat: %+v", tr)
	}
	falling := mk(30, time.Minute, func(i int) int64 { return int64(900 - 10*i) })
	if tr := Trend(falling, t0.Add(30*time.Minute), 600, 1000); tr.ETASeconds != nil || tr.RatePerHour >= 0 {
		t.Errorf("falling: %+v", tr)
	}
	if tr := Trend(falling, t0.Add(30*time.Minute), 600, 1000); tr.Peak != 900 || !tr.PeakAt.Equal(t0) {
		t.Errorf("falling peak %d at %v", tr.Peak, tr.PeakAt)
	}
	few := mk(3, time.Minute, func(i int) int64 { return int64(100 * i) })
	if tr := Trend(few, t0.Add(3*time.Minute), 300, 1000); tr.ETASeconds != nil || tr.RatePerHour != 0 {
		t.Errorf("3 samples gave a rate: %+v", tr)
	}
	// Samples older than the rate window do not count towards it.
	old := mk(30, time.Minute, func(i int) int64 { return int64(10 * i) })
	if tr := Trend(old, t0.Add(RateWindow+time.Hour), 0, 1000); tr.ETASeconds != nil || tr.RatePerHour != 0 {
		t.Errorf("old samples gave a rate: %+v", tr)
	}
}

func TestRecordQueryReopen(t *testing.T) {
	syncWrites = true
	defer func() { syncWrites = false }()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hostile := "/mnt/\xff\x1b[2J\n" + `"); DROP`
	for i := range 40 {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		rows := []limits.Finding{row("inodes", "/run", int64(100+i), 1000), row("inodes", hostile, 7, 10),
			{Limit: "keys.count", Scope: "uid 1000", Severity: limits.Unknown, Reason: "x"}}
		if err := s.Record(at, rows); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second writer opened the same directory")
	}
	// A reader while the writer holds it.
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Query([]string{"inodes"}, "", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Scope != hostile || got[1].Scope != "/run" {
		t.Fatalf("series %+v", got)
	}
	for _, sr := range got {
		if n := len(sr.Samples); n != 40 {
			t.Fatalf("%q: %d samples, want 40", sr.Scope, n)
		}
	}
	if l := got[1].Samples[39]; l.Used != 139 || l.Max != 1000 || !l.T.Equal(t0.Add(39*30*time.Second)) {
		t.Errorf("last sample %+v", l)
	}
	if l := got[0].Samples[39]; l.Used != 7 || l.Max != 10 || l.Severity != limits.OK {
		t.Errorf("hostile row's last sample %+v", l)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("the directory holds %v, want only the store and the writer's lock", ents)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart keeps the history, and rows go on.
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Record(t0.Add(40*30*time.Second), []limits.Finding{row("inodes", "/run", 140, 1000)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Query(nil, "/run", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Samples) != 41 {
		t.Fatalf("after restart: %+v", got)
	}
	un, err := s.Query([]string{"keys.count"}, "", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(un) != 1 || un[0].Samples[0].HasUse || un[0].Samples[0].Severity != limits.Unknown {
		t.Fatalf("unknown row: %+v %v", un, err)
	}
}

func TestDownsampleKeepsPeak(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 25 minutes at 30 s, with one spike at minute 7.
	spike := t0.Add(7 * time.Minute)
	for i := range 50 {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		u := int64(100)
		if at.Equal(spike) {
			u = 999
		}
		if err := s.Record(at, []limits.Finding{row("pids", "all", u, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if c := coarseOf(t, s); len(c) != 0 {
		t.Fatalf("coarse samples before their hour is over: %+v", c)
	}
	// Annotate finds the peak and the (flat) rate from the raw samples.
	now := t0.Add(25 * time.Minute)
	rows := []limits.Finding{row("pids", "all", 100, 1000), row("pids", "never recorded", 1, 2)}
	if err := s.Annotate(now, rows); err != nil {
		t.Fatal(err)
	}
	if h := rows[0].History; h == nil || h.Peak != 999 || !h.PeakAt.Equal(spike) || h.ETASeconds != nil {
		t.Errorf("trend %+v", h)
	}
	if rows[1].History != nil {
		t.Errorf("a row without history got %+v", rows[1].History)
	}
	// The check that opens the next hour folds the first one.
	if err := s.Record(t0.Add(time.Hour), []limits.Finding{row("pids", "all", 100, 1000)}); err != nil {
		t.Fatal(err)
	}
	c := coarseOf(t, s)
	if len(c) != 1 || len(c[0].Samples) != 3 {
		t.Fatalf("coarse: %+v, want 3 windows of 10 minutes", c)
	}
	if w := c[0].Samples[0]; w.Used != 999 || !w.T.Equal(spike) {
		t.Errorf("window 1: %+v, want the spike at %v", w, spike)
	}
	if w := c[0].Samples[1]; w.Used != 100 || !w.T.Equal(t0.Add(CoarseStep)) {
		t.Errorf("window 2: %+v, want its first sample of 100", w)
	}
	// The trend reads the folded hour as it read the head.
	rows = rows[:1]
	if err := s.Annotate(now, rows); err != nil {
		t.Fatal(err)
	}
	if h := rows[0].History; h == nil || h.Peak != 999 || !h.PeakAt.Equal(spike) {
		t.Errorf("trend after the fold %+v", h)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere: a file in the way stands for a directory
		// that cannot be made.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := Open(filepath.Join(f, "history"), Options{}); err == nil {
			t.Fatal("opened a history under a file")
		}
		return
	}
	d := t.TempDir()
	os.Chmod(d, 0o500)
	if _, err := Open(filepath.Join(d, "history"), Options{}); err == nil {
		t.Fatal("opened a history in an unwritable directory")
	}
}

func TestOpenReadOnlyNoHistory(t *testing.T) {
	if _, err := OpenReadOnly(t.TempDir()); err == nil {
		t.Fatal("an empty directory opened")
	}
}

func TestEpisodes(t *testing.T) {
	var smp []Sample
	used := []int64{10, 96, 100, 99, 50, 95, 40}
	for i, u := range used {
		smp = append(smp, Sample{T: t0.Add(time.Duration(i) * time.Minute), HasUse: true, Used: u, Max: 100})
	}
	smp = append(smp[:5], append([]Sample{{T: t0.Add(4*time.Minute + 30*time.Second)}}, smp[5:]...)...)
	got := episodes(Series{Scope: "s", Samples: smp}, 0.95)
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if e := got[0]; !e.From.Equal(t0.Add(time.Minute)) || !e.To.Equal(t0.Add(3*time.Minute)) || e.Peak != 100 || !e.Full || !e.FullFrom.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("first %+v", e)
	}
	if e := got[1]; !e.From.Equal(t0.Add(5*time.Minute)) || !e.To.Equal(e.From) || e.Peak != 95 || e.Full {
		t.Errorf("second %+v", e)
	}
}

// A reader answers any number of queries (explain asks one a candidate
// limit).
func TestReaderQueriesAgain(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 30 {
		if err := s.Record(t0.Add(time.Duration(i)*30*time.Second), []limits.Finding{row("inodes", "/run", int64(50+i), 100), row("pids", "all", 5, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, limit := range []string{"inodes", "pids", "inodes"} {
		eps, err := r.Episodes(limit, t0, t0.Add(time.Hour), 0.5)
		if err != nil || len(eps) != 1 {
			t.Fatalf("%s: %+v %v", limit, eps, err)
		}
	}
}
