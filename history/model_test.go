package history

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/enospc/enospc/limits"
)

// model is what the store should answer, kept the simplest way: every
// sample of every row, with the fold's times; the store's answers are
// compared with it (TestStoreAgainstModel).
type model struct {
	last      int64
	lastHour  int64 // hour of the last accepted check
	fold      int64 // ms of the last check that folded, 0 none
	expired   int64 // the time the last expiry counted from (capped, as expire does)
	samples   map[[2]string][]Sample
	retention int64
}

func (m *model) record(at time.Time, rows []limits.Finding) {
	ms := at.UnixMilli()
	if ms <= 0 || (m.last != 0 && ms <= m.last) {
		return
	}
	if m.last != 0 && floorTo(ms, hourMs) > m.lastHour {
		m.fold = ms
		if m.expired == 0 {
			m.expired = ms
		} else {
			m.expired = min(ms, m.expired+expireStep.Milliseconds())
		}
	}
	m.last, m.lastHour = ms, floorTo(ms, hourMs)
	for _, r := range rows {
		s := Sample{T: time.UnixMilli(ms).UTC(), Severity: r.Severity}
		if r.Severity != limits.Unknown || r.Max != 0 {
			s.HasUse, s.Used, s.Max = true, r.Used, r.Max
		}
		k := [2]string{r.Limit, r.Scope}
		m.samples[k] = append(m.samples[k], s)
	}
}

func (m *model) query(since, until int64) map[[2]string][]Sample {
	return m.queryFrom(since, since, until)
}

// queryFrom is the store's query: raw samples from rawSince, and before
// the first of them the coarse ones from since.
func (m *model) queryFrom(rawSince, since, until int64) map[[2]string][]Sample {
	rawSince, since = max(rawSince, 0), max(since, 0)
	out := map[[2]string][]Sample{}
	for k := range m.samples {
		raw, coarse := onlyRaw(m, k, rawSince, until), m.queryCoarse(k, since, until)
		if len(raw) > 0 {
			var pre []Sample
			for _, c := range coarse {
				if c.T.Before(raw[0].T) {
					pre = append(pre, c)
				}
			}
			raw = append(pre, raw...)
		} else {
			raw = coarse
		}
		if len(raw) > 0 {
			out[k] = raw
		}
	}
	return out
}

func compare(t *testing.T, what string, got []Series, want map[[2]string][]Sample, usedOnly bool) {
	t.Helper()
	g := map[[2]string][]Sample{}
	for _, sr := range got {
		g[[2]string{sr.Limit, sr.Scope}] = sr.Samples
	}
	for k, w := range want {
		gs := g[k]
		if len(gs) != len(w) {
			t.Fatalf("%s %v: %d samples, want %d\n got %v\nwant %v", what, k, len(gs), len(w), brief(gs), brief(w))
		}
		for i := range w {
			a, b := gs[i], w[i]
			if usedOnly {
				if !a.T.Equal(b.T) || a.HasUse != b.HasUse || (b.HasUse && a.Used != b.Used) {
					t.Fatalf("%s %v sample %d: %+v want %+v", what, k, i, a, b)
				}
				continue
			}
			if !a.T.Equal(b.T) || a != b {
				t.Fatalf("%s %v sample %d: %+v want %+v", what, k, i, a, b)
			}
		}
	}
	for k := range g {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: unexpected row %v with %d samples", what, k, len(g[k]))
		}
	}
}

func brief(ss []Sample) string {
	s := ""
	for i, x := range ss {
		if i > 12 {
			s += "..."
			break
		}
		s += fmt.Sprintf("%s/%d/%v ", x.T.Format("01-02T15:04:05"), x.Used, x.Severity)
	}
	return s
}

// TestStoreAgainstModel records random checks (rows coming and going,
// unknown rows, irregular times, gaps of hours and days, the clock back
// within clockSlack, repeats, the writer reopened) and compares every
// answer, by both read strategies and as Annotate reads, with the model.
func TestStoreAgainstModel(t *testing.T) {
	seeds := 12
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, int64(seed)) })
	}
}

// TestStoreAgainstModelAligned is the same at whole minutes and windows
// on the 10 minutes, so that samples sit on chunk and window edges.
func TestStoreAgainstModelAligned(t *testing.T) {
	for seed := range 6 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { aligned = true; defer func() { aligned = false }(); runModel(t, int64(seed)) })
	}
}

var aligned bool

