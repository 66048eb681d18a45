package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/serve"
)

// firstWait bounds how long a request waits for the first snapshot: long
// enough for the first check of most hosts, short of Prometheus's default
// 10 s scrape timeout.
const firstWait = 5 * time.Second

func newServeCmd(newHost func() *host.Host, cfg Config) *cobra.Command {
	var (
		listen            string
		interval, timeout time.Duration
		top, maxConns     int
		memLimit          int64
		exposeHolders     bool
		historyDir        string
		historyRetention  time.Duration
		withTrace         bool
		hf                *hostFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the check as Prometheus metrics, JSON and a web page (read-only)",
		Long: `serve answers on --listen (default 127.0.0.1:9877):
  /metrics         Prometheus metrics: enospc_limit_used, enospc_limit_max,
                   enospc_limit_severity {limit, scope}; per family
                   enospc_scrape_collector_success and _duration_seconds;
                   enospc_snapshot_age_seconds and enospc_snapshot_stale
  /api/v1/check    the JSON of enospc check -o json, holders hidden
  /api/v1/history  the ratio of every row since the server started
  /api/v1/failures with --trace: the failing syscalls caught, named, newest
                   first (also enospc_syscall_failures_total in /metrics)
  /healthz         ok, or 503 and why (no snapshot yet, or a stale one)
  /api/v1/chart    ?limit=L&scope=S[&since=48h]: a row's recorded history
                   as SVG (with --history-dir)
  /                a page of every limit, worst first, with holders and history
With --history-dir (default /var/lib/enospc; "" turns it off) every check's
rows are recorded there, kept --history-retention (14 days; every sample
for 48 h, then one per 10 minutes), and each row gains its rate, time until
full and peak (enospc_limit_eta_seconds; "history" in /api/v1/check). A
directory that cannot be written (a full disk) turns recording off, says
why here and in enospc_history_recording 0; serving goes on.
The host is checked in the background, at start and then every --interval;
a request is answered from the last snapshot and never waits for a check.
A snapshot older than 3 intervals (or interval + timeout, if longer) is
stale: /healthz and /api/v1/check answer 503, /metrics says
enospc_snapshot_stale 1. Before the first check ends every endpoint but
the page waits for it up to 5 s, then answers 503 "no snapshot yet".
By default the holders' pids and process names and the names users gave
their keys and IPC objects are hidden; --expose-holders shows them.
Nothing is changed over HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("cache") {
				return &exitError{3, fmt.Errorf("--cache is gone: serve checks the host in the background every --interval (30s), and no request runs a check")}
			}
			if interval <= 0 || timeout <= 0 {
				return &exitError{3, fmt.Errorf("--interval and --timeout must be positive")}
			}
			if historyRetention < history.RawRetention {
				return &exitError{3, fmt.Errorf("--history-retention must be at least %s", history.RawRetention)}
			}
			if memLimit < 0 {
				return &exitError{3, fmt.Errorf("--memory-limit must be 0 or more")}
			}
			if memLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
				// A soft limit: the collector works harder as the heap
				// nears it, rather than letting it double after every
				// check of a bad night (14 MB allocated a check).
				debug.SetMemoryLimit(memLimit)
			}
			if maxConns <= 0 {
				return &exitError{3, fmt.Errorf("--max-connections must be positive")}
			}
			opts := hf.options()
			if cfg.CheckHook != nil {
				cfg.CheckHook(&opts)
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			sopts := serve.Options{NewHost: newHost, Check: opts, Interval: interval, Timeout: timeout, TopScopes: top, ExposeHolders: exposeHolders,
				FirstWait: min(timeout, firstWait), HistoryDir: historyDir, HistoryRetention: historyRetention, Log: cmd.ErrOrStderr()}
			if withTrace {
				sopts.Failures = startServeTrace(ctx, newHost(), opts, cmd.ErrOrStderr())
			}
			srv := serve.New(sopts)
			defer srv.Close()
			ln, err := serve.Listen(listen, maxConns)
			if err != nil {
				return &exitError{3, err}
			}
			go srv.Run(ctx)
			hs := serve.NewHTTPServer(srv.Handler(), serve.DefaultHTTPLimits)
			fmt.Fprintf(cmd.ErrOrStderr(), "enospc serve: checking every %s; listening on http://%s\n", interval, ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return &exitError{3, err}
			case <-ctx.Done():
				sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer scancel()
				if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return &exitError{3, err}
				}
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9877", "address to listen on (host:port); loopback by default, 0.0.0.0:9877 to be reached from elsewhere")
	f.DurationVar(&interval, "interval", 30*time.Second, "check the host this often, in the background")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up on one check after this long")
	f.IntVar(&top, "top-scopes", 10, "series per limit; the other scopes are summed into scope=\"other\"")
	f.Int64Var(&memLimit, "memory-limit", 24<<20, "soft limit of the Go heap in bytes (the collector works harder near it; GOMEMLIMIT, when set, wins; 0: none)")
	f.IntVar(&maxConns, "max-connections", serve.DefaultHTTPLimits.MaxConns, "connections served at once; more wait to be accepted")
	f.StringVar(&historyDir, "history-dir", "/var/lib/enospc", "record every check's rows in this directory, for rates, times until full and enospc history; empty: record nothing")
	f.DurationVar(&historyRetention, "history-retention", history.DefaultRetention, "keep the recorded history this long")
	f.BoolVar(&exposeHolders, "expose-holders", false, "serve the holders' pids and process names and the names of users' keys and IPC objects")
	f.BoolVar(&withTrace, "trace", false, "also run enospc trace (eBPF, CAP_BPF and CAP_PERFMON): enospc_syscall_failures_total and /api/v1/failures")
	// --cache was how long a snapshot was served before a request ran the
	// next check. Refused with the reason rather than unknown, so that
	// an old command line says what replaced it.
	f.Duration("cache", 0, "")
	f.MarkHidden("cache")
	hf = addHostFlags(f)
	return cmd
}
