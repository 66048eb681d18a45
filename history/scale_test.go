package history

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/enospc/enospc/limits"
)

// BenchmarkRecord2000 records 2,000 rows a check at 30 s (b.N checks: 2880
// is a day), each synced as serve syncs it, and reports the cost of a row,
// the bytes a raw and a coarse row-sample take in their chunks, the file's
// size and its ratio to the bytes it holds, and the store of 14 days
// projected from them: RawRetention of raw samples and DefaultRetention
// of coarse ones.
//
//	go test -run - -bench Record2000 -benchtime 2880x ./history/
func BenchmarkRecord2000(b *testing.B) {
	const rows = 2000
	dir := b.TempDir()
	syncWrites = true
	defer func() { syncWrites = false }()
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
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	var rawB, coarseB, rawN, coarseN, all float64
	err = s.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			tx.Bucket(name).ForEach(func(k, v []byte) error { all += float64(len(k) + len(v)); return nil })
		}
		for _, c := range []struct {
			name  []byte
			bytes *float64
			n     *float64
		}{{bucketRaw, &rawB, &rawN}, {bucketCoarse, &coarseB, &coarseN}, {bucketPend, &coarseB, &coarseN}} {
			err := tx.Bucket(c.name).ForEach(func(k, v []byte) error {
				*c.bytes += float64(len(k) + len(v))
				return decodeChunk(v, math.MinInt64, math.MaxInt64, true, func(point) { *c.n++ })
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, fileName))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*steps), "ns/row")
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-file")
	if rawN == 0 || coarseN == 0 {
		return // under an hour: nothing folded yet
	}
	b.ReportMetric(rawB/rawN, "raw-B/row-sample")
	b.ReportMetric(coarseB/coarseN, "coarse-B/row-sample")
	// The file holds the chunks, the head, pages' slack and free pages:
	// the projection keeps the ratio of the file to its keys and values.
	slack := float64(fi.Size()) / all
	b.ReportMetric(slack, "file/data")
	proj := slack * (rawB/rawN*rows*RawRetention.Seconds()/30 + coarseB/coarseN*rows*DefaultRetention.Seconds()/CoarseStep.Seconds())
	b.ReportMetric(proj/(1<<20), "MiB-14d-projected")
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

// BenchmarkQueryAll48h reads what `enospc history` reads by default (48 h)
// of every row of a store of 2,000 rows at 30 s: 11.5 million samples.
//
//	go test -run - -bench QueryAll48h -benchmem ./history/
func BenchmarkQueryAll48h(b *testing.B) {
	const rows = 2000
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]limits.Finding, rows)
	for i := range batch {
		batch[i] = limits.Finding{Limit: "inodes", Scope: fmt.Sprintf("/run/containerd/%064d/rootfs", i), Used: int64(i), Max: 65536}
	}
	for i := range 48 * 120 {
		batch[i%rows].Used++
		if err := s.Record(t0.Add(time.Duration(i)*30*time.Second), batch); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	r, err := OpenReadOnly(dir)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		got, err := r.Query(nil, "", t0.Add(-time.Hour), t0.Add(49*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for _, g := range got {
			n += len(g.Samples)
		}
	}
	if n != rows*48*120 {
		b.Fatalf("%d samples, want %d", n, rows*48*120)
	}
	b.ReportMetric(float64(n), "samples")
}
