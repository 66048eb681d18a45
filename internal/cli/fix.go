package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/fix"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

// Long on purpose: the flags and their help make up most of it; the workflow itself is fix.Run.
func newFixCmd(newHost func() *host.Host, cfg Config) *cobra.Command {
	var (
		output                string
		apply, yes, undo      bool
		persist, kube         bool
		only                  []string
		stateDir, persistFile string
		image, pauseImage     string
		prune                 bool
		hf                    *hostFlags
	)
	cmd := &cobra.Command{
		Use:   "fix",
		Short: "Plan the fix of what check found; apply, persist and undo it on request",
		Long: `fix prints a plan from the current findings: each sysctl to raise (from -> to,
why, risk), and guidance for what cannot be changed live. Nothing changes
without --apply (which asks unless --yes). Sysctls are only raised, each value
is read again right before it is written, and every change goes to a journal
first: --undo restores the previous values. Leaks (orphaned fifo directories,
empty cgroups of gone containers; with --prune, exited docker containers that
hold keyrings) are removed, each checked again right before. Two runs at once:
the second waits, then refuses. --persist also writes the values to ` + fix.DefaultPersistFile + `
(check reports drift from it). --kubernetes prints a DaemonSet that applies
the planned sysctls on every node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return &exitError{3, fmt.Errorf("-o %q: want table or json", output)}
			}
			h := newHost()
			out := cmd.OutOrStdout()
			opts := fix.Options{StateDir: stateDir, Persist: persist, PersistFile: persistFile, FifoDir: hf.fifoDir}
			if undo {
				res, err := fix.Undo(h, opts)
				if err != nil {
					return &exitError{3, err}
				}
				if output == "json" {
					return jsonOrExit(out, res)
				}
				writeFixResult(out, "undo", res)
				return nil
			}
			copts := hf.options()
			if cfg.CheckHook != nil {
				cfg.CheckHook(&copts)
			}
			req := fix.Request{Check: copts, Only: only, Prune: prune, Apply: apply && !kube, Options: opts}
			if !yes {
				req.Confirm = func(_ fix.Plan, n int) bool { return confirm(cmd.InOrStdin(), out, n) }
			}
			if output != "json" && apply && !kube {
				// The plan is shown before the question.
				req.Confirm = showThen(out, req.Confirm)
			}
			o, err := fix.Run(cmd.Context(), h, req)
			if o == nil {
				return &exitError{3, err}
			}
			plan := o.Plan
			switch {
			case kube:
				y, err := fix.Kubernetes(plan, image, pauseImage)
				if err != nil {
					return &exitError{3, err}
				}
				fmt.Fprint(out, y)
				return nil
			case !apply:
				if output == "json" {
					return jsonOrExit(out, plan)
				}
				writePlan(out, plan)
				if n := plan.Changes(); n > 0 {
					fmt.Fprintf(out, "\ndry run: nothing changed (--apply makes the %d %s above)\n", n, plural(n, "change", "changes"))
				}
				return nil
			}
			if plan.Changes() == 0 {
				if output == "json" {
					return jsonOrExit(out, map[string]any{"plan": plan, "result": o.Result})
				}
				writePlan(out, plan)
				fmt.Fprintln(out, "\nnothing to apply")
				return nil
			}
			if errors.Is(err, fix.ErrNotConfirmed) {
				return &exitError{1, err}
			}
			if o.Result != nil {
				if output == "json" {
					writeJSON(out, map[string]any{"plan": plan, "result": o.Result})
				} else {
					writeFixResult(out, "apply", o.Result)
				}
			}
			if err != nil {
				return &exitError{3, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&apply, "apply", false, "apply the plan: raise its sysctls and remove its re-verified leaks (asks first unless --yes)")
	f.BoolVar(&yes, "yes", false, "apply without asking")
	f.BoolVar(&undo, "undo", false, "restore the values the last --apply changed, from its journal")
	f.BoolVar(&persist, "persist", false, "with --apply: also write the values to "+fix.DefaultPersistFile+" (atomically)")
	f.BoolVar(&kube, "kubernetes", false, "print a DaemonSet (with its namespace and service account) applying the planned sysctls on every node")
	f.StringSliceVar(&only, "only", nil, "plan only for these limit IDs (comma separated)")
	f.StringVar(&stateDir, "state-dir", "/var/lib/enospc", "where the journal and the lock live")
	f.StringVar(&persistFile, "persist-file", fix.DefaultPersistFile, "the sysctl.d file --persist writes (host path, /etc/sysctl.d/NN-enospc[-name].conf)")
	hf = addHostFlags(f)
	f.BoolVar(&prune, "prune", false, "with --apply: also remove the exited docker containers whose session keyrings leak.keyrings lists and provably own (docker's API, at the socket --docker-host names under the host root)")
	f.StringVar(&image, "sysctl-image", "busybox:1.36", "--kubernetes: the image whose sysctl applies the values")
	f.StringVar(&pauseImage, "pause-image", "registry.k8s.io/pause:3.9", "--kubernetes: the image that keeps the pod running")
	return cmd
}

func jsonOrExit(w io.Writer, v any) error {
	if err := writeJSON(w, v); err != nil {
		return &exitError{3, err}
	}
	return nil
}

// countSysctls counts the plan's changes: sysctls and cleanups.
// showThen prints the plan before asking (ask nil: before applying).
func showThen(w io.Writer, ask func(fix.Plan, int) bool) func(fix.Plan, int) bool {
	return func(p fix.Plan, n int) bool {
		writePlan(w, p)
		return ask == nil || ask(p, n)
	}
}

func writePlan(w io.Writer, p fix.Plan) {
	if len(p.Actions) == 0 {
		fmt.Fprintln(w, "nothing to fix: no limit is at its warning threshold")
		return
	}
	fmt.Fprintf(w, "enospc fix  plan for %s\n\n", quote.Terminal(p.Host))
	for i, a := range p.Actions {
		// Scopes, texts and reasons quote the host: paths, names, remedies.
		a.Text, a.Scope, a.Why, a.Risk = quote.Terminal(a.Text), quote.Terminal(a.Scope), quote.Terminal(a.Why), quote.Terminal(a.Risk)
		switch a.Kind {
		case "sysctl":
			fmt.Fprintf(w, "%d. raise %s: %d -> %d\n     why: %s\n     risk: %s\n", i+1, a.Sysctl, a.From, a.To, a.Why, a.Risk)
		case "cleanup":
			fmt.Fprintf(w, "%d. %s (%s %s)\n     why: %s\n     risk: %s\n", i+1, a.Text, a.Limit, a.Scope, a.Why, a.Risk)
		default:
			fmt.Fprintf(w, "%d. guidance for %s %s\n     why: %s\n     do: %s\n", i+1, a.Limit, a.Scope, a.Why, a.Text)
		}
	}
}

func writeFixResult(w io.Writer, what string, r *fix.Result) {
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(r.Entries) == 0 && r.Persist == "" {
		fmt.Fprintf(w, "\n%s: nothing to do\n", what)
		return
	}
	fmt.Fprintf(w, "\n%s:\n", what)
	for _, e := range r.Entries {
		// The journal is a file on the host: --undo prints what it says.
		e.Sysctl = quote.Terminal(e.Sysctl)
		line := fmt.Sprintf("  %-8s %s %d -> %d", e.State, e.Sysctl, e.Old, e.New)
		switch {
		case e.Kind == "cleanup" && e.Container != "":
			line = fmt.Sprintf("  %-8s %s docker container %s", e.State, e.Limit, e.Container)
		case e.Kind == "cleanup":
			line = fmt.Sprintf("  %-8s %s %s", e.State, e.Limit, quote.Terminal(e.Path))
		case what == "undo":
			line = fmt.Sprintf("  %-8s %s %d -> %d", e.State, e.Sysctl, e.New, e.Old)
		}
		if e.Note != "" {
			line += "  (" + quote.Terminal(e.Note) + ")"
		}
		fmt.Fprintln(w, line)
	}
	if r.Persist != "" {
		fmt.Fprintf(w, "  %s %s\n", map[string]string{"apply": "wrote", "undo": "restored"}[what], quote.Terminal(r.Persist))
	}
}

func confirm(in io.Reader, out io.Writer, n int) bool {
	fmt.Fprintf(out, "\napply the %d %s above? [y/N] ", n, plural(n, "change", "changes"))
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
