package fix

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// Options tune Apply, Cleanup and Undo.
type Options struct {
	// StateDir holds the journal and the lock (default /var/lib/enospc).
	// It and the journal must be the running user's and not writable by
	// group or others: the journal says what Undo writes.
	StateDir string
	// Persist writes the raised sysctls to PersistFile too (a host path,
	// under the host's root), so that they survive a reboot. PersistFile
	// must be /etc/sysctl.d/NN-enospc.conf or NN-enospc-<name>.conf.
	Persist     bool
	PersistFile string
	// FifoDir is the fifo directory of containerd's clients (host path,
	// default /run/containerd/fifo): fifo removals are journaled only
	// below it.
	FifoDir string
	// LockWait is how long a second run waits for the first.
	LockWait time.Duration
	Now      func() time.Time

	// step, in tests, runs between the steps of persist; an error stops
	// there as a crash would.
	step func(string) error
	// keyring, in tests, stands for the kernel's keyrings.
	keyring keyringCheck
}

// DefaultPersistFile is where --persist writes (check reports drift
// between it and the running values).
const DefaultPersistFile = check.PersistFile

// Entry is one change in the journal.
type Entry struct {
	// Seq numbers the entry in its journal, from 1; a later line with
	// the same Seq records a new state of the same change.
	Seq int `json:"seq"`
	// Kind is "sysctl" (undoable), "persist" (the persist file, undoable)
	// or "cleanup" (a removal, recorded).
	Kind   Kind   `json:"kind,omitempty"`
	Limit  string `json:"limit,omitempty"`
	Path   string `json:"path,omitempty"`
	Sysctl string `json:"sysctl,omitempty"`
	Old    int64  `json:"old,omitempty"`
	New    int64  `json:"new,omitempty"`
	// Container is the docker container a prune removed.
	Container string `json:"container,omitempty"`
	// Prev is what the persist file held before (nil: it did not exist).
	Prev *string `json:"prev,omitempty"`
	// State: StatePending (journaled, maybe written), StateDone,
	// StateSkipped, StateFailed, StateUndone; for cleanups StateRemoved,
	// StatePartial.
	State State     `json:"state"`
	Note  string    `json:"note,omitempty"`
	Time  time.Time `json:"time"`
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = "/var/lib/enospc"
	}
	if o.PersistFile == "" {
		o.PersistFile = DefaultPersistFile
	}
	if o.FifoDir == "" {
		o.FifoDir = "/run/containerd/fifo"
	}
	if o.LockWait <= 0 {
		o.LockWait = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// lock takes the state dir's lock: a second run waits up to LockWait, then
// refuses. The lock goes with the process, so a crashed run holds nothing.
func lock(o Options) (func(), error) {
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	if err := checkPrivate(o.StateDir, true); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(o.StateDir, "lock"), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(o.LockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			if err == unix.EWOULDBLOCK {
				return nil, fmt.Errorf("another enospc fix runs (lock %s held for more than %s): refusing", f.Name(), o.LockWait)
			}
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPrivate refuses a state dir or journal that someone other than the
// running user could have written: not its own, writable by group or
// others, or a symbolic link.
func checkPrivate(path string, dir bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	return checkStat(path, &st, dir)
}

func checkStat(path string, st *unix.Stat_t, dir bool) error {
	want := uint32(unix.S_IFREG)
	if dir {
		want = unix.S_IFDIR
	}
	switch {
	case st.Mode&unix.S_IFMT != want:
		return fmt.Errorf("%s: not a regular %s: refusing", path, map[bool]string{true: "directory", false: "file"}[dir])
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s: owned by uid %d, not %d: refusing", path, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s: writable by group or others (mode %04o): refusing", path, st.Mode&0o7777)
	}
	return nil
}

// openJournal takes the lock and loads the journal, checked entry by
// entry, settling what a crashed run left pending; unlock releases both.
func openJournal(h *host.Host, o *Options) (j *Journal, unlock func(), err error) {
	o.defaults()
	unlockDir, err := lock(*o)
	if err != nil {
		return nil, nil, err
	}
	if j, err = loadJournal(journalPath(*o)); err != nil {
		unlockDir()
		return nil, nil, err
	}
	unlock = func() { j.close(); unlockDir() }
	for _, e := range j.Entries {
		if err := validEntry(e, *o); err != nil {
			unlock()
			return nil, nil, fmt.Errorf("journal %s: entry %d: %w: refusing", j.path, e.Seq, err)
		}
	}
	if err := recoverJournal(h, j); err != nil {
		unlock()
		return nil, nil, err
	}
	return j, unlock, nil
}

const journalName = "journal.jsonl"

func journalPath(o Options) string { return filepath.Join(o.StateDir, journalName) }

func sysctlPath(h *host.Host, name string) string {
	return h.ProcPath(append([]string{"sys"}, strings.Split(name, ".")...)...)
}

func writeSysctl(h *host.Host, name string, v int64) error {
	// A sysctl under /proc/sys exists already: the mode is never used.
	return os.WriteFile(sysctlPath(h, name), []byte(strconv.FormatInt(v, 10)+"\n"), 0o644) // #nosec G306 -- procfs file, mode ignored
}

// recoverJournal settles the entries a crashed run left pending: the value
// the kernel has says whether a sysctl write happened; a persist file may
// or may not have been replaced, and undo restores it either way.
func recoverJournal(h *host.Host, j *Journal) error {
	for i := range j.Entries {
		e := &j.Entries[i]
		if e.State != StatePending {
			continue
		}
		switch e.Kind {
		case "sysctl":
			cur, err := h.SysctlInt(e.Sysctl)
			switch {
			case err != nil:
				e.State, e.Note = StateFailed, "after a crash: "+err.Error()
			case cur == e.New:
				e.State, e.Note = StateDone, "finished after a crash"
			case cur == e.Old:
				e.State, e.Note = StateSkipped, "not written before a crash"
			default:
				e.State, e.Note = StateSkipped, fmt.Sprintf("after a crash the value is %d, neither the old nor the new one: left as is", cur)
			}
		case "persist":
			e.State, e.Note = StateDone, "after a crash, written or not: undo restores what was there"
		default:
			continue
		}
		if err := j.update(e); err != nil {
			return err
		}
	}
	return nil
}

// Result is what Apply or Undo did.
type Result struct {
	Entries []Entry `json:"entries"`
	Persist string  `json:"persist,omitempty"`
	// Notes are what the journal said of itself: a torn last line.
	Notes []string `json:"notes,omitempty"`
}

func newResult(j *Journal) *Result {
	r := &Result{}
	if j.Torn != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("journal %s: its last line was cut short by a crash and is ignored: %q", j.path, j.Torn))
	}
	// Before the journal had one entry a line, it was one JSON document.
	if old := filepath.Join(filepath.Dir(j.path), "journal.json"); fileExists(old) {
		r.Notes = append(r.Notes, fmt.Sprintf("%s, the journal of an older enospc, is not read: undo its changes with that version", old))
	}
	return r
}

