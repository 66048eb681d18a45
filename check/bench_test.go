package check

import (
	"context"
	"os"
	"strings"
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
	// ENOSPC_BENCH_FIFO_DIR and ENOSPC_BENCH_CONTAINERD_STATE point the
	// check where scripts/badnight puts its fifo directories and runtime
	// state, as its `check --fifo-dir --containerd-state` does.
	opts := Options{FifoDir: os.Getenv("ENOSPC_BENCH_FIFO_DIR"), ContainerdState: os.Getenv("ENOSPC_BENCH_CONTAINERD_STATE")}
	for b.Loop() {
		rep, err := Run(ctx, h, opts)
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

// BenchmarkCheckOnly is a check of some limits only, the census included,
// on the machine running the benchmark: the cgroup families, and the
// ports of every network namespace.
//
//	sudo go test -run '^$' -bench CheckOnly -benchmem ./check/
func BenchmarkCheckOnly(b *testing.B) {
	h := host.New("/proc", "/sys", "/")
	ctx := context.Background()
	for _, only := range [][]string{{"cgroups", "cgroups.dying", "leak.cgroups"}, {"ports"}} {
		b.Run(strings.Join(only, ","), func(b *testing.B) {
			for b.Loop() {
				rep, err := Run(ctx, h, Options{Only: only})
				if err != nil {
					b.Fatal(err)
				}
				if len(rep.Findings) == 0 {
					b.Fatal("no findings")
				}
			}
		})
	}
}
