// Command gen writes the deploy files derived from code:
// deploy/node-problem-detector/enospc-log-monitor.json from the limit
// catalog's error signatures, and deploy/kubernetes/seccomp/enospc.json,
// the enospc container's seccomp profile (containerd's default profile for
// its capabilities, and keyctl KEYCTL_DESCRIBE):
//
//	go run ./deploy/gen                      rewrite both committed files (go generate ./deploy/... too)
//	go run ./deploy/gen -ident kubelet -o -  the log monitor's rules for another journald identifier, on stdout
//	go run ./deploy/gen -seccomp -           the seccomp profile, on stdout
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
	seccompOut := flag.String("seccomp", "", "write the seccomp profile alone to this file, - for stdout")
	flag.Parse()
	var err error
	switch {
	case *seccompOut != "":
		err = write(deploy.SeccompJSON, *seccompOut)
	default:
		err = run(*ident, *out)
		if err == nil && *ident == "kernel" && *out == "" {
			err = write(deploy.SeccompJSON, "")
		}
	}
	if err != nil {
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

// write writes the seccomp profile to out, - for stdout, the committed
// file when out is empty.
func write(gen func() ([]byte, error), out string) error {
	b, err := gen()
	if err != nil {
		return err
	}
	if out == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	if out == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		out = filepath.Join(root, "deploy", deploy.SeccompFile)
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