// Apply carries out the plan's sysctl actions. Each value is read again
// right before it is written; an action whose value moved since the plan
// is skipped. A journal entry is written before each write.
func Apply(h *host.Host, p Plan, o Options) (*Result, error) {
	o.defaults()
	if o.Persist {
		if err := validPersistFile(o.PersistFile); err != nil {
			return nil, fmt.Errorf("PersistFile: %w", err)
		}
	}
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := newResult(j)
	for _, a := range p.Actions {
		if a.Kind != KindSysctl {
			continue
		}
		e := Entry{Kind: KindSysctl, Sysctl: a.Sysctl, Old: a.From, New: a.To, Time: o.Now().UTC()}
		if !plannable[a.Sysctl] {
			e.State, e.Note = StateSkipped, "not a sysctl enospc raises"
			res.Entries = append(res.Entries, e)
			continue
		}
		cur, err := h.SysctlInt(a.Sysctl)
		switch {
		case err != nil:
			e.State, e.Note = StateFailed, err.Error()
		case cur >= a.To:
			e.State, e.Note = StateSkipped, fmt.Sprintf("already %d", cur)
		case cur != a.From:
			e.State, e.Note = StateSkipped, fmt.Sprintf("changed to %d since the plan (%d): plan again", cur, a.From)
		}
		if e.State != "" {
			res.Entries = append(res.Entries, e)
			continue
		}
		e.State = StatePending
		k, err := j.add(e)
		if err != nil {
			return res, fmt.Errorf("journal: %w (nothing written for %s)", err, a.Sysctl)
		}
		if err := writeSysctl(h, a.Sysctl, a.To); err != nil {
			k.State, k.Note = StateFailed, err.Error()
		} else if got, err := h.SysctlInt(a.Sysctl); err != nil || got != a.To {
			// The kernel took another value (its range) or none.
			k.State, k.Note = StateFailed, fmt.Sprintf("wrote %d, the kernel has %d (%v)", a.To, got, err)
		} else {
			k.State = StateDone
		}
		if err := j.update(k); err != nil {
			return res, fmt.Errorf("journal: %w", err)
		}
		res.Entries = append(res.Entries, *k)
	}
	if o.Persist {
		path, err := persist(h, j, o)
		if err != nil {
			return res, err
		}
		res.Persist = path
	}
	return res, nil
}

