package fix

import (
	"encoding/json"
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

// Options tune Apply and Undo.
type Options struct {
	// StateDir holds the journal and the lock (default /var/lib/enospc).
	StateDir string
	// Persist writes the raised sysctls to PersistFile too (a host path,
	// under the host's root), so that they survive a reboot.
	Persist     bool
	PersistFile string
	// LockWait is how long a second run waits for the first.
	LockWait time.Duration
	Now      func() time.Time
}

// DefaultPersistFile is where --persist writes (check reports drift
// between it and the running values).
const DefaultPersistFile = check.PersistFile

// Entry is one change in the journal.
type Entry struct {
	// Kind is "sysctl" (undoable) or "cleanup" (a removal, recorded).
	Kind   string `json:"kind,omitempty"`
	Limit  string `json:"limit,omitempty"`
	Path   string `json:"path,omitempty"`
	Sysctl string `json:"sysctl,omitempty"`
	Old    int64  `json:"old,omitempty"`
	New    int64  `json:"new,omitempty"`
	// State: "pending" (journaled, maybe written), "done", "skipped",
	// "failed", "undone".
	State string    `json:"state"`
	Note  string    `json:"note,omitempty"`
	Time  time.Time `json:"time"`
}

// Journal is every change of the last apply, for undo.
type Journal struct {
	Entries []Entry `json:"entries"`
	// Persist: the file written, and what it held before (nil: absent).
	PersistFile string  `json:"persist_file,omitempty"`
	PersistOld  *string `json:"persist_old,omitempty"`
	PersistDone bool    `json:"persist_done,omitempty"`
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = "/var/lib/enospc"
	}
	if o.PersistFile == "" {
		o.PersistFile = DefaultPersistFile
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
	f, err := os.OpenFile(filepath.Join(o.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
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

// openJournal takes the lock and loads the journal, settling what a
// crashed run left pending; unlock releases the lock.
func openJournal(h *host.Host, o *Options) (j *Journal, unlock func(), err error) {
	o.defaults()
	unlock, err = lock(*o)
	if err != nil {
		return nil, nil, err
	}
	if j, err = loadJournal(*o); err != nil {
		unlock()
		return nil, nil, err
	}
	recoverJournal(h, j)
	return j, unlock, nil
}

func journalPath(o Options) string { return filepath.Join(o.StateDir, "journal.json") }

func loadJournal(o Options) (*Journal, error) {
	b, err := os.ReadFile(journalPath(o))
	if errors.Is(err, os.ErrNotExist) {
		return &Journal{}, nil
	}
	if err != nil {
		return nil, err
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s: %w", journalPath(o), err)
	}
	return &j, nil
}

// save writes the journal atomically and durably: before a change, so
// that a crash leaves a journal that knows of it.
func (j *Journal) save(o Options) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(journalPath(o), append(b, '\n'), 0o600)
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
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func sysctlPath(h *host.Host, name string) string {
	return h.ProcPath(append([]string{"sys"}, strings.Split(name, ".")...)...)
}

func writeSysctl(h *host.Host, name string, v int64) error {
	return os.WriteFile(sysctlPath(h, name), []byte(strconv.FormatInt(v, 10)+"\n"), 0o644)
}

// recoverJournal settles the entries a crashed run left pending: the value
// the kernel has says whether the write happened.
func recoverJournal(h *host.Host, j *Journal) {
	for i := range j.Entries {
		e := &j.Entries[i]
		if e.State != "pending" || e.Sysctl == "" {
			continue
		}
		cur, err := h.SysctlInt(e.Sysctl)
		switch {
		case err != nil:
			e.State, e.Note = "failed", "after a crash: "+err.Error()
		case cur == e.New:
			e.State, e.Note = "done", "finished after a crash"
		case cur == e.Old:
			e.State, e.Note = "skipped", "not written before a crash"
		default:
			e.State, e.Note = "skipped", fmt.Sprintf("after a crash the value is %d, neither the old nor the new one: left as is", cur)
		}
	}
}

// Result is what Apply or Undo did.
type Result struct {
	Entries []Entry `json:"entries"`
	Persist string  `json:"persist,omitempty"`
}

// Apply carries out the plan's sysctl actions. Each value is read again
// right before it is written; an action whose value moved since the plan
// is skipped. A journal entry is saved before each write.
func Apply(h *host.Host, p Plan, o Options) (*Result, error) {
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &Result{}
	for _, a := range p.Actions {
		if a.Kind != "sysctl" {
			continue
		}
		e := Entry{Kind: "sysctl", Sysctl: a.Sysctl, Old: a.From, New: a.To, Time: o.Now().UTC()}
		cur, err := h.SysctlInt(a.Sysctl)
		switch {
		case err != nil:
			e.State, e.Note = "failed", err.Error()
		case cur >= a.To:
			e.State, e.Note = "skipped", fmt.Sprintf("already %d", cur)
		case cur != a.From:
			e.State, e.Note = "skipped", fmt.Sprintf("changed to %d since the plan (%d): plan again", cur, a.From)
		}
		if e.State != "" {
			res.Entries = append(res.Entries, e)
			continue
		}
		e.State = "pending"
		j.Entries = append(j.Entries, e)
		if err := j.save(o); err != nil {
			return res, fmt.Errorf("journal: %w (nothing written for %s)", err, a.Sysctl)
		}
		k := &j.Entries[len(j.Entries)-1]
		if err := writeSysctl(h, a.Sysctl, a.To); err != nil {
			k.State, k.Note = "failed", err.Error()
		} else if got, err := h.SysctlInt(a.Sysctl); err != nil || got != a.To {
			// The kernel took another value (its range) or none.
			k.State, k.Note = "failed", fmt.Sprintf("wrote %d, the kernel has %d (%v)", a.To, got, err)
		} else {
			k.State = "done"
		}
		if err := j.save(o); err != nil {
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
// persist file, keeping its other lines, atomically; the old content goes
// to the journal first.
func persist(h *host.Host, j *Journal, o Options) (string, error) {
	path := h.RootPath(o.PersistFile)
	values := map[string]int64{}
	for _, e := range j.Entries {
		if e.State == "done" && e.Sysctl != "" {
			values[e.Sysctl] = e.New
		}
	}
	if len(values) == 0 {
		return "", nil
	}
	old, err := os.ReadFile(path)
	if !j.PersistDone {
		j.PersistFile = path
		if err == nil {
			s := string(old)
			j.PersistOld = &s
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if err := j.save(o); err != nil {
			return "", err
		}
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok {
			if _, ours := values[strings.TrimSpace(k)]; ours {
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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	j.PersistDone = true
	return path, j.save(o)
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
	res := &Result{}
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := &j.Entries[i]
		if e.State != "done" || e.Sysctl == "" {
			continue
		}
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
				e.State, e.Note = "undone", ""
			}
		}
		if err := j.save(o); err != nil {
			return res, err
		}
		res.Entries = append(res.Entries, *e)
	}
	if j.PersistDone {
		if j.PersistOld == nil {
			err = os.Remove(j.PersistFile)
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		} else {
			err = writeFileAtomic(j.PersistFile, []byte(*j.PersistOld), 0o644)
		}
		if err != nil {
			return res, fmt.Errorf("restore %s: %w", j.PersistFile, err)
		}
		res.Persist = j.PersistFile
		j.PersistDone = false
		if err := j.save(o); err != nil {
			return res, err
		}
	}
	if len(j.Entries) > 0 || j.PersistFile != "" {
		os.Rename(journalPath(o), journalPath(o)+"."+o.Now().UTC().Format("20060102T150405Z")+".undone")
	}
	return res, nil
}
