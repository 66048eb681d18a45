//go:build lab

package runtime

// `enospc fix --apply --only leak.cgroups` on a real containerd: the
// recreated empty cgroups of removed containers go from every hierarchy; a
// live container's cgroups and process stay; a leaked container cgroup
// that a process was moved into is left (check's re-verification); and
// where a process sits in a sub-cgroup of a leaked one in a hierarchy that
// is not walked, the kernel's rmdir refuses it (EBUSY) and it is left.

import (
	"encoding/json"
	"errors"
	"fmt"
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
)

// cgroupDirsOf lists the directories of cgroup rel in every mounted
// hierarchy (and the root one, on a unified host).
func cgroupDirsOf(rel string) []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	var out []string
	for _, r := range roots {
		d := filepath.Join(r, rel)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// procsOf reads a cgroup's cgroup.procs.
func procsOf(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

func containsPID(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// startSleeperIn starts `sleep 600` and moves it into the cgroup dir; it is
// killed when the test ends (before the containerd cleanup removes the
// namespace's cgroups).
func startSleeperIn(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatalf("move pid %d into %s: %v", cmd.Process.Pid, dir, err)
	}
	return cmd.Process.Pid
}

func TestFixLeakedCgroup(t *testing.T) {
	const image = "enospc.lab/busybox:lab"
	c := startContainerd(t)
	c.ImportBusybox(t, image)
	// kept runs on. gone, held and busy are removed, and their cgroups
	// come back empty as a crashed runtime leaves them. held then gets a
	// process moved into one of its cgroups; busy gets one in a sub-cgroup
	// of a hierarchy that leak.cgroups does not walk.
	ids := []string{"kept", "gone", "held", "busy"}
	for _, id := range ids {
		if err := c.RunDetached(image, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run %s: %v\n%s", id, err, c.Log())
		}
	}
	dirs := map[string][]string{}
	for _, id := range ids {
		dirs[id] = cgroupDirsOf(filepath.Join(c.NS, id))
		if len(dirs[id]) == 0 {
			t.Fatalf("no cgroup of container %q under /sys/fs/cgroup/*/%s", id, c.NS)
		}
	}
	t.Logf("each container has %d cgroup directories: %v", len(dirs["kept"]), dirs["kept"])
	keptMem := filepath.Join("/sys/fs/cgroup/memory", c.NS, "kept")
	keptProcs, err := procsOf(keptMem)
	if err != nil || len(keptProcs) == 0 {
		t.Fatalf("container kept has no process in %s: %v %v", keptMem, keptProcs, err)
	}

	for _, id := range ids[1:] {
		c.Ctr(30*time.Second, "task", "kill", "-s", "SIGKILL", id)
		if !labkit.WaitFor(30*time.Second, func() bool { _, err := c.Ctr(20*time.Second, "task", "delete", id); return err == nil }) {
			t.Fatalf("ctr task delete %s: still running 30s after SIGKILL", id)
		}
		if _, err := c.Ctr(30*time.Second, "container", "delete", id); err != nil {
			t.Fatalf("ctr container delete %s: %v", id, err)
		}
		for _, d := range dirs[id] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatalf("recreate %s: %v", d, err)
			}
		}
	}

	// The hierarchy for held's and busy's processes: pids (v1), else any
	// v1 hierarchy but memory (the one leak.cgroups walks).
	other := ""
	for _, d := range dirs["held"] {
		h := filepath.Base(filepath.Dir(filepath.Dir(d)))
		if h == "memory" || h == "unified" || h == "cgroup" {
			continue
		}
		if other == "" || h == "pids" {
			other = h
		}
	}
	if other == "" {
		t.Fatalf("LAB CANNOT RUN: no v1 hierarchy but memory holds the containers' cgroups: %v", dirs["held"])
	}
	heldDir := filepath.Join("/sys/fs/cgroup", other, c.NS, "held")
	heldPid := startSleeperIn(t, heldDir)
	busyDir := filepath.Join("/sys/fs/cgroup", other, c.NS, "busy")
	busySub := filepath.Join(busyDir, "sub")
	if err := os.Mkdir(busySub, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", busySub, err)
	}
	busyPid := startSleeperIn(t, busySub)
	// The kernel's own refusal, as fix meets it.
	for _, d := range []string{heldDir, busySub, busyDir} {
		if err := syscall.Rmdir(d); !errors.Is(err, syscall.EBUSY) {
			t.Fatalf("rmdir %s with a process in or below it: %v, want EBUSY", d, err)
		}
	}
	t.Logf("pid %d moved into %s, pid %d into %s; rmdir of either is refused with EBUSY", heldPid, heldDir, busyPid, busySub)

	rep := runCheckOn(t, c, "--only", "leak.cgroups")
	u := labkit.Find(t, rep, "leak.cgroups", labkit.ScopeIs("host"))
	t.Logf("check: leak.cgroups %s leaked %d, %d cgroups; %s; consumers %+v", u.Severity, u.Leaked, u.Used, u.Reason, u.Consumers)
	leakedNames := map[string]bool{}
	for _, cs := range u.Consumers {
		leakedNames[cs.Container] = true
	}
	if u.Leaked != 2 || !leakedNames["gone"] || !leakedNames["busy"] {
		t.Fatalf("leak.cgroups before fix: leaked %d %v, want gone and busy", u.Leaked, leakedNames)
	}

	// With the default runtime sockets (no runtime there), the containers
	// cannot be decided: the plan has no cleanup.
	stdout, stderr, code := labkit.RunFix(t, "-o", "json", "--only", "leak.cgroups")
	t.Logf("enospc fix -o json --only leak.cgroups (default sockets; exit %d):\n%s%s", code, stdout, stderr)
	var plan fix.Plan
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("fix -o json: not a plan: %v", err)
	}
	for _, a := range plan.Actions {
		if a.Kind == "cleanup" {
			t.Errorf("with no runtime answering, fix plans a cleanup: %+v", a)
		}
	}

	lab := []string{"--containerd-address", c.Sock, "--docker-host", "", "--crio-socket", "",
		"--containerd-state", c.State, "--fifo-dir", c.FifoDir}
	stdout, stderr, code = labkit.RunFix(t, append([]string{"-o", "json", "--only", "leak.cgroups"}, lab...)...)
	t.Logf("enospc fix -o json --only leak.cgroups --containerd-address <lab> (exit %d):\n%s%s", code, stdout, stderr)
	plan = fix.Plan{}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("fix -o json: not a plan: %v", err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Kind != "cleanup" || plan.Actions[0].Limit != "leak.cgroups" || plan.Actions[0].Scope != "host" {
		t.Fatalf("plan: %+v, want one cleanup of leak.cgroups host", plan.Actions)
	}
	for _, id := range ids {
		if n := len(cgroupDirsOf(filepath.Join(c.NS, id))); n != len(dirs[id]) {
			t.Fatalf("the dry run changed the cgroups of %s: %d directories, were %d", id, n, len(dirs[id]))
		}
	}

	state := filepath.Join(c.Dir, "fix-state")
	stdout, stderr, code = labkit.RunFix(t, append([]string{"--apply", "--yes", "--only", "leak.cgroups", "--state-dir", state}, lab...)...)
	t.Logf("enospc fix --apply --yes --only leak.cgroups --containerd-address <lab> (exit %d):\n%s%s", code, stdout, stderr)
	if code != 0 {
		t.Fatalf("fix --apply exit status %d", code)
	}

	// gone: every hierarchy's directory is removed.
	if left := cgroupDirsOf(filepath.Join(c.NS, "gone")); len(left) != 0 {
		t.Errorf("after fix, container gone still has cgroups: %v", left)
	}
	goneLine := fmt.Sprintf("removed  leak.cgroups %s  (%d cgroup directories)", filepath.Join("/sys/fs/cgroup/memory", c.NS, "gone"), len(dirs["gone"]))
	if !strings.Contains(stdout, goneLine) {
		t.Errorf("fix does not report %q", goneLine)
	}
	// busy: removed everywhere but in the hierarchy where a process sits
	// below it, where rmdir refused the sub-cgroup and busy itself.
	if left := cgroupDirsOf(filepath.Join(c.NS, "busy")); len(left) != 1 || left[0] != busyDir {
		t.Errorf("after fix, container busy has cgroups %v, want only %s (refused)", left, busyDir)
	}
	if p, err := procsOf(busySub); err != nil || !containsPID(p, busyPid) {
		t.Errorf("after fix, %s: procs %v (%v), want pid %d still there", busySub, p, err, busyPid)
	}
	busyLine := fmt.Sprintf("partial  leak.cgroups %s  (%d cgroup directories removed; 2 refused", filepath.Join("/sys/fs/cgroup/memory", c.NS, "busy"), len(dirs["busy"])-1)
	if !strings.Contains(stdout, busyLine) {
		t.Errorf("fix does not report %q", busyLine)
	}
	// held: check's re-verification sees its process: nothing touched.
	if left := cgroupDirsOf(filepath.Join(c.NS, "held")); len(left) != len(dirs["held"]) {
		t.Errorf("after fix, container held has %d cgroup directories, had %d: %v", len(left), len(dirs["held"]), left)
	}
	if p, err := procsOf(heldDir); err != nil || !containsPID(p, heldPid) {
		t.Errorf("after fix, %s: procs %v (%v), want pid %d still there", heldDir, p, err, heldPid)
	}
	if strings.Contains(stdout, filepath.Join(c.NS, "held")) {
		t.Errorf("fix names the cgroup of held, which has a process")
	}
	// kept: its cgroups, its process, its task.
	if left := cgroupDirsOf(filepath.Join(c.NS, "kept")); len(left) != len(dirs["kept"]) {
		t.Errorf("after fix, the live container has %d cgroup directories, had %d: %v", len(left), len(dirs["kept"]), left)
	}
	if p, err := procsOf(keptMem); err != nil || len(p) != len(keptProcs) || !containsPID(p, keptProcs[0]) {
		t.Errorf("after fix, %s holds %v (%v), held %v", keptMem, p, err, keptProcs)
	}
	if st := c.Tasks(t)["kept"]; st != "RUNNING" {
		t.Errorf("after fix, task kept is %q, want RUNNING", st)
	}
	if strings.Contains(stdout, filepath.Join(c.NS, "kept")) {
		t.Errorf("fix names the cgroup of the live container")
	}

	// The journal records the two removals.
	if j, err := fix.ReadJournal(filepath.Join(state, "journal.jsonl")); err != nil {
		t.Errorf("journal: %v", err)
	} else {
		got := map[string]string{}
		for _, e := range j.Entries {
			got[filepath.Base(e.Path)] = string(e.Kind) + "/" + string(e.State)
		}
		if len(j.Entries) != 2 || got["gone"] != "cleanup/removed" || got["busy"] != "cleanup/partial" {
			t.Errorf("journal entries %+v, want the removals of gone and busy", j.Entries)
		}
	}

	rep = runCheckOn(t, c, "--only", "leak.cgroups")
	if u := labkit.Find(t, rep, "leak.cgroups", labkit.ScopeIs("host")); u.Leaked != 0 {
		t.Errorf("leak.cgroups after fix: %+v, want none leaked", u)
	}
}
