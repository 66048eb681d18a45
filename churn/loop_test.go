package churn

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// fakeRuntime is a runtime in memory whose one footprint series grows by
// perCycle for each container run, and whose steps fail as told.
type fakeRuntime struct {
	mu       sync.Mutex
	runs     int
	perCycle int64
	fail     func(id, step string, attempt int) bool
	attempts map[string]int
	live     map[string]bool
	removed  []string
	cleaned  bool
}

func (f *fakeRuntime) prepare(context.Context) error { return nil }
func (f *fakeRuntime) step(_ context.Context, id, step string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := id + "/" + step
	n := f.attempts[k]
	f.attempts[k]++
	if f.fail != nil && f.fail(id, step, n) {
		return errors.New("cannot delete a non stopped container")
	}
	switch step {
	case StepRun:
		f.runs++
		f.live[id] = true
	case StepDelete:
		delete(f.live, id)
	}
	return nil
}
func (f *fakeRuntime) remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	delete(f.live, id)
	return nil
}
func (f *fakeRuntime) cleanup(context.Context) error { f.cleaned = true; return nil }
func (f *fakeRuntime) leftovers() int                { return 0 }
func (f *fakeRuntime) removeLeftovers() error        { return nil }
func (f *fakeRuntime) footprint(context.Context) []Reading {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []Reading{
		{Limit: FootFiles, Scope: "/state", Unit: "files", Value: 7 + f.perCycle*int64(f.runs), Max: 1000},
		{Limit: FootShims, Scope: "daemon", Unit: "processes", Value: int64(len(f.live))},
		// A daemon's heap warming up: it grows over the first 20 cycles,
		// then stays. Not a leak.
		{Limit: FootRSS, Scope: "daemon", Unit: "bytes", Value: 40e6 + 1e5*int64(min(f.runs, 20))},
		// A leak that fills its limit at cycle 25, and stays full.
		{Limit: FootFifoDirs, Scope: "fifo", Unit: "inodes", Value: min(4*int64(f.runs), 100), Max: 100},
	}
}
func (f *fakeRuntime) checkOptions(*check.Options) {}
func (f *fakeRuntime) close()                      {}

func runFake(t *testing.T, f *fakeRuntime, o Options) (*Result, string) {
	t.Helper()
	var steps bytes.Buffer
	o.StepsCSV = &steps
	// Samples read one family of a fixture host: the loop is under test.
	o.Only = []string{"files"}
	o.RetryDelay = 1
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	f.attempts, f.live = map[string]int{}, map[string]bool{}
	h := host.New("../testdata/hosts/inotify-exhausted/proc", "../testdata/hosts/inotify-exhausted/sys", "../testdata/hosts/inotify-exhausted/root")
	res := &Result{Runtime: "fake", Leaks: []Leak{}}
	l := &loop{opts: o, d: f, h: h, res: res, series: map[seriesKey]*Series{}}
	l.csv, l.samples = newStepWriter(o.StepsCSV), newSampleWriter(o.SamplesCSV)
	l.run(context.Background())
	l.csv.flush()
	l.analyse()
	return res, steps.String()
}

func TestLoop(t *testing.T) {
	f := &fakeRuntime{perCycle: 2, fail: func(id, step string, attempt int) bool {
		// The delete of every third cycle is refused once, as ctr
		// refuses a task the kill has not stopped yet.
		return step == StepDelete && attempt == 0 && strings.HasSuffix(id, "3")
	}}
	res, steps := runFake(t, f, Options{Runtime: "fake", Cycles: 40, SampleEvery: 10, Parallel: 3})
	if res.Cycles != 40 || res.GivenUp != 0 || res.Failed != "" {
		t.Fatalf("cycles %d, given up %d, failed %q", res.Cycles, res.GivenUp, res.Failed)
	}
	// 40 cycles of 5 steps, and a retry of the delete of cycles 3, 13, 23, 33.
	if res.Steps != 204 || res.Errors != 4 {
		t.Errorf("steps %d errors %d, want 204 and 4", res.Steps, res.Errors)
	}
	rows, err := csv.NewReader(strings.NewReader(steps)).ReadAll()
	if err != nil || len(rows) != 205 {
		t.Fatalf("steps CSV: %d rows, %v", len(rows), err)
	}
	retried := 0
	for _, r := range rows[1:] {
		if r[3] == "1" {
			retried++
			if r[2] != StepDelete || r[4] != "0" {
				t.Errorf("retry row %v", r)
			}
		}
		if r[4] == "1" && !strings.Contains(r[6], "non stopped") {
			t.Errorf("failed row without its error: %v", r)
		}
	}
	if retried != 4 {
		t.Errorf("%d retries in the CSV, want 4", retried)
	}
	// The files growing 2 per cycle; the fifo directories that filled
	// their max at cycle 25 are too few samples for an interval above 0.
	if len(res.Leaks) != 1 {
		t.Fatalf("leaks %+v, want the files growing 2 per cycle", res.Leaks)
	}
	lk := res.Leaks[0]
	if lk.Limit != FootFiles || lk.PerCycle != 2 || lk.CI != [2]float64{2, 2} || lk.CyclesToExhaustion == nil || *lk.CyclesToExhaustion != (1000-87)/2 {
		t.Errorf("leak %+v (exhaustion %v), want runtime.files 2 per cycle, [2, 2], %d cycles left", lk, lk.CyclesToExhaustion, (1000-87)/2)
	}
	if res.ExitCode() != 1 {
		t.Errorf("exit %d, want 1", res.ExitCode())
	}
	if res.Samples != 5 {
		t.Errorf("%d samples, want 5 (cycle 0 and every 10)", res.Samples)
	}
	for _, s := range res.Series {
		if s.Limit == FootShims && (s.Leaking || s.Slope.PerCycle != 0) {
			t.Errorf("no container is live at a sample, yet %+v", s)
		}
	}
}

