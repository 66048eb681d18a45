package trace

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Mount points are any bytes: two scopes that differ only in bytes that
// are not UTF-8 stay two series, and every label is valid UTF-8.
func TestRecorderLabelsOfInvalidUTF8(t *testing.T) {
	r := NewRecorder(10, 10)
	r.Add(Failure{Limit: "inodes", Scope: "/mnt/\xff", Syscall: "openat", Errno: "ENOSPC", Count: 1})
	r.Add(Failure{Limit: "inodes", Scope: "/mnt/\xfe", Syscall: "openat", Errno: "ENOSPC", Count: 2})
	m := string(r.Metrics())
	if !utf8.ValidString(m) {
		t.Fatalf("metrics not valid UTF-8:\n%s", m)
	}
	if strings.Count(m, `enospc_syscall_failures_total{`) != 2 {
		t.Errorf("want two series:\n%s", m)
	}
}
