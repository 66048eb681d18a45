//go:build lab

package kernel

// `enospc fix` on two exhausted limits. inotify watches: a dedicated uid
// fills fs.inotify.max_user_watches until ENOSPC; `fix --apply` raises the
// sysctl, after which a new process of that uid adds a watch, and
// `fix --undo` puts the old value back (the sysctl is global: the test
// restores it whatever happens and checks at the end that it is back). A
// private pids cgroup at its pids.max: no sysctl fixes it, so fix plans
// guidance for that row and leaves kernel.pid_max alone.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/fix"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// addWatchEnv, set to a path, makes the re-executed test binary a one-shot
// helper: one new inotify instance, one watch on the path, a helperReport
// line on stdout (Count 1 when the watch was added), exit. It is a separate
// variable from helperEnv so that it does not depend on the order in which
// the package's init functions run.
const addWatchEnv = "ENOSPC_LAB_FIX_ADD_WATCH"

func init() {
	path := os.Getenv(addWatchEnv)
	if path == "" {
		return
	}
	var rep helperReport
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		rep.Err, rep.Errno = "inotify_init1: "+err.Error(), int(errnoOf(err))
	} else {
		rep.Instances = 1
		if _, err := syscall.InotifyAddWatch(fd, path, syscall.IN_MODIFY); err != nil {
			rep.Err, rep.Errno = "inotify_add_watch "+path+": "+err.Error(), int(errnoOf(err))
		} else {
			rep.Count = 1
		}
	}
	b, _ := json.Marshal(rep)
	os.Stdout.Write(append(b, '\n'))
	os.Exit(0)
}

// addOneWatch runs the one-shot helper as uid (a new process of that uid)
// and returns what it reports.
func addOneWatch(t *testing.T, bin string, uid int, path string) helperReport {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{addWatchEnv + "=" + path, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the add-one-watch helper as uid %d: %v", uid, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("add-one-watch helper as uid %d: %v; stderr:\n%s", uid, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("add-one-watch helper as uid %d did not finish in 30s", uid)
	}
	var rep helperReport
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &rep); err != nil {
		t.Fatalf("add-one-watch helper as uid %d: %q: %v; stderr:\n%s", uid, stdout.String(), err, stderr.String())
	}
	return rep
}

// keepSysctl reads a global sysctl now and registers a cleanup that writes
// that value back, pass or fail, and checks that it is back. Register it
// first: cleanups run last-registered first, so it runs after the helpers
// are gone.
func keepSysctl(t *testing.T, name string) int64 {
	t.Helper()
	path := sysctlPath(name)
	old := readInt(t, path)
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(strconv.FormatInt(old, 10)), 0o644); err != nil {
			t.Errorf("RESTORE FAILED: write %s=%d: %v", name, old, err)
		}
		b, err := os.ReadFile(path)
		if got, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || perr != nil || got != old {
			t.Errorf("RESTORE FAILED: %s is %q after the cleanup, want %d (%v %v)", name, strings.TrimSpace(string(b)), old, err, perr)
		} else {
			t.Logf("cleanup: %s is back at %d", name, old)
		}
	})
	return old
}