// Growth that stops half way, a daemon's heap warming up, is growth over
// the run, but not a leak.
func TestLoopWarmUp(t *testing.T) {
	res, _ := runFake(t, &fakeRuntime{}, Options{Runtime: "fake", Cycles: 40, SampleEvery: 2})
	for _, s := range res.Series {
		if s.Limit == FootRSS && (s.Leaking || s.Slope.Lo <= 0 || s.Later.PerCycle != 0) {
			t.Errorf("warm-up: slope %+v, later %+v, leaking %v; want growth over the run, none later, no leak", s.Slope, s.Later, s.Leaking)
		}
	}
}

// A leak that reached its max stops growing, and is still a leak.
func TestLoopExhausted(t *testing.T) {
	res, _ := runFake(t, &fakeRuntime{}, Options{Runtime: "fake", Cycles: 40, SampleEvery: 2})
	var found bool
	for _, l := range res.Leaks {
		if l.Limit == FootFifoDirs {
			found = true
			if l.CyclesToExhaustion == nil || *l.CyclesToExhaustion != 0 {
				t.Errorf("cycles to exhaustion %v, want 0", l.CyclesToExhaustion)
			}
		}
	}
	if !found {
		t.Errorf("leaks %+v: the series that filled its max is not among them", res.Leaks)
	}
}

// A cycle whose step keeps failing is given up after its retries, its
// container removed; the loop fails (exit 2) and stops after three
// batches in a row lost a cycle.
func TestLoopGivesUp(t *testing.T) {
	f := &fakeRuntime{fail: func(id, step string, _ int) bool { return step == StepRun && !strings.HasSuffix(id, "-1") }}
	res, _ := runFake(t, f, Options{Runtime: "fake", Cycles: 100, SampleEvery: 2, Retries: 2})
	if res.ExitCode() != 2 || res.Failed == "" {
		t.Errorf("exit %d, failed %q", res.ExitCode(), res.Failed)
	}
	if res.Cycles != 6 || res.GivenUp != 5 {
		t.Errorf("%d cycles, %d given up; want 6 and 5", res.Cycles, res.GivenUp)
	}
	if len(f.removed) != 5 || res.Errors != 15 {
		t.Errorf("removed %v, %d errors; want 5 removed and 15 errors (3 attempts each)", f.removed, res.Errors)
	}
}

func TestOptions(t *testing.T) {
	bad := []Options{
		{Runtime: "containerd"},
		{Runtime: "containerd", Cycles: 1, Steps: []string{"pause", "delete"}},
		{Runtime: "containerd", Cycles: 1, Steps: []string{"run", "kill"}},
		{Runtime: "containerd", Cycles: 1, Steps: []string{"run", "run", "delete"}},
		{Runtime: "runc", Cycles: 1, Fault: FaultKillShim},
		{Runtime: "containerd", Cycles: 1, Fault: "oom"},
		{Runtime: "containerd", Cycles: 1, Only: []string{"no.such.limit"}},
		{Runtime: "containerd", Cycles: 1, Confidence: 1.5},
		{Runtime: "cri", Cycles: 1, Steps: []string{"run", "pause", "delete"}},
	}
	for _, o := range bad {
		if err := o.validate(); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
	o := Options{Runtime: "containerd", Cycles: 1, Fault: FaultKillShim}
	if err := o.validate(); err != nil || strings.Join(o.Steps, ",") != "run,pause,resume,kill-shim,delete" {
		t.Errorf("kill-shim steps %v, %v", o.Steps, err)
	}
	o = Options{Runtime: "containerd", Cycles: 1, Fault: FaultKillShim, Steps: []string{"run", "delete"}}
	if err := o.validate(); err != nil || strings.Join(o.Steps, ",") != "run,kill-shim,delete" {
		t.Errorf("kill-shim steps %v, %v", o.Steps, err)
	}
	o = Options{Runtime: "cri", Cycles: 1}
	if err := o.validate(); err != nil || strings.Join(o.Steps, ",") != "run,kill,delete" {
		t.Errorf("cri steps %v, %v", o.Steps, err)
	}
	if _, err := Run(context.Background(), host.New("/proc", "/sys", "/"), Options{Runtime: "cri-o", Cycles: 1}); !errors.Is(err, ErrOptions) {
		t.Errorf("cri-o: %v, want a refusal", err)
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		"=cmd()":         "'=cmd()",
		"a\nb\x1b[31m":   "a b [31m",
		"bad \xff utf-8": "bad \uFFFD utf-8",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWritePlots(t *testing.T) {
	f := &fakeRuntime{perCycle: 4}
	res, _ := runFake(t, f, Options{Runtime: "fake", Cycles: 20, SampleEvery: 5})
	dir := t.TempDir()
	files, err := res.WritePlots(dir, "svg")
	// The files, the heap still warming up after 20 cycles, the fifo
	// directories.
	if err != nil || len(files) != 3 {
		t.Fatalf("plots %v, %v; want three, of the leaking series", files, err)
	}
	b, _ := os.ReadFile(files[0])
	if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("runtime.files")) {
		t.Errorf("%s is not the chart of runtime.files", files[0])
	}
}
