// Package churn runs the container lifecycle loop of containerd#2421
// against a real runtime and measures what each cycle leaves behind: every
// limit of the catalog, read as `enospc check` reads it, and the runtime's
// own footprint, sampled every few cycles; at the end each series' growth
// per cycle, with a confidence interval, and the cycles until it runs out.
package churn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

// The steps of a cycle.
const (
	StepRun    = "run"
	StepPause  = "pause"
	StepResume = "resume"
	StepKill   = "kill"
	StepDelete = "delete"
	// StepKillShim is the kill-shim fault: the task's shim SIGKILLed, as
	// a crashed shim dies, in place of the kill step.
	StepKillShim = "kill-shim"
)

// DefaultSteps is the loop of containerd#2421.
var DefaultSteps = []string{StepRun, StepPause, StepResume, StepKill, StepDelete}

// FaultKillShim kills the task's shim each cycle.
const FaultKillShim = "kill-shim"

// IDPrefix starts the id of every container churn makes.
const IDPrefix = "enospc-churn-"

// Options shape a churn run.
type Options struct {
	// Runtime is "containerd", "cri", "docker" or "runc".
	Runtime string
	// Cycles is how many cycles to run.
	Cycles int
	// Steps of each cycle, in order (DefaultSteps when empty; for the
	// CRI, which has no pause, run, kill, delete).
	Steps []string
	// Parallel cycles run at once (1 when 0).
	Parallel int
	// SampleEvery is how many cycles go between samples (10 when 0).
	SampleEvery int
	// Only restricts the limits sampled (all when empty); the runtime's
	// footprint is always read.
	Only []string
	// Fault is "" or FaultKillShim.
	Fault string
	// Retries of a failed step before its cycle is given up (10 when 0,
	// as the loop of containerd#2421 retried; negative: none).
	Retries int
	// RetryDelay is the pause before a retry (100ms when 0).
	RetryDelay time.Duration
	// Image and Args make the container (containerd): the image's own
	// command when Args is empty.
	Image string
	Args  []string

	Containerd ContainerdOptions
	Docker     DockerOptions
	CRI        CRIOptions
	Runc       RuncOptions

	// StepsCSV and SamplesCSV receive the CSV of every step attempt and
	// of every sample; nil discards them.
	StepsCSV, SamplesCSV io.Writer
	// FamilyTimeout bounds each family's read in a sample.
	FamilyTimeout time.Duration
	// Confidence of the intervals (0.95 when 0).
	Confidence float64
	// MinPerCycle is the smallest growth per cycle called a leak, in the
	// series' unit (0.5 when 0; bytes series use MinBytesPerCycle).
	MinPerCycle float64
	// MinBytesPerCycle is MinPerCycle for series counted in bytes (4096
	// when 0: one page).
	MinBytesPerCycle float64
	// Progress, when set, receives a line per sample.
	Progress io.Writer

	runID string
}

// Result is what a churn run found; its JSON is the contract of `enospc
// churn -o json`.
type Result struct {
	Runtime string `json:"runtime"`
	// Cycles is how many cycles were run (given up ones included).
	Cycles int `json:"cycles"`
	// Steps is how many step attempts were made, retries included, and
	// Errors how many of them failed.
	Steps  int    `json:"steps"`
	Errors int    `json:"errors"`
	Leaks  []Leak `json:"leaks"`
	// Where the CSVs were written (set by the caller that opened them).
	SamplesCSV string `json:"samples_csv"`
	StepsCSV   string `json:"steps_csv"`

	// Series is every series estimated, leaking or not.
	Series []*Series `json:"-"`
	// GivenUp is how many cycles were given up after their retries;
	// Failed says why the loop stopped early, when it did.
	GivenUp int    `json:"-"`
	Failed  string `json:"-"`
	// Cleanup is what the cleanup could not remove.
	Cleanup error `json:"-"`
	// Leftovers is how many objects the runtime left that churn's client
	// made (fifo directories): the leak itself, left for inspection;
	// Cleanup removes them.
	Leftovers int `json:"-"`
	// ShimSockets is how many sockets of the shims the fault killed
	// containerd left in ShimSocketDir (the host's /run): counted, then
	// removed.
	ShimSockets int `json:"-"`
	// Elapsed is the whole loop; Sampling the part of it spent sampling.
	Elapsed, Sampling time.Duration `json:"-"`
	Samples           int           `json:"-"`
}

