package fix

// The journal: one JSON entry a line, appended and fsynced before each
// change it records, so that a crash leaves a journal that knows of the
// change; a new state of an entry is a new line with the same seq. Each
// entry costs one write and one fsync whatever the journal's length. A
// crash in the middle of an append leaves a torn last line: it is ignored,
// reported, and cut off before the next append.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/limits"
)

// Journal is every change since the last undo.
type Journal struct {
	Entries []Entry
	// Torn is the last line, cut short by a crash while it was written:
	// ignored.
	Torn string

	path string
	f    *os.File // open for appending once something is written
}

// ReadJournal reads the journal at path.
func ReadJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, _, err := parseJournal(b)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j.path = path
	return j, nil
}

// parseJournal folds the journal's lines into its entries. good is the
// length of the lines that parse: what follows is a torn last line.
func parseJournal(b []byte) (j *Journal, good int, err error) {
	j = &Journal{}
	for n := 1; good < len(b); n++ {
		line := b[good:]
		end := bytes.IndexByte(line, '\n')
		unfinished := end < 0
		last := unfinished || good+end+1 == len(b)
		if unfinished {
			end = len(line)
		} else {
			line = line[:end]
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || dec.More() || unfinished {
			// A line without its newline was never finished.
			if last {
				j.Torn = string(line)
				return j, good, nil
			}
			return nil, 0, fmt.Errorf("line %d: not an entry", n)
		}
		switch {
		case e.Seq == len(j.Entries)+1:
			j.Entries = append(j.Entries, e)
		case e.Seq >= 1 && e.Seq <= len(j.Entries) && j.Entries[e.Seq-1].Kind == e.Kind:
			j.Entries[e.Seq-1] = e
		default:
			return nil, 0, fmt.Errorf("line %d: entry %d out of order", n, e.Seq)
		}
		good += end + 1
	}
	return j, good, nil
}

// loadJournal opens the journal at path, checked to be private, and cuts
// off a torn last line.
func loadJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return &Journal{path: path}, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s: a symbolic link: refusing", path)
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if err := checkStat(path, &st, false); err != nil {
		f.Close()
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, err
	}
	j, good, err := parseJournal(b)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if good < len(b) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
	}
	j.path, j.f = path, f
	return j, nil
}

// add appends a new entry, numbered, and returns it for updates.
func (j *Journal) add(e Entry) (*Entry, error) {
	e.Seq = len(j.Entries) + 1
	if err := j.write(e); err != nil {
		return nil, err
	}
	j.Entries = append(j.Entries, e)
	return &j.Entries[len(j.Entries)-1], nil
}

// update appends the new state of e, an entry of j.
func (j *Journal) update(e *Entry) error { return j.write(*e) }

func (j *Journal) write(e Entry) error {
	if j.f == nil {
		f, err := os.OpenFile(j.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		j.f = f
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			return err
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return j.f.Sync()
}

func (j *Journal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// cgroupRoot is where leak.cgroups removals happen.
const cgroupRoot = "/sys/fs/cgroup"

var (
	sysctlName  = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)+$`)
	persistName = regexp.MustCompile(`^/etc/sysctl\.d/[0-9][0-9]-enospc(-[a-z0-9]+)*\.conf$`)
)

// plannable are the sysctls a plan raises: the only ones a journal may
// name.
var plannable = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range limits.RaisedSysctls() {
		m[name] = true
	}
	return m
}()

func validPersistFile(path string) error {
	if !persistName.MatchString(path) {
		return fmt.Errorf("%q is not /etc/sysctl.d/NN-enospc[-name].conf", path)
	}
	return nil
}

// validEntry checks that e is a change enospc itself could have made: a
// sysctl it raises (under the host's /proc/sys), its persist file, or a
// removal under the fifo directory or the cgroup root.
func validEntry(e Entry, o Options) error {
	switch e.Kind {
	case "sysctl":
		if !sysctlName.MatchString(e.Sysctl) || !plannable[e.Sysctl] || e.Path != "" {
			return fmt.Errorf("sysctl %q is not one enospc raises", e.Sysctl)
		}
	case "persist":
		return validPersistFile(e.Path)
	case "cleanup":
		switch e.Limit {
		case "leak.fifo":
			if e.Path != "" && !below(e.Path, o.FifoDir) {
				return fmt.Errorf("fifo removal %q is not below %s", e.Path, o.FifoDir)
			}
		case "leak.cgroups":
			if e.Path != "" && !below(e.Path, cgroupRoot) {
				return fmt.Errorf("cgroup removal %q is not below %s", e.Path, cgroupRoot)
			}
		case "leak.keyrings":
			if e.Path != "" || (e.Container != "" && !isDockerID(e.Container)) {
				return fmt.Errorf("container removal %q %q is not a docker container id", e.Path, e.Container)
			}
		default:
			return fmt.Errorf("cleanup of %q", e.Limit)
		}
	default:
		return fmt.Errorf("kind %q", e.Kind)
	}
	return nil
}

// below reports whether path is a clean absolute path strictly below dir.
func below(path, dir string) bool {
	return filepath.IsAbs(path) && filepath.Clean(path) == path && strings.HasPrefix(path, filepath.Clean(dir)+"/")
}
