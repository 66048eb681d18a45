package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/fix"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

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
			copts.Only = only
			// A fix is run by hand, once: it plans from every uid's keys.
			copts.AllKeys = true
			if cfg.CheckHook != nil {
				cfg.CheckHook(&copts)
			}
			rep, err := check.Run(cmd.Context(), h, copts)
			if err != nil {
				return &exitError{3, err}
			}
			plan := fix.MakePlan(rep, h, only)
			if prune {
				plan.Actions = append(plan.Actions, fix.PruneActions(rep)...)
			}
			if kube {
				y, err := fix.Kubernetes(plan, image, pauseImage)
				if err != nil {
					return &exitError{3, err}
				}
				fmt.Fprint(out, y)
				return nil
			}
			if output == "json" && !apply {
				return jsonOrExit(out, plan)
			}
			if output != "json" {
				writePlan(out, plan)
			}
			if !apply {
				if n := countSysctls(plan); n > 0 {
					fmt.Fprintf(out, "\ndry run: nothing changed (--apply makes the %d %s above)\n", n, plural(n, "change", "changes"))
				}
				return nil
			}
			if countSysctls(plan) == 0 {
				if output == "json" {
					return jsonOrExit(out, map[string]any{"plan": plan, "result": fix.Result{Entries: []fix.Entry{}}})
				}
				fmt.Fprintln(out, "\nnothing to apply")
				return nil
			}
			if !yes && !confirm(cmd.InOrStdin(), out, countSysctls(plan)) {
				return &exitError{1, fmt.Errorf("not applied")}
			}
			res, err := fix.Apply(h, plan, opts)
			if err == nil {
				var cres *fix.Result
				cres, err = fix.Cleanup(cmd.Context(), h, copts, plan, opts)
				if cres != nil {
					res.Entries = append(res.Entries, cres.Entries...)
				}
			}
			if res != nil {
				if output == "json" {
					writeJSON(out, map[string]any{"plan": plan, "result": res})
				} else {
					writeFixResult(out, "apply", res)
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
func countSysctls(p fix.Plan) int {
	n := 0
	for _, a := range p.Actions {
		if a.Kind == "sysctl" || a.Kind == "cleanup" {
			n++
		}
	}
	return n
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