// Leak is one series that grows with the cycles.
type Leak struct {
	Limit    string     `json:"limit"`
	Scope    string     `json:"scope"`
	PerCycle float64    `json:"per_cycle"`
	CI       [2]float64 `json:"ci"`
	// CyclesToExhaustion is how many more cycles at this rate until the
	// limit's max; null when the series has no max.
	CyclesToExhaustion *int64 `json:"cycles_to_exhaustion"`
}

// ExitCode is churn's exit status: 2 when the loop itself failed (a cycle
// given up, the loop stopped), else 1 when something leaks, else 0.
func (r *Result) ExitCode() int {
	switch {
	case r.GivenUp > 0 || r.Failed != "":
		return 2
	case len(r.Leaks) > 0:
		return 1
	}
	return 0
}

// Point is one sample of a series.
type Point struct {
	Cycle int
	Used  int64
	Max   int64
}

// Series is one limit in one scope over the run.
type Series struct {
	Limit, Scope, Unit string
	Points             []Point
	Slope              Slope
	// Later is the slope over the later half of the samples, when the
	// whole run's says the series grows.
	Later   Slope
	Leaking bool
	// Exhaustion is the cycles left at the estimated rate, -1 for none.
	Exhaustion int64
}

// driver is one runtime's side of the loop.
type driver interface {
	prepare(ctx context.Context) error
	// step makes one attempt at a step of container id.
	step(ctx context.Context, id, step string) error
	// remove takes one of churn's containers away whatever its state.
	remove(ctx context.Context, id string) error
	// cleanup removes everything churn made, of this run or an earlier one.
	cleanup(ctx context.Context) error
	// leftovers are what the runtime left that churn's client made (the
	// fifo directories of tasks whose shim died); removeLeftovers removes
	// them, once cleanup has removed every container.
	leftovers() int
	removeLeftovers() error
	footprint(ctx context.Context) []Reading
	checkOptions(*check.Options)
	close()
}

// ErrOptions wraps what is wrong with the options given, as opposed to a
// runtime that could not be driven.
var ErrOptions = errors.New("invalid options")

func newDriver(h *host.Host, o Options) (driver, error) {
	switch o.Runtime {
	case "containerd":
		return newContainerdDriver(h, o), nil
	case "runc":
		return newRuncDriver(h, o), nil
	case "docker":
		return newDockerDriver(h, o), nil
	case "cri":
		return newCRIDriver(h, o), nil
	}
	return nil, fmt.Errorf("runtime %q: want containerd, cri, docker or runc", o.Runtime)
}

func (o *Options) validate() error {
	if o.Cycles < 1 {
		return fmt.Errorf("cycles %d: want at least 1", o.Cycles)
	}
	if len(o.Steps) == 0 {
		o.Steps = slices.Clone(DefaultSteps)
		if o.Runtime == "cri" {
			o.Steps = []string{StepRun, StepKill, StepDelete}
		}
	}
	seen := map[string]bool{}
	for _, s := range o.Steps {
		switch s {
		case StepRun, StepPause, StepResume, StepKill, StepDelete:
		default:
			return fmt.Errorf("step %q: want run, pause, resume, kill or delete", s)
		}
		if seen[s] {
			return fmt.Errorf("step %q given twice", s)
		}
		if o.Runtime == "cri" && (s == StepPause || s == StepResume) {
			return fmt.Errorf("step %q: the CRI has no pause", s)
		}
		seen[s] = true
	}
	if o.Steps[0] != StepRun || !seen[StepDelete] {
		return errors.New("steps must start with run and include delete: a cycle makes one container and removes it")
	}
	switch o.Fault {
	case "":
	case FaultKillShim:
		if o.Runtime != "containerd" {
			return fmt.Errorf("fault %s: %s has no shim", o.Fault, o.Runtime)
		}
		// The shim dies where the task would be killed.
		if i := slices.Index(o.Steps, StepKill); i >= 0 {
			o.Steps[i] = StepKillShim
		} else {
			i = slices.Index(o.Steps, StepDelete)
			o.Steps = slices.Insert(o.Steps, i, StepKillShim)
		}
	default:
		return fmt.Errorf("fault %q: want %s", o.Fault, FaultKillShim)
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10
	}
	if o.Retries == 0 {
		o.Retries = 10
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 100 * time.Millisecond
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		return fmt.Errorf("confidence %g: want between 0 and 1", o.Confidence)
	}
	if o.MinPerCycle <= 0 {
		o.MinPerCycle = 0.5
	}
	if o.MinBytesPerCycle <= 0 {
		o.MinBytesPerCycle = 4096
	}
	for _, id := range o.Only {
		if _, ok := limits.Lookup(limits.ID(id)); !ok {
			return fmt.Errorf("unknown limit %q", id)
		}
	}
	if o.StepsCSV == nil {
		o.StepsCSV = io.Discard
	}
	if o.SamplesCSV == nil {
		o.SamplesCSV = io.Discard
	}
	if o.runID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		o.runID = hex.EncodeToString(b[:])
	}
	return nil
}

