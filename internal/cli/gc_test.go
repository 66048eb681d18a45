package cli

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The collector does not run below oneShotHeap, and once the heap has
// passed it Go's defaults are back: a command that holds a large heap
// (a big history read) does not collect without end near the limit.
func TestOneShotGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.NumGC
	oneShotGC()
	var keep [][]byte
	for range 8 { // 8 MiB, under the limit
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.ReadMemStats(&ms)
	if ms.NumGC != before {
		t.Errorf("%d collections under %d MiB", ms.NumGC-before, oneShotHeap>>20)
	}
	for range 96 { // 96 MiB more, held: over the limit for good
		keep = append(keep, make([]byte, 1<<20))
	}
	// The finalizer runs on its own goroutine after the first collection.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p := debug.SetGCPercent(-2); p == 100 {
			debug.SetGCPercent(100)
			runtime.ReadMemStats(&ms)
			if n := ms.NumGC - before; n > 20 {
				t.Errorf("%d collections to hold %d MiB", n, len(keep))
			}
			return
		} else {
			debug.SetGCPercent(p)
		}
		keep = append(keep, make([]byte, 1<<20))
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("Go's collector defaults were not back after the heap passed the limit")
}
