package logs

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

// BenchmarkScanDense is the scanner on a log where every line is an
// error, with pids, ids, paths and times varying (go test -bench Dense
// ./logs); BenchmarkScan is the usual log, one error in 10000 lines.
func BenchmarkScanDense(b *testing.B) {
	benchScan(b, DenseLog(16<<20))
}

// benchScan reports MB/s, and MiB per CPU second (user and system, of the
// whole process): on a shared machine the CPU a scan takes is what can be
// measured, whatever else runs.
func benchScan(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	before := cpuTime()
	for b.Loop() {
		s := NewScanner(time.Time{}, now)
		s.Scan(bytes.NewReader(data), Source{Name: "bench"})
		if s.Report().Matched == 0 {
			b.Fatal("no match")
		}
	}
	if cpu := (cpuTime() - before).Seconds(); cpu > 0 {
		b.ReportMetric(float64(b.N)*float64(len(data))/(1<<20)/cpu, "MiB/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
