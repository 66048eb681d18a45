package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
	"github.com/enospc/enospc/trace"
)

func newTraceCmd(newHost func() *host.Host) *cobra.Command {
	var (
		output, container, pod string
		only                   []string
		duration, interval     time.Duration
		hf                     *hostFlags
	)
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Catch failing syscalls live (eBPF) and name the limit, process, container and pod",
		Long: `trace attaches an eBPF program at sys_exit and catches the syscalls that fail
with ENOSPC, EDQUOT, EMFILE or ENFILE, EAGAIN and ENOMEM from the calls where a
limit returns them, and EADDRNOTAVAIL from connect. Repeats are folded in the
kernel per process, syscall and errno; every interval each new failure is
named: the limit and scope that refused it, the process, its container and pod.
It needs CAP_BPF and CAP_PERFMON (root) and a kernel with BTF. An attached
program slows every syscall of the host a little: trace is run on demand.
Exit status: 0 nothing caught, 1 failures caught, 2 trace failed, 3 a usage
error or tracing is not supported here (the line says why).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return &exitError{3, fmt.Errorf("-o %q: want table or json", output)}
			}
			for _, id := range only {
				if _, ok := limits.Lookup(limits.ID(id)); !ok && id != trace.Unexplained {
					return &exitError{3, fmt.Errorf("--only %q: not a limit ID of enospc check, nor %q", id, trace.Unexplained)}
				}
			}
			if pod != "" && !strings.Contains(pod, "/") {
				return &exitError{3, fmt.Errorf("--pod %q: want NAMESPACE/NAME", pod)}
			}
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts := trace.Options{Interval: interval, Only: only, Container: container, Pod: pod, Check: hf.options()}
			opts.Started = func(attach string) {
				fmt.Fprintf(errw, "enospc trace: attached at %s; Ctrl-C to stop\n", attach)
				if output == "table" {
					fmt.Fprintf(out, traceRowFormat, "LAST", "COUNT", "LIMIT", "SCOPE", "SYSCALL", "ERRNO", "PID", "COMM", "UID", "CONTAINER", "POD")
				}
			}
			caught := 0
			sum := newTraceSummary()
			st, err := trace.Run(ctx, newHost(), opts, func(f trace.Failure) {
				caught++
				if output == "json" {
					writeJSONLine(out, f)
					return
				}
				sum.add(f)
				writeTraceRow(out, f)
			})
			var ns *trace.NotSupportedError
			switch {
			case errors.As(err, &ns):
				return &exitError{3, err}
			case err != nil:
				return &exitError{2, err}
			}
			if output == "table" {
				sum.write(out)
			}
			fmt.Fprintf(errw, "enospc trace: %d failures counted in the kernel, %d of them folded repeats, %d lost (map full); %d lines\n", st.Kept, st.Folded, st.Dropped, caught)
			if caught > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table, or json (one object per line)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	f.DurationVar(&interval, "interval", time.Second, "how often the kernel's folded failures are read and named")
	f.StringSliceVar(&only, "only", nil, "show only failures named as these limit IDs (comma separated; \"unexplained\" for those no limit explains)")
	f.StringVar(&container, "container", "", "show only failures of this container (id, id prefix of 4 or more, or name)")
	f.StringVar(&pod, "pod", "", "show only failures of this pod, NAMESPACE/NAME")
	hf = addHostFlags(f)
	return cmd
}

// writeJSONLine prints v as one line of JSON, host text made safe as in
// writeJSON.
func writeJSONLine(w io.Writer, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		return
	}
	w.Write(quote.JSON(b.Bytes()))
}

// traceRowFormat is a row of the table. Rows are printed as failures are
// named, so the columns have fixed widths rather than widths fitted to
// rows not yet seen.
const traceRowFormat = "%-12s %7s  %-17s %-36s %-17s %-13s %7s  %-15s %6s  %-12s %s\n"

func writeTraceRow(w io.Writer, f trace.Failure) {
	ctr := f.ContainerName
	if ctr == "" && f.Container != "" {
		ctr = f.Container
		if len(ctr) > 12 {
			ctr = ctr[:12]
		}
	}
	pod := ""
	if f.Pod != "" {
		pod = f.Namespace + "/" + f.Pod
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return quote.Terminal(s)
	}
	fmt.Fprintf(w, traceRowFormat, f.Last.Local().Format("15:04:05.000"), strconv.FormatUint(f.Count, 10), f.Limit, dash(f.Scope),
		f.Syscall, f.Errno, strconv.Itoa(f.PID), dash(f.Comm), strconv.Itoa(f.UID), dash(ctr), dash(pod))
	if f.Reason != "" {
		fmt.Fprintf(w, "%22s%s\n", "", quote.Terminal(f.Reason))
	}
}

// traceSummary adds up what a trace caught by limit and scope, for the
// last lines of the table: which limits refused calls, how often, and to
// which programs. Bounded: past maxTraceSummary limits and scopes, or
// programs of one, the rest are counted as others.
type traceSummary struct {
	rows   map[[2]string]*traceSum
	order  [][2]string
	others uint64
}

type traceSum struct {
	count  uint64
	pids   map[int]bool
	comms  map[string]uint64
	others uint64 // failures of programs past the bound
}

const maxTraceSummary = 100

func newTraceSummary() *traceSummary { return &traceSummary{rows: map[[2]string]*traceSum{}} }

func (s *traceSummary) add(f trace.Failure) {
	k := [2]string{f.Limit, f.Scope}
	r := s.rows[k]
	if r == nil {
		if len(s.rows) >= maxTraceSummary {
			s.others += f.Count
			return
		}
		r = &traceSum{pids: map[int]bool{}, comms: map[string]uint64{}}
		s.rows[k] = r
		s.order = append(s.order, k)
	}
	r.count += f.Count
	if len(r.pids) < 10*maxTraceSummary {
		r.pids[f.PID] = true
	}
	if _, ok := r.comms[f.Comm]; ok || len(r.comms) < maxTraceSummary {
		r.comms[f.Comm] += f.Count
	} else {
		r.others += f.Count
	}
}

// write prints one line a limit and scope, the most refused first.
func (s *traceSummary) write(w io.Writer) {
	if len(s.order) == 0 {
		return
	}
	sort.SliceStable(s.order, func(i, j int) bool { return s.rows[s.order[i]].count > s.rows[s.order[j]].count })
	fmt.Fprintln(w, "\nwhat refused the calls caught:")
	for _, k := range s.order {
		r := s.rows[k]
		comms := make([]string, 0, len(r.comms))
		for c := range r.comms {
			comms = append(comms, c)
		}
		sort.Slice(comms, func(i, j int) bool {
			if r.comms[comms[i]] != r.comms[comms[j]] {
				return r.comms[comms[i]] > r.comms[comms[j]]
			}
			return comms[i] < comms[j]
		})
		var by []string
		for i, c := range comms {
			if i == 5 {
				by = append(by, fmt.Sprintf("%d more programs", len(comms)-5))
				break
			}
			by = append(by, fmt.Sprintf("%s %d", quote.Terminal(c), r.comms[c]))
		}
		if r.others > 0 {
			by = append(by, fmt.Sprintf("others %d", r.others))
		}
		scope := ""
		if k[1] != "" {
			scope = " " + quote.Terminal(k[1])
		}
		fmt.Fprintf(w, "  %s%s: %d %s in %d %s (%s)\n", k[0], scope, r.count, plural(int(r.count), "failure", "failures"),
			len(r.pids), plural(len(r.pids), "process", "processes"), strings.Join(by, ", "))
	}
	if s.others > 0 {
		fmt.Fprintf(w, "  and %d failures of other limits and scopes\n", s.others)
	}
}

// Bounds of what serve --trace keeps.
const (
	serveTraceRecent = 200
	serveTraceSeries = 200
)

// startServeTrace runs a trace beside serve until ctx ends, recording
// into the Recorder it returns. A host where the trace cannot run gets one
// line saying why, and serve goes on without it (enospc_trace_running 0).
func startServeTrace(ctx context.Context, h *host.Host, co check.Options, errw io.Writer) *trace.Recorder {
	rec := trace.NewRecorder(serveTraceRecent, serveTraceSeries)
	opts := trace.Options{Interval: 5 * time.Second, Check: co}
	opts.Started = func(attach string) {
		rec.SetState(trace.TraceState{Running: true, Attach: attach})
		fmt.Fprintf(errw, "enospc serve: tracing failing syscalls at %s\n", attach)
	}
	opts.Drained = func(st trace.Stats) { rec.SetState(trace.TraceState{Running: true, Attach: st.Attach, Stats: st}) }
	go func() {
		st, err := trace.Run(ctx, h, opts, rec.Add)
		state := trace.TraceState{Stats: st}
		if err != nil {
			state.Error = err.Error()
			fmt.Fprintln(errw, "enospc serve: trace:", quote.Terminal(err.Error()))
		}
		rec.SetState(state)
	}()
	return rec
}
