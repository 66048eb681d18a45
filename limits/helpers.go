package limits

// Small helpers several families share.

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// processCount is "1 process" or "N processes".
func processCount(n int) string {
	if n == 1 {
		return "1 process"
	}
	return strconv.Itoa(n) + " processes"
}

func roundUp(v, step int64) int64 {
	if step <= 0 || v%step == 0 {
		return v
	}
	return (v/step + 1) * step
}

// withoutConfig adds to a missing sysctl's error the kernel option whose
// absence removes it.
func withoutConfig(err error, config string) error {
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (a kernel built without %s has no such file)", err, config)
	}
	return err
}

// censusMissing is why census-based rows are unknown.
func censusMissing(env *Env) error {
	if env.CensusErr != nil {
		return env.CensusErr
	}
	return errors.New("no process census")
}

func sortedUIDs[T any](m map[int]T) []int {
	uids := make([]int, 0, len(m))
	for uid := range m {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	return uids
}

// noteUnreadableFDs marks a census-counted row as a lower bound when some
// processes' fds could not be read.
func noteUnreadableFDs(env *Env, u *Finding) {
	if env.Census.FDUnreadable == 0 {
		return
	}
	u.NeedsRoot = !env.Root
	note := fmt.Sprintf("the fds of %d processes could not be read, so this is a lower bound", env.Census.FDUnreadable)
	if !env.Root {
		note += "; run as root for a full count"
	}
	if u.Reason != "" {
		note = u.Reason + "; " + note
	}
	u.Reason = note
}

// kernelBefore reports whether a kernel release ("5.10.0-28-amd64") is
// older than major.minor; ok is false when it does not start with one.
func kernelBefore(release string, major, minor int) (before, ok bool) {
	maj, rest, found := strings.Cut(release, ".")
	if !found {
		return false, false
	}
	mn := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mn = rest[:i]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mn)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return false, false
	}
	return a < major || (a == major && b < minor), true
}

// unknown is a row that could not be read.
func unknown(id ID, scope, unit string, err error) Finding {
	return Finding{Limit: string(id), Scope: scope, Unit: unit, Severity: Unknown, Reason: err.Error()}
}

func intp(v int) *int { return &v }
