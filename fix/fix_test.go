package fix

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// testHost is a proc tree with writable sysctl files and a root for the
// persist file.
func testHost(t *testing.T, sysctls map[string]string) (*host.Host, string) {
	t.Helper()
	dir := t.TempDir()
	for name, v := range sysctls {
		p := filepath.Join(dir, "proc", "sys", filepath.Join(strings.Split(name, ".")...))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	return host.New(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "root")), dir
}

func sysctl(t *testing.T, h *host.Host, name string) int64 {
	t.Helper()
	v, err := h.SysctlInt(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var jenkins = &check.Report{Host: "agent", Findings: []limits.Finding{
	{Limit: "keys.bytes", Scope: "uid 1001", Used: 19926, Max: 20000, Unit: "bytes", Severity: limits.Critical},
	{Limit: "inotify.watches", Scope: "uid 0", Used: 8012, Max: 8192, Unit: "watches", Severity: limits.Critical},
	{Limit: "cgroups.dying", Scope: "/sys/fs/cgroup/memory", Used: 65000, Max: 65535, Unit: "cgroups", Severity: limits.Critical,
		Remedy: []string{"boot with cgroup.memory=nokmem"}},
	{Limit: "disk", Scope: "/", Used: 1, Max: 100, Unit: "bytes", Severity: limits.OK},
}}

func TestMakePlan(t *testing.T) {
	h, _ := testHost(t, map[string]string{"kernel.keys.maxbytes": "20000", "kernel.keys.maxkeys": "200", "fs.inotify.max_user_watches": "8192"})
	p := MakePlan(jenkins, h, nil)
	got := map[string]Action{}
	for _, a := range p.Actions {
		got[a.Sysctl+string(a.Kind)] = a
	}
	if a := got["kernel.keys.maxbytessysctl"]; a.From != 20000 || a.To < 4*19926 {
		t.Errorf("maxbytes: %+v", a)
	}
	// maxkeys moves with maxbytes.
	if a := got["kernel.keys.maxkeyssysctl"]; a.From != 200 || a.To <= 200 {
		t.Errorf("maxkeys not raised with maxbytes: %+v", a)
	}
	if a := got["fs.inotify.max_user_watchessysctl"]; a.To != 524288 {
		t.Errorf("watches: %+v", a)
	}
	if a := got["guidance"]; a.Limit != "cgroups.dying" || !strings.Contains(a.Text, "nokmem") {
		t.Errorf("guidance: %+v", a)
	}
	if _, ok := got["sysctl"]; ok {
		t.Error("an ok row planned something")
	}
	if p := MakePlan(jenkins, h, []string{"inotify.watches"}); len(p.Actions) != 1 || p.Actions[0].Sysctl != "fs.inotify.max_user_watches" {
		t.Errorf("--only: %+v", p.Actions)
	}
	// Never lower: a value already above what the row needs plans nothing.
	h2, _ := testHost(t, map[string]string{"fs.inotify.max_user_watches": "1048576"})
	if p := MakePlan(&check.Report{Findings: jenkins.Findings[1:2]}, h2, nil); len(p.Actions) != 0 {
		t.Errorf("planned below the current value: %+v", p.Actions)
	}
}

func TestApplyPersistUndo(t *testing.T) {
	h, dir := testHost(t, map[string]string{"kernel.keys.maxbytes": "20000", "kernel.keys.maxkeys": "200", "fs.inotify.max_user_watches": "8192", "vm.swappiness": "60"})
	persist := filepath.Join(dir, "root", "etc", "sysctl.d", "90-enospc.conf")
	os.MkdirAll(filepath.Dir(persist), 0o755)
	os.WriteFile(persist, []byte("# mine\nvm.swappiness = 10\nfs.inotify.max_user_watches = 100\n"), 0o644)
	o := Options{StateDir: filepath.Join(dir, "state"), Persist: true}
	p := MakePlan(jenkins, h, nil)
	// Someone raises maxkeys between the plan and the apply: that action
	// is skipped, the others go on.
	os.WriteFile(filepath.Join(dir, "proc/sys/kernel/keys/maxkeys"), []byte("300\n"), 0o644)
	res, err := Apply(h, p, o)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]State{}
	for _, e := range res.Entries {
		states[e.Sysctl] = e.State
	}
	if states["kernel.keys.maxbytes"] != "done" || states["fs.inotify.max_user_watches"] != "done" || states["kernel.keys.maxkeys"] != "skipped" {
		t.Fatalf("apply: %+v", res.Entries)
	}
	if sysctl(t, h, "fs.inotify.max_user_watches") != 524288 || sysctl(t, h, "kernel.keys.maxkeys") != 300 {
		t.Fatal("apply did not write what it said")
	}
	b, _ := os.ReadFile(persist)
	if !strings.Contains(string(b), "vm.swappiness = 10") || !strings.Contains(string(b), "fs.inotify.max_user_watches = 524288") || strings.Contains(string(b), "= 100") {
		t.Errorf("persist file:\n%s", b)
	}
	// check reports drift once the running value falls below the file.
	os.WriteFile(filepath.Join(dir, "proc/sys/fs/inotify/max_user_watches"), []byte("8192\n"), 0o644)
	if d := check.Drift(h); len(d) != 1 || !strings.Contains(d[0], "fs.inotify.max_user_watches is 8192 running but 524288") {
		t.Errorf("drift: %v", d)
	}
	// Undo: maxbytes goes back; watches, lowered by someone since, is
	// left as is; the persist file gets its old content.
	und, err := Undo(h, o)
	if err != nil {
		t.Fatal(err)
	}
	if sysctl(t, h, "kernel.keys.maxbytes") != 20000 {
		t.Errorf("maxbytes not restored: %+v", und.Entries)
	}
	for _, e := range und.Entries {
		if e.Sysctl == "fs.inotify.max_user_watches" && (e.State != StateDone || !strings.Contains(e.Note, "left as is")) {
			t.Errorf("watches: %+v", e)
		}
	}
	if b, _ := os.ReadFile(persist); string(b) != "# mine\nvm.swappiness = 10\nfs.inotify.max_user_watches = 100\n" {
		t.Errorf("persist file not restored:\n%s", b)
	}
	if _, err := os.Stat(journalPath(o)); !os.IsNotExist(err) {
		t.Error("the journal is still active after undo")
	}
}

// A crash after the journal entry, before or after the write: the next run
// settles it by the value the kernel has.
func TestCrashRecovery(t *testing.T) {
	h, dir := testHost(t, map[string]string{"fs.inotify.max_user_watches": "524288", "fs.file-max": "1000"})
	o := Options{StateDir: filepath.Join(dir, "state")}
	writeJournal(t, o, []Entry{
		{Seq: 1, Kind: KindSysctl, Sysctl: "fs.inotify.max_user_watches", Old: 8192, New: 524288, State: StatePending},
		{Seq: 2, Kind: KindSysctl, Sysctl: "fs.file-max", Old: 1000, New: 4000, State: StatePending},
	}, "")
	res, err := Undo(h, o)
	if err != nil {
		t.Fatal(err)
	}
	if sysctl(t, h, "fs.inotify.max_user_watches") != 8192 || sysctl(t, h, "fs.file-max") != 1000 {
		t.Errorf("after a crash, undo: %+v", res.Entries)
	}
}

func TestLockRefusesSecondRun(t *testing.T) {
	h, dir := testHost(t, map[string]string{"fs.file-max": "1000"})
	o := Options{StateDir: filepath.Join(dir, "state"), LockWait: 300 * time.Millisecond}
	os.MkdirAll(o.StateDir, 0o700)
	f, err := os.OpenFile(filepath.Join(o.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Apply(h, Plan{Actions: []Action{{Kind: KindSysctl, Sysctl: "fs.file-max", From: 1000, To: 4000}}}, o)
	if err == nil || !strings.Contains(err.Error(), "another enospc fix runs") || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("second run: %v after %s", err, time.Since(start))
	}
	if sysctl(t, h, "fs.file-max") != 1000 {
		t.Error("the refused run wrote")
	}
}

// Cleanup removes the orphaned fifo directories of the run-inodes fixture
// host (a copy) and leaves the live ones: those a process holds and those
// whose task containerd still has.
func TestCleanupFifos(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../testdata/hosts/run-inodes")); err != nil {
		t.Fatal(err)
	}
	h := host.New(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "root"))
	h.Now = func() time.Time { return time.Now().Add(time.Hour) } // past the grace
	fifo := filepath.Join(dir, "root", "run", "containerd", "fifo")
	before, _ := os.ReadDir(fifo)
	copts := check.Options{Inventory: nil}
	p := Plan{Actions: []Action{{Kind: KindCleanup, Limit: "leak.fifo"}}}
	res, err := Cleanup(context.Background(), h, copts, p, Options{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, e := range res.Entries {
		if e.State == StateRemoved {
			removed++
		}
	}
	after, _ := os.ReadDir(fifo)
	if removed != 240 || len(before)-len(after) != 240 {
		t.Fatalf("removed %d (dirs %d -> %d), want the 240 orphans: %+v", removed, len(before), len(after), res.Entries[:min(3, len(res.Entries))])
	}
	// What is left is what check calls live.
	rep, err := check.Run(context.Background(), h, check.Options{Only: []string{"leak.fifo"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Leaked != 0 {
			t.Errorf("after cleanup: %+v", f)
		}
	}
	if len(after) == 0 {
		t.Error("the live fifo directories were removed too")
	}
}

func TestPruneActions(t *testing.T) {
	uid0 := 0
	rep := &check.Report{Findings: []limits.Finding{
		{Limit: "leak.keyrings", Scope: "uid 1001", Leaked: 3, Severity: limits.Warning, Consumers: []limits.Consumer{
			{Container: "a", Runtime: "docker", State: "exited", UID: &uid0}, {Container: "b", Runtime: "docker", State: "exited", UID: &uid0},
			{Container: "c", Runtime: "containerd", State: "stopped", UID: &uid0},
			// No owner known: nothing to prove it by.
			{Container: "d", Runtime: "docker", State: "exited"},
		}},
		{Limit: "leak.keyrings", Scope: "uid 1002", Leaked: 0},
	}}
	a := PruneActions(rep)
	if len(a) != 1 || a[0].Kind != KindCleanup || a[0].Scope != "uid 1001" || !strings.Contains(a[0].Text, "2 exited docker containers") {
		t.Fatalf("%+v", a)
	}
}

// writeJournal writes entries, one a line, and then tail (a torn line).
func writeJournal(t *testing.T, o Options, entries []Entry, tail string) {
	t.Helper()
	o.defaults()
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, e := range entries {
		l, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, l...), '\n')
	}
	if err := os.WriteFile(journalPath(o), append(b, tail...), 0o600); err != nil {
		t.Fatal(err)
	}
}
