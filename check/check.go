// Package check takes the read-only snapshot behind `enospc check`: one
// census of /proc, then every family of the catalog, graded and sorted
// worst first.
package check

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Report is the JSON document of `enospc check -o json`.
type Report struct {
	Host     string           `json:"host"`
	Kernel   string           `json:"kernel"`
	Time     time.Time        `json:"time"`
	Findings []limits.Finding `json:"findings"`
	// Runtimes are the container runtimes asked for names and states, and
	// what each answered.
	Runtimes []attrib.Source `json:"runtimes,omitempty"`
	// Notes say what the check could not do (a runtime that did not
	// answer), so that a missing name is not a mystery.
	Notes []string `json:"notes,omitempty"`
	// By and Groups are the holdings grouped by container or pod.
	By     string  `json:"by,omitempty"`
	Groups []Group `json:"groups,omitempty"`
	// Families says how long each family took to read, and which limits
	// it holds (for serve's per-collector metrics).
	Families []FamilyStat `json:"-"`
}

// FamilyStat is one family's share of a check.
type FamilyStat struct {
	Name     string
	Limits   []limits.ID
	Duration time.Duration
}

// Options tune a check.
type Options struct {
	Thresholds limits.Thresholds
	// ContainerdState and FifoDir are host paths; empty means containerd's
	// defaults, /run/containerd and /run/containerd/fifo.
	ContainerdState string
	FifoDir         string
	// Only restricts the report to these limit IDs; empty means all.
	Only []string
	// Runtimes says where to ask the container runtimes for names and
	// states; nil asks none (containers are then named by id only).
	Runtimes *attrib.Options
	// Inventory, when set, is used instead of asking the runtimes.
	Inventory *attrib.Inventory
	// By groups holdings across limits: "container" or "pod".
	By string
	// FamilyTimeout bounds each family's read; 0 means DefaultFamilyTimeout.
	// A family still reading then is abandoned: its limits are unknown
	// with the reason, and it is not started again by a later check of
	// the same host until that read returns.
	FamilyTimeout time.Duration
	// Catalog is the families to read; nil means limits.Catalog().
	Catalog []limits.Family
	// AllHolders lists every holder of every row, not the top few: fix
	// re-verifies what it removes with it (limits.Env.AllHolders).
	AllHolders bool
	// History, when set, gives the findings of a check taken at now their
	// trend (limits.Finding.History) from the node's recorded history; a
	// row the trend says will be exhausted soon is then graded up
	// (GradeTrend). An error is a note of the report.
	History func(now time.Time, findings []limits.Finding) error
	// AllKeys lists the keys of every uid however many keys the host
	// holds, which costs a walk of all of them per uid; without it the
	// fullest uids are listed within a bound (limits.Env.AllKeys). fix
	// sets it before it removes anything for leak.keyrings.
	AllKeys bool
}

// DefaultFamilyTimeout is the bound on one family's read.
const DefaultFamilyTimeout = 10 * time.Second

// Run takes the snapshot.
func Run(ctx context.Context, h *host.Host, opts Options) (*Report, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	want := map[limits.ID]bool{}
	for _, s := range opts.Only {
		id := limits.ID(s)
		if _, ok := limits.Lookup(id); !ok {
			return nil, fmt.Errorf("unknown limit %q", s)
		}
		want[id] = true
	}
	if err := bounded(ctx, func() error { _, err := os.Stat(h.Proc); return err }); err != nil {
		return nil, fmt.Errorf("procfs %s: %w", h.Proc, err)
	}
	r, err := start(ctx, h, opts)
	if err != nil {
		return nil, err
	}
	fams := opts.Catalog
	if fams == nil {
		fams = limits.Catalog()
	}
	results, took, abandoned, err := readFamilies(ctx, r.env, fams, want, opts.FamilyTimeout)
	if err != nil {
		return nil, err
	}
	if !abandoned {
		// Every family has returned: what they shared can serve the
		// next check.
		defer r.env.Release()
	}
	return r.report(fams, want, results, took), nil
}

// normalize fills in the defaults and rejects what cannot be checked.
func (o *Options) normalize() error {
	if o.Thresholds == (limits.Thresholds{}) {
		o.Thresholds = limits.DefaultThresholds
	}
	if w, c := o.Thresholds.Warn, o.Thresholds.Crit; !(w > 0 && w <= c) || math.IsInf(c, 0) || math.IsNaN(c) {
		return fmt.Errorf("thresholds: want 0 < warn <= crit, have warn %g crit %g", o.Thresholds.Warn, o.Thresholds.Crit)
	}
	if o.FifoDir == "" {
		o.FifoDir = "/run/containerd/fifo"
	}
	if o.ContainerdState == "" {
		o.ContainerdState = "/run/containerd"
	}
	switch o.By {
	case "", "container", "pod":
		return nil
	}
	return fmt.Errorf("grouping by %q: want container or pod", o.By)
}

