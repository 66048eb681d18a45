package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

func newCheckCmd(newHost func() *host.Host, cfg Config) *cobra.Command {
	var (
		output        string
		warn, crit    float64
		all           bool
		only          []string
		statfsTimeout time.Duration
		timeout       time.Duration
		by            string
		historyDir    string
		hf            *hostFlags
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Snapshot every hidden limit: used, max, severity, holders, fix",
		Long: `check reads every limit in the catalog once, read-only, and prints the rows
worst first. Exit status: 0 all ok, 1 some warning, 2 some critical, 3 some
unknown and nothing worse (the monitoring-plugin convention); 3 as well when
the check itself cannot run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			oneShotGC()
			switch output {
			case "table", "json", "npd":
			default:
				return &exitError{3, fmt.Errorf("-o %q: want table, json or npd", output)}
			}
			h := newHost()
			if cmd.Flags().Changed("statfs-timeout") {
				h.StatfsTimeout = statfsTimeout
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			opts := hf.options()
			opts.Thresholds = limits.Thresholds{Warn: warn, Crit: crit}
			opts.Only, opts.By = only, by
			if cfg.CheckHook != nil {
				cfg.CheckHook(&opts)
			}
			var historyNote string
			if historyDir != "" {
				st, err := history.OpenReadOnly(historyDir)
				if err != nil {
					historyNote = fmt.Sprintf("history: %v", err)
				} else {
					defer st.Close()
					opts.History = st.Annotate
				}
			}
			rep, err := check.Run(ctx, h, opts)
			if err != nil {
				return &exitError{3, err}
			}
			if historyNote != "" {
				rep.Notes = append(rep.Notes, historyNote)
			}
			out := cmd.OutOrStdout()
			code := check.ExitCode(rep.Findings)
			switch output {
			case "json":
				if err := writeJSON(out, rep); err != nil {
					return &exitError{3, err}
				}
			case "npd":
				code = writeNPD(out, rep)
			default:
				writeTable(out, rep, tableOptions{all: all, color: colorWanted(out), root: os.Geteuid() == 0})
				if rep.By != "" {
					writeGroups(out, rep)
				}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or npd (node-problem-detector custom plugin)")
	f.Float64Var(&warn, "warn", limits.DefaultThresholds.Warn, "fraction of a limit's max at which a row is a warning")
	f.Float64Var(&crit, "crit", limits.DefaultThresholds.Crit, "fraction of a limit's max at which a row is critical")
	f.BoolVar(&all, "all", false, "table: show every ok row, not only the fullest one of each limit")
	f.StringSliceVar(&only, "only", nil, "check only these limit IDs (comma separated)")
	f.DurationVar(&statfsTimeout, "statfs-timeout", 2*time.Second, "give up on a filesystem that does not answer statfs in this time (dead NFS)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up on the whole check after this long")
	hf = addHostFlags(f)
	f.StringVar(&by, "by", "", "also group what every container or pod holds across limits: container or pod")
	f.StringVar(&historyDir, "history-dir", "", "read the history serve records there (serve --history-dir) for each row's rate, time until full and peak")
	return cmd
}

func colorWanted(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeNPD speaks node-problem-detector's custom plugin protocol: exit 0
// OK, 1 problem, 2 unknown; stdout one line of at most 80 characters.
func writeNPD(w io.Writer, rep *check.Report) int {
	var worst *limits.Finding
	if len(rep.Findings) > 0 {
		worst = &rep.Findings[0]
	}
	msg, code := "all hidden limits ok", 0
	switch {
	case worst == nil:
		msg, code = "no limits read", 2
	case worst.Severity == limits.Critical || worst.Severity == limits.Warning:
		msg = fmt.Sprintf("%s %s %s: %s of %s", worst.Severity, worst.Limit, quote.Terminal(worst.Scope), human(worst.Used, worst.Unit), human(worst.Max, worst.Unit))
		code = 1
	case worst.Severity == limits.Unknown:
		msg, code = fmt.Sprintf("unknown %s %s: %s", worst.Limit, quote.Terminal(worst.Scope), quote.Terminal(worst.Reason)), 2
	}
	if r := []rune(msg); len(r) > 80 {
		msg = string(r[:80])
	}
	fmt.Fprintln(w, msg)
	return code
}

type tableOptions struct {
	all, color, root bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[33m"
	ansiMag    = "\x1b[35m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
)

func writeTable(w io.Writer, rep *check.Report, o tableOptions) {
	paint := func(code, s string) string {
		if !o.color {
			return s
		}
		return code + s + ansiReset
	}
	fmt.Fprintf(w, "enospc check  host %s  kernel %s  %s\n\n", quote.Terminal(rep.Host), quote.Terminal(rep.Kernel), rep.Time.Format(time.RFC3339))
	shownOK := map[string]bool{}
	var rows []limits.Finding
	hidden := 0
	for _, f := range rep.Findings {
		// Findings are sorted worst first, so the first ok row of a limit
		// is its fullest.
		if f.Severity == limits.OK && !o.all {
			if shownOK[f.Limit] {
				hidden++
				continue
			}
			shownOK[f.Limit] = true
		}
		rows = append(rows, f)
	}
	scopes := make([]string, len(rows))
	scopeW := 5
	for i, f := range rows {
		scopes[i] = quote.Terminal(f.Scope)
		scopeW = max(scopeW, min(utf8.RuneCountInString(scopes[i]), 48))
	}
	fmt.Fprintf(w, "%-8s  %-18s  %-*s  %10s  %10s  %6s  %s\n", "SEVERITY", "LIMIT", scopeW, "SCOPE", "USED", "MAX", "USE%", "HOLDERS")
	needRoot := false
	for i, f := range rows {
		sev := f.Severity.String()
		color := map[limits.Severity]string{limits.Critical: ansiRed, limits.Warning: ansiYellow, limits.Unknown: ansiMag, limits.OK: ansiGreen}[f.Severity]
		pct := "-"
		used, mx := human(f.Used, f.Unit), human(f.Max, f.Unit)
		if f.Max > 0 {
			pct = fmt.Sprintf("%.1f", 100*f.Ratio())
		}
		if f.Severity == limits.Unknown && f.Max == 0 {
			used, mx = "?", "?"
		}
		scope := keepTail(scopes[i], scopeW)
		mark := ""
		if f.NeedsRoot && !o.root {
			mark = "*"
			needRoot = true
		}
		fmt.Fprintf(w, "%s  %-18s  %-*s  %10s  %10s  %6s  %s\n",
			paint(color, fmt.Sprintf("%-8s", sev)), f.Limit+mark, scopeW, scope, used, mx, pct, holders(f))
		if f.Reason != "" && f.Severity != limits.OK {
			fmt.Fprintf(w, "          %s\n", paint(ansiDim, quote.Terminal(f.Reason)))
		}
		if h := f.History; h != nil && (h.RatePerHour != 0 || f.Severity != limits.OK) {
			fmt.Fprintf(w, "          %s; peak %s at %s\n", check.TrendWords(f), human(h.Peak, f.Unit), h.PeakAt.Format("01-02 15:04"))
		}
		if f.Severity == limits.Warning || f.Severity == limits.Critical {
			writeHolders(w, f)
		}
		for _, r := range f.Remedy {
			fmt.Fprintf(w, "          → %s\n", quote.Terminal(r))
		}
	}
	if hidden > 0 {
		fmt.Fprintf(w, "\n%d more ok %s not shown (--all shows them)\n", hidden, plural(hidden, "row", "rows"))
	}
	if needRoot {
		fmt.Fprintln(w, "\n* incomplete without root: other users' processes and keys cannot be read; run as root for every holder")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", quote.Terminal(n))
	}
}

// keepTail cuts s to its last n characters, "…" first, when it is longer:
// the end of a path or a scope says the most.
func keepTail(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// human prints a number in its unit: bytes in binary units, counts with
// k/M suffixes above a million.
func human(v int64, unit string) string {
	if unit == "bytes" && v >= 1<<20 {
		const units = "KMGTPE"
		f := float64(v)
		i := -1
		for f >= 1024 && i < len(units)-1 {
			f /= 1024
			i++
		}
		return fmt.Sprintf("%.1f%ci", f, units[i])
	}
	if v >= 10_000_000 {
		return fmt.Sprintf("%.1fM", float64(v)/1e6)
	}
	return fmt.Sprintf("%d", v)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
