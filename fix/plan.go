// Package fix is `enospc fix`: a plan from the check's findings (raise a
// sysctl, with the reasoning; guidance where nothing can be changed live),
// then, only when asked, applying it with a journal that undoes it.
//
// Rules every action follows: a sysctl is only raised, never lowered; its
// value is read again right before it is written, and an action whose
// ground moved (someone else changed the value) is skipped, not forced;
// every change is in the journal, written and synced before the change, so
// that `fix --undo` restores the previous values and a run that crashed in
// the middle is finished or undone by the next one.
package fix

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Action is one step of a plan.
type Action struct {
	// Kind is "sysctl" (changed by apply), "cleanup" (leaked objects
	// removed by apply, each re-verified first) or "guidance" (for the
	// operator: nothing enospc can change live).
	Kind string `json:"kind"`
	// Sysctl is the name (kernel.keys.maxbytes); From and To its values.
	Sysctl string `json:"sysctl,omitempty"`
	From   int64  `json:"from,omitempty"`
	To     int64  `json:"to,omitempty"`
	// Limit and Scope are the finding behind the action.
	Limit string `json:"limit"`
	Scope string `json:"scope"`
	Why   string `json:"why"`
	Risk  string `json:"risk"`
	Text  string `json:"text,omitempty"` // guidance
}

// Plan is the actions for a report, in order.
type Plan struct {
	Host    string   `json:"host"`
	Actions []Action `json:"actions"`
}

// sysctlRule says how a limit's finding maps to a sysctl and how far to
// raise it.
type sysctlRule struct {
	name func(u limits.Usage) string
	// to computes the new value from the finding and the current value.
	to func(u limits.Usage, cur int64) int64
	// max is the kernel's accepted ceiling.
	max  int64
	risk string
}

const intMax = math.MaxInt32

func keysName(base string) func(limits.Usage) string {
	return func(u limits.Usage) string {
		if u.Scope == "uid 0" {
			return "kernel.keys.root_" + base
		}
		return "kernel.keys." + base
	}
}

func fixed(name string) func(limits.Usage) string { return func(limits.Usage) string { return name } }

// rules are the limits a sysctl raises: room for four times today's use,
// at least the common production value, never less than now.
var rules = map[string]sysctlRule{
	"keys.count": {name: keysName("maxkeys"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used, 20000) },
		risk: "low: each key costs the kernel a few hundred bytes, only when used"},
	"keys.bytes": {name: keysName("maxbytes"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return roundUp(max(cur, 4*u.Used, 1<<21), 10000) },
		risk: "low: key payload memory, only when used"},
	"inotify.watches": {name: fixed("fs.inotify.max_user_watches"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used, 524288) },
		risk: "low: about 1 KiB of kernel memory per watch, only when used"},
	"inotify.instances": {name: fixed("fs.inotify.max_user_instances"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used, 8192) },
		risk: "low"},
	"pids": {name: fixed("kernel.pid_max"), max: 4194304,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used, 4194304) },
		risk: "low on 64-bit kernels (PID_MAX_LIMIT 4194304); tools that assume 5-digit pids may misalign"},
	"threads": {name: fixed("kernel.threads-max"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used) },
		risk: "medium: the default is sized from memory; runaway threads can then use more of it"},
	"files": {name: fixed("fs.file-max"), max: math.MaxInt64,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used) },
		risk: "low: struct file memory, only when used"},
	"mounts": {name: fixed("fs.mount-max"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used) },
		risk: "low"},
	"mapcount": {name: fixed("vm.max_map_count"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 2*u.Used, 262144) },
		risk: "low: a VMA costs about 200 bytes, only when used"},
	"aio": {name: fixed("fs.aio-max-nr"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used, 1048576) },
		risk: "low: pinned memory per AIO context, only when used"},
	"epoll": {name: fixed("fs.epoll.max_user_watches"), max: intMax,
		to:   func(u limits.Usage, cur int64) int64 { return max(cur, 4*u.Used) },
		risk: "low: about 160 bytes of kernel memory per watch"},
	"ptys": {name: fixed("kernel.pty.max"), max: 1048576,
		to: func(u limits.Usage, cur int64) int64 {
			return max(cur, 4*u.Used)
		},
		risk: "low"},
}

func roundUp(v, step int64) int64 { return (v + step - 1) / step * step }

