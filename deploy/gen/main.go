// Command gen writes deploy/node-problem-detector/enospc-log-monitor.json
// from the limit catalog's error signatures:
//
//	go run ./deploy/gen                      rewrite the committed file (kernel messages)
//	go run ./deploy/gen -ident kubelet -o -  the same rules for another journald identifier, on stdout
//
// NPD's journald watcher reads the entries of one SYSLOG_IDENTIFIER, so
// messages of runc, containerd, dockerd or the kubelet need a monitor of
// their own (-ident containerd, -ident kubelet, ...).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/enospc/enospc/deploy"
)

func main() {
	ident := flag.String("ident", "kernel", "journald SYSLOG_IDENTIFIER the monitor reads")
	out := flag.String("o", "", "output file, - for stdout (default: the committed file, for -ident kernel)")
	flag.Parse()
	if err := run(*ident, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ident, out string) error {
	b, err := deploy.LogMonitorJSON(ident)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	if out == "" {
		if ident != "kernel" {
			return fmt.Errorf("-ident %s: name the output with -o; the committed file is the kernel's", ident)
		}
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		out = filepath.Join(root, "deploy", deploy.LogMonitorFile)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil { // #nosec G306 -- a file of the repository, world-readable like the rest
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: wrote %s\n", out)
	return nil
}

// moduleRoot is the nearest directory holding go.mod, from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: run it inside the repository, or give -o")
		}
		dir = parent
	}
}