// persist writes every sysctl the journal raised (and still holds) to the
// persist file, keeping its other lines, atomically. The first time, what
// the file held (or that it did not exist) goes to the journal before the
// file is replaced: a crash anywhere after leaves undo able to restore it.
func persist(h *host.Host, j *Journal, o Options) (string, error) {
	hostPath := o.PersistFile
	path := h.RootPath(hostPath)
	values := map[string]int64{}
	journaled := false
	for _, e := range j.Entries {
		switch {
		case e.Kind == KindSysctl && e.State == StateDone:
			values[e.Sysctl] = e.New
		case e.Kind == KindPersist && e.Path == hostPath && e.State == StateDone:
			journaled = true
		}
	}
	if len(values) == 0 {
		return "", nil
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var k *Entry
	if !journaled {
		e := Entry{Kind: KindPersist, Path: hostPath, State: StatePending, Time: o.Now().UTC()}
		if err == nil {
			s := string(old)
			e.Prev = &s
		}
		if k, err = j.add(e); err != nil {
			return "", fmt.Errorf("journal: %w (%s not written)", err, hostPath)
		}
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		name, _, ok := strings.Cut(line, "=")
		if ok {
			if _, ours := values[strings.TrimSpace(name)]; ours {
				continue
			}
		}
		if line != "" || len(lines) > 0 {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "# Raised by enospc fix --persist; enospc fix --undo restores what was here.")
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		lines = append(lines, fmt.Sprintf("%s = %d", n, values[n]))
	}
	// /etc/sysctl.d is 0755 on every distribution: systemd-sysctl and
	// procps read it as any user.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // #nosec G301 -- the system's own directory mode
		return "", err
	}
	if err := writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := o.hook("renamed"); err != nil {
		return "", err
	}
	if k != nil {
		k.State = StateDone
		if err := j.update(k); err != nil {
			return "", fmt.Errorf("journal: %w", err)
		}
	}
	return path, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (o Options) hook(step string) error {
	if o.step == nil {
		return nil
	}
	return o.step(step)
}

// writeFileAtomic writes a file by a synced temporary file renamed over
// it, then syncs the directory.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Undo restores the values the journal changed, newest first: only where
// the value is still the one enospc wrote (someone who changed it since
// wins). The persist file gets its old content back. The journal is kept,
// renamed, as a record.
func Undo(h *host.Host, o Options) (*Result, error) {
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := newResult(j)
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := &j.Entries[i]
		if e.State != StateDone {
			continue
		}
		switch e.Kind {
		case "sysctl":
			cur, err := h.SysctlInt(e.Sysctl)
			switch {
			case err != nil:
				e.Note = "undo: " + err.Error()
			case cur != e.New:
				e.Note = fmt.Sprintf("undo: %s is %d now, not the %d written: left as is", e.Sysctl, cur, e.New)
			default:
				if err := writeSysctl(h, e.Sysctl, e.Old); err != nil {
					e.Note = "undo: " + err.Error()
				} else {
					e.State, e.Note = StateUndone, ""
				}
			}
			res.Entries = append(res.Entries, *e)
		case "persist":
			path := h.RootPath(e.Path)
			if e.Prev == nil {
				err = os.Remove(path)
				if errors.Is(err, os.ErrNotExist) {
					err = nil
				}
			} else {
				err = writeFileAtomic(path, []byte(*e.Prev), 0o644)
			}
			if err != nil {
				return res, fmt.Errorf("restore %s: %w", path, err)
			}
			res.Persist = path
			e.State, e.Note = StateUndone, ""
		default:
			continue
		}
		if err := j.update(e); err != nil {
			return res, err
		}
	}
	if len(j.Entries) > 0 {
		os.Rename(j.path, j.path+"."+o.Now().UTC().Format("20060102T150405Z")+".undone")
	}
	return res, nil
}