// run is one check in the making: the environment every family reads
// from, and the attributor, made once the runtimes have answered.
type run struct {
	ctx  context.Context
	h    *host.Host
	opts Options
	env  *limits.Env
	inv  *attrib.Inventory
	attr func() *limits.Attributor
}

// start asks the runtimes (in the background) while it walks /proc.
func start(ctx context.Context, h *host.Host, opts Options) (*run, error) {
	invDone := make(chan *attrib.Inventory, 1)
	switch {
	case opts.Inventory != nil:
		invDone <- opts.Inventory
	case opts.Runtimes != nil:
		ro := *opts.Runtimes
		if ro.SocketPath == nil {
			ro.SocketPath = h.RootPath
		}
		go func() { invDone <- attrib.Collect(ctx, ro) }()
	default:
		invDone <- nil
	}
	live := h.Live()
	r := &run{ctx: ctx, h: h, opts: opts, env: &limits.Env{
		Ctx:             ctx,
		Host:            h,
		Thresholds:      opts.Thresholds,
		Live:            live,
		Root:            os.Geteuid() == 0,
		ContainerdState: opts.ContainerdState,
		FifoDir:         opts.FifoDir,
		AllKeys:         opts.AllKeys,
		AllHolders:      opts.AllHolders,
		ListedOnly:      opts.By == "" && !opts.AllHolders,
	}}
	if err := bounded(ctx, func() error {
		r.env.Census, r.env.CensusErr = census.Take(ctx, h, census.Options{FifoDirs: []string{opts.FifoDir}, Live: live})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("the walk of %s did not finish: %w", h.Proc, err)
	}
	r.attr = sync.OnceValue(func() *limits.Attributor {
		r.inv = <-invDone
		a := limits.NewAttributor(r.env.Census, r.inv)
		timeout := attrib.Defaults.Timeout
		if opts.Runtimes != nil && opts.Runtimes.Timeout > 0 {
			timeout = opts.Runtimes.Timeout
		}
		r.inv.SettleStates(ctx, timeout, a.HasProcesses)
		return a
	})
	r.env.Attribution = r.attr
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return r, nil
}

// report grades the families' rows, names their holders, groups them
// when asked, attaches remedies and sorts them worst first.
func (r *run) report(fams []limits.Family, want map[limits.ID]bool, results [][]limits.Finding, took []time.Duration) *Report {
	attr, h, opts := r.attr(), r.h, r.opts
	nrows := 0
	for _, rows := range results {
		nrows += len(rows)
	}
	rep := &Report{Host: h.Hostname(), Kernel: h.KernelRelease(), Time: h.Now().UTC(), Findings: make([]limits.Finding, 0, nrows)}
	if r.inv != nil {
		rep.Runtimes, rep.Notes = r.inv.Sources, r.inv.Notes()
	}
	rep.Notes = append(rep.Notes, Drift(h)...)
	for i, f := range fams {
		if len(want) > 0 && !familyWanted(f, want) {
			continue
		}
		st := FamilyStat{Name: f.Name, Duration: took[i]}
		for _, l := range f.Limits {
			st.Limits = append(st.Limits, l.ID)
		}
		rep.Families = append(rep.Families, st)
	}
	for _, rows := range results {
		for _, u := range rows {
			if len(want) > 0 && !want[limits.ID(u.Limit)] {
				continue
			}
			u.Grade(opts.Thresholds)
			rep.Findings = append(rep.Findings, u)
		}
	}
	if opts.History != nil {
		if err := opts.History(rep.Time, rep.Findings); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("history: %v", err))
		}
		for i := range rep.Findings {
			GradeTrend(&rep.Findings[i])
		}
	}
	if opts.By != "" {
		attr.Attribute(rep.Findings)
		rep.By, rep.Groups = opts.By, GroupHoldings(rep.Findings, opts.By)
	}
	for i := range rep.Findings {
		if opts.AllHolders {
			rep.Findings[i].KeepAllConsumers()
		} else {
			rep.Findings[i].CutConsumers()
		}
	}
	if opts.By == "" {
		// Only the consumers a row lists are shown: only they are named.
		attr.Attribute(rep.Findings)
	}
	for i := range rep.Findings {
		u := &rep.Findings[i]
		u.Remedy = []string{}
		if u.Severity == limits.Warning || u.Severity == limits.Critical {
			if l, ok := limits.Lookup(limits.ID(u.Limit)); ok {
				u.Remedy = l.Remedy(*u)
			}
		}
	}
	Sort(rep.Findings)
	return rep
}

