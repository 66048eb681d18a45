package fix

import (
	"context"
	"errors"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// Request is one run of the fix workflow: look at the host, plan, and
// when asked apply the plan.
type Request struct {
	// Check is how the host is looked at. Run lists every uid's keys
	// (AllKeys): a fix is run by hand, once, and may remove what
	// leak.keyrings lists.
	Check check.Options
	// Only keeps the plan to these limit IDs.
	Only []string
	// Prune adds the removal of exited containers whose session keyrings
	// leak.keyrings lists and provably owns.
	Prune bool
	// Apply applies the plan: sysctls first (journaled), then the
	// cleanups, each re-verified right before it acts.
	Apply bool
	// Confirm, when set, is asked before anything changes with the plan
	// and how many changes it makes; false leaves the host alone and Run
	// returns ErrNotConfirmed.
	Confirm func(p Plan, changes int) bool
	// Options are the journal's, the lock's and persist's.
	Options Options
}

// Outcome is what a run planned and, when it applied, what it did.
type Outcome struct {
	Plan Plan
	// Result is nil for a dry run; with Apply, the journal entries of
	// this run (empty when the plan changed nothing).
	Result *Result
}

// ErrNotConfirmed is returned when Request.Confirm declined.
var ErrNotConfirmed = errors.New("not applied")

// Changes is how many actions of p apply changes: sysctls and cleanups.
func (p Plan) Changes() int {
	n := 0
	for _, a := range p.Actions {
		if a.Kind == KindSysctl || a.Kind == KindCleanup {
			n++
		}
	}
	return n
}

// Run is the whole workflow of enospc fix: a check, the plan from it
// (with the prunes when asked), and with req.Apply the sysctls raised
// and the leaks removed. What was applied is in the outcome even when a
// later step fails.
func Run(ctx context.Context, h *host.Host, req Request) (*Outcome, error) {
	copts := req.Check
	copts.Only = req.Only
	copts.AllKeys = true
	rep, err := check.Run(ctx, h, copts)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Plan: MakePlan(rep, h, req.Only)}
	if req.Prune {
		out.Plan.Actions = append(out.Plan.Actions, PruneActions(rep)...)
	}
	n := out.Plan.Changes()
	if !req.Apply {
		return out, nil
	}
	if n == 0 {
		out.Result = &Result{Entries: []Entry{}}
		return out, nil
	}
	if req.Confirm != nil && !req.Confirm(out.Plan, n) {
		return out, ErrNotConfirmed
	}
	res, err := Apply(h, out.Plan, req.Options)
	if err == nil {
		// Cleanups look at the host again themselves, the one way
		// every removal is re-verified (Cleanup's doc).
		var cres *Result
		cres, err = Cleanup(ctx, h, copts, out.Plan, req.Options)
		if cres != nil {
			res.Entries = append(res.Entries, cres.Entries...)
		}
	}
	out.Result = res
	return out, err
}
