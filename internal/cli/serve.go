package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/serve"
)

func newServeCmd(newHost func() *host.Host, cfg Config) *cobra.Command {
	var (
		listen         string
		cache, timeout time.Duration
		top            int
		hf             *hostFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the check as Prometheus metrics, JSON and a web page (read-only)",
		Long: `serve answers on --listen (default 127.0.0.1:9877):
  /metrics         Prometheus metrics: enospc_limit_used, enospc_limit_max,
                   enospc_limit_severity {limit, scope}; per family
                   enospc_scrape_collector_success and _duration_seconds
  /api/v1/check    the JSON of enospc check -o json
  /api/v1/history  the ratio of every row since the server started
  /healthz         ok
  /                a page of every limit, worst first, with holders and history
Concurrent requests share one check, and a snapshot is served for --cache.
Nothing is changed over HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := hf.options()
			if cfg.CheckHook != nil {
				cfg.CheckHook(&opts)
			}
			srv := serve.New(serve.Options{NewHost: newHost, Check: opts, Cache: cache, Timeout: timeout, TopScopes: top})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{3, err}
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: timeout + 30*time.Second}
			fmt.Fprintf(cmd.ErrOrStderr(), "enospc serve: listening on http://%s\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return &exitError{3, err}
			case <-cmd.Context().Done():
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return &exitError{3, err}
				}
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9877", "address to listen on (host:port; 0.0.0.0:9877 in a DaemonSet)")
	f.DurationVar(&cache, "cache", 5*time.Second, "serve a snapshot for this long before the next check")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up on one check after this long")
	f.IntVar(&top, "top-scopes", 10, "series per limit; the other scopes are summed into scope=\"other\"")
	hf = addHostFlags(f)
	return cmd
}