func TestFixInotifyWatches(t *testing.T) {
	const name = "fs.inotify.max_user_watches"
	orig := keepSysctl(t, name)
	maxWatches := orig
	// As TestInotifyWatches: a limit of millions would take that many
	// watches; lower it for the test (restored by keepSysctl's cleanup).
	if orig > 2_000_000 {
		maxWatches = 200_000
		writeFile(t, sysctlPath(name), strconv.FormatInt(maxWatches, 10))
		t.Logf("lowered %s from %d to %d for this test (restored at cleanup)", name, orig, maxWatches)
	}
	maxInst := readInt(t, sysctlPath("fs.inotify.max_user_instances"))
	uid := labkit.UID(3)

	ninst := int64(100)
	if ninst > maxInst*3/4 {
		ninst = maxInst * 3 / 4
	}
	if ninst < 1 {
		t.Fatalf("LAB CANNOT RUN: fs.inotify.max_user_instances is %d", maxInst)
	}
	nfiles := maxWatches/ninst + 100
	if nfiles > 200_000 {
		t.Fatalf("LAB CANNOT RUN: %d watches over %d instances needs %d files", maxWatches, ninst, nfiles)
	}
	dir := labkit.MountTmpfs(t, "enospc-lab-fix-watches", fmt.Sprintf("size=16m,nr_inodes=%d,mode=0755", nfiles+100))
	for j := int64(0); j < nfiles; j++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%05d", j)), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("create watched file %d: %v", j, err)
		}
		f.Close()
	}

	bin := helperBinary(t)
	h := startHelper(t, bin, "inotify-watches", uid,
		"ENOSPC_LAB_DIR="+dir, "ENOSPC_LAB_FILES="+strconv.FormatInt(nfiles, 10), "ENOSPC_LAB_INSTANCES="+strconv.FormatInt(ninst, 10))
	t.Logf("uid %d pid %d: %d watches over %d instances, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Instances, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.ENOSPC {
		t.Fatalf("inotify_add_watch failed with %s, want ENOSPC: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if int64(h.Report.Count) != maxWatches {
		t.Fatalf("the helper got %d watches before ENOSPC, want max_user_watches = %d (is uid %d really unused?)", h.Report.Count, maxWatches, uid)
	}

	// Before fix: a new process of the uid cannot add one watch.
	probe := filepath.Join(dir, "f00000")
	if r := addOneWatch(t, bin, uid, probe); r.Count != 0 || syscall.Errno(r.Errno) != syscall.ENOSPC {
		t.Fatalf("before fix, one more watch as uid %d: %+v, want ENOSPC", uid, r)
	} else {
		t.Logf("before fix, a new process of uid %d: %s", uid, r.Err)
	}

	// The plan first (dry run, JSON): one sysctl action for this row.
	state := t.TempDir()
	stdout, stderr, code := labkit.RunFix(t, "-o", "json", "--only", "inotify.watches", "--state-dir", state)
	t.Logf("enospc fix -o json --only inotify.watches (exit %d):\n%s%s", code, stdout, stderr)
	var plan fix.Plan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("fix -o json: not a plan: %v", err)
	}
	want := max(maxWatches, 4*int64(h.Report.Count), 524288)
	var act *fix.Action
	for i, a := range plan.Actions {
		if a.Kind == "sysctl" && a.Sysctl == name {
			act = &plan.Actions[i]
		}
	}
	if act == nil {
		t.Fatalf("the plan has no sysctl action for %s: %+v", name, plan.Actions)
	}
	if act.From != maxWatches || act.To < want {
		t.Errorf("planned %s: %d -> %d, want %d -> at least %d (room for four times %d)", name, act.From, act.To, maxWatches, want, h.Report.Count)
	}
	if _, err := os.Stat(filepath.Join(state, "journal.jsonl")); err == nil {
		t.Errorf("the dry run wrote a journal in %s", state)
	}
	if got := readInt(t, sysctlPath(name)); got != maxWatches {
		t.Fatalf("the dry run changed %s: %d, was %d", name, got, maxWatches)
	}

	// Apply.
	stdout, stderr, code = labkit.RunFix(t, "--apply", "--yes", "--only", "inotify.watches", "--state-dir", state)
	t.Logf("enospc fix --apply --yes --only inotify.watches (exit %d):\n%s%s", code, stdout, stderr)
	if code != 0 {
		t.Fatalf("fix --apply exit status %d", code)
	}
	raised := readInt(t, sysctlPath(name))
	if raised <= maxWatches {
		t.Fatalf("fix --apply left %s at %d (was %d)", name, raised, maxWatches)
	}
	if raised < want {
		t.Errorf("fix --apply raised %s to %d, want at least %d", name, raised, want)
	}
	if !strings.Contains(stdout, fmt.Sprintf("done     %s %d -> %d", name, maxWatches, raised)) {
		t.Errorf("fix --apply does not report \"done %s %d -> %d\"", name, maxWatches, raised)
	}
	if j, err := fix.ReadJournal(filepath.Join(state, "journal.jsonl")); err != nil {
		t.Errorf("journal after fix --apply: %v", err)
	} else if len(j.Entries) != 1 || j.Entries[0].Sysctl != name || j.Entries[0].Old != maxWatches || j.Entries[0].New != raised || j.Entries[0].State != "done" {
		t.Errorf("journal after fix --apply: %+v, want one done entry %s %d -> %d", j.Entries, name, maxWatches, raised)
	}

	// The helper still holds all its watches; a new process of the same
	// uid can now add one more.
	if r := addOneWatch(t, bin, uid, probe); r.Count != 1 || r.Err != "" {
		t.Errorf("after fix --apply, one more watch as uid %d: %+v, want it added", uid, r)
	} else {
		t.Logf("after fix --apply, a new process of uid %d adds a watch (the helper still holds %d)", uid, h.Report.Count)
	}
	rep, _ := labkit.RunCheck(t, "--only", "inotify.watches")
	u := labkit.Find(t, rep, "inotify.watches", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check after fix: %s", describe(u))
	if u.Max != raised || u.Used != int64(h.Report.Count) || u.Severity != limits.OK {
		t.Errorf("inotify.watches uid %d after fix: %s %d/%d, want ok %d/%d", uid, u.Severity, u.Used, u.Max, h.Report.Count, raised)
	}

	// Undo.
	stdout, stderr, code = labkit.RunFix(t, "--undo", "--state-dir", state)
	t.Logf("enospc fix --undo (exit %d):\n%s%s", code, stdout, stderr)
	if code != 0 {
		t.Errorf("fix --undo exit status %d", code)
	}
	if got := readInt(t, sysctlPath(name)); got != maxWatches {
		t.Errorf("after fix --undo %s is %d, want %d back", name, got, maxWatches)
	}
	if undone, _ := filepath.Glob(filepath.Join(state, "journal.jsonl.*.undone")); len(undone) != 1 {
		ents, _ := os.ReadDir(state)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after fix --undo the state dir holds %v, want the journal kept as journal.jsonl.<time>.undone", names)
	}
	// Back at the limit: one more watch fails again.
	if r := addOneWatch(t, bin, uid, probe); syscall.Errno(r.Errno) != syscall.ENOSPC {
		t.Errorf("after fix --undo, one more watch as uid %d: %+v, want ENOSPC again", uid, r)
	}
}

