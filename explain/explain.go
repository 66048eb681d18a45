package explain

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Cause is one limit the message points to, as `explain -o json` prints it.
type Cause struct {
	Limit      string  `json:"limit"`
	Title      string  `json:"title,omitempty"`
	Confidence float64 `json:"confidence"`
	// Confirmed is true when the host shows this limit at or near its max
	// now (a warning or critical row).
	Confirmed bool `json:"confirmed"`
	// ByKernel is true when the kernel itself reported a failure of this
	// limit with the message's errno (enospc trace; ConfirmByKernel).
	ByKernel bool `json:"by_kernel,omitempty"`
	// Past are the times the node's history (explain --history-dir) saw
	// this limit at or near its max in the window asked for: the cause
	// confirmed as past.
	Past     []history.Episode `json:"past,omitempty"`
	Evidence []string          `json:"evidence"`
	Remedy   []string          `json:"remedy"`
	// Rows are the host's rows of this limit, worst first (at most 3).
	Rows []limits.Finding `json:"rows,omitempty"`
}

// Result is the answer for one message.
type Result struct {
	Message    string  `json:"message"`
	Normalized string  `json:"normalized"`
	Causes     []Cause `json:"causes"`
	// Outside is what the message names instead of a hidden limit, when
	// it is worded like one but names something outside the catalog (a
	// cpuset without CPUs, a runtime's lock slots, the OOM killer, an
	// application's own limit): then no cause is given at 0.5 or more.
	Outside *Outside `json:"outside,omitempty"`
	// Checked is true when the candidates were checked on the host.
	Checked bool `json:"checked"`
	// Note says what to make of it: nothing recognised, nothing exhausted
	// now and what to watch, a message too long to be read whole.
	Note string `json:"note,omitempty"`
}

// AddNote adds a sentence to the note.
func (r *Result) AddNote(s string) {
	if r.Note != "" {
		r.Note += "; "
	}
	r.Note += s
}

// Options tune Explain.
type Options struct {
	// Offline skips the host: causes are ranked from the message alone.
	Offline bool
	// Check is passed to check.Run for the candidates (thresholds,
	// runtimes, containerd paths).
	Check check.Options
	// Past, when set, gives the times a limit was at or near its max in
	// the window the user named, from the node's recorded history.
	Past func(limit string) ([]history.Episode, error)
}

// Explain ranks the causes of msg and, unless offline, checks each
// candidate limit on the host: the confirmed ones (at or near their max
// now) come first.
func Explain(ctx context.Context, h *host.Host, msg string, opts Options) (*Result, error) {
	res, err := explain(ctx, h, msg, opts)
	if err == nil && len(msg) > maxMessage {
		res.AddNote(fmt.Sprintf("the message is %d bytes long: only its first %d KiB were looked at", len(msg), maxMessage>>10))
	}
	return res, err
}

func explain(ctx context.Context, h *host.Host, msg string, opts Options) (*Result, error) {
	norm := Normalize(msg)
	res := &Result{Message: msg, Normalized: norm, Causes: []Cause{}}
	cands, out := Assess(norm)
	res.Outside = out
	if out != nil {
		res.Note = "the message names a cause outside the catalog (outside): no hidden limit is blamed for it"
	}
	if len(cands) == 0 && out == nil {
		res.Note = "no known error in this message: enospc knows \"no space left on device\", \"disk quota exceeded\", \"too many open files\", \"resource temporarily unavailable\" and the wordings of the tools that print them"
		return res, nil
	}
	var only []string
	for _, c := range cands {
		cause := Cause{Limit: c.Limit, Confidence: round2(c.Confidence), Evidence: c.Evidence, Remedy: []string{}}
		if l, ok := limits.Lookup(limits.ID(c.Limit)); ok {
			cause.Title = l.Title
			only = append(only, c.Limit)
		}
		res.Causes = append(res.Causes, cause)
	}
	if opts.Offline || len(only) == 0 {
		return res, nil
	}
	copts := opts.Check
	copts.Only = only
	rep, err := check.Run(ctx, h, copts)
	if err != nil {
		return nil, fmt.Errorf("checking the candidates on this host: %w (--offline skips the host)", err)
	}
	res.Checked = true
	byLimit := map[string][]limits.Finding{}
	for _, f := range rep.Findings { // worst first
		byLimit[f.Limit] = append(byLimit[f.Limit], f)
	}
	for i := range res.Causes {
		c := &res.Causes[i]
		rows := byLimit[c.Limit]
		if len(rows) > 3 {
			rows = rows[:3]
		}
		c.Rows = rows
		for _, r := range rows {
			if r.Severity == limits.Warning || r.Severity == limits.Critical {
				c.Confirmed = true
				c.Remedy = append(c.Remedy, r.Remedy...)
			}
		}
		if opts.Past != nil {
			past, err := opts.Past(c.Limit)
			if err != nil {
				res.AddNote(fmt.Sprintf("history: %v", err))
			}
			c.Past = past
		}
		if !c.Confirmed && len(c.Past) > 0 {
			c.Remedy = append(c.Remedy, fmt.Sprintf("at or near its max in the past (%s): the holders then may be gone; enospc history --only %s -o png draws it", pastWords(c.Past), c.Limit))
		} else if !c.Confirmed && len(rows) > 0 {
			c.Remedy = append(c.Remedy, fmt.Sprintf("not near its max now (%s at %.1f%% of %s): watch it with enospc check --only %s when the error comes back", rows[0].Scope, 100*rows[0].Ratio(), rows[0].Unit, c.Limit))
		}
	}
	sort.SliceStable(res.Causes, func(i, j int) bool {
		a, b := res.Causes[i], res.Causes[j]
		if a.Confirmed != b.Confirmed {
			return a.Confirmed
		}
		if pa, pb := len(a.Past) > 0, len(b.Past) > 0; pa != pb {
			return pa
		}
		return a.Confidence > b.Confidence
	})
	switch {
	case res.Causes[0].Confirmed && out != nil:
		res.Note = fmt.Sprintf("the words name a cause outside the catalog (outside), but %s is at or near its max on this host now: the host's evidence comes first", res.Causes[0].Limit)
	case !res.Causes[0].Confirmed && len(res.Causes[0].Past) > 0:
		res.Note = fmt.Sprintf("%s is not near its max now but was: %s", res.Causes[0].Limit, pastWords(res.Causes[0].Past))
	case !res.Causes[0].Confirmed && out == nil:
		res.Note = fmt.Sprintf("none of these limits is at or near its max on this host now: the error is past, or from another host; the most likely cause is %s, watch it with enospc check --only %s", res.Causes[0].Limit, res.Causes[0].Limit)
	}
	return res, nil
}

// pastWords says when and for how long: "full at 03:02 for 4m0s on /run
// (tmpfs tmpfs)", the longest episode and how many more.
func pastWords(eps []history.Episode) string {
	best := eps[0]
	for _, e := range eps[1:] {
		if e.Full && !best.Full || e.Full == best.Full && e.To.Sub(e.From) > best.To.Sub(best.From) {
			best = e
		}
	}
	what, from := fmt.Sprintf("at %d of %d", best.Peak, best.Max), best.From
	if best.Full {
		what, from = "full", best.FullFrom
	}
	s := fmt.Sprintf("%s on %s from %s for %s", what, best.Scope, from.UTC().Format(time.RFC3339), best.To.Sub(from).Round(time.Second))
	if len(eps) > 1 {
		s += fmt.Sprintf(", and %d more times", len(eps)-1)
	}
	return s
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }
