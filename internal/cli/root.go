// Package cli is enospc's command line: one file per subcommand, each a thin
// shell around one library call.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

// Config carries what tests substitute; the zero value is production.
type Config struct {
	// HostHook, when set, adjusts the Host built from the flags (tests
	// serve fixture statfs numbers and a fixed clock through it).
	HostHook func(*host.Host)
	// CheckHook, when set, adjusts check's options (tests serve a fixture
	// host's runtime inventory through it).
	CheckHook func(*check.Options)
	// Stdin, when set, is read instead of the process's stdin.
	Stdin io.Reader
}

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// writeJSON prints v as indented JSON, the output of every -o json.
// Host text stays data there, as the host said it: encoding/json writes
// the C0 controls as \u00XX, and quote.JSON the characters it lets
// through that a terminal acts on (C1 controls, bidi overrides), so the
// output is safe to print and every value decodes unchanged. A byte that
// is not valid UTF-8 becomes U+FFFD: two names that differ only there
// read the same, but nothing is added that the host did not say, and no
// decision enospc takes reads its own JSON back.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(quote.JSON(b.Bytes()))
	return err
}

// Run runs enospc with args and returns the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunWith(ctx, args, stdout, stderr, Config{})
}

// RunWith is Run with test substitutions.
func RunWith(ctx context.Context, args []string, stdout, stderr io.Writer, cfg Config) int {
	root := newRoot(cfg)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cfg.Stdin != nil {
		root.SetIn(cfg.Stdin)
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "enospc:", quote.Terminal(ee.err.Error()))
		}
		return ee.code
	}
	// Every RunE returns an exitError: any other error is cobra's, a usage
	// error (an unknown flag or subcommand, a bad argument or flag value).
	// enospc did not look, so the status is 3, unknown, not 1, a warning.
	fmt.Fprintf(stderr, "enospc: %s (see enospc --help)\n", quote.Terminal(err.Error()))
	return 3
}

type rootFlags struct {
	proc, sys, root string
}

func newRoot(cfg Config) *cobra.Command {
	var rf rootFlags
	cmd := &cobra.Command{
		Use:   "enospc",
		Short: "Find the hidden kernel limit behind \"no space left on device\"",
		Long: `enospc finds which hidden kernel limit makes a container host fail with
"no space left on device" or "disk quota exceeded" while df shows free space:
the keyring quota, inodes, inotify watches, memory cgroup ids, pids, mounts,
file handles and leaked runtime state. It names the holder and the fix.
A usage error (an unknown flag or subcommand, a bad argument) exits 3.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&rf.proc, "proc", "/proc", "procfs of the host to inspect (/host/proc in a pod)")
	cmd.PersistentFlags().StringVar(&rf.sys, "sys", "/sys", "sysfs of the host to inspect")
	cmd.PersistentFlags().StringVar(&rf.root, "root", "/", "root filesystem of the host; mount points and runtime paths are resolved under it")
	newHost := func() *host.Host {
		h := host.New(rf.proc, rf.sys, rf.root)
		if cfg.HostHook != nil {
			cfg.HostHook(h)
		}
		return h
	}
	cmd.AddCommand(newCheckCmd(newHost, cfg), newExplainCmd(newHost, cfg), newLogsCmd(newHost), newServeCmd(newHost, cfg), newFixCmd(newHost, cfg), newTraceCmd(newHost), newChurnCmd(newHost), newHistoryCmd())
	return cmd
}
