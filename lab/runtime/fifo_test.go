//go:build lab

package runtime

// containerd#2421 (shared/seeds/002): containerd's clients make a
// directory per task under the fifo dir (/run/containerd/fifo) holding
// <id>-stdin, -stdout and -stderr fifos. When a task goes away without its
// client cleaning up, the directory stays, four inodes each, until /run (a
// tmpfs with a fixed nr_inodes) has no inode left and every new container
// fails with "no space left on device" while df -h shows room.
//
// The test runs a private containerd whose clients' fifo dir is a private
// tmpfs with 64 inodes. Live containers keep their fifo dirs; containers
// whose shim died and were deleted leave theirs (the leak as containerd
// 1.6 still has it); directories made exactly as containerd's client makes
// them, for ids that no longer exist, fill the rest, as two days of churn
// did in the report. The next `ctr run` fails with ENOSPC. Then `enospc
// check` must count the orphans exactly, and leave alone what is live: the
// running containers' dirs, a dir whose fifo a process holds open, a dir
// naming a live task, and one too young to judge.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
)

// makeFifoDir makes a fifo directory the way containerd's client does
// (cio.NewFIFOSetInDir: a temp dir with a random name; the fifos made
// 0700 when the client opens them) for task id. It returns the directory
// and the inodes it took, even when it ran out of them half way.
func makeFifoDir(root, id string) (string, int64, error) {
	dir, err := os.MkdirTemp(root, "")
	if err != nil {
		return "", 0, err
	}
	n := int64(1)
	for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
		if err := unix.Mkfifo(filepath.Join(dir, id+s), 0o700); err != nil {
			return dir, n, fmt.Errorf("mkfifo: %w", err)
		}
		n++
	}
	return dir, n, nil
}

// fifoDirOf returns the one directory under root holding id's fifos.
func fifoDirOf(t testing.TB, root, id string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(root, "*", id+"-stdin"))
	if len(matches) != 1 {
		ents, _ := os.ReadDir(root)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("want one fifo dir of %s under %s, have %q (entries %q)", id, root, matches, names)
	}
	return filepath.Dir(matches[0])
}

func statfsOf(t testing.TB, path string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatalf("statfs %s: %v", path, err)
	}
	return st
}