// Cleanup removes what churn made on the runtime: its containers (and
// their tasks and snapshots), and for containerd the images it imported
// and its namespace. It touches nothing churn did not make.
func Cleanup(ctx context.Context, h *host.Host, opts Options) error {
	d, err := newDriver(h, opts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	defer d.close()
	if err := d.cleanup(ctx); err != nil {
		return err
	}
	return d.removeLeftovers()
}

// maxGivenUpInARow stops the loop: the runtime no longer makes containers
// (which is what a leak ends in, and is then the finding).
const maxGivenUpInARow = 3

// Run runs the loop on h's runtime and analyses the samples. It always
// cleans up, also when ctx is cancelled (then within a bounded time of its
// own). An error means the loop could not start; a loop that started and
// failed is a Result with Failed set.
func Run(ctx context.Context, h *host.Host, opts Options) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	d, err := newDriver(h, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	defer d.close()
	res := &Result{Runtime: opts.Runtime, Leaks: []Leak{}}
	defer func() {
		// The cleanup runs even when ctx is done (Ctrl-C), on its own
		// bounded context.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		res.Cleanup = d.cleanup(cctx)
		res.Leftovers = d.leftovers()
		if cd, ok := d.(*containerdDriver); ok {
			n, err := cd.removeShimSockets()
			res.ShimSockets = n
			res.Cleanup = errors.Join(res.Cleanup, err)
		}
	}()
	if err := d.prepare(ctx); err != nil {
		return nil, err
	}
	l := &loop{opts: opts, d: d, h: h, res: res, series: map[seriesKey]*Series{}}
	l.csv = newStepWriter(opts.StepsCSV)
	l.samples = newSampleWriter(opts.SamplesCSV)
	start := time.Now()
	l.run(ctx)
	res.Elapsed = time.Since(start)
	if err := l.csv.flush(); err != nil && res.Failed == "" {
		res.Failed = fmt.Sprintf("steps CSV: %v", err)
	}
	if err := l.samples.flush(); err != nil && res.Failed == "" {
		res.Failed = fmt.Sprintf("samples CSV: %v", err)
	}
	l.analyse()
	return res, nil
}

type seriesKey struct{ limit, scope string }

type loop struct {
	opts    Options
	d       driver
	h       *host.Host
	res     *Result
	csv     *stepWriter
	samples *sampleWriter
	series  map[seriesKey]*Series
	order   []seriesKey
	nsample int
	mu      sync.Mutex
}

func (l *loop) run(ctx context.Context) {
	l.sample(ctx, 0)
	givenUpInARow := 0
	for done := 0; done < l.opts.Cycles; {
		n := min(l.opts.SampleEvery, l.opts.Cycles-done)
		ok := l.batch(ctx, done+1, n)
		done += n
		l.res.Cycles = done
		if ctx.Err() != nil {
			l.res.Failed = "interrupted: " + ctx.Err().Error()
			return
		}
		l.sample(ctx, done)
		if ok {
			givenUpInARow = 0
		} else if givenUpInARow++; givenUpInARow >= maxGivenUpInARow {
			l.res.Failed = fmt.Sprintf("stopped after cycle %d: %d batches in a row had a cycle given up", done, givenUpInARow)
			return
		}
	}
}

// batch runs cycles first..first+n-1 on opts.Parallel workers and waits
// for all of them: a sample is taken with no cycle in flight, so that
// nothing it counts belongs to a container still on its way.
func (l *loop) batch(ctx context.Context, first, n int) bool {
	next := make(chan int)
	var wg sync.WaitGroup
	allOK := true
	for range min(l.opts.Parallel, n) {
		wg.Go(func() {
			for c := range next {
				if !l.cycle(ctx, c) {
					l.mu.Lock()
					allOK = false
					l.mu.Unlock()
				}
			}
		})
	}
	for c := first; c < first+n && ctx.Err() == nil; c++ {
		next <- c
	}
	close(next)
	wg.Wait()
	return allOK
}

// cycle runs one container through the steps, each retried as the loop of
// containerd#2421 retried. A cycle given up has its container removed.
func (l *loop) cycle(ctx context.Context, c int) bool {
	id := fmt.Sprintf("%s%s-%d", IDPrefix, l.opts.runID, c)
	for _, step := range l.opts.Steps {
		ok := false
		for attempt := 0; attempt <= l.opts.Retries; attempt++ {
			if ctx.Err() != nil {
				break
			}
			if attempt > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(l.opts.RetryDelay):
				}
			}
			// A step under way is not cut short by ctx (Ctrl-C): a create
			// the client gave up on goes on in the runtime, and would
			// leave a task no cleanup saw. It ends within stepTimeout.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
			start := time.Now()
			err := l.d.step(sctx, id, step)
			cancel()
			l.record(stepRecord{cycle: c, time: start, step: step, attempt: attempt, took: time.Since(start), err: err})
			if err == nil {
				ok = true
				break
			}
		}
		if !ok {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			l.d.remove(rctx, id)
			cancel()
			if ctx.Err() == nil {
				l.mu.Lock()
				l.res.GivenUp++
				l.mu.Unlock()
			}
			return false
		}
	}
	return true
}

