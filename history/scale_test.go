package history

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb"

	"github.com/enospc/enospc/limits"
)

// BenchmarkRecord2000 records 2,000 rows a check at 30 s (b.N checks: 2880
// is a day) and reports the cost of a row and the disk a row-sample takes
// in raw/ and in coarse/, once the store has cut its blocks, and the
// store of 14 days projected from them: RawRetention of raw samples and
// DefaultRetention of coarse ones.
//
//	go test -run - -bench Record2000 -benchtime 2880x ./history/
func BenchmarkRecord2000(b *testing.B) {
	const rows = 2000
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	batch := make([]limits.Finding, rows)
	for i := range batch {
		batch[i] = limits.Finding{Limit: "inodes", Scope: fmt.Sprintf("/run/containerd/io.containerd.runtime.v2.task/k8s.io/%064d/rootfs (overlay overlay)", i),
			Used: int64(1000 + 7*i), Max: 65536, Severity: limits.OK}
	}
	steps := 0
	for b.Loop() {
		at := t0.Add(time.Duration(steps) * 30 * time.Second)
		for i := range batch {
			// Most rows stay; one in ten moves by a few.
			if r.IntN(10) == 0 {
				batch[i].Used += int64(r.IntN(5)) - 1
			}
		}
		if err := s.Record(at, batch); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	b.StopTimer()
	for _, db := range []*tsdb.DB{s.raw, s.coarse} {
		if err := db.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// raw/ holds at most RawRetention (and the block being cut); coarse/
	// all of a run shorter than DefaultRetention.
	span := time.Duration(steps) * 30 * time.Second
	rawKept := min(span, RawRetention)
	rawB := float64(du(filepath.Join(dir, "raw"))) / (rows * rawKept.Seconds() / 30)
	coarseB := float64(du(filepath.Join(dir, "coarse"))) / (rows * max(1, span.Seconds()/CoarseStep.Seconds()))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*steps), "ns/row")
	b.ReportMetric(rawB, "raw-B/row-sample")
	b.ReportMetric(coarseB, "coarse-B/row-sample")
	proj := rawB*rows*RawRetention.Seconds()/30 + coarseB*rows*DefaultRetention.Seconds()/CoarseStep.Seconds()
	b.ReportMetric(proj/(1<<20), "MiB-14d-projected")
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

// BenchmarkAnnotate2000 is what serve adds to each check with a history:
// the trend of 2,000 rows from 6 h of samples at 30 s (and the coarse
// ones of 24 h).
//
//	go test -run - -bench Annotate2000 ./history/
func BenchmarkAnnotate2000(b *testing.B) {
	const rows = 2000
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]limits.Finding, rows)
	for i := range batch {
		batch[i] = limits.Finding{Limit: "inodes", Scope: fmt.Sprintf("/run/containerd/io.containerd.runtime.v2.task/k8s.io/%064d/rootfs (overlay overlay)", i),
			Used: int64(1000 + 7*i), Max: 65536, Severity: limits.OK}
	}
	const steps = 6 * 120
	for j := range steps {
		for i := range batch {
			batch[i].Used += int64(i % 3)
		}
		if err := s.Record(t0.Add(time.Duration(j)*30*time.Second), batch); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(steps * 30 * time.Second)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Annotate(now, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if h := batch[1].History; h == nil || h.RatePerHour < 119 || h.RatePerHour > 121 {
		b.Fatalf("row 1: trend %+v, want +120/h", h)
	}
}
