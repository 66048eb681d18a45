package churn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// RuncOptions say which runc churn drives and on what.
type RuncOptions struct {
	// Binary is runc's path ("" runc from PATH).
	Binary string
	// Root is runc's state directory (--root; "" runc's default,
	// /run/runc).
	Root string
	// Bundle is the OCI bundle every container is made from.
	Bundle string
}

// runcDriver drives runc's command line as a shell loop would: `runc run
// -d`, `runc pause`, `runc resume`, `runc kill ID KILL`, `runc delete`.
// runc has no daemon and no shim: its footprint is the files under its
// state directory.
type runcDriver struct {
	opts RuncOptions
	h    *host.Host
	fp   *footprint
	null *os.File
}

func newRuncDriver(h *host.Host, o Options) *runcDriver {
	ro := o.Runc
	if ro.Binary == "" {
		ro.Binary = "runc"
	}
	if ro.Root == "" {
		ro.Root = "/run/runc"
	}
	return &runcDriver{opts: ro, h: h}
}

func (d *runcDriver) prepare(context.Context) error {
	bin, err := exec.LookPath(d.opts.Binary)
	if err != nil {
		return fmt.Errorf("runc: %w", err)
	}
	d.opts.Binary = bin
	if d.opts.Bundle == "" {
		return errors.New("runc needs a bundle (a directory holding config.json)")
	}
	if _, err := os.Stat(filepath.Join(d.opts.Bundle, "config.json")); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if d.null, err = os.Open(os.DevNull); err != nil {
		return err
	}
	d.fp = &footprint{h: d.h, dirs: []string{d.opts.Root}}
	return nil
}

func (d *runcDriver) checkOptions(*check.Options) {}

func (d *runcDriver) runc(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// #nosec G204 -- the operator's runc, on the operator's bundle: what churn is for; no shell.
	cmd := exec.CommandContext(ctx, d.opts.Binary, append([]string{"--root", d.opts.Root}, args...)...)
	// The container inherits runc's stdio with `run -d`: /dev/null and a
	// file, never a pipe this process would wait on.
	out, err := os.CreateTemp("", "enospc-churn-runc-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = d.null, out, out
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if runErr == nil {
		return nil
	}
	b, _ := os.ReadFile(out.Name())
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	msg := strings.TrimSpace(string(bytes.ToValidUTF8(b, []byte("?"))))
	if msg == "" {
		return runErr
	}
	return fmt.Errorf("%w: %s", runErr, msg)
}

func (d *runcDriver) step(ctx context.Context, id, step string) error {
	switch step {
	case StepRun:
		return d.runc(ctx, "run", "-d", "--bundle", d.opts.Bundle, id)
	case StepPause:
		return d.runc(ctx, "pause", id)
	case StepResume:
		return d.runc(ctx, "resume", id)
	case StepKill:
		return d.runc(ctx, "kill", id, "KILL")
	case StepDelete:
		return d.runc(ctx, "delete", id)
	}
	return fmt.Errorf("step %q: runc has no such step", step)
}

func (d *runcDriver) remove(ctx context.Context, id string) error {
	if _, err := os.Stat(filepath.Join(d.opts.Root, id)); os.IsNotExist(err) {
		return nil
	}
	d.runc(ctx, "resume", id)
	return d.runc(ctx, "delete", "--force", id)
}

// cleanup removes the containers of churn's earlier runs from runc's
// state directory: those named with churn's prefix.
func (d *runcDriver) cleanup(ctx context.Context) error {
	ents, err := os.ReadDir(d.opts.Root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), IDPrefix) {
			if err := d.remove(ctx, e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (d *runcDriver) leftovers() int         { return 0 }
func (d *runcDriver) removeLeftovers() error { return nil }

func (d *runcDriver) footprint(ctx context.Context) []Reading {
	if d.fp == nil {
		return nil
	}
	return d.fp.read(ctx)
}

func (d *runcDriver) close() {
	if d.null != nil {
		d.null.Close()
	}
}
