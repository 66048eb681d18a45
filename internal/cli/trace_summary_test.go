package cli

import (
	"strings"
	"testing"

	"github.com/enospc/enospc/trace"
)

func TestTraceSummary(t *testing.T) {
	s := newTraceSummary()
	for pid := 1; pid <= 3; pid++ {
		s.add(trace.Failure{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", PID: pid, Comm: "touch", Count: 2})
	}
	s.add(trace.Failure{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", PID: 9, Comm: "dd\x1b[2J", Count: 1})
	s.add(trace.Failure{Limit: "inotify.instances", Scope: "uid 1000", PID: 4, Comm: "tail", Count: 10})
	var b strings.Builder
	s.write(&b)
	got := b.String()
	want := "\nwhat refused the calls caught:\n" +
		"  inotify.instances uid 1000: 10 failures in 1 process (tail 10)\n" +
		"  inodes /run (tmpfs tmpfs): 7 failures in 4 processes (touch 6, dd\\x1b[2J 1)\n"
	if got != want {
		t.Errorf("summary:\n%q\nwant\n%q", got, want)
	}
	// Bounded: limits and scopes past the bound are counted, not kept.
	s = newTraceSummary()
	for i := 0; i < maxTraceSummary+5; i++ {
		s.add(trace.Failure{Limit: "inodes", Scope: strings.Repeat("x", i), PID: i, Comm: "c", Count: 1})
	}
	if len(s.rows) != maxTraceSummary || s.others != 5 {
		t.Errorf("%d rows kept, %d others; want %d and 5", len(s.rows), s.others, maxTraceSummary)
	}
}
