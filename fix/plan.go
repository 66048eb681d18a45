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
	"errors"
	"fmt"
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
	Kind Kind `json:"kind"`
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
			p.Actions = append(p.Actions, Action{Kind: KindCleanup, Limit: u.Limit, Scope: u.Scope,
				Why:  fmt.Sprintf("%s %s: %d leaked (%s)", u.Limit, u.Scope, u.Leaked, u.Reason),
				Risk: "none to what runs: each target is checked again right before it is removed, and rmdir refuses a cgroup with a task",
				Text: map[string]string{"leak.fifo": "remove the orphaned fifo directories", "leak.cgroups": "remove the empty cgroups of containers no runtime lists, in every hierarchy"}[u.Limit]})
			continue
		}
		// The numbers are those check advises: the limit's own rule,
		// planned from the values the row shows (the live value where
		// the row does not show it). A value that is already there, or
		// that someone raised since, is left alone: never lowered.
		lim, _ := limits.Lookup(limits.ID(u.Limit))
		settings, err := lim.Raise.Plan(u, func(name string) (int64, error) {
			if v, ok := limits.Shown(u, name); ok {
				return v, nil
			}
			return h.SysctlInt(name)
		})
		if errors.Is(err, limits.ErrNoSysctl) {
			p.Actions = append(p.Actions, guidance(u))
			continue
		}
		if err != nil {
			p.Actions = append(p.Actions, Action{Kind: KindGuidance, Limit: u.Limit, Scope: u.Scope,
				Why: fmt.Sprintf("%s is %s of %s", u.Scope, pct(u), u.Unit), Text: fmt.Sprintf("its sysctl cannot be read: %v", err)})
			continue
		}
		for i, st := range settings {
			cur, err := h.SysctlInt(st.Name)
			if err != nil {
				p.Actions = append(p.Actions, Action{Kind: KindGuidance, Limit: u.Limit, Scope: u.Scope,
					Why: fmt.Sprintf("%s is %s of %s", u.Scope, pct(u), u.Unit), Text: fmt.Sprintf("%s cannot be read: %v", st.Name, err)})
				continue
			}
			if st.To <= cur {
				continue // already there: raising more would not help this row
			}
			why := fmt.Sprintf("%s %s: %d of %d %s (%s); the value enospc check advises", u.Limit, u.Scope, u.Used, u.Max, u.Unit, pct(u))
			if i > 0 {
				why = "raised with " + settings[0].Name + ": " + why
			}
			a := Action{Kind: KindSysctl, Sysctl: st.Name, From: cur, To: st.To, Limit: u.Limit, Scope: u.Scope, Why: why, Risk: lim.Raise.Risk}
			if j, seen := bySysctl[st.Name]; seen {
				if st.To > p.Actions[j].To {
					p.Actions[j].To, p.Actions[j].Why = st.To, a.Why
				}
				continue
			}
			bySysctl[st.Name] = len(p.Actions)
			p.Actions = append(p.Actions, a)
		}
	}
	order := map[Kind]int{KindSysctl: 0, KindCleanup: 1, KindGuidance: 2}
	sort.SliceStable(p.Actions, func(i, j int) bool { return order[p.Actions[i].Kind] < order[p.Actions[j].Kind] })
	return p
}

func pct(u limits.Finding) string { return strconv.FormatFloat(100*u.Ratio(), 'f', 1, 64) + "%" }

// guidance is what an operator must do for a finding no sysctl fixes:
// the finding's own remedy.
func guidance(u limits.Finding) Action {
	text := strings.Join(u.Remedy, "; ")
	if text == "" {
		text = "see enospc check --only " + u.Limit
	}
	return Action{Kind: KindGuidance, Limit: u.Limit, Scope: u.Scope,
		Why:  fmt.Sprintf("%s %s: %d of %d %s (%s)", u.Limit, u.Scope, u.Used, u.Max, u.Unit, pct(u)),
		Risk: "yours to judge: enospc does not change this live", Text: text}
}
