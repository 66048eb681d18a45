package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/explain"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

func newExplainCmd(newHost func() *host.Host, cfg Config) *cobra.Command {
	var (
		output     string
		offline    bool
		failures   string
		historyDir string
		since      time.Duration
		at         string
	)
	cmd := &cobra.Command{
		Use:   "explain MESSAGE|-",
		Short: "Which hidden limit an error message points to, checked on this host",
		Long: `explain takes an error message as it was found (a kubelet event, a dockerd log
line, a CI job's output; quoted, escaped or split over lines) or - for stdin,
ranks the limits that produce it, and checks each on this host: a cause at or
near its max now is confirmed. --offline ranks from the message alone.
With --history-dir (the one serve --history-dir records) a cause that was at
or near its max in the last --since (24h), or within 10 minutes of --at
TIME (RFC 3339, the time the error was logged), is confirmed as past, with
when and for how long.
Exit status: 0 a cause confirmed or offline, 1 causes found but none confirmed,
2 nothing recognised or the message names a cause outside the catalog, 3 the
message or the host could not be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			oneShotGC()
			if output != "table" && output != "json" {
				return &exitError{3, fmt.Errorf("-o %q: want table or json", output)}
			}
			msg, cut := args[0], ""
			if msg == "-" {
				var err error
				if msg, cut, err = explain.ReadMessage(cmd.InOrStdin()); err != nil {
					return &exitError{3, fmt.Errorf("reading the message from stdin: %w", err)}
				}
			}
			if strings.TrimSpace(msg) == "" {
				return &exitError{3, fmt.Errorf("empty message")}
			}
			opts := explain.Options{Offline: offline}
			if historyDir != "" && !offline {
				from, until := time.Now().Add(-since), time.Now()
				if at != "" {
					t, err := time.Parse(time.RFC3339, at)
					if err != nil {
						return &exitError{3, fmt.Errorf("--at %q: want RFC 3339 (2026-12-06T03:00:00Z)", at)}
					}
					from, until = t.Add(-pastAround), t.Add(pastAround)
				} else if since <= 0 {
					return &exitError{3, fmt.Errorf("--since must be positive")}
				}
				st, err := history.OpenReadOnly(historyDir)
				if err != nil {
					return &exitError{3, err}
				}
				defer st.Close()
				opts.Past = func(limit string) ([]history.Episode, error) {
					return st.Episodes(limit, from, until, limits.DefaultThresholds.Warn)
				}
			}
			opts.Check.Runtimes = &attrib.Defaults
			if cfg.CheckHook != nil {
				cfg.CheckHook(&opts.Check)
			}
			res, err := explain.Explain(cmd.Context(), newHost(), msg, opts)
			if err != nil {
				return &exitError{3, err}
			}
			if cut != "" {
				res.AddNote("stdin: " + cut)
			}
			if failures != "" {
				fs, skipped, err := readFailuresFile(failures)
				if err != nil {
					return &exitError{3, err}
				}
				if skipped > 0 {
					res.AddNote(fmt.Sprintf("%s: %d lines that are no failure skipped", failures, skipped))
				}
				res.ConfirmByKernel(fs)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := writeJSON(out, res); err != nil {
					return &exitError{3, err}
				}
			} else {
				writeExplain(out, res)
			}
			switch {
			case len(res.Causes) == 0,
				res.Outside != nil && !(res.Checked && res.Causes[0].Confirmed):
				return &exitError{code: 2}
			case res.Checked && !res.Causes[0].Confirmed && len(res.Causes[0].Past) == 0:
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&offline, "offline", false, "rank the causes from the message alone, without checking this host")
	cmd.Flags().StringVar(&failures, "failures", "", "confirm the causes against the failing syscalls the kernel reported: a file of enospc trace -o json's lines, or of serve --trace's /api/v1/failures")
	cmd.Flags().StringVar(&historyDir, "history-dir", "", "also look back in the history serve records there (serve --history-dir)")
	cmd.Flags().DurationVar(&since, "since", 24*time.Hour, "with --history-dir: how far back a cause counts as past")
	cmd.Flags().StringVar(&at, "at", "", "with --history-dir: the time the error was seen (RFC 3339); a cause near its max within 10 minutes of it counts")
	return cmd
}

// pastAround is the window --at looks in, either side: a few samples of
// serve's 30 s interval, and a log's clock a little off.
const pastAround = 10 * time.Minute

// readFailuresFile reads the failures --failures names.
func readFailuresFile(path string) ([]explain.KernelFailure, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("--failures: %w", err)
	}
	defer f.Close()
	fs, skipped, err := explain.ReadFailures(f)
	if err != nil {
		return nil, 0, fmt.Errorf("--failures %s: %w", path, err)
	}
	return fs, skipped, nil
}

func writeExplain(w io.Writer, res *explain.Result) {
	if o := res.Outside; o != nil {
		fmt.Fprintf(w, "outside the catalog  %3.0f%%  %s\n", 100*o.Confidence, quote.Terminal(o.Title))
		for _, e := range o.Evidence {
			fmt.Fprintf(w, "     because %s\n", quote.Terminal(e))
		}
		fmt.Fprintf(w, "     → %s\n", quote.Terminal(o.Remedy))
	}
	if len(res.Causes) == 0 && res.Outside != nil {
		return
	}
	if len(res.Causes) == 0 {
		fmt.Fprintln(w, quote.Terminal(res.Note))
		return
	}
	for i, c := range res.Causes {
		status := "possible"
		switch {
		case c.ByKernel:
			status = "CONFIRMED by the kernel"
		case c.Confirmed:
			status = "CONFIRMED on this host"
		case len(c.Past) > 0:
			status = "CONFIRMED as past (history)"
		case !res.Checked:
			status = "not checked (offline)"
		}
		title := c.Title
		if title == "" {
			title = c.Limit
		}
		fmt.Fprintf(w, "%d. %-18s %3.0f%%  %s — %s\n", i+1, c.Limit, 100*c.Confidence, status, quote.Terminal(title))
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "     because %s\n", quote.Terminal(e))
		}
		for _, r := range c.Rows {
			if r.Severity == limits.Unknown {
				fmt.Fprintf(w, "     now: %s unknown (%s)\n", quote.Terminal(r.Scope), quote.Terminal(r.Reason))
				continue
			}
			fmt.Fprintf(w, "     now: %s %s of %s (%.1f%%, %s)\n", quote.Terminal(r.Scope), human(r.Used, r.Unit), human(r.Max, r.Unit), 100*r.Ratio(), r.Severity)
		}
		for _, r := range c.Remedy {
			fmt.Fprintf(w, "     → %s\n", quote.Terminal(r))
		}
	}
	if res.Note != "" {
		fmt.Fprintf(w, "\nnote: %s\n", quote.Terminal(res.Note))
	}
}
