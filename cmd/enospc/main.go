// Command enospc finds the hidden kernel limit behind "no space left on
// device" and "disk quota exceeded" on container hosts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/enospc/enospc/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
