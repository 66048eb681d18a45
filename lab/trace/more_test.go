//go:build lab

package trace

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

// A user namespace's own max_user_namespaces: a dedicated uid makes a
// user namespace (mapped to itself), sets its limit to 0 inside, and the
// nested unshare(CLONE_NEWUSER) fails with ENOSPC. The program read the
// failing task's user namespace: the scope names it.
func TestUserNamespaces(t *testing.T) {
	unshare := labkit.RequireTool(t, "unshare")
	uid := labkit.UID(3)
	tr := startTrace(t)
	cmd := exec.Command(unshare, "-Ur", "/bin/sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces && exec unshare -U true")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Fatalf("the nested unshare -U did not fail with ENOSPC: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	fs := tr.stop(t)
	var pid int
	for _, f := range fs {
		if f.Syscall == "unshare" && f.Errno == "ENOSPC" && f.UID == uid {
			pid = f.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no unshare ENOSPC of uid %d caught: %+v", uid, fs)
	}
	f := find(t, fs, pid, []string{"unshare"}, "ENOSPC")
	t.Logf("caught: %s %s pid %d %s uid %d -> %s %q (%s)", f.Syscall, f.Errno, f.PID, f.Comm, f.UID, f.Limit, f.Scope, f.Reason)
	if f.Limit != "userns" {
		t.Errorf("limit %q, want userns", f.Limit)
	}
	if want := fmt.Sprintf("uid %d in user ns ", uid); !strings.HasPrefix(f.Scope, want) {
		t.Errorf("scope %q, want the child user namespace (%q...)", f.Scope, want)
	}
	if f.Comm != "unshare" {
		t.Errorf("comm %q, want unshare", f.Comm)
	}
}

// A v2 cgroup at its cgroup.max.descendants: mkdir fails with EAGAIN,
// named cgroups with the limited cgroup's row.
func TestCgroupMaxDescendants(t *testing.T) {
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.max.descendants")); err != nil {
		root = "/sys/fs/cgroup"
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Fatalf("LAB CANNOT RUN: no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup: %v", err)
	}
	cg := filepath.Join(root, fmt.Sprintf("enospc-trace-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(filepath.Join(cg, "c1"))
		os.Remove(cg)
	})
	if err := os.WriteFile(filepath.Join(cg, "cgroup.max.descendants"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(cg, "c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := startTrace(t)
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf("mkdir %s/c2; sleep 2", cg))
	var out strings.Builder
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer sh.Wait()
	time.Sleep(1500 * time.Millisecond)
	fs := tr.stop(t)
	t.Logf("mkdir printed %q", out.String())
	for _, x := range fs {
		if (x.Syscall == "mkdir" || x.Syscall == "mkdirat") && x.Errno == "EAGAIN" && x.Comm == "mkdir" {
			wantNamed(t, x, "cgroups", cg+" descendants", "mkdir")
			return
		}
	}
	t.Fatalf("no mkdir EAGAIN caught: %+v", fs)
}

// A private devpts instance with max=2: the third open of its ptmx fails
// with ENOSPC, named ptys of that instance.
func TestPtys(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("enospc-trace-devpts", dir, "devpts", 0, "newinstance,ptmxmode=0666,max=2"); err != nil {
		t.Fatalf("mount devpts: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	tr := startTrace(t)
	// A shell holds the ptys it opens (exec N<>) and stays alive: a
	// failed redirection of echo, a regular builtin, does not end it.
	sh := exec.Command("/bin/sh", "-c", fmt.Sprintf("exec 3<>%[1]s/ptmx 4<>%[1]s/ptmx; echo 5<>%[1]s/ptmx; sleep 3", dir))
	var out strings.Builder
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer sh.Wait()
	time.Sleep(1500 * time.Millisecond)
	fs := tr.stop(t)
	t.Logf("the shell printed %q", out.String())
	f := find(t, fs, sh.Process.Pid, []string{"openat", "open"}, "ENOSPC")
	wantNamed(t, f, "ptys", "devpts "+dir, "sh")
	if f.Used == nil || f.Max == nil || *f.Used != 2 || *f.Max != 2 {
		t.Errorf("used %v max %v, want 2 of 2 (the shell holds two)", deref(f.Used), deref(f.Max))
	}
}

// A dedicated uid's keyring quota: add_key fails with EDQUOT at
// kernel.keys.maxkeys or maxbytes, named keys.count or keys.bytes of the
// uid, whichever is full.
func TestKeyQuota(t *testing.T) {
	uid := labkit.UID(4)
	tr := startTrace(t)
	h := helper(t, "keys", uid)
	time.Sleep(time.Second)
	fs := tr.stop(t)
	f := find(t, fs, h.Process.Pid, []string{"add_key"}, "EDQUOT")
	if f.Limit != "keys.count" && f.Limit != "keys.bytes" {
		t.Errorf("limit %q, want keys.count or keys.bytes (%s)", f.Limit, f.Reason)
	}
	wantNamed(t, f, f.Limit, fmt.Sprintf("uid %d", uid), "helper")
	if f.Used == nil || f.Max == nil || *f.Used < *f.Max-200 {
		t.Errorf("used %v max %v: want the uid's quota nearly or fully used", deref(f.Used), deref(f.Max))
	}
}

// inotify watches in a child user namespace whose own
// max_inotify_watches is 10: the uid's row on the host is far from its
// max, and the scope names the child namespace that refused.
func TestInotifyWatchesInUserNamespace(t *testing.T) {
	unshare := labkit.RequireTool(t, "unshare")
	uid := labkit.UID(5)
	tr := startTrace(t)
	h := helperVia(t, "watches", uid, unshare, "-Ur", "/bin/sh", "-c", `echo 10 > /proc/sys/user/max_inotify_watches && exec "$0"`)
	time.Sleep(time.Second)
	fs := tr.stop(t)
	f := find(t, fs, h.Process.Pid, []string{"inotify_add_watch"}, "ENOSPC")
	t.Logf("caught: %s %s pid %d %s uid %d -> %s %q (%s)", f.Syscall, f.Errno, f.PID, f.Comm, f.UID, f.Limit, f.Scope, f.Reason)
	if f.Limit != "inotify.watches" {
		t.Errorf("limit %q, want inotify.watches", f.Limit)
	}
	if want := fmt.Sprintf("uid %d in user ns ", uid); !strings.HasPrefix(f.Scope, want) {
		t.Errorf("scope %q, want the child user namespace (%q...)", f.Scope, want)
	}
	if f.UID != uid {
		t.Errorf("uid %d, want the host uid %d (the namespace's root maps to it)", f.UID, uid)
	}
}

// Without CAP_PERFMON the tracer says in one line why it cannot run and
// what to use instead, exits 3, and has loaded nothing.
func TestNotSupportedWithoutPerfmon(t *testing.T) {
	setpriv := labkit.RequireTool(t, "setpriv")
	cmd := exec.Command(setpriv, "--bounding-set=-all,+bpf", "--inh-caps=-all", "--ambient-caps=-all", labkit.Bin(), "trace", "--duration", "2s", "--no-runtimes")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d, stderr %q", code, stderr.String())
	if code != 3 {
		t.Errorf("exit status %d, want 3 (not supported here)", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "not supported here") || !strings.Contains(lines[0], "CAP_PERFMON") || !strings.Contains(lines[0], "enospc check") {
		t.Errorf("stderr %q: want one line saying why and what to use instead", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	if strings.Contains(stderr.String(), "attached") {
		t.Errorf("it says it attached: %q", stderr.String())
	}
}