func TestFixPidsMax(t *testing.T) {
	requireCgroupMount(t, pidsRoot, "cgroup")
	busybox := labkit.RequireTool(t, "busybox")
	// fix must not touch kernel.pid_max for a cgroup's row; should it,
	// the global value is put back whatever happens.
	pidMax := keepSysctl(t, "kernel.pid_max")
	const pidsMax = 8
	cg := filepath.Join(pidsRoot, fmt.Sprintf("enospc-lab-fix-%d", os.Getpid()))
	makeCgroup(t, cg)
	writeFile(t, filepath.Join(cg, "pids.max"), fmt.Sprint(pidsMax))

	// As TestPidsCgroup: an interactive busybox shell joins the cgroup and
	// forks sleeps until a fork is refused.
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
	t.Cleanup(func() {
		stdin.Close()
		syscall.Kill(-shell.Process.Pid, syscall.SIGKILL)
		shell.Wait()
	})
	script := fmt.Sprintf("echo $$ > %s/cgroup.procs\n"+
		"i=0; while [ $i -lt %d ]; do sleep 600 & i=$((i+1)); done\n"+
		"echo loop-done $i\n", cg, 4*pidsMax)
	if _, err := io.WriteString(stdin, script); err != nil {
		t.Fatalf("feed the shell: %v", err)
	}
	if !labkit.WaitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "loop-done") }) {
		t.Fatalf("the shell did not finish its fork loop in 20s; it printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Resource temporarily unavailable") {
		t.Fatalf("the shell's fork did not fail with EAGAIN; it printed:\n%s", out.String())
	}
	if current := readInt(t, filepath.Join(cg, "pids.current")); current != pidsMax {
		t.Fatalf("pids.current is %d after the refused fork, want pids.max %d", current, pidsMax)
	}

	// The whole plan, as an operator asks for it.
	stdout, stderr, code := labkit.RunFix(t, "-o", "json")
	if code != 0 {
		t.Fatalf("enospc fix -o json exit status %d:\n%s%s", code, stdout, stderr)
	}
	var plan fix.Plan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("fix -o json: not a plan: %v\n%s%s", err, stdout, stderr)
	}
	var row *fix.Action
	for i, a := range plan.Actions {
		if a.Limit == "pids" && a.Scope == cg {
			row = &plan.Actions[i]
		}
		if a.Sysctl == "kernel.pid_max" && a.Scope != "host" {
			t.Errorf("the plan raises kernel.pid_max for %s %q: %+v", a.Limit, a.Scope, a)
		}
		if a.Kind == "sysctl" && a.Scope == cg {
			t.Errorf("the plan has a sysctl action for the private pids cgroup: %+v", a)
		}
	}
	if row == nil {
		b, _ := json.MarshalIndent(plan, "", "  ")
		t.Fatalf("the plan has no action for pids %s:\n%s", cg, b)
	}
	b, _ := json.MarshalIndent(row, "", "  ")
	t.Logf("fix -o json, the action for pids %s:\n%s", cg, b)
	if row.Kind != "guidance" || row.Sysctl != "" || row.From != 0 || row.To != 0 {
		t.Errorf("pids %s: kind %q sysctl %q %d -> %d, want guidance and no sysctl", cg, row.Kind, row.Sysctl, row.From, row.To)
	}
	if !strings.Contains(row.Text, cg+"/pids.max") || strings.Contains(row.Text, "kernel.pid_max") {
		t.Errorf("pids %s guidance %q: want the cgroup's pids.max named, kernel.pid_max not", cg, row.Text)
	}
	if !strings.Contains(row.Why, fmt.Sprintf("%d of %d", pidsMax, pidsMax)) {
		t.Errorf("pids %s: why %q does not say %d of %d", cg, row.Why, pidsMax, pidsMax)
	}

	// --apply --only pids: nothing for this row is applied. When the
	// host's own pids row is not at its threshold the plan has no sysctl
	// at all, and kernel.pid_max must stay as it is.
	var hostPidMax bool
	for _, a := range plan.Actions {
		hostPidMax = hostPidMax || (a.Sysctl == "kernel.pid_max" && a.Scope == "host")
	}
	if hostPidMax {
		t.Logf("the host's pids row is at its threshold here: the plan raises kernel.pid_max for it; not applying")
		return
	}
	state := t.TempDir()
	stdout, stderr, code = labkit.RunFix(t, "--apply", "--yes", "--only", "pids", "--state-dir", state)
	t.Logf("enospc fix --apply --yes --only pids (exit %d):\n%s%s", code, stdout, stderr)
	if code != 0 {
		t.Errorf("fix --apply --only pids exit status %d", code)
	}
	if !strings.Contains(stdout, "nothing to apply") {
		t.Errorf("fix --apply --only pids did not say there is nothing to apply")
	}
	if got := readInt(t, sysctlPath("kernel.pid_max")); got != pidMax {
		t.Errorf("fix --apply --only pids changed kernel.pid_max: %d, was %d", got, pidMax)
	}
	if got := readInt(t, filepath.Join(cg, "pids.max")); got != pidsMax {
		t.Errorf("fix --apply --only pids changed %s/pids.max: %d, was %d", cg, got, pidsMax)
	}
	if _, err := os.Stat(filepath.Join(state, "journal.jsonl")); err == nil {
		b, _ := os.ReadFile(filepath.Join(state, "journal.jsonl"))
		t.Errorf("fix --apply --only pids wrote a journal:\n%s", b)
	}
}