func runModel(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	ret := DefaultRetention
	if seed%2 == 1 {
		ret = 3 * 24 * time.Hour
	}
	s, err := Open(dir, Options{Retention: ret})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	m := &model{samples: map[[2]string][]Sample{}, retention: ret.Milliseconds()}
	var keys [][2]string
	for l := range 5 {
		for sc := range 5 {
			keys = append(keys, [2]string{fmt.Sprintf("L%d", l), fmt.Sprintf("s%d", sc)})
		}
	}
	present := map[int]bool{}
	for i := range keys {
		present[i] = rng.Intn(2) == 0
	}
	at := t0.Add(time.Duration(rng.Intn(3600)) * time.Second)
	check := func(now time.Time) {
		for range 6 {
			a := now.Add(-time.Duration(rng.Int63n(int64(20 * 24 * time.Hour))))
			b := a.Add(time.Duration(rng.Int63n(int64(20 * 24 * time.Hour))))
			if rng.Intn(4) == 0 {
				b = now.Add(time.Hour)
			}
			if aligned {
				a, b = a.Truncate(10*time.Minute), b.Truncate(10*time.Minute)
				if rng.Intn(3) == 0 {
					b = a
				}
			}
			got, err := s.Query(nil, "", a, b)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "all", got, m.query(a.UnixMilli(), b.UnixMilli()), false)
			// a few rows: the point-get path
			only := []string{fmt.Sprintf("L%d", rng.Intn(5))}
			got, err = s.Query(only, "", a, b)
			if err != nil {
				t.Fatal(err)
			}
			want := m.query(a.UnixMilli(), b.UnixMilli())
			for k := range want {
				if k[0] != only[0] {
					delete(want, k)
				}
			}
			compare(t, "few", got, want, false)
		}
	}
	for i := range 4000 {
		switch r := rng.Intn(1000); {
		case r < 3:
			at = at.Add(time.Duration(rng.Int63n(int64(4 * 24 * time.Hour)))) // days away
		case r < 15:
			at = at.Add(time.Duration(rng.Int63n(int64(5 * time.Hour))))
		case r < 25:
			// The clock back, within the slack of the latest check (a
			// rewind is TestClockSetBack's).
			at = at.Add(-time.Duration(rng.Int63n(int64(clockSlack / 2))))
			if floor := time.UnixMilli(m.last).Add(-clockSlack / 2); m.last != 0 && at.Before(floor) {
				at = floor
			}
		case r < 30:
			// exact repeat
		default:
			at = at.Add(time.Duration(1+rng.Int63n(int64(3*time.Minute/time.Millisecond))) * time.Millisecond)
		}
		if aligned {
			at = at.Truncate(time.Minute)
		}
		if rng.Intn(50) == 0 {
			j := rng.Intn(len(keys))
			present[j] = !present[j]
		}
		var rows []limits.Finding
		for j, k := range keys {
			if !present[j] {
				continue
			}
			f := limits.Finding{Limit: k[0], Scope: k[1], Used: rng.Int63n(1000), Max: 1000}
			switch x := rng.Intn(20); {
			case x == 0:
				f.Severity, f.Used, f.Max = limits.Unknown, 0, 0
			case x == 1:
				f.Severity, f.Used = limits.Unknown, 0
			case x < 4:
				f.Severity = limits.Warning
			case x < 5:
				f.Severity = limits.Critical
			}
			rows = append(rows, f)
		}
		if err := s.Record(at, rows); err != nil {
			t.Fatal(err)
		}
		m.record(at, rows)
		if rng.Intn(200) == 0 {
			s.Close()
			if s, err = Open(dir, Options{Retention: ret}); err != nil {
				t.Fatal(err)
			}
		}
		if i%400 == 399 {
			check(at)
			// usedOnly as Annotate reads it
			now := at
			got, err := s.query(nil, "", now.Add(-RateWindow), now.Add(-PeakWindow), now, true)
			if err != nil {
				t.Fatal(err)
			}
			want := m.queryFrom(now.Add(-RateWindow).UnixMilli(), now.Add(-PeakWindow).UnixMilli(), now.UnixMilli())
			compare(t, "usedOnly", got, want, true)
		}
	}
}

func onlyRaw(m *model, k [2]string, since, until int64) []Sample {
	var raw []Sample
	for _, s := range m.samples[k] {
		t := s.T.UnixMilli()
		h := floorTo(t, hourMs)
		if m.fold != 0 && h < floorTo(m.fold, hourMs) && h+hourMs <= m.expired-RawRetention.Milliseconds() {
			continue
		}
		if t >= since && t <= until {
			raw = append(raw, s)
		}
	}
	return raw
}

func (m *model) queryCoarse(k [2]string, since, until int64) []Sample {
	ss := m.samples[k]
	var coarse []Sample
	if m.fold == 0 {
		return nil
	}
	fh := floorTo(m.fold, hourMs)
	var win int64 = -1
	var best Sample
	var worst limits.Severity
	flush := func() {
		if win < 0 {
			return
		}
		b := best
		b.Severity = worst
		t := b.T.UnixMilli()
		span := floorTo(t, coarseSpanMs)
		if span+coarseSpanMs > m.expired-m.retention && t >= since && t <= until {
			coarse = append(coarse, b)
		}
		win = -1
	}
	for _, s := range ss {
		t := s.T.UnixMilli()
		if floorTo(t, hourMs) >= fh {
			break
		}
		w := floorTo(t, stepMs)
		if w != win {
			flush()
			win, best, worst = w, s, s.Severity
			continue
		}
		switch {
		case !s.HasUse:
			if !best.HasUse {
				worst = max(worst, s.Severity)
			}
		case !best.HasUse:
			best, worst = s, s.Severity
		default:
			if s.Used > best.Used {
				best = s
			}
			worst = max(worst, s.Severity)
		}
	}
	flush()
	return coarse
}