func TestFifoLeakContainerd(t *testing.T) {
	const (
		image    = "enospc.lab/busybox:lab"
		nrInodes = 64
	)
	c := startContainerd(t)

	c.ImportBusybox(t, image)

	// The fifo dir: a tmpfs with a fixed number of inodes, as /run is.
	if err := os.MkdirAll(c.FifoDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("enospc-lab-fifo", c.FifoDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("mode=0700,size=1m,nr_inodes=%d", nrInodes)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", c.FifoDir, err)
	}
	// Unmounted by the containerd cleanup (everything below c.Dir).
	if st := statfsOf(t, c.FifoDir); st.Files != nrInodes {
		t.Fatalf("tmpfs %s has %d inodes, want %d", c.FifoDir, st.Files, nrInodes)
	}

	taskState := filepath.Join(c.State, "io.containerd.runtime.v2.task", c.NS)

	// Live containers.
	live := []string{"live-1", "live-2", "live-3"}
	liveDirs := map[string]string{}
	for _, id := range live {
		if err := c.RunDetached(image, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run: %v\n%s", err, c.Log())
		}
		liveDirs[id] = fifoDirOf(t, c.FifoDir, id)
		// enospc's idea of a live task: its runtime v2 state directory.
		if fi, err := os.Stat(filepath.Join(taskState, id)); err != nil || !fi.IsDir() {
			t.Fatalf("containerd's state layout differs from what enospc reads: no %s (%v)", filepath.Join(taskState, id), err)
		}
	}
	if tasks := c.Tasks(t); len(tasks) != len(live) {
		t.Fatalf("tasks after starting %d: %v", len(live), tasks)
	}

	// orphans: fifo dir -> the gone task it names; and the inodes each took.
	orphans := map[string]string{}
	orphanInodes := map[string]int64{}
	addOrphan := func(dir, id string, inodes int64) {
		orphans[dir], orphanInodes[dir] = id, inodes
	}

	// The leak as containerd 1.6 still has it: the shim dies (OOM killer,
	// a crash), containerd reaps the task, the container is deleted, and
	// nothing removes the client's fifo dir.
	for _, id := range []string{"gone-1", "gone-2", "gone-3"} {
		if err := c.RunDetached(image, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run: %v\n%s", err, c.Log())
		}
		dir := fifoDirOf(t, c.FifoDir, id)
		shim := c.ShimPID(id)
		if shim == 0 {
			t.Fatalf("no shim process for %s", id)
		}
		if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
			t.Fatalf("kill shim %d of %s: %v", shim, id, err)
		}
		if !labkit.WaitFor(30*time.Second, func() bool { _, ok := c.Tasks(t)[id]; return !ok }) {
			t.Fatalf("containerd still lists the task %s 30s after its shim died", id)
		}
		if _, err := c.Ctr(30*time.Second, "container", "delete", id); err != nil {
			t.Fatalf("ctr container delete %s: %v", id, err)
		}
		// containerd drops the task from its list before its cleanup of
		// the dead shim has removed the bundle (the state dir enospc reads).
		start := time.Now()
		if !labkit.WaitFor(30*time.Second, func() bool { _, err := os.Stat(filepath.Join(taskState, id)); return os.IsNotExist(err) }) {
			t.Fatalf("the task state dir of deleted %s is still there 30s on", id)
		}
		t.Logf("%s: shim killed, task reaped, container deleted; its state dir went %s after the delete", id, time.Since(start).Round(time.Millisecond))
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("containerd removed the fifo dir of %s after its shim died: this version no longer leaks that way, the lab needs another path to the leak (%v)", id, err)
		}
		addOrphan(dir, id, 4)
	}

	// The churn of #2421: run, pause, resume, kill, container delete.
	{
		id := "churn-1"
		if err := c.RunDetached(image, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run: %v", err)
		}
		dir := fifoDirOf(t, c.FifoDir, id)
		for _, a := range [][]string{{"task", "pause", id}, {"task", "resume", id}, {"task", "kill", "-s", "SIGKILL", id}} {
			if _, err := c.Ctr(30*time.Second, a...); err != nil {
				t.Fatalf("ctr %v", err)
			}
		}
		// "cannot delete a non stopped container" until the kill lands,
		// as in the report's retries.
		var err error
		if !labkit.WaitFor(30*time.Second, func() bool { _, err = c.Ctr(30*time.Second, "container", "delete", id); return err == nil }) {
			t.Fatalf("ctr container delete %s: %v", id, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Logf("the #2421 sequence leaks on this containerd: %s stays", dir)
			addOrphan(dir, id, 4)
		} else {
			t.Logf("the #2421 sequence (pause, resume, kill, container delete) leaves no fifo dir on this containerd")
		}
	}

	// Kept by one rule each of enospc's:
	// a dir whose fifo a process holds open (an attached client) ...
	heldDir, _, err := makeFifoDir(c.FifoDir, "held-1")
	if err != nil {
		t.Fatal(err)
	}
	fifo, err := os.OpenFile(filepath.Join(heldDir, "held-1-stdout"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(labkit.RequireTool(t, "sleep"), "3600")
	holder.Stdin = fifo
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	fifo.Close()
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	// ... a second dir naming a live task, held by nobody ...
	stateOnlyDir, _, err := makeFifoDir(c.FifoDir, live[0])
	if err != nil {
		t.Fatal(err)
	}
	// ... and one younger than the grace minute (an orphan otherwise).
	youngDir, _, err := makeFifoDir(c.FifoDir, "young-1")
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]string{heldDir: "held open", stateOnlyDir: "names live task " + live[0], youngDir: "young"}
	for id, d := range liveDirs {
		keep[d] = "live task " + id
	}

	// Everything but the young one is old enough to judge.
	old := time.Now().Add(-10 * time.Minute)
	ents, err := os.ReadDir(c.FifoDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if d := filepath.Join(c.FifoDir, e.Name()); d != youngDir {
			if err := os.Chtimes(d, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Two days of churn in a few milliseconds: orphans of tasks that no
	// longer exist until the tmpfs has no inode left.
	filled := 0
	for i := 1; i <= nrInodes; i++ {
		id := fmt.Sprintf("test.%d", 32580+i)
		dir, n, err := makeFifoDir(c.FifoDir, id)
		if dir != "" {
			addOrphan(dir, id, n)
			if err := os.Chtimes(dir, old, old); err != nil {
				t.Fatal(err)
			}
			filled++
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", c.FifoDir, err)
			}
			break
		}
	}
	st := statfsOf(t, c.FifoDir)
	if st.Ffree != 0 {
		t.Fatalf("%s still has %d of %d inodes free after %d orphan dirs", c.FifoDir, st.Ffree, st.Files, filled)
	}
	t.Logf("%s: %d inodes, all used; %d orphan dirs (%d made here, %d leaked by containerd)", c.FifoDir, st.Files, len(orphans), filled, len(orphans)-filled)

	// The failure of the report: the next container cannot start.
	err = c.RunDetached(image, "victim-1", "sleep", "3600")
	if err == nil {
		t.Fatalf("ctr run succeeded on a fifo dir with no inode left")
	}
	t.Logf("ctr run failed:\n%v", err)
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("ctr run failed for another reason than ENOSPC: %v", err)
	}

	// The young dir is young now, whatever the test took so far.
	now := time.Now()
	if err := os.Chtimes(youngDir, now, now); err != nil {
		t.Fatal(err)
	}
	var wantUsed int64
	for _, n := range orphanInodes {
		wantUsed += n
	}

	rep, code := labkit.RunCheck(t, "--containerd-state", c.State, "--fifo-dir", c.FifoDir)
	row := labkit.Find(t, rep, "leak.fifo", labkit.ScopeIs(c.FifoDir))
	t.Logf("enospc check: %s %q %s leaked %d, %d/%d %s, %d consumers (total %d); %s; exit %d",
		row.Limit, row.Scope, row.Severity, row.Leaked, row.Used, row.Max, row.Unit, len(row.Consumers), row.ConsumersTotal, row.Reason, code)
	if row.Leaked != int64(len(orphans)) {
		t.Errorf("leak.fifo: leaked %d, want %d", row.Leaked, len(orphans))
	}
	if row.Used != wantUsed {
		t.Errorf("leak.fifo: used %d inodes, the orphans hold %d", row.Used, wantUsed)
	}
	if row.Max != nrInodes {
		t.Errorf("leak.fifo: max %d, the tmpfs has %d inodes", row.Max, nrInodes)
	}
	if row.Severity.String() != "critical" {
		t.Errorf("leak.fifo: severity %s, want critical: the orphans hold %d of the %d inodes of a full filesystem", row.Severity, wantUsed, nrInodes)
	}
	if code != 2 {
		t.Errorf("enospc check exit status %d, want 2", code)
	}
	if total := max(row.ConsumersTotal, len(row.Consumers)); total != len(orphans) {
		t.Errorf("leak.fifo: %d consumers in all, want %d", total, len(orphans))
	}
	liveSet := map[string]bool{}
	for _, id := range live {
		liveSet[id] = true
	}
	for _, cs := range row.Consumers {
		if why, ok := keep[cs.Name]; ok {
			t.Errorf("leak.fifo lists %s, which is not an orphan (%s)", cs.Name, why)
			continue
		}
		if liveSet[cs.Container] {
			t.Errorf("leak.fifo lists %s for live container %s", cs.Name, cs.Container)
		}
		id, ok := orphans[cs.Name]
		if !ok {
			t.Errorf("leak.fifo lists %s, which the test did not leave behind", cs.Name)
			continue
		}
		if cs.Container != id || cs.Count != orphanInodes[cs.Name] {
			t.Errorf("leak.fifo consumer %s: container %q count %d, want %q %d", cs.Name, cs.Container, cs.Count, id, orphanInodes[cs.Name])
		}
	}
	// The filesystem row names the same exhaustion.
	ino := labkit.Find(t, rep, "inodes", func(s string) bool { return strings.HasPrefix(s, c.FifoDir+" (") })
	if ino.Severity.String() != "critical" || ino.Used != nrInodes || ino.Max != nrInodes {
		t.Errorf("inodes %q: %s %d/%d, want critical %d/%d", ino.Scope, ino.Severity, ino.Used, ino.Max, nrInodes, nrInodes)
	}

	// check is read-only: the live containers run on, every dir is there.
	tasks := c.Tasks(t)
	for _, id := range live {
		if tasks[id] != "RUNNING" {
			t.Errorf("after the check, task %s is %q, want RUNNING (tasks %v)", id, tasks[id], tasks)
		}
	}
	var gone []string
	for d := range keep {
		if _, err := os.Stat(d); err != nil {
			gone = append(gone, d)
		}
	}
	for d := range orphans {
		if _, err := os.Stat(d); err != nil {
			gone = append(gone, d)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		t.Errorf("fifo dirs gone after the check: %q", gone)
	}
	for id, d := range liveDirs {
		for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
			if _, err := os.Stat(filepath.Join(d, id+s)); err != nil {
				t.Errorf("live task %s lost its fifo: %v", id, err)
			}
		}
	}

	// fix --apply removes the orphans, re-verified, and nothing else: the
	// young dir, the held ones and the live tasks' stay; the container
	// that could not start starts.
	out, err := exec.Command(labkit.Bin(), "fix", "--apply", "--yes", "--only", "leak.fifo",
		"--containerd-state", c.State, "--fifo-dir", c.FifoDir, "--state-dir", filepath.Join(c.Dir, "fix-state")).CombinedOutput()
	t.Logf("enospc fix --apply --only leak.fifo:\n%s", out)
	if err != nil {
		t.Fatalf("fix --apply: %v", err)
	}
	for d := range orphans {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("orphan %s is still there after fix --apply", d)
		}
	}
	for d, why := range keep {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("fix removed %s, which is not an orphan (%s)", d, why)
		}
	}
	for id, d := range liveDirs {
		for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
			if _, err := os.Stat(filepath.Join(d, id+s)); err != nil {
				t.Errorf("after fix, live task %s lost its fifo: %v", id, err)
			}
		}
	}
	if tasks := c.Tasks(t); len(tasks) < len(live) {
		t.Errorf("after fix, tasks %v", tasks)
	}
	if err := c.RunDetached(image, "victim-2", "sleep", "3600"); err != nil {
		t.Errorf("after fix --apply the next container still cannot start: %v", err)
	}
}
