package fix

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// journalOf writes entries as the journal holds them, one line each.
func journalOf(t testing.TB, entries []Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal %+v: %v", e, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzParseJournal feeds the journal reader arbitrary bytes (a journal a
// crash cut short, or that someone edited): a journal either parses, with
// its entries numbered from 1 and only an unfinished or unreadable last
// line left over as torn, or is refused whole; what parses, written again,
// parses to the same entries.
func FuzzParseJournal(f *testing.F) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.UTC)
	prev := "kernel.keys.maxkeys = 2000\n"
	real := []Entry{
		{Seq: 1, Kind: KindSysctl, Limit: "keys", Path: "/proc/sys/kernel/keys/maxkeys", Sysctl: "kernel.keys.maxkeys", Old: 200, New: 2000, State: StatePending, Time: at},
		{Seq: 1, Kind: KindSysctl, Limit: "keys", Path: "/proc/sys/kernel/keys/maxkeys", Sysctl: "kernel.keys.maxkeys", Old: 200, New: 2000, State: StateDone, Time: at},
		{Seq: 2, Kind: KindPersist, Path: "/etc/sysctl.d/90-enospc.conf", Prev: &prev, State: StateDone, Time: at},
		{Seq: 3, Kind: KindCleanup, Limit: "ipc.sem", Container: "3f2a1b9c0d4e", State: StateRemoved, Note: "dmsetup udevcomplete_all", Time: at.In(time.FixedZone("", 3600))},
	}
	whole := journalOf(f, real)
	f.Add(whole)
	f.Add(whole[:len(whole)-1])
	f.Add(whole[:len(whole)-20])
	f.Add(append(append([]byte{}, whole...), `{"seq":4,"kind":"sysctl","sta`...))
	f.Add([]byte(`{"seq":1,"kind":"exec","state":"done","time":"2026-11-22T08:00:00Z","extra":1}` + "\n"))
	f.Add([]byte(`{"seq":2,"state":"done","time":"2026-11-22T08:00:00Z"}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"seq":1,"state":"done","time":"2026-11-22T08:00:00Z"} {}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, good, err := parseJournal(b)
		if err != nil {
			if j != nil || good != 0 {
				t.Fatalf("error %v with a journal and %d good bytes", err, good)
			}
			return
		}
		if good < 0 || good > len(b) || (good > 0 && b[good-1] != '\n') {
			t.Fatalf("good = %d of %d bytes, not after a newline", good, len(b))
		}
		if rest := string(b[good:]); strings.TrimSuffix(rest, "\n") != j.Torn || strings.Contains(j.Torn, "\n") {
			t.Fatalf("torn %q, after the good bytes %q", j.Torn, rest)
		}
		if n := bytes.Count(b, []byte("\n")) + 1; len(j.Entries) > n {
			t.Fatalf("%d entries from %d lines", len(j.Entries), n)
		}
		for i, e := range j.Entries {
			if e.Seq != i+1 {
				t.Fatalf("entry %d has seq %d", i, e.Seq)
			}
		}
		// The good part alone is a whole journal, the same.
		head, hgood, err := parseJournal(b[:good])
		if err != nil || hgood != good || head.Torn != "" || !bytes.Equal(journalOf(t, head.Entries), journalOf(t, j.Entries)) {
			t.Fatalf("the good part: %v, %d of %d, torn %q", err, hgood, good, head.Torn)
		}
		// Written again, one line an entry, it reads back the same.
		again := journalOf(t, j.Entries)
		back, bgood, err := parseJournal(again)
		if err != nil || bgood != len(again) || back.Torn != "" || !bytes.Equal(journalOf(t, back.Entries), again) {
			t.Fatalf("round trip of %q: %v, %d of %d bytes, torn %q", again, err, bgood, len(again), back.Torn)
		}
	})
}
