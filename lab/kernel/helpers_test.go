//go:build lab

package kernel

// The package's own harness: helper processes (this test binary re-executed
// under a dedicated uid in a helper mode), cgroup and sysctl plumbing, and
// bounded waits. Everything here registers its cleanup with t.Cleanup.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "ENOSPC_LAB_KERNEL_HELPER"

// helperName is the file name, and so the comm, of the helper binary.
const helperName = "enospc-helper"

// helperModes are the programs a helper process can run. Each prints one
// JSON helperReport line on stdout once it holds what it took, then holds it
// until its stdin is closed or it is killed.
var helperModes = map[string]func() helperReport{
	"inotify-instances": helperInotifyInstances,
	"inotify-watches":   helperInotifyWatches,
}

// helperReport is what a helper says about the limit it ran into.
type helperReport struct {
	// Count is how many objects it holds (instances, watches).
	Count int `json:"count"`
	// Instances is how many inotify instances it holds.
	Instances int `json:"instances"`
	// Err is the exact error text of the call that failed, Errno its number.
	Err   string `json:"err"`
	Errno int    `json:"errno"`
	// Fatal is set when the helper could not do its job.
	Fatal string `json:"fatal,omitempty"`
}

// init runs before TestMain: a re-executed helper must not reach
// labkit.Main, which refuses to run without root and builds enospc.
func init() {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	fn, ok := helperModes[mode]
	var rep helperReport
	if !ok {
		rep.Fatal = "unknown helper mode " + mode
	} else {
		rep = fn()
	}
	b, _ := json.Marshal(rep)
	os.Stdout.Write(append(b, '\n'))
	if rep.Fatal != "" {
		os.Exit(1)
	}
	// Hold everything until the test closes stdin (or kills us); bounded
	// so that a helper orphaned by a crashed test does not live forever.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	os.Exit(0)
}

func helperEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// helper is a running helper process.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Report helperReport
}

func (h *helper) PID() int { return h.cmd.Process.Pid }

// helperBinary copies this test binary to a directory every uid can
// traverse: go test builds it under a 0700 directory, which a dedicated uid
// cannot exec from. The copy is named helperName, which becomes the comm of
// the helpers.
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	dir, err := os.MkdirTemp("", "enospc-lab-helper-")
	if err != nil {
		t.Fatalf("helper dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod helper dir: %v", err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatalf("open the test binary: %v", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, helperName)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatalf("copy the test binary: %v", err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		t.Fatalf("copy the test binary: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("copy the test binary: %v", err)
	}
	return dst
}

// startHelper runs a helper mode as uid (gid = uid), waits (bounded) for its
// report and registers its end: stdin closed, then killed, then reaped.
func startHelper(t *testing.T, bin, mode string, uid int, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{helperEnv + "=" + mode, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("helper %s: %v", mode, err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s as uid %d: %v", mode, uid, err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		if err := json.Unmarshal([]byte(s), &h.Report); err != nil {
			t.Fatalf("helper %s (uid %d, pid %d) did not report: %q: %v; stderr:\n%s", mode, uid, h.PID(), s, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("helper %s (uid %d, pid %d) did not report in 60s; stderr:\n%s", mode, uid, h.PID(), stderr.String())
	}
	if h.Report.Fatal != "" {
		t.Fatalf("helper %s (uid %d) failed: %s; stderr:\n%s", mode, uid, h.Report.Fatal, stderr.String())
	}
	return h
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runAs runs a program as uid until its stderr holds want or d passes,
// kills it and returns what it printed on stderr. It captures the message a
// real program prints when it runs into a limit.
func runAs(t *testing.T, uid int, d time.Duration, want string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %s as uid %d: %v", name, uid, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	labkit.WaitFor(d, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return strings.Contains(stderr.String(), want)
	})
	cmd.Process.Kill()
	<-exited
	return stderr.String()
}

// writeFile writes a cgroup or sysctl file, failing the test on error.
func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("write %q to %s: %v", value, path, err)
	}
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return n
}

// sysctlPath is the /proc/sys file of a dotted sysctl name.
func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// lowerSysctl lowers a global sysctl to value when it is above above, and
// restores the old value when the test ends, pass or fail. It returns the
// value in force for the test.
func lowerSysctl(t *testing.T, name string, above, value int64) int64 {
	t.Helper()
	path := sysctlPath(name)
	old := readInt(t, path)
	if old <= above {
		return old
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(strconv.FormatInt(old, 10)), 0o644); err != nil {
			t.Errorf("RESTORE FAILED: %s is still %d, was %d: %v", name, value, old, err)
		}
	})
	writeFile(t, path, strconv.FormatInt(value, 10))
	t.Logf("lowered %s from %d to %d for this test (restored at cleanup)", name, old, value)
	return value
}

// cgroupPids lists the pids in a cgroup's cgroup.procs.
func cgroupPids(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatalf("read %s/cgroup.procs: %v", dir, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// removeCgroup kills whatever runs in a cgroup and its children and removes
// them, deepest first, retrying for a bounded time.
func removeCgroup(t *testing.T, dir string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		ok := labkit.WaitFor(10*time.Second, func() bool {
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			err := syscall.Rmdir(d)
			return err == nil || errors.Is(err, syscall.ENOENT)
		})
		if !ok {
			t.Errorf("CLEANUP FAILED: cannot remove cgroup %s: %v", d, syscall.Rmdir(d))
		}
	}
}

// makeCgroup creates a private cgroup and removes it (and anything below
// it, killing its processes) when the test ends.
func makeCgroup(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("LAB CANNOT RUN %s: create cgroup %s: %v", t.Name(), dir, err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
}

// hasConsumer reports whether a row lists pid (with comm, when comm is set).
func hasConsumer(u limits.Finding, pid int, comm string) bool {
	for _, c := range u.Consumers {
		if c.PID == pid && (comm == "" || c.Comm == comm) {
			return true
		}
	}
	return false
}

// describe prints a row for a failure message or the log.
func describe(u limits.Finding) string {
	b, _ := json.Marshal(u)
	return string(b)
}

// errnoOf returns the errno behind err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// statusOf formats an errno as the kernel's symbolic name and text.
func statusOf(e syscall.Errno) string { return fmt.Sprintf("errno %d (%v)", int(e), e) }