// bounded runs fn and returns its error, or ctx's once ctx ends first: a
// read of procfs that blocks (a procfs root on a hung mount) must not keep
// the check from answering. fn is then left running; it writes only what
// no one reads any more.
func bounded(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func familyWanted(f limits.Family, want map[limits.ID]bool) bool {
	for _, l := range f.Limits {
		if want[l.ID] {
			return true
		}
	}
	return false
}

// readFamilies reads every wanted family concurrently, each under
// timeout (and ctx's deadline). A family that has not returned by then is
// abandoned: a read that blocks in the kernel (a hung FUSE or NFS mount, a
// device) cannot be interrupted, and a check must still answer. Its limits
// become unknown rows saying so, and the family is not started again (for
// this host's procfs) while that read is still blocked, so a serve that
// checks every 30 s does not pile up blocked goroutines and threads. A
// cancelled ctx (SIGTERM) ends the check at once with its error.
func readFamilies(ctx context.Context, env *limits.Env, fams []limits.Family, want map[limits.ID]bool, timeout time.Duration) (results [][]limits.Finding, took []time.Duration, abandoned bool, err error) {
	if timeout <= 0 {
		timeout = DefaultFamilyTimeout
	}
	results = make([][]limits.Finding, len(fams))
	took = make([]time.Duration, len(fams))
	type done struct {
		i    int
		rows []limits.Finding
		took time.Duration
	}
	ch := make(chan done, len(fams))
	calls := make([]*host.Call, len(fams))
	started := 0
	for i, f := range fams {
		if len(want) > 0 && !familyWanted(f, want) {
			continue
		}
		key := env.Host.Proc + "\x00" + f.Name
		if since, ok := blockedFamilies.Blocked(key); ok {
			results[i] = unknownRows(f, fmt.Sprintf("%s: a read of an earlier check has been blocked since %s (a hung mount or device); not started again until it returns",
				f.Name, since.UTC().Format(time.RFC3339)))
			continue
		}
		c := blockedFamilies.Start(key)
		calls[i] = c
		started++
		go func() {
			rows := readFamily(env, f)
			blockedFamilies.Finish(c)
			ch <- done{i, rows, c.Since()}
		}()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	finished := make([]bool, len(fams))
collect:
	for n := 0; n < started; n++ {
		select {
		case d := <-ch:
			results[d.i], took[d.i], finished[d.i] = d.rows, d.took, true
		case <-timer.C:
			break collect
		case <-ctx.Done():
			if ctx.Err() == context.Canceled {
				return nil, nil, true, ctx.Err()
			}
			break collect
		}
	}
	// What finished meanwhile is still good.
drain:
	for {
		select {
		case d := <-ch:
			results[d.i], took[d.i], finished[d.i] = d.rows, d.took, true
		default:
			break drain
		}
	}
	for i, c := range calls {
		if c == nil || finished[i] {
			continue
		}
		blockedFamilies.Abandon(c)
		abandoned = true
		took[i] = c.Since()
		results[i] = unknownRows(fams[i], fmt.Sprintf("%s did not finish within %s and was abandoned (a read that blocks: a hung mount or device)",
			fams[i].Name, took[i].Round(time.Millisecond)))
	}
	return results, took, abandoned, nil
}

func unknownRows(f limits.Family, reason string) []limits.Finding {
	rows := make([]limits.Finding, 0, len(f.Limits))
	for _, l := range f.Limits {
		rows = append(rows, limits.Finding{Limit: string(l.ID), Scope: "all", Unit: l.Unit, Severity: limits.Unknown, Reason: reason})
	}
	return rows
}

// blockedFamilies are the families (per procfs root) whose read was
// abandoned and has not returned yet. Process-wide, like the goroutines
// and threads they hold.
var blockedFamilies = host.NewStragglers()

// readFamily runs one family's Read, turning a panic in it into unknown
// rows so that one broken reader cannot take the whole check down.
func readFamily(env *limits.Env, f limits.Family) (rows []limits.Finding) {
	defer func() {
		if r := recover(); r != nil {
			rows = nil
			for _, l := range f.Limits {
				rows = append(rows, limits.Finding{Limit: string(l.ID), Scope: "all", Unit: l.Unit, Severity: limits.Unknown,
					Reason: fmt.Sprintf("internal error reading %s: %v", f.Name, r)})
			}
		}
	}()
	return f.Read(env)
}

// Sort orders findings worst first: by severity, then by how close to its
// max a row is, then by limit and scope for a stable output.
func Sort(fs []limits.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if ra, rb := a.Ratio(), b.Ratio(); ra != rb {
			return ra > rb
		}
		if a.Limit != b.Limit {
			return a.Limit < b.Limit
		}
		return a.Scope < b.Scope
	})
}

// ExitCode is the monitoring-plugin status of a report: 0 all ok, 1 some
// warning, 2 some critical, 3 some unknown and nothing worse.
func ExitCode(fs []limits.Finding) int {
	worst := 0
	for _, f := range fs {
		switch f.Severity {
		case limits.Critical:
			return 2
		case limits.Warning:
			worst = 1
		case limits.Unknown:
			if worst == 0 {
				worst = 3
			}
		}
	}
	return worst
}
