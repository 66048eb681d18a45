package check

import (
	"context"
	"testing"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// BenchmarkCheck is a full `enospc check` on the machine running the
// benchmark: census, every family, grading and sorting.
//
//	go test -run '^$' -bench . -benchmem ./check/
func BenchmarkCheck(b *testing.B) {
	h := host.New("/proc", "/sys", "/")
	ctx := context.Background()
	for b.Loop() {
		rep, err := Run(ctx, h, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Findings) == 0 {
			b.Fatal("no findings")
		}
	}
}

// BenchmarkCensus is the one /proc walk every limit shares.
func BenchmarkCensus(b *testing.B) {
	h := host.New("/proc", "/sys", "/")
	ctx := context.Background()
	for b.Loop() {
		c, err := census.Take(ctx, h, census.Options{FifoDirs: []string{"/run/containerd/fifo"}, Live: true})
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Processes) == 0 {
			b.Fatal("no processes")
		}
	}
}
