//go:build lab

package kernel

// A pids cgroup (v1) at its pids.max: a shell forks until fork(2) fails
// with EAGAIN, the way a container at its --pids-limit fails.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

const pidsRoot = "/sys/fs/cgroup/pids"

func TestPidsCgroup(t *testing.T) {
	requireCgroupMount(t, pidsRoot, "cgroup")
	busybox := labkit.RequireTool(t, "busybox")
	const pidsMax = 8
	cg := filepath.Join(pidsRoot, fmt.Sprintf("enospc-lab-%d", os.Getpid()))
	makeCgroup(t, cg)
	writeFile(t, filepath.Join(cg, "pids.max"), fmt.Sprint(pidsMax))

	// An interactive busybox shell (commands on stdin): a fork failure
	// aborts the command line it is running but not the shell, which stays
	// in the cgroup with its children, so the cgroup stays at pids.max. A
	// non-interactive shell would exit on the error, leaving pids.max-1.
	shell := exec.Command(busybox, "sh", "-i")
	shell.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PS1=", "HOME=/"}
	shell.Dir = "/"
	shell.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := shell.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	shell.Stdout, shell.Stderr = &out, &out
	if err := shell.Start(); err != nil {
		t.Fatalf("start busybox sh: %v", err)
	}
	// Registered after makeCgroup, so it runs before the cgroup's removal:
	// the whole process group (shell and sleeps, no job control) is killed.
	t.Cleanup(func() {
		stdin.Close()
		syscall.Kill(-shell.Process.Pid, syscall.SIGKILL)
		shell.Wait()
	})
	// The shell joins the cgroup itself (echo is a builtin: no fork), then
	// forks sleeps, bounded at 4*pidsMax, until a fork fails.
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs\n"+
		"i=0; while [ $i -lt %d ]; do sleep 600 & i=$((i+1)); done\n"+
		"echo loop-done $i\n", cg, 4*pidsMax)
	if _, err := io.WriteString(stdin, script); err != nil {
		t.Fatalf("feed the shell: %v", err)
	}
	if !labkit.WaitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "loop-done") }) {
		t.Fatalf("the shell did not finish its fork loop in 20s; it printed:\n%s", out.String())
	}
	var forkErr string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "fork") {
			forkErr = strings.TrimSpace(line)
			break
		}
	}
	t.Logf("busybox sh printed: %q", forkErr)
	if !strings.Contains(forkErr, "Resource temporarily unavailable") {
		t.Fatalf("the shell's fork did not fail with EAGAIN; it printed:\n%s", out.String())
	}
	if strings.Contains(out.String(), fmt.Sprintf("loop-done %d", 4*pidsMax)) {
		t.Fatalf("the shell forked %d times under pids.max=%d without a refused fork", 4*pidsMax, pidsMax)
	}
	events, _ := os.ReadFile(filepath.Join(cg, "pids.events"))
	current := readInt(t, filepath.Join(cg, "pids.current"))
	t.Logf("pids.current %d, pids.events %q", current, strings.TrimSpace(string(events)))
	if current != pidsMax {
		t.Fatalf("pids.current is %d after the refused fork, want pids.max %d", current, pidsMax)
	}
	pids := cgroupPids(t, cg)
	sort.Ints(pids)

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "pids", labkit.ScopeIs(cg))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("pids %s is %s, want critical", cg, u.Severity)
	}
	if u.Used != pidsMax || u.Max != pidsMax {
		t.Errorf("pids %s: used %d max %d, want %d of %d", cg, u.Used, u.Max, pidsMax, pidsMax)
	}
	if !strings.Contains(u.Reason, "pids.events") || !strings.Contains(u.Reason, "refused") {
		t.Errorf("pids %s: reason %q does not mention the forks refused in pids.events", cg, u.Reason)
	}
	if len(u.Consumers) != len(pids) {
		t.Errorf("pids %s lists %d consumers, the cgroup holds %d processes %v", cg, len(u.Consumers), len(pids), pids)
	}
	if !hasConsumer(u, shell.Process.Pid, "busybox") {
		t.Errorf("pids %s does not list the forking shell (pid %d): %+v", cg, shell.Process.Pid, u.Consumers)
	}
	for _, pid := range pids {
		if !hasConsumer(u, pid, "") {
			t.Errorf("pids %s does not list pid %d of its cgroup.procs", cg, pid)
		}
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
}
