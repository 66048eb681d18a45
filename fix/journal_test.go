package fix

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// Each entry and each new state of it is one line appended: the file only
// grows, by that line, whatever its length.
func TestJournalAppendOnly(t *testing.T) {
	h, dir := testHost(t, nil)
	o := Options{StateDir: filepath.Join(dir, "state")}
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var size int64
	var first []byte
	grow := func(e Entry) {
		t.Helper()
		line, _ := json.Marshal(e)
		size += int64(len(line)) + 1
		fi, err := os.Stat(journalPath(o))
		if err != nil || fi.Size() != size {
			t.Fatalf("after entry %d: journal of %v bytes, want %d appended (%v)", e.Seq, fi.Size(), size, err)
		}
	}
	for i := 0; i < 300; i++ {
		k, err := j.add(Entry{Kind: KindCleanup, Limit: "leak.fifo", Path: "/run/containerd/fifo/x", State: StatePending})
		if err != nil {
			t.Fatal(err)
		}
		grow(*k)
		k.State = StateRemoved
		if err := j.update(k); err != nil {
			t.Fatal(err)
		}
		grow(*k)
		if i == 0 {
			first, _ = os.ReadFile(journalPath(o))
		}
	}
	b, _ := os.ReadFile(journalPath(o))
	if !bytes.HasPrefix(b, first) {
		t.Error("the first lines were rewritten")
	}
	read, err := ReadJournal(journalPath(o))
	if err != nil || len(read.Entries) != 300 || read.Entries[299].State != StateRemoved || read.Torn != "" {
		t.Fatalf("read back: %v, %d entries", err, len(read.Entries))
	}
}

// A crash in the middle of an append leaves a torn last line: ignored,
// reported, cut off before the next line; a bad line before the last is
// not a crash's doing and stops everything.
func TestJournalTornLastLine(t *testing.T) {
	done := Entry{Seq: 1, Kind: KindSysctl, Sysctl: "fs.file-max", Old: 1000, New: 4000, State: StateDone}
	for _, tail := range []string{
		`{"seq":2,"kind":"sysctl","sysctl":"fs.inotify.max_us`,
		"{\"seq\":2,\"kind\":\"sysctl\"\x00\x00\x00\n", // blocks never written, then the newline
	} {
		h, dir := testHost(t, map[string]string{"fs.file-max": "4000", "fs.inotify.max_user_watches": "8192"})
		o := Options{StateDir: filepath.Join(dir, "state")}
		writeJournal(t, o, []Entry{done}, tail)
		// Apply goes on after the torn line, on a line of its own.
		res, err := Apply(h, Plan{Actions: []Action{{Kind: KindSysctl, Sysctl: "fs.inotify.max_user_watches", From: 8192, To: 524288}}}, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "cut short") {
			t.Errorf("torn line not reported: %q", res.Notes)
		}
		j, err := ReadJournal(journalPath(o))
		if err != nil || j.Torn != "" || len(j.Entries) != 2 || j.Entries[1].State != StateDone {
			t.Fatalf("after apply: %v %+v", err, j)
		}
		if _, err := Undo(h, o); err != nil {
			t.Fatal(err)
		}
		if sysctl(t, h, "fs.file-max") != 1000 || sysctl(t, h, "fs.inotify.max_user_watches") != 8192 {
			t.Error("undo after a torn line did not restore both")
		}
	}
	h, dir := testHost(t, map[string]string{"fs.file-max": "4000"})
	o := Options{StateDir: filepath.Join(dir, "state")}
	writeJournal(t, o, []Entry{done}, "garbage\n"+`{"seq":1,"kind":"sysctl","sysctl":"fs.file-max","old":1000,"new":4000,"state":"done"}`+"\n")
	if _, err := Undo(h, o); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line in the middle: %v", err)
	}
	if sysctl(t, h, "fs.file-max") != 4000 {
		t.Error("undo wrote from a corrupt journal")
	}
}

