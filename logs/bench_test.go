package logs

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkScanDense is the scanner on a log where every line is an
// error, with pids, ids, paths and times varying (go test -bench Dense
// ./logs).
func BenchmarkScanDense(b *testing.B) {
	data := DenseLog(16 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(time.Time{}, now)
		s.Scan(bytes.NewReader(data), Source{Name: "bench"})
		if s.Report().Matched == 0 {
			b.Fatal("no match")
		}
	}
}
