package history

import (
	"bytes"
	"encoding/csv"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/chart"
	"github.com/enospc/enospc/limits"
)

// record48h writes 48 h at 30 s of one inodes row rising 1 an interval,
// and returns the directory.
func record48h(tb testing.TB, scope string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "h")
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	for i := range 48 * 120 {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		if err := s.Record(at, []limits.Finding{row("inodes", scope, int64(1000+i), 8000)}); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestLoadCSVPlot(t *testing.T) {
	hostile := "/mnt/a,b\"\n\x1b[31m"
	dir := record48h(t, hostile)
	rep, err := Load(dir, []string{"inodes"}, "", t0.Add(-time.Hour), t0.Add(49*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Series) != 1 || rep.Series[0].Unit != "inodes" {
		t.Fatalf("%+v", rep.Series)
	}
	sr := rep.Series[0]
	// Every sample: the full resolution is kept 48 h after the newest.
	if n := len(sr.Samples); n != 48*120 {
		t.Errorf("%d samples, want %d", n, 48*120)
	}
	if h := sr.Trend; h == nil || math.Abs(h.RatePerHour-120) > 0.01 || h.ETASeconds == nil {
		t.Errorf("trend %+v, want +120/h", h)
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+48*120 || strings.Join(recs[0], ",") != "time,limit,scope,used,max,severity" {
		t.Fatalf("%d records, header %q", len(recs), recs[0])
	}
	if r := recs[1]; r[0] != "2026-03-01T12:00:00Z" || r[2] != `/mnt/a,b"\n\x1b[31m` || r[3] != "1000" || r[4] != "8000" || r[5] != "ok" {
		t.Errorf("first record %q", r)
	}
	p, err := rep.Plot()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Series) != 3 || !p.Series[2].Dashed {
		t.Fatalf("plot series %+v", p.Series)
	}
	proj := p.Series[2].Points
	if math.Abs(proj[1].Y-8000) > 1 {
		t.Errorf("projection ends at %v, want the max 8000", proj[1].Y)
	}
	if err := chart.Render(io.Discard, p, "svg", 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, []string{"no.such"}, "", t0, t0); err == nil {
		t.Error("an unknown limit was accepted")
	}
}

// BenchmarkChart48h is the time to load one row's 48 h at 30 s from the
// store and render its PNG chart (what `enospc history -o png` does).
func BenchmarkChart48h(b *testing.B) {
	dir := record48h(b, "/run (tmpfs tmpfs)")
	b.ResetTimer()
	for b.Loop() {
		rep, err := Load(dir, []string{"inodes"}, "/run (tmpfs tmpfs)", t0, t0.Add(48*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		p, err := rep.Plot()
		if err != nil {
			b.Fatal(err)
		}
		if err := chart.Render(io.Discard, p, "png", 0, 0); err != nil {
			b.Fatal(err)
		}
	}
}