// Undo writes only what enospc writes: a journal naming anything else is
// refused whole, before anything is written.
func TestUndoRefusesForeignEntries(t *testing.T) {
	prev := "kernel.yama.ptrace_scope = 1\n"
	good := Entry{Seq: 1, Kind: KindSysctl, Sysctl: "fs.file-max", Old: 1000, New: 4000, State: StateDone}
	for name, e := range map[string]Entry{
		"a sysctl enospc never raises":  {Kind: KindSysctl, Sysctl: "kernel.yama.ptrace_scope", Old: 0, New: 1, State: StateDone},
		"a path in a sysctl name":       {Kind: KindSysctl, Sysctl: "fs..file-max", Old: 0, New: 1, State: StateDone},
		"a sysctl with a path":          {Kind: KindSysctl, Sysctl: "fs.file-max", Path: "/etc/passwd", Old: 0, New: 1, State: StateDone},
		"a persist file elsewhere":      {Kind: KindPersist, Path: "/etc/passwd", Prev: &prev, State: StateDone},
		"a persist file up and out":     {Kind: KindPersist, Path: "/etc/sysctl.d/../cron.d/90-enospc.conf", Prev: &prev, State: StateDone},
		"another sysctl.d file":         {Kind: KindPersist, Path: "/etc/sysctl.d/10-yama.conf", Prev: &prev, State: StateDone},
		"a fifo removal elsewhere":      {Kind: KindCleanup, Limit: "leak.fifo", Path: "/etc", State: StateRemoved},
		"a fifo removal up and out":     {Kind: KindCleanup, Limit: "leak.fifo", Path: "/run/containerd/fifo/../../etc", State: StateRemoved},
		"a cgroup removal elsewhere":    {Kind: KindCleanup, Limit: "leak.cgroups", Path: "/sys/fs/cgroupx/a", State: StateRemoved},
		"a container that is no id":     {Kind: KindCleanup, Limit: "leak.keyrings", Container: "victim", State: StateRemoved},
		"a cleanup of something else":   {Kind: KindCleanup, Limit: "disk", Path: "/", State: StateRemoved},
		"a kind enospc never journals":  {Kind: "exec", Path: "/bin/sh", State: StateDone},
		"an entry before its first one": {Kind: KindSysctl, Sysctl: "fs.file-max", Old: 1000, New: 4000, State: StateDone, Seq: 7},
	} {
		t.Run(name, func(t *testing.T) {
			h, dir := testHost(t, map[string]string{"fs.file-max": "4000"})
			os.MkdirAll(filepath.Join(dir, "root", "etc"), 0o755)
			passwd := filepath.Join(dir, "root", "etc", "passwd")
			os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
			o := Options{StateDir: filepath.Join(dir, "state")}
			if e.Seq == 0 {
				e.Seq = 2
			}
			writeJournal(t, o, []Entry{good, e}, "")
			if _, err := Undo(h, o); err == nil {
				t.Fatal("undo took the journal")
			}
			if sysctl(t, h, "fs.file-max") != 4000 {
				t.Error("undo wrote a sysctl from a refused journal")
			}
			if b, _ := os.ReadFile(passwd); !strings.HasPrefix(string(b), "root:") {
				t.Errorf("undo wrote %s: %q", passwd, b)
			}
		})
	}
	// The legitimate ones pass.
	o := Options{}
	o.defaults()
	for _, e := range []Entry{
		good,
		{Kind: KindPersist, Path: DefaultPersistFile},
		{Kind: KindPersist, Path: "/etc/sysctl.d/99-enospc-keys.conf"},
		{Kind: KindCleanup, Limit: "leak.fifo", Path: "/run/containerd/fifo/123"},
		{Kind: KindCleanup, Limit: "leak.cgroups", Path: "/sys/fs/cgroup/system.slice/docker-" + cid('a') + ".scope"},
		{Kind: KindCleanup, Limit: "leak.keyrings", Container: cid('a')},
		{Kind: KindCleanup, Limit: "leak.keyrings", State: StateFailed, Note: "no docker"},
	} {
		if err := validEntry(e, o); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	// Apply does not write a persist file it could not undo.
	h, dir := testHost(t, map[string]string{"fs.file-max": "1000"})
	_, err := Apply(h, Plan{Actions: []Action{{Kind: KindSysctl, Sysctl: "fs.file-max", From: 1000, To: 4000}}},
		Options{StateDir: filepath.Join(dir, "state"), Persist: true, PersistFile: "/etc/cron.d/x"})
	if err == nil || !strings.HasPrefix(err.Error(), "PersistFile: ") || sysctl(t, h, "fs.file-max") != 1000 {
		t.Errorf("apply with a foreign persist file: %v", err)
	}
}

// A state dir or journal that another user could have written is refused.
func TestStateDirMustBePrivate(t *testing.T) {
	entries := []Entry{{Seq: 1, Kind: KindSysctl, Sysctl: "fs.file-max", Old: 1000, New: 4000, State: StateDone}}
	for name, spoil := range map[string]func(t *testing.T, o Options){
		"state dir writable by others": func(t *testing.T, o Options) { os.Chmod(o.StateDir, 0o777) },
		"state dir writable by group":  func(t *testing.T, o Options) { os.Chmod(o.StateDir, 0o770) },
		"journal writable by others":   func(t *testing.T, o Options) { os.Chmod(journalPath(o), 0o646) },
		"journal a symbolic link": func(t *testing.T, o Options) {
			other := filepath.Join(filepath.Dir(o.StateDir), "elsewhere")
			os.Rename(journalPath(o), other)
			os.Symlink(other, journalPath(o))
		},
		"state dir a symbolic link": func(t *testing.T, o Options) {
			other := o.StateDir + ".real"
			os.Rename(o.StateDir, other)
			os.Symlink(other, o.StateDir)
		},
		"journal of another user": func(t *testing.T, o Options) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the journal away")
			}
			os.Chown(journalPath(o), 261000, 261000)
		},
		"state dir of another user": func(t *testing.T, o Options) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the state dir away")
			}
			os.Chown(o.StateDir, 261000, 261000)
		},
	} {
		t.Run(name, func(t *testing.T) {
			h, dir := testHost(t, map[string]string{"fs.file-max": "4000"})
			o := Options{StateDir: filepath.Join(dir, "state")}
			writeJournal(t, o, entries, "")
			spoil(t, o)
			if _, err := Undo(h, o); err == nil || !strings.Contains(err.Error(), "refusing") {
				t.Fatalf("undo: %v", err)
			}
			if sysctl(t, h, "fs.file-max") != 4000 {
				t.Error("undo wrote from a journal others could write")
			}
		})
	}
	h, dir := testHost(t, map[string]string{"fs.file-max": "4000"})
	o := Options{StateDir: filepath.Join(dir, "state")}
	writeJournal(t, o, entries, "")
	if _, err := Undo(h, o); err != nil || sysctl(t, h, "fs.file-max") != 1000 {
		t.Errorf("undo from a private journal: %v", err)
	}
}

