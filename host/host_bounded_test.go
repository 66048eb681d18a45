package host

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBounded: a lookup that does not answer is abandoned after its
// timeout and not started again for the same key while it hangs; past
// maxHungLookups none is started at all; a lookup that returns frees its
// key.
func TestBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := func() error { <-release; return nil }
	if err := Bounded(context.Background(), "a", 20*time.Millisecond, hang); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a hung lookup: %v, want a timeout", err)
	}
	started := false
	if err := Bounded(context.Background(), "a", time.Second, func() error { started = true; return nil }); !errors.Is(err, ErrTimeout) || started {
		t.Fatalf("the same key again: %v (started %v), want refused at once", err, started)
	}
	for i := 1; i < maxHungLookups; i++ {
		Bounded(context.Background(), string(rune('b'+i)), time.Millisecond, hang)
	}
	if err := Bounded(context.Background(), "new", time.Second, func() error { started = true; return nil }); !errors.Is(err, ErrTimeout) || started {
		t.Fatalf("past %d hung lookups: %v (started %v), want refused", maxHungLookups, err, started)
	}
	if n := hungLookups.Abandoned(); n != maxHungLookups {
		t.Errorf("%d abandoned, want %d", n, maxHungLookups)
	}
	ok := errors.New("answered")
	hungLookups = NewStragglers() // the hung ones return when the test ends
	if err := Bounded(context.Background(), "b", time.Second, func() error { return ok }); err != ok {
		t.Errorf("a lookup that answers: %v", err)
	}
}
