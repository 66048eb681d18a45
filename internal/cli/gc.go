package cli

import (
	"os"
	"runtime/debug"
)

// oneShotHeap is where the collector starts for a command that looks at
// the host once and exits.
const oneShotHeap = 32 << 20

// oneShotGC holds the collector back until the heap reaches oneShotHeap,
// for check and explain, instead of starting it at Go's 4 MiB. A check
// allocates a few MB on an idle host and some 14 MB on the bad night
// (`go test -bench 'BenchmarkCheck$' -benchmem ./check/`), so it mostly
// never collects: on an idle host the collection it ran was about 2 ms of
// a 17 ms check (`hyperfine -N 'env GOGC=100 enospc check -o json' 'env
// GOGC=off enospc check -o json'`). A larger host still collects, at 32
// MiB, within the 64 MiB peak RSS a check is held to. GOGC or GOMEMLIMIT,
// when set, win.
func oneShotGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(oneShotHeap)
	debug.SetGCPercent(-1)
}
