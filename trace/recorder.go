package trace

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/enospc/enospc/internal/quote"
)

// Recorder keeps what a long-running trace (serve --trace) has seen: the
// most recent failures, and a count per (limit, scope, syscall, errno)
// for the counter enospc_syscall_failures_total. Both are bounded: the
// recent list to its size, the series to maxSeries, beyond which new
// scopes are counted under scope="other".
type Recorder struct {
	mu        sync.Mutex
	recent    []Failure
	next      int
	full      bool
	counts    map[seriesKey]float64
	maxSeries int
	state     TraceState
}

// TraceState says whether the trace behind a Recorder runs, and why not.
type TraceState struct {
	Running bool   `json:"running"`
	Attach  string `json:"attach,omitempty"`
	Error   string `json:"error,omitempty"`
	Stats   Stats  `json:"stats"`
}

type seriesKey struct{ limit, scope, syscall, errno string }

// NewRecorder keeps the last recent failures and at most maxSeries
// series.
func NewRecorder(recent, maxSeries int) *Recorder {
	return &Recorder{recent: make([]Failure, max(recent, 1)), counts: map[seriesKey]float64{}, maxSeries: max(maxSeries, 1)}
}

// procScope is a scope that names one process ("pid 12 (nginx)"): a new
// series per process would grow without bound.
var procScope = regexp.MustCompile(`^pid \d+ \(`)

// Add records one line of the trace.
func (r *Recorder) Add(f Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent[r.next] = f
	r.next = (r.next + 1) % len(r.recent)
	r.full = r.full || r.next == 0
	scope := f.Scope
	if procScope.MatchString(scope) {
		scope = "process"
	}
	k := seriesKey{label(f.Limit), label(scope), label(f.Syscall), label(f.Errno)}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= r.maxSeries {
		k.scope = "other"
	}
	r.counts[k] += float64(f.Count)
}

// SetState records whether the trace runs.
func (r *Recorder) SetState(s TraceState) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
}

// Recent returns the recorded failures, newest first, and the trace's
// state.
func (r *Recorder) Recent() ([]Failure, TraceState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.recent)
	}
	out := make([]Failure, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.recent[(r.next-i+len(r.recent))%len(r.recent)])
	}
	return out, r.state
}

// Metrics is the text exposition of enospc_syscall_failures_total and of
// the trace's state (enospc_trace_running, enospc_trace_lost_total).
func (r *Recorder) Metrics() []byte {
	r.mu.Lock()
	keys := make([]seriesKey, 0, len(r.counts))
	for k := range r.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return strings.Compare(a.limit+"\x00"+a.scope+"\x00"+a.syscall+"\x00"+a.errno, b.limit+"\x00"+b.scope+"\x00"+b.syscall+"\x00"+b.errno)
	})
	failures := family("enospc_syscall_failures_total", dto.MetricType_COUNTER,
		"Syscalls the kernel refused with an errno a limit causes, as enospc trace caught and named them (limit \"unexplained\" when none explains them).")
	for _, k := range keys {
		failures.Metric = append(failures.Metric, &dto.Metric{
			Label:   []*dto.LabelPair{pair("errno", k.errno), pair("limit", k.limit), pair("scope", k.scope), pair("syscall", k.syscall)},
			Counter: &dto.Counter{Value: proto.Float64(r.counts[k])},
		})
	}
	running := family("enospc_trace_running", dto.MetricType_GAUGE, "Whether the eBPF trace behind enospc_syscall_failures_total runs.")
	running.Metric = []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(b2f(r.state.Running))}}}
	lost := family("enospc_trace_lost_total", dto.MetricType_COUNTER, "Failures the trace could not count: its map was full.")
	lost.Metric = []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(float64(r.state.Stats.Dropped))}}}
	r.mu.Unlock()

	var b bytes.Buffer
	for _, f := range []*dto.MetricFamily{failures, running, lost} {
		if len(f.Metric) > 0 {
			expfmt.MetricFamilyToText(&b, f)
		}
	}
	return b.Bytes()
}

func family(name string, typ dto.MetricType, help string) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum()}
}

func pair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// label makes host text a valid label value, distinct inputs distinct
// (quote.Label, as serve's other labels).
func label(s string) string { return quote.Label(s) }

// Redacted is f without what tells what a user runs or names: the
// process id and name, the object's path. Counts, uids, containers and
// pods stay, as in serve's redacted check.
func (f Failure) Redacted() Failure {
	f.PID, f.TID, f.Comm, f.Object = 0, 0, "", ""
	if procScope.MatchString(f.Scope) {
		f.Scope = "process"
	}
	f.Reason = procScope.ReplaceAllString(f.Reason, "process (")
	return f
}
