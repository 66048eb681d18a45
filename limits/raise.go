package limits

import (
	"errors"
	"fmt"
	"strings"
)

// Setting is a sysctl and the value to raise it to.
type Setting struct {
	Name string
	To   int64
}

// Raise is how a limit's max is raised by sysctl: the one rule that both
// check's advice and fix's plan take their numbers from, so that the two
// never disagree.
type Raise struct {
	// For says which rows a sysctl can raise; nil means all. A row it
	// refuses (a pids cgroup, a container's own devpts) gets guidance.
	For func(u Finding) bool
	// Settings returns what to write for row u, given the current value
	// of each sysctl (cur): only those that would go up, each at least
	// its current value. Several settings move together where raising
	// one alone lets the other stop the next container (the key quota).
	Settings func(u Finding, cur func(name string) (int64, error)) ([]Setting, error)
	// Risk is what raising it costs, for fix's plan.
	Risk string
	// Sysctls are every name Settings may return: the only sysctls fix's
	// journal accepts.
	Sysctls []string
}

// RaisedSysctls are the sysctls of every rule of the catalog.
func RaisedSysctls() []string {
	var out []string
	for _, f := range Catalog() {
		for _, l := range f.Limits {
			if l.Raise != nil {
				out = append(out, l.Raise.Sysctls...)
			}
		}
	}
	return out
}

// ErrNoSysctl is returned for a row no sysctl of the rule raises.
var ErrNoSysctl = errors.New("no sysctl raises this row's limit")

// Plan returns the settings for row u with the current values cur.
func (r *Raise) Plan(u Finding, cur func(name string) (int64, error)) ([]Setting, error) {
	if r == nil || (r.For != nil && !r.For(u)) {
		return nil, ErrNoSysctl
	}
	return r.Settings(u, cur)
}

// raiseTo is the rule of a limit set by one sysctl: to(u, cur) is the
// value to write, given the current one.
func raiseTo(name string, to func(u Finding, cur int64) int64, risk string) *Raise {
	return &Raise{Risk: risk, Sysctls: []string{name}, Settings: func(u Finding, cur func(string) (int64, error)) ([]Setting, error) {
		c, err := cur(name)
		if err != nil {
			return nil, err
		}
		if v := to(u, c); v > c {
			return []Setting{{Name: name, To: v}}, nil
		}
		return nil, nil
	}}
}

// Shown is the current value of sysctl name as row u shows it: its Max
// for its own sysctl, kernel.pty.max from the host ptys row's reason,
// and for the key quota the other half from the same /proc/key-users
// line when the row carries it. ok is false for a value the row does not
// show.
func Shown(u Finding, name string) (v int64, ok bool) {
	switch {
	case name == "kernel.pty.max":
		m, _ := ptyNumbers(u)
		return m, true
	case strings.HasPrefix(name, "kernel.keys."):
		bytes := strings.HasSuffix(name, "maxbytes")
		if ku := u.keyUser; ku != nil {
			if bytes {
				return ku.MaxBytes, true
			}
			return ku.MaxKeys, true
		}
		if bytes == (u.Limit == "keys.bytes") {
			return u.Max, true
		}
		return 0, false
	}
	return u.Max, true
}

// AsShown is Shown as the current values a rule plans from: check's
// advice is planned with it.
func AsShown(u Finding) func(string) (int64, error) {
	return func(name string) (int64, error) {
		if v, ok := Shown(u, name); ok {
			return v, nil
		}
		return 0, fmt.Errorf("%s: not shown by the row", name)
	}
}

// advised is the value check advises for the first setting of rule r on
// row u, planned from the values the row shows (cur, when not nil,
// instead); 0 when nothing would go up.
func advised(r *Raise, u Finding, cur func(string) (int64, error)) int64 {
	if cur == nil {
		cur = AsShown(u)
	}
	s, err := r.Plan(u, cur)
	if err != nil || len(s) == 0 {
		return 0
	}
	return s[0].To
}
