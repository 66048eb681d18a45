package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/logs"
)

func newLogsCmd(newHost func() *host.Host) *cobra.Command {
	var (
		output  string
		since   string
		journal bool
	)
	cmd := &cobra.Command{
		Use:   "logs [PATH|- ...]",
		Short: "Find hidden-limit errors in logs and group them by cause",
		Long: `logs scans journald (through journalctl), log files and directories (syslog,
kubelet, containerd, dockerd, container json logs, rotated .gz files) or stdin
(-) for the errors of hidden limits, and groups them by cause: the limit ID,
how many, first and last seen, the unit or container, one example. Without a
path it scans the journal and the node's usual logs. It streams: memory stays
constant on logs of any size.
Exit status: 0 nothing found, 1 errors found, 3 no source could be read.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return &exitError{3, fmt.Errorf("-o %q: want table or json", output)}
			}
			h := newHost()
			now := h.Now()
			opts := logs.Options{Paths: args, Stdin: cmd.InOrStdin(), Journal: journal, Root: h.Root, Now: now}
			if since != "" {
				t, err := parseSince(since, now)
				if err != nil {
					return &exitError{3, err}
				}
				opts.Since = t
			}
			if len(args) == 0 {
				paths, hasJournal := logs.Defaults(h.Root)
				opts.Paths = paths
				if !cmd.Flags().Changed("journal") {
					opts.Journal = hasJournal
				}
			}
			rep, err := logs.Run(cmd.Context(), opts)
			if err != nil {
				return &exitError{3, err}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if err := writeJSON(out, rep); err != nil {
					return &exitError{3, err}
				}
			} else {
				writeLogs(out, rep)
			}
			readable := false
			for _, s := range rep.Sources {
				if s.Error == "" || s.Bytes > 0 { // a file cut short was read up to the cut
					readable = true
				}
			}
			switch {
			case !readable:
				return &exitError{code: 3}
			case len(rep.Groups) > 0:
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&since, "since", "", "only lines since then: a duration (24h, 90m) or a time (2026-11-21 or RFC 3339)")
	cmd.Flags().BoolVar(&journal, "journal", false, "also read journald through journalctl (default: on when no path is given and journalctl is there)")
	return cmd
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration looks back, and cannot be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h) or a time (2026-11-21, 2026-11-21 08:00:00, RFC 3339)", s)
}

func writeLogs(w io.Writer, rep *logs.Report) {
	size := human(rep.Bytes, "bytes")
	if rep.Bytes < 1<<20 {
		size += " bytes"
	}
	fmt.Fprintf(w, "enospc logs  %d %s, %s, %d lines, %d matches\n\n", len(rep.Sources), plural(len(rep.Sources), "source", "sources"), size, rep.Lines, rep.Matched)
	if len(rep.Groups) == 0 {
		fmt.Fprintln(w, "no error of a hidden limit found")
	}
	for _, g := range rep.Groups {
		span := "time unknown"
		if g.First != nil {
			span = g.First.Format(time.RFC3339) + " … " + g.Last.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%-18s %6d  %s\n", g.Limit, g.Count, span)
		type kv struct {
			k string
			v int64
		}
		var where []kv
		for k, v := range g.Where {
			where = append(where, kv{k, v})
		}
		sort.Slice(where, func(i, j int) bool {
			if where[i].v != where[j].v {
				return where[i].v > where[j].v
			}
			return where[i].k < where[j].k
		})
		var parts []string
		for i, x := range where {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("%d more", len(where)-3))
				break
			}
			parts = append(parts, fmt.Sprintf("%s %d", quote.Terminal(x.k), x.v))
		}
		fmt.Fprintf(w, "    where: %s\n", strings.Join(parts, ", "))
		ex := quote.Terminal(g.Example)
		if r := []rune(ex); len(r) > 300 {
			ex = string(r[:300]) + "…"
		}
		fmt.Fprintf(w, "    e.g.:  %s\n", ex)
		fmt.Fprintf(w, "    → enospc explain on it, or enospc check --only %s\n", g.Limit)
	}
	for _, s := range rep.Sources {
		if s.Error != "" {
			fmt.Fprintf(w, "\nnote: %s: %s\n", quote.Terminal(s.Name), quote.Terminal(s.Error))
		}
		if s.LongLines > 0 {
			fmt.Fprintf(w, "\nnote: %s: %d %s longer than %d MiB: only the first MiB of each was looked at\n", s.Name, s.LongLines, plural(int(s.LongLines), "line", "lines"), logs.MaxLine>>20)
		}
	}
}
