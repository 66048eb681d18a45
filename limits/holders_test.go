package limits

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestHoldersListedOnly checks that keeping only the listed consumers as
// they come gives the row CutConsumers gives from all of them: the same
// consumers in the same order, and the same total.
func TestHoldersListedOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		n := rng.IntN(12) // 0 lists every one
		var all []Consumer
		for i := rng.IntN(40); i > 0; i-- {
			// Few counts and pids: ties on both, as with a process
			// listed twice.
			all = append(all, Consumer{PID: rng.IntN(8), Count: int64(rng.IntN(4)), Name: string(rune('a' + len(all)))})
		}
		want := Finding{}
		want.setConsumers(append([]Consumer(nil), all...), n)
		want.CutConsumers()

		h := newHolders(&Env{ListedOnly: true}, n)
		for _, c := range all {
			h.add(c)
		}
		got := Finding{}
		got.setHolders(h)
		got.CutConsumers()
		if !reflect.DeepEqual(got.Consumers, want.Consumers) || got.ConsumersTotal != want.ConsumersTotal {
			t.Fatalf("n=%d of %v:\nkept  %v (total %d)\nwant  %v (total %d)", n, all, got.Consumers, got.ConsumersTotal, want.Consumers, want.ConsumersTotal)
		}
	}
}
