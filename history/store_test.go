package history

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/limits"
)

// A head entry decodes to the rows encoded, unknown rows without use.
func TestHeadRoundTrip(t *testing.T) {
	in := []headRow{
		{1, point{t: 5, used: 7, max: 10, sev: limits.Warning}},
		{math.MaxUint32, point{t: 5, used: math.NaN(), max: math.NaN(), sev: limits.Unknown}},
		{3, point{t: 5, used: -4, max: 1 << 50, sev: limits.Critical}},
	}
	var out []headRow
	if err := decodeHead(5, encodeHead(nil, in), func(r headRow) { out = append(out, r) }); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d rows, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.id != b.id || a.p.sev != b.p.sev || math.IsNaN(a.p.used) != math.IsNaN(b.p.used) ||
			(!math.IsNaN(a.p.used) && (a.p.used != b.p.used || a.p.max != b.p.max)) {
			t.Errorf("row %d: %+v, want %+v", i, b, a)
		}
	}
}

// A chunk returns its samples in the window asked for, and only the use
// with usedOnly.
func TestChunkWindow(t *testing.T) {
	c := newChunk()
	for i := range 100 {
		c.add(point{t: int64(1000 + 30*i), used: float64(i), max: 100, sev: limits.OK})
	}
	c.add(point{t: 1000, used: 5}) // not after the last: dropped
	var got []point
	if err := decodeChunk(c.encode(), 1300, 1600, false, func(p point) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 || got[0].used != 10 || got[10].used != 20 || got[0].max != 100 {
		t.Fatalf("%+v", got)
	}
	got = got[:0]
	if err := decodeChunk(c.encode(), 0, math.MaxInt64, true, func(p point) { got = append(got, p) }); err != nil || len(got) != 100 {
		t.Fatalf("%d samples, %v", len(got), err)
	}
}

// A store file that is not one, or is damaged, is an error for the
// reader and for the writer, never a panic or a hang.
func TestDamagedStore(t *testing.T) {
	for name, content := range map[string][]byte{
		"empty":   nil,
		"garbage": bytes.Repeat([]byte("\xde\xad\xbe\xef"), 4096),
		"text":    []byte(strings.Repeat("history\n", 3000)),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, fileName), content, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReadOnly(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Query(nil, "", t0, t0.Add(time.Hour)); err == nil {
				t.Error("a reader read a damaged store")
			}
			w, err := Open(dir, Options{})
			if len(content) == 0 {
				// An empty file is a store cut short before its first
				// page: the writer starts it afresh.
				if err != nil {
					t.Errorf("a writer refused an empty store: %v", err)
				} else {
					w.Close()
				}
				return
			}
			if err == nil {
				t.Error("a writer opened a damaged store")
			}
		})
	}
	// A real store whose pages are then overwritten in the middle.
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := s.Record(t0.Add(time.Duration(i)*time.Minute), []limits.Finding{row("inodes", strings.Repeat("x", 300), int64(i), 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, fileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2 * 4096; i < len(b); i += 4096 {
		copy(b[i:], bytes.Repeat([]byte{0xff}, 64))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenReadOnly(dir)
	if _, err := r.Query(nil, "", t0, t0.Add(300*time.Minute)); err == nil {
		t.Error("a reader read a store whose pages were overwritten")
	} else {
		t.Log(err)
	}
}

// A reader waits for the writer's check, not for the writer: it reads
// while the writer holds the directory, and the writer records while a
// reader has it open.
func TestReaderBesideWriter(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error)
	go func() {
		for i := range 200 {
			if err := s.Record(t0.Add(time.Duration(i)*time.Minute), []limits.Finding{row("pids", "all", int64(i), 1000)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	last := -1
	for reading := true; reading; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			reading = false
		default:
		}
		got, err := r.Query(nil, "", t0, t0.Add(300*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			n := len(got[0].Samples)
			if n < last {
				t.Fatalf("a reader saw %d samples after %d", n, last)
			}
			for i, smp := range got[0].Samples {
				if smp.Used != int64(i) {
					t.Fatalf("sample %d is %d", i, smp.Used)
				}
			}
			last = n
		}
	}
	got, err := r.Query(nil, "", t0, t0.Add(300*time.Minute))
	if err != nil || len(got) != 1 || len(got[0].Samples) != 200 {
		t.Fatalf("after the writer: %v %v", got, err)
	}
}

// Retention: raw chunks past RawRetention and coarse ones past the
// store's retention are deleted, and so is a row with nothing left.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Retention: 3 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 4 * 24 * 6 { // 4 days at 10 minutes
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		rows := []limits.Finding{row("pids", "all", int64(i), 100000)}
		if i < 6 {
			rows = append(rows, row("inodes", "/gone", 1, 10)) // the first hour only
		}
		if err := s.Record(at, rows); err != nil {
			t.Fatal(err)
		}
	}
	end := t0.Add(4 * 24 * time.Hour)
	got, err := s.Query(nil, "", t0.Add(-time.Hour), end)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Limit != "pids" {
		t.Fatalf("rows %+v, want pids alone", got)
	}
	first := got[0].Samples[0].T
	if first.Before(end.Add(-3*24*time.Hour-coarseSpan)) || first.After(end.Add(-3*24*time.Hour+coarseSpan)) {
		t.Errorf("oldest sample at %v, want about 3 days before %v", first, end)
	}
	var raw int
	for _, smp := range got[0].Samples {
		if smp.T.After(end.Add(-RawRetention)) {
			raw++
		}
	}
	if raw < 48*6-12 {
		t.Errorf("%d samples in the last 48 h, want every one (about 288)", raw)
	}
}

func FuzzDecodeHead(f *testing.F) {
	f.Add(encodeHead(nil, []headRow{{1, point{used: 3, max: 4}}, {2, point{used: math.NaN(), sev: limits.Unknown}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x1f})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := decodeHead(1, b, func(r headRow) {
			n++
			if r.p.sev < limits.OK || r.p.sev > limits.Critical {
				t.Fatalf("severity %d", r.p.sev)
			}
		})
		if err == nil {
			// What decodes encodes back to the same bytes' meaning.
			var rows []headRow
			decodeHead(1, b, func(r headRow) { rows = append(rows, r) })
			var again []headRow
			if err := decodeHead(1, encodeHead(nil, rows), func(r headRow) { again = append(again, r) }); err != nil || len(again) != n {
				t.Fatalf("re-encoded: %d rows of %d, %v", len(again), n, err)
			}
		}
	})
}

func FuzzDecodeChunk(f *testing.F) {
	c := newChunk()
	for i := range 10 {
		c.add(point{t: int64(i * 1000), used: float64(i), max: 10, sev: limits.Warning})
	}
	f.Add(c.encode())
	f.Add([]byte{3, 0, 1, 2, 1, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := chunkCount(b); n < 0 || n > math.MaxUint16 {
			t.Fatalf("count %d", n)
		}
		for _, usedOnly := range []bool{false, true} {
			decodeChunk(b, math.MinInt64, math.MaxInt64, usedOnly, func(p point) {
				if p.sev < limits.OK || p.sev > limits.Critical {
					t.Fatalf("severity %d", p.sev)
				}
			})
		}
	})
}

func FuzzDecodeSeries(f *testing.F) {
	f.Add(encodeSeries(seriesKey{"inodes", "/run (tmpfs tmpfs)"}))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeSeries(b)
		if err != nil {
			return
		}
		if again, err := decodeSeries(encodeSeries(k)); err != nil || again != k {
			t.Fatalf("%q decodes to %+v, which encodes to %+v (%v)", b, k, again, err)
		}
	})
}
