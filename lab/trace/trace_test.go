//go:build lab

// Package trace is the lab of `enospc trace`: each limit is driven to a
// refusal on the real kernel while the tracer runs, and the failure must
// come out named with its limit, scope, process and errno.
package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/trace"
)

// tracer is `enospc trace -o json` running in the background.
type tracer struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *bufio.Reader
	errAll bytes.Buffer
}

// startTrace starts the tracer and waits for it to be attached.
func startTrace(t *testing.T, args ...string) *tracer {
	t.Helper()
	tr := &tracer{}
	tr.cmd = exec.Command(labkit.Bin(), append([]string{"trace", "-o", "json", "--no-runtimes", "--interval", "300ms", "--duration", "20s"}, args...)...)
	tr.cmd.Stdout = &tr.stdout
	pr, err := tr.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.cmd.Start(); err != nil {
		t.Fatalf("start enospc trace: %v", err)
	}
	t.Cleanup(func() { tr.cmd.Process.Kill(); tr.cmd.Wait() })
	tr.stderr = bufio.NewReader(io.TeeReader(pr, &tr.errAll))
	attached := make(chan error, 1)
	go func() {
		line, err := tr.stderr.ReadString('\n')
		if err == nil && !strings.Contains(line, "attached at") {
			err = fmt.Errorf("first line %q", line)
		}
		attached <- err
		io.Copy(io.Discard, tr.stderr)
	}()
	select {
	case err := <-attached:
		if err != nil {
			t.Fatalf("enospc trace did not attach: %v; stderr: %s", err, tr.errAll.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("enospc trace did not attach in 15s; stderr: %s", tr.errAll.String())
	}
	return tr
}

// stop interrupts the tracer, which drains what is left, and returns its
// lines.
func (tr *tracer) stop(t *testing.T) []trace.Failure {
	t.Helper()
	tr.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- tr.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("enospc trace did not stop in 15s after SIGINT")
	}
	t.Logf("trace: %s", strings.TrimSpace(tr.errAll.String()))
	var out []trace.Failure
	for _, line := range strings.Split(strings.TrimSpace(tr.stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var f trace.Failure
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("a line of enospc trace -o json is not a failure: %v: %q", err, line)
		}
		out = append(out, f)
	}
	return out
}

// find returns the failure of pid with that syscall and errno, or fails
// listing what the tracer printed.
func find(t *testing.T, fs []trace.Failure, pid int, syscalls []string, errno string) trace.Failure {
	t.Helper()
	for _, f := range fs {
		if f.PID == pid && f.Errno == errno && contains(syscalls, f.Syscall) {
			return f
		}
	}
	var have []string
	for _, f := range fs {
		have = append(have, fmt.Sprintf("pid %d %s %s %s %q (%s)", f.PID, f.Comm, f.Syscall, f.Errno, f.Limit, f.Reason))
	}
	t.Fatalf("no %s %v failure of pid %d; the tracer printed %d lines:\n%s", errno, syscalls, pid, len(fs), strings.Join(have, "\n"))
	return trace.Failure{}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mountTmpfs mounts a tmpfs of its own, removed at the end.
func mountTmpfs(t *testing.T, opts string) (dir, source string) {
	t.Helper()
	dir = t.TempDir()
	source = fmt.Sprintf("enospc-trace-%d", os.Getpid())
	if err := syscall.Mount(source, dir, "tmpfs", 0, opts); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir, source
}

func wantNamed(t *testing.T, f trace.Failure, limit, scope, comm string) {
	t.Helper()
	t.Logf("caught: %s %s pid %d %s uid %d count %d -> %s %q used %v max %v (%s)", f.Syscall, f.Errno, f.PID, f.Comm, f.UID, f.Count, f.Limit, f.Scope, deref(f.Used), deref(f.Max), f.Reason)
	if f.Limit != limit {
		t.Errorf("limit %q, want %q (reason: %s)", f.Limit, limit, f.Reason)
	}
	if f.Scope != scope {
		t.Errorf("scope %q, want %q", f.Scope, scope)
	}
	if comm != "" && f.Comm != comm {
		t.Errorf("comm %q, want %q", f.Comm, comm)
	}
	if f.Count < 1 || f.First.IsZero() || f.Last.Before(f.First) {
		t.Errorf("count %d first %v last %v: want a count and first <= last", f.Count, f.First, f.Last)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "-"
	}
	return *p
}

// A tmpfs out of blocks: dd's write(2) fails with ENOSPC; dd has exited
// when the tracer looks, so the filesystem is the one the program read
// from the fd in the kernel.
func TestTmpfsOutOfBlocks(t *testing.T) {
	dir, source := mountTmpfs(t, "size=256k,nr_inodes=1000")
	tr := startTrace(t)
	dd := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(dir, "fill"), "bs=4k", "count=1000")
	out, err := dd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Fatalf("dd did not fail with ENOSPC: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	fs := tr.stop(t)
	f := find(t, fs, dd.Process.Pid, []string{"write"}, "ENOSPC")
	wantNamed(t, f, "disk", dir+" (tmpfs "+source+")", "dd")
	if f.Max == nil || *f.Max != 256<<10 {
		t.Errorf("max %v, want the tmpfs size %d", deref(f.Max), 256<<10)
	}
}

// A tmpfs out of inodes: the shell's own redirections (openat with
// O_CREAT) fail with ENOSPC, and the shell is alive when the tracer looks.
func TestTmpfsOutOfInodes(t *testing.T) {
	dir, source := mountTmpfs(t, "size=4m,nr_inodes=16")
	tr := startTrace(t)
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt 40 ]; do echo > %s/f$i 2>/dev/null; i=$((i+1)); done; sleep 3`, dir))
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer sh.Wait()
	time.Sleep(1500 * time.Millisecond)
	fs := tr.stop(t)
	f := find(t, fs, sh.Process.Pid, []string{"openat", "open"}, "ENOSPC")
	wantNamed(t, f, "inodes", dir+" (tmpfs "+source+")", "sh")
	if f.Used == nil || f.Max == nil || *f.Used != *f.Max {
		t.Errorf("used %v max %v: want the inodes at their max", deref(f.Used), deref(f.Max))
	}
	if f.Count < 20 {
		t.Errorf("count %d: the shell failed about 25 times, folded into one line", f.Count)
	}
	if !strings.HasPrefix(f.Object, dir+"/f") {
		t.Errorf("object %q, want a path under %s", f.Object, dir)
	}
}

// helper runs the test binary as a helper of mode, as uid, and waits for
// it to say it was refused.
func helper(t *testing.T, mode string, uid int) *exec.Cmd {
	t.Helper()
	return helperVia(t, mode, uid)
}

// helperVia is helper run through a command prefix (unshare -Ur sh -c ...
// "$0"), which gets the helper's path as its last argument.
func helperVia(t *testing.T, mode string, uid int, prefix ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy another uid can execute.
	dir, err := os.MkdirTemp("", "enospc-trace-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	if len(prefix) > 0 {
		cmd = exec.Command(prefix[0], append(prefix[1:], bin)...)
	}
	cmd.Dir = "/"
	// A temporary directory the helper's uid may write, removed here even
	// when the helper is killed before it cleans up.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o777)
	cmd.Env = []string{helperMode + "=" + mode, "TMPDIR=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}, Pdeathsig: syscall.SIGKILL}
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(pr).ReadString('\n')
	t.Logf("helper %s as uid %d: %s", mode, uid, strings.TrimSpace(line))
	if err != nil || !strings.HasPrefix(line, "refused") {
		t.Fatalf("helper %s was not refused: %q %v", mode, line, err)
	}
	return cmd
}

// A dedicated uid's inotify instances: inotify_init1 fails with EMFILE at
// max_user_instances, named inotify.instances of that uid.
func TestInotifyInstances(t *testing.T) {
	uid := labkit.UID(1)
	tr := startTrace(t)
	h := helper(t, "inotify", uid)
	time.Sleep(time.Second)
	fs := tr.stop(t)
	f := find(t, fs, h.Process.Pid, []string{"inotify_init1"}, "EMFILE")
	wantNamed(t, f, "inotify.instances", fmt.Sprintf("uid %d", uid), "helper")
	if f.UID != uid {
		t.Errorf("uid %d, want %d", f.UID, uid)
	}
	if f.Used == nil || f.Max == nil || *f.Used < *f.Max {
		t.Errorf("used %v max %v: want the uid at its max", deref(f.Used), deref(f.Max))
	}
}

// RLIMIT_NOFILE: open fails with EMFILE at the process's own limit, which
// the program read from the failing task.
func TestNofile(t *testing.T) {
	uid := labkit.UID(2)
	tr := startTrace(t)
	h := helper(t, "nofile", uid)
	time.Sleep(time.Second)
	fs := tr.stop(t)
	f := find(t, fs, h.Process.Pid, []string{"openat", "open"}, "EMFILE")
	wantNamed(t, f, "files.process", fmt.Sprintf("pid %d (helper)", h.Process.Pid), "helper")
	if f.Max == nil || *f.Max != 16 {
		t.Errorf("max %v, want RLIMIT_NOFILE 16", deref(f.Max))
	}
}

// A pids cgroup (v1) at its pids.max: the shell's fork fails with EAGAIN,
// named pids with the cgroup's path.
func TestPidsCgroup(t *testing.T) {
	const root = "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Fatalf("LAB CANNOT RUN: no v1 pids hierarchy at %s: %v", root, err)
	}
	cg := filepath.Join(root, fmt.Sprintf("enospc-trace-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if os.Remove(cg) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(cg, "pids.max"), []byte("4"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTrace(t)
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf(`echo $$ > %s/cgroup.procs; for i in 1 2 3 4 5 6; do sleep 4 & done; sleep 4`, cg))
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-sh.Process.Pid, syscall.SIGKILL); sh.Wait() })
	time.Sleep(1500 * time.Millisecond)
	fs := tr.stop(t)
	t.Logf("shell printed: %q", out.String())
	f := find(t, fs, sh.Process.Pid, []string{"clone", "clone3", "fork", "vfork"}, "EAGAIN")
	wantNamed(t, f, "pids", cg, "sh")
	if f.Used == nil || f.Max == nil || *f.Max != 4 || *f.Used != 4 {
		t.Errorf("used %v max %v, want 4 of 4", deref(f.Used), deref(f.Max))
	}
}
