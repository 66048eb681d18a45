package cli

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseSince feeds --since: no panic; a duration goes back from now by
// that much; a time, printed in RFC 3339 and read again, is the same
// instant; a refusal names the flag.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"2h", "24h", "90m", "1h30m15.5s", "-5m", "0", "2026-11-21", "2026-11-21 08:00:00",
		"2026-11-21T08:00:00", "2026-11-21T08:00:00Z", "2026-11-21T08:00:00.123456789+05:30", "last tuesday", "", "9223372036854775807ns"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if d, derr := time.ParseDuration(s); derr == nil && d < 0 {
			if err == nil {
				t.Fatalf("parseSince(%q) accepted a negative duration: %v", s, got)
			}
			return
		}
		if err != nil {
			if !got.IsZero() || !strings.Contains(err.Error(), "--since") {
				t.Fatalf("parseSince(%q) = %v, %v", s, got, err)
			}
			return
		}
		if d, derr := time.ParseDuration(s); derr == nil {
			if got.Sub(now) != -d {
				t.Fatalf("parseSince(%q) = %v, want %v before %v", s, got, d, now)
			}
			if (d > 0) != got.Before(now) && d != 0 {
				t.Fatalf("parseSince(%q) = %v: on the wrong side of %v", s, got, now)
			}
			return
		}
		back := got.Format(time.RFC3339Nano)
		again, err := parseSince(back, now)
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseSince(%q) = %v; printed %q, read again %v, %v", s, got, back, again, err)
		}
	})
}
