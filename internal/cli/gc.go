package cli

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
)

// oneShotHeap is how large the heap of a command that looks at the host
// once and exits may grow before Go's collector first runs.
const oneShotHeap = 32 << 20

// oneShotGC holds the collector back until the heap first reaches
// oneShotHeap, for check and explain, instead of starting it at Go's 4
// MiB; from that first collection on, Go's defaults are back. A check
// allocates a few MB on an idle host and some 14 MB on the bad night
// (`go test -bench 'BenchmarkCheck$' -benchmem ./check/`), so it mostly
// never collects: on an idle host the collection it ran was about 2 ms of
// a 17 ms check (`hyperfine -N 'env GOGC=100 enospc check -o json' 'env
// GOGC=off enospc check -o json'`). One that reads a large history
// (--history-dir) collects as usual once past 32 MiB, rather than
// collecting without end near a limit it cannot get under. GOGC or
// GOMEMLIMIT, when set, win.
func oneShotGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(oneShotHeap)
	debug.SetGCPercent(-1)
	// The first collection finds the sentinel unreachable and runs its
	// finalizer: the defaults are back.
	runtime.SetFinalizer(new([64]byte), func(*[64]byte) {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	})
}