const crashDirEnv = "ENOSPC_TEST_PERSIST_CRASH_DIR"

// A run killed between the persist file's rename and its journal entry's
// "done": undo still gives the file back what it held, or removes it.
func TestPersistSurvivesACrash(t *testing.T) {
	plan := Plan{Actions: []Action{{Kind: KindSysctl, Sysctl: "fs.inotify.max_user_watches", From: 8192, To: 524288}}}
	if dir := os.Getenv(crashDirEnv); dir != "" {
		h := host.New(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "root"))
		o := Options{StateDir: filepath.Join(dir, "state"), Persist: true, step: func(step string) error {
			if step == "renamed" {
				unix.Kill(os.Getpid(), unix.SIGKILL)
				select {}
			}
			return nil
		}}
		Apply(h, plan, o)
		os.Exit(0)
	}
	mine := "# mine\nvm.swappiness = 10\n"
	for _, prev := range []*string{nil, &mine} {
		h, dir := testHost(t, map[string]string{"fs.inotify.max_user_watches": "8192"})
		file := filepath.Join(dir, "root", DefaultPersistFile)
		if prev != nil {
			os.MkdirAll(filepath.Dir(file), 0o755)
			os.WriteFile(file, []byte(*prev), 0o644)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPersistSurvivesACrash$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("the child was not killed: %v", err)
		}
		if b, _ := os.ReadFile(file); !strings.Contains(string(b), "fs.inotify.max_user_watches = 524288") {
			t.Fatalf("the child died before the rename:\n%s", b)
		}
		o := Options{StateDir: filepath.Join(dir, "state")}
		if _, err := Undo(h, o); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		switch {
		case prev == nil && !os.IsNotExist(err):
			t.Errorf("persist file left after undo: %q", b)
		case prev != nil && string(b) != *prev:
			t.Errorf("persist file after undo: %q, want %q", b, *prev)
		}
		if sysctl(t, h, "fs.inotify.max_user_watches") != 8192 {
			t.Error("sysctl not restored")
		}
	}
}