// MakePlan turns the warning and critical findings of rep into actions:
// a sysctl raised once per name (the highest of what its rows need), or
// guidance. only, when set, keeps those limit IDs.
func MakePlan(rep *check.Report, h *host.Host, only []string) Plan {
	want := map[string]bool{}
	for _, id := range only {
		want[id] = true
	}
	p := Plan{Host: rep.Host, Actions: []Action{}}
	bySysctl := map[string]int{}
	for _, u := range rep.Findings {
		if u.Severity != limits.Warning && u.Severity != limits.Critical {
			continue
		}
		if len(want) > 0 && !want[u.Limit] {
			continue
		}
		if (u.Limit == "leak.fifo" || u.Limit == "leak.cgroups") && u.Leaked > 0 {
			p.Actions = append(p.Actions, Action{Kind: "cleanup", Limit: u.Limit, Scope: u.Scope,
				Why:  fmt.Sprintf("%s %s: %d leaked (%s)", u.Limit, u.Scope, u.Leaked, u.Reason),
				Risk: "none to what runs: each target is checked again right before it is removed, and rmdir refuses a cgroup with a task",
				Text: map[string]string{"leak.fifo": "remove the orphaned fifo directories", "leak.cgroups": "remove the empty cgroups of containers no runtime lists, in every hierarchy"}[u.Limit]})
			continue
		}
		r, ok := rules[u.Limit]
		if !ok || (u.Limit == "ptys" && !strings.HasPrefix(u.Scope, "host")) || (u.Limit == "pids" && u.Scope != "host") {
			p.Actions = append(p.Actions, guidance(u))
			continue
		}
		name := r.name(u)
		cur, err := h.SysctlInt(name)
		if err != nil {
			p.Actions = append(p.Actions, Action{Kind: "guidance", Limit: u.Limit, Scope: u.Scope,
				Why: fmt.Sprintf("%s is %s of %s", u.Scope, pct(u), u.Unit), Text: fmt.Sprintf("%s cannot be read: %v", name, err)})
			continue
		}
		to := min(r.to(u, cur), r.max)
		if to <= cur {
			continue // already there: raising more would not help this row
		}
		a := Action{Kind: "sysctl", Sysctl: name, From: cur, To: to, Limit: u.Limit, Scope: u.Scope,
			Why:  fmt.Sprintf("%s %s: %d of %d %s (%s); room for four times today's use", u.Limit, u.Scope, u.Used, u.Max, u.Unit, pct(u)),
			Risk: r.risk}
		if i, seen := bySysctl[name]; seen {
			if to > p.Actions[i].To {
				p.Actions[i].To, p.Actions[i].Why = to, a.Why
			}
			continue
		}
		bySysctl[name] = len(p.Actions)
		p.Actions = append(p.Actions, a)
	}
	// keys.count and keys.bytes move together: raising one lets the other
	// stop the next container.
	for _, pair := range [][2]string{{"kernel.keys.maxkeys", "kernel.keys.maxbytes"}, {"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"}} {
		i, okA := bySysctl[pair[0]]
		j, okB := bySysctl[pair[1]]
		if okA == okB {
			continue
		}
		have, other := pair[0], pair[1]
		src := p.Actions[i]
		if okB {
			have, other, src = pair[1], pair[0], p.Actions[j]
		}
		_ = have
		cur, err := h.SysctlInt(other)
		if err != nil {
			continue
		}
		var to int64
		if strings.HasSuffix(other, "maxbytes") {
			to = roundUp(max(cur, src.To*100), 10000) // ~100 bytes a key
		} else {
			to = max(cur, src.To/100)
		}
		if to > cur {
			bySysctl[other] = len(p.Actions)
			p.Actions = append(p.Actions, Action{Kind: "sysctl", Sysctl: other, From: cur, To: min(to, intMax), Limit: src.Limit, Scope: src.Scope,
				Why: "raised with " + src.Sysctl + ": the key quota counts keys and bytes, and the one left low stops the next container", Risk: "low"})
		}
	}
	order := map[string]int{"sysctl": 0, "cleanup": 1, "guidance": 2}
	sort.SliceStable(p.Actions, func(i, j int) bool { return order[p.Actions[i].Kind] < order[p.Actions[j].Kind] })
	return p
}

func pct(u limits.Usage) string { return strconv.FormatFloat(100*u.Ratio(), 'f', 1, 64) + "%" }

// guidance is what an operator must do for a finding no sysctl fixes:
// the finding's own remedy.
func guidance(u limits.Usage) Action {
	text := strings.Join(u.Remedy, "; ")
	if text == "" {
		text = "see enospc check --only " + u.Limit
	}
	return Action{Kind: "guidance", Limit: u.Limit, Scope: u.Scope,
		Why:  fmt.Sprintf("%s %s: %d of %d %s (%s)", u.Limit, u.Scope, u.Used, u.Max, u.Unit, pct(u)),
		Risk: "yours to judge: enospc does not change this live", Text: text}
}
