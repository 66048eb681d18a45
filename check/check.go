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
	Host     string         `json:"host"`
	Kernel   string         `json:"kernel"`
	Time     time.Time      `json:"time"`
	Findings []limits.Usage `json:"findings"`
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
	Limits   []string
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
}

// Run takes the snapshot.
func Run(ctx context.Context, h *host.Host, opts Options) (*Report, error) {
	if opts.Thresholds == (limits.Thresholds{}) {
		opts.Thresholds = limits.DefaultThresholds
	}
	if w, c := opts.Thresholds.Warn, opts.Thresholds.Crit; !(w > 0 && w <= c) || math.IsInf(c, 0) || math.IsNaN(c) {
		return nil, fmt.Errorf("thresholds: want 0 < warn <= crit, have warn %g crit %g", opts.Thresholds.Warn, opts.Thresholds.Crit)
	}
	if opts.FifoDir == "" {
		opts.FifoDir = "/run/containerd/fifo"
	}
	if opts.ContainerdState == "" {
		opts.ContainerdState = "/run/containerd"
	}
	if _, err := os.Stat(h.Proc); err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	switch opts.By {
	case "", "container", "pod":
	default:
		return nil, fmt.Errorf("--by %q: want container or pod", opts.By)
	}
	// The runtimes are asked while /proc is walked.
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
	env := &limits.Env{
		Ctx:             ctx,
		Host:            h,
		Thresholds:      opts.Thresholds,
		Live:            live,
		Root:            os.Geteuid() == 0,
		ContainerdState: opts.ContainerdState,
		FifoDir:         opts.FifoDir,
	}
	env.Census, env.CensusErr = census.Take(ctx, h, census.Options{FifoDirs: []string{opts.FifoDir}, Live: live})
	var inv *attrib.Inventory
	attrOnce := sync.OnceValue(func() *limits.Attributor {
		inv = <-invDone
		a := limits.NewAttributor(env.Census, inv)
		timeout := attrib.Defaults.Timeout
		if opts.Runtimes != nil && opts.Runtimes.Timeout > 0 {
			timeout = opts.Runtimes.Timeout
		}
		inv.SettleStates(ctx, timeout, a.HasProcesses)
		return a
	})
	env.Attribution = attrOnce
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	want := map[string]bool{}
	for _, id := range opts.Only {
		if _, ok := limits.Lookup(id); !ok {
			return nil, fmt.Errorf("unknown limit %q", id)
		}
		want[id] = true
	}
	fams := limits.Catalog()
	results := make([][]limits.Usage, len(fams))
	took := make([]time.Duration, len(fams))
	var wg sync.WaitGroup
	for i, f := range fams {
		if len(want) > 0 && !familyWanted(f, want) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			results[i] = readFamily(env, f)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	attr := attrOnce()
	rep := &Report{Host: h.Hostname(), Kernel: h.KernelRelease(), Time: h.Now().UTC(), Findings: []limits.Usage{}}
	if inv != nil {
		rep.Runtimes, rep.Notes = inv.Sources, inv.Notes()
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
			if len(want) > 0 && !want[u.Limit] {
				continue
			}
			u.Grade(opts.Thresholds)
			rep.Findings = append(rep.Findings, u)
		}
	}
	attr.Attribute(rep.Findings)
	if opts.By != "" {
		rep.By, rep.Groups = opts.By, GroupHoldings(rep.Findings, opts.By)
	}
	for i := range rep.Findings {
		u := &rep.Findings[i]
		u.CutConsumers()
		u.Remedy = []string{}
		if u.Severity == limits.Warning || u.Severity == limits.Critical {
			if l, ok := limits.Lookup(u.Limit); ok {
				u.Remedy = l.Remedy(*u)
			}
		}
	}
	Sort(rep.Findings)
	return rep, nil
}

func familyWanted(f limits.Family, want map[string]bool) bool {
	for _, l := range f.Limits {
		if want[l.ID] {
			return true
		}
	}
	return false
}

// readFamily runs one family's Read, turning a panic in it into unknown
// rows so that one broken reader cannot take the whole check down.
func readFamily(env *limits.Env, f limits.Family) (rows []limits.Usage) {
	defer func() {
		if r := recover(); r != nil {
			rows = nil
			for _, l := range f.Limits {
				rows = append(rows, limits.Usage{Limit: l.ID, Scope: "all", Unit: l.Unit, Severity: limits.Unknown,
					Reason: fmt.Sprintf("internal error reading %s: %v", f.Name, r)})
			}
		}
	}()
	return f.Read(env)
}

// Sort orders findings worst first: by severity, then by how close to its
// max a row is, then by limit and scope for a stable output.
func Sort(fs []limits.Usage) {
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
func ExitCode(fs []limits.Usage) int {
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