func (l *loop) record(r stepRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res.Steps++
	if r.err != nil {
		l.res.Errors++
	}
	l.csv.write(r)
}

// sample reads every limit as check does, and the runtime's footprint.
func (l *loop) sample(ctx context.Context, cycle int) {
	start := time.Now()
	defer func() { l.res.Sampling += time.Since(start); l.res.Samples++ }()
	opts := check.Options{Only: l.opts.Only, FamilyTimeout: l.opts.FamilyTimeout}
	l.d.checkOptions(&opts)
	// No cycle is in flight at a sample: a fifo directory no task names is
	// an orphan already, not one a create is still filling. check's grace
	// for young directories is for hosts where creates are in flight; it
	// is waived here by reading with a clock a grace period ahead.
	h := *l.h
	h.Now = func() time.Time { return time.Now().Add(fifoGraceWaiver) }
	now := time.Now()
	rep, err := check.Run(ctx, &h, opts)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(l.progress(), "sample at cycle %d: %s\n", cycle, quote.Terminal(err.Error()))
		}
	} else {
		// The memory cgroups still alive, next to the dying ones: the
		// total of ids less the dying.
		var ids, dying *limits.Finding
		for i := range rep.Findings {
			u := &rep.Findings[i]
			if u.Severity == limits.Unknown {
				continue
			}
			l.add(cycle, now, u.Limit, u.Scope, u.Unit, u.Used, u.Max)
			switch {
			case u.Limit == string(limits.Cgroups) && u.Scope == "memory cgroup ids":
				ids = u
			case u.Limit == string(limits.CgroupsDying) && strings.Contains(u.Scope, "memory"):
				dying = u
			}
		}
		if ids != nil && dying != nil {
			l.add(cycle, now, CgroupsLive, dying.Scope, ids.Unit, ids.Used-dying.Used, ids.Max)
		}
	}
	for _, r := range l.d.footprint(ctx) {
		if r.Err == nil {
			l.add(cycle, now, r.Limit, r.Scope, r.Unit, r.Value, r.Max)
		}
	}
	l.nsample++
	if l.opts.Progress != nil {
		fmt.Fprintf(l.opts.Progress, "cycle %d/%d: sampled in %s\n", cycle, l.opts.Cycles, time.Since(start).Round(time.Millisecond))
	}
}

