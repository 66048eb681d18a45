package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
			st, err := trace.Run(ctx, newHost(), opts, func(f trace.Failure) {
				caught++
				if output == "json" {
					writeJSONLine(out, f)
					return
				}
				writeTraceRow(out, f)
			})
			var ns *trace.NotSupportedError
			switch {
			case errors.As(err, &ns):
				return &exitError{3, err}
			case err != nil:
				return &exitError{2, err}
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
