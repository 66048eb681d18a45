//go:build lab

// Package labkit is the lab's shared harness. The lab reproduces each limit's failure on the real kernel and asserts
// that `enospc check` names the limit, its scope and its holder. It needs
// root, and the tools the README's test command installs (runc, containerd,
// busybox-static). The README's lab section states the isolation rules every test follows:
// dedicated uids, private mounts, cgroups and runtime directories, no global
// sysctl left changed, everything bounded and cleaned up.
package labkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/limits"
)

// enospcBin is the enospc binary built for this run: the lab tests the
// real command line, as an operator runs it.
var enospcBin string

// Main is the TestMain of every lab package: it refuses to run without
// root, builds enospc, runs the tests and removes the build.
func Main(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "LAB CANNOT RUN: it drives kernel limits to exhaustion and needs root (run the README's test command as root)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "enospc-lab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
	enospcBin = filepath.Join(dir, "enospc")
	build := exec.Command("go", "build", "-o", enospcBin, "github.com/enospc/enospc/cmd/enospc")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "lab: build enospc:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// RunCheck runs `enospc check -o json` with extra args and decodes the
// report. It fails the test when the command cannot run or its output is
// not the JSON contract.
func RunCheck(t testing.TB, args ...string) (*check.Report, int) {
	t.Helper()
	cmd := exec.Command(enospcBin, append([]string{"check", "-o", "json", "--all"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("enospc check: %v", err)
	}
	var rep check.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("enospc check (exit %d, %s): output is not the JSON report: %v\nstdout:\n%s\nstderr:\n%s", code, time.Since(start), err, stdout.String(), stderr.String())
	}
	return &rep, code
}

// Find returns the finding of limit whose scope satisfies match, or fails
// the test listing what the report holds for that limit.
func Find(t testing.TB, rep *check.Report, limit string, match func(scope string) bool) limits.Finding {
	t.Helper()
	var have []string
	for _, f := range rep.Findings {
		if f.Limit != limit {
			continue
		}
		if match(f.Scope) {
			return f
		}
		have = append(have, fmt.Sprintf("%q %s %d/%d", f.Scope, f.Severity, f.Used, f.Max))
	}
	t.Fatalf("no %s finding with the wanted scope; the report has: %s", limit, strings.Join(have, "; "))
	return limits.Finding{}
}

// ScopeIs matches one scope exactly.
func ScopeIs(want string) func(string) bool { return func(s string) bool { return s == want } }

// RequireTool returns the path of a program the lab needs. A missing tool
// fails the test loudly: the README's test command installs them.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("LAB CANNOT RUN %s: %s is not installed (the README's test command installs it: apt-get install runc containerd busybox-static)", t.Name(), name)
	}
	return p
}

// UID returns a dedicated host uid for one test: 200000 and up, offset
// by the process id so that concurrent runs on one machine do not share
// per-user kernel counters.
func UID(n int) int {
	return 200000 + (os.Getpid()%5000)*16 + n
}

// Bin is the path of the enospc binary under test.
func Bin() string { return enospcBin }

// MountTmpfs mounts a private tmpfs with opts on a fresh directory under
// /tmp, in the host mount namespace (enospc reads /proc/1/mountinfo),
// and unmounts (lazily if it must) and removes it when the test ends. It
// returns the mount point.
func MountTmpfs(t testing.TB, source, opts string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", source+"-")
	if err != nil {
		t.Fatalf("mount point: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil && err != unix.EINVAL {
			// EINVAL: not mounted. Anything else: try lazily, then say so.
			if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
				t.Errorf("CLEANUP FAILED: unmount %s: %v / %v", dir, err, err2)
			}
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("CLEANUP FAILED: remove mount point %s: %v", dir, err)
		}
	})
	if err := unix.Mount(source, dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		t.Fatalf("LAB CANNOT RUN: mount tmpfs -o %s on %s: %v", opts, dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make %s private: %v", dir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	return dir
}

// RunEnospc runs the enospc under test with args, bounded by d, and
// returns its stdout, stderr and exit status. It fails the test when the
// command cannot run at all or does not finish in time.
func RunEnospc(t testing.TB, d time.Duration, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(enospcBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("enospc %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("enospc %s did not finish in %s", strings.Join(args, " "), d)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("enospc %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

// RunFix runs `enospc fix args...` within 2 minutes (RunEnospc).
func RunFix(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return RunEnospc(t, 2*time.Minute, append([]string{"fix"}, args...)...)
}

// WaitFor polls cond every 20 ms until it holds (true) or d has passed
// (false).
func WaitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// FreeAddr is a loopback address with a port free now, for a server the
// test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// KeyUser is the key quota use of one uid: its line of /proc/key-users.
type KeyUser struct {
	Keys, MaxKeys, Bytes, MaxBytes int64
}

// ReadKeyUser returns uid's line of /proc/key-users; ok is false when the
// uid owns no key record.
func ReadKeyUser(t testing.TB, uid int) (ku KeyUser, ok bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/key-users")
	if err != nil {
		t.Fatalf("read /proc/key-users: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		u, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(u) != strconv.Itoa(uid) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 4 {
			t.Fatalf("/proc/key-users: odd line %q", line)
		}
		if _, err := fmt.Sscanf(f[2]+" "+f[3], "%d/%d %d/%d", &ku.Keys, &ku.MaxKeys, &ku.Bytes, &ku.MaxBytes); err != nil {
			t.Fatalf("/proc/key-users: line %q: %v", line, err)
		}
		return ku, true
	}
	return KeyUser{}, false
}
