package limits

import (
	"strconv"
	"strings"
)

// A row's Scope says where its limit applies, as check -o json prints
// it: "host", "uid 1001", "mnt ns 4026531840", a mount point, a cgroup
// path. The per-uid scopes are made and read back by the two functions
// below only, so that their form is written once.

// UIDScope is the scope of a per-uid limit.
func UIDScope(uid int) string { return "uid " + strconv.Itoa(uid) }

// ScopeUID is the uid of a UIDScope scope; ok is false for any other.
func ScopeUID(scope string) (uid int, ok bool) {
	s, ok := strings.CutPrefix(scope, "uid ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}
