package cli

import (
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/chart"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

func newHistoryCmd() *cobra.Command {
	var (
		dir, output, scope string
		only               []string
		since              time.Duration
		width, height      float64
	)
	cmd := &cobra.Command{
		Use:   "history",
		Short: "What the node's recorded history holds: a table, CSV, JSON, or a chart with the time until full",
		Long: `history reads what serve recorded in --history-dir (it may be writing it)
and prints every row of --since: as a table (samples, rate, time until full,
peak), as CSV (one line a sample: time, limit, scope, used, max, severity),
as JSON, or as a PNG or SVG chart on stdout: one row's use and max over
time with its projection dashed ahead to the time it is full, or, when
--only and --scope select several rows, the 8 fullest in percent of their
max. Exit status 3 when the history cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "table", "csv", "json", "png", "svg":
			default:
				return &exitError{3, fmt.Errorf("-o %q: want table, csv, json, png or svg", output)}
			}
			if since <= 0 {
				return &exitError{3, fmt.Errorf("--since must be positive")}
			}
			now := time.Now()
			rep, err := history.Load(dir, only, scope, now.Add(-since), now)
			if err != nil {
				return &exitError{3, err}
			}
			if rep.Skipped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "enospc history: %d damaged parts of the store skipped: their samples are missing\n", rep.Skipped)
			}
			out := cmd.OutOrStdout()
			switch output {
			case "csv":
				err = rep.WriteCSV(out)
			case "json":
				err = writeJSON(out, rep)
			case "png", "svg":
				var p chart.Plot
				if p, err = rep.Plot(); err == nil {
					err = chart.Render(out, p, output, width, height)
				}
			default:
				writeHistoryTable(out, rep)
			}
			if err != nil {
				return &exitError{3, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "history-dir", "/var/lib/enospc", "the history serve records (serve --history-dir)")
	f.StringSliceVar(&only, "only", nil, "only these limit IDs (comma separated)")
	f.StringVar(&scope, "scope", "", "only this scope (as check prints it)")
	f.DurationVar(&since, "since", 48*time.Hour, "how far back")
	f.StringVarP(&output, "output", "o", "table", "table, csv, json, png or svg")
	f.Float64Var(&width, "width", 0, "chart width in points (1/72 inch)")
	f.Float64Var(&height, "height", 0, "chart height in points")
	return cmd
}

func writeHistoryTable(w io.Writer, rep *history.Report) {
	fmt.Fprintf(w, "enospc history  %s  %s .. %s\n\n", quote.Terminal(rep.Dir), rep.Since.Format(time.RFC3339), rep.Until.Format(time.RFC3339))
	if len(rep.Series) == 0 {
		fmt.Fprintln(w, "no rows recorded in that time")
		return
	}
	scopeW := 5
	scopes := make([]string, len(rep.Series))
	for i, sr := range rep.Series {
		scopes[i] = quote.Terminal(sr.Scope)
		scopeW = max(scopeW, min(utf8.RuneCountInString(scopes[i]), 40))
	}
	fmt.Fprintf(w, "%-18s  %-*s  %7s  %10s  %10s  %s\n", "LIMIT", scopeW, "SCOPE", "SAMPLES", "USED", "MAX", "TREND")
	for i, sr := range rep.Series {
		used, mx, trend := "?", "?", "no use recorded"
		var last *history.Sample
		for j := len(sr.Samples) - 1; j >= 0; j-- {
			if sr.Samples[j].HasUse {
				last = &sr.Samples[j]
				break
			}
		}
		if last != nil {
			used, mx = human(last.Used, sr.Unit), human(last.Max, sr.Unit)
			u := limits.Finding{Unit: sr.Unit, History: sr.Trend}
			trend = check.TrendWords(u)
			if sr.Trend != nil {
				trend += fmt.Sprintf("; peak %s at %s", human(sr.Trend.Peak, sr.Unit), sr.Trend.PeakAt.Format("01-02 15:04"))
			}
		}
		fmt.Fprintf(w, "%-18s  %-*s  %7d  %10s  %10s  %s\n", sr.Limit, scopeW, keepTail(scopes[i], scopeW), len(sr.Samples), used, mx, trend)
	}
}