// stepTimeout bounds one attempt at a step.
const stepTimeout = 2 * time.Minute

// CgroupsLive is the series of the memory cgroups alive: the ids in use
// (cgroups) less the dying ones (cgroups.dying).
const CgroupsLive = "cgroups.live"

// fifoGraceWaiver is more than check's grace for young fifo directories.
const fifoGraceWaiver = time.Hour

func (l *loop) progress() io.Writer {
	if l.opts.Progress != nil {
		return l.opts.Progress
	}
	return io.Discard
}

func (l *loop) add(cycle int, t time.Time, limit, scope, unit string, used, max int64) {
	k := seriesKey{limit, scope}
	s := l.series[k]
	if s == nil {
		s = &Series{Limit: limit, Scope: scope, Unit: unit}
		l.series[k] = s
		l.order = append(l.order, k)
	}
	s.Points = append(s.Points, Point{Cycle: cycle, Used: used, Max: max})
	l.samples.write(sampleRecord{cycle: cycle, time: t, limit: limit, scope: scope, unit: unit, used: used, max: max})
}

// analyse estimates every series that was read in the last sample and in
// at least three: a scope that came and went (a container's own cgroup)
// has no trend to speak of.
func (l *loop) analyse() {
	last := -1
	for _, s := range l.series {
		if n := len(s.Points); n > 0 {
			last = max(last, s.Points[n-1].Cycle)
		}
	}
	for _, k := range l.order {
		s := l.series[k]
		n := len(s.Points)
		if n < 3 || s.Points[n-1].Cycle != last {
			continue
		}
		xs, ys := make([]float64, n), make([]float64, n)
		for i, p := range s.Points {
			xs[i], ys[i] = float64(p.Cycle), float64(p.Used)
		}
		s.Slope = Estimate(xs, ys, l.opts.Confidence)
		minimum := l.opts.MinPerCycle
		if s.Unit == "bytes" {
			minimum = l.opts.MinBytesPerCycle
		}
		s.Leaking = s.Slope.Lo > 0 && s.Slope.PerCycle >= minimum
		// A leak grows through the whole run: growth that stops half way
		// (a daemon's heap warming up, a cache filling) is not one,
		// unless it stopped at the limit's max, which is where a leak
		// ends (containerd#2421's /run).
		last := s.Points[n-1]
		full := last.Max > 0 && float64(last.Max-last.Used) <= s.Slope.Hi
		if h := n / 2; s.Leaking && !full && n-h >= 3 {
			s.Later = Estimate(xs[h:], ys[h:], l.opts.Confidence)
			s.Leaking = s.Later.Lo > 0
		}
		s.Exhaustion = -1
		if p := last; p.Max > 0 && s.Slope.PerCycle > 0 {
			s.Exhaustion = int64(math.Max(0, math.Floor(float64(p.Max-p.Used)/s.Slope.PerCycle)))
		}
		l.res.Series = append(l.res.Series, s)
		if s.Leaking {
			lk := Leak{Limit: s.Limit, Scope: s.Scope, PerCycle: s.Slope.PerCycle, CI: [2]float64{s.Slope.Lo, s.Slope.Hi}}
			if s.Exhaustion >= 0 {
				e := s.Exhaustion
				lk.CyclesToExhaustion = &e
			}
			l.res.Leaks = append(l.res.Leaks, lk)
		}
	}
	sort.SliceStable(l.res.Leaks, func(i, j int) bool {
		a, b := l.res.Leaks[i], l.res.Leaks[j]
		if a.Limit != b.Limit {
			return a.Limit < b.Limit
		}
		return a.Scope < b.Scope
	})
}
