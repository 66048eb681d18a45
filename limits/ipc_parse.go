package limits

// The SysV IPC tables of /proc/sysvipc and the mqueue lines of mountinfo, parsed: functions of the bytes read, fuzzed.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
)

// sysvTable is a /proc/sysvipc file: a header naming the columns, one
// line per object.
type sysvTable struct {
	cols map[string]int
	rows [][]string
	// bad counts lines that do not have the header's columns.
	bad int
}

// parseSysvTable parses a /proc/sysvipc file and checks that its header
// has the columns need.
func parseSysvTable(b []byte, need ...string) (sysvTable, error) {
	var t sysvTable
	header := true
	// Lines are cut from b as it is: a scanner's buffer for each table of
	// each of a bad night's 200 IPC namespaces was most of what it cost.
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		if header {
			if t.cols = sysvHeaders.cols(line); t.cols != nil {
				header = false
			}
			continue
		}
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) < len(t.cols) {
			t.bad++
			continue
		}
		t.rows = append(t.rows, f)
	}
	if header {
		return t, errors.New("empty: no header line")
	}
	var missing []string
	for _, c := range need {
		if _, ok := t.cols[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("header lacks the columns %s", strings.Join(missing, ", "))
	}
	return t, nil
}

// sysvHeaders keeps the column maps of the headers seen: every IPC
// namespace's tables have the same header, and building its map again
// for each of 200 namespaces was most of what parsing them allocated.
// The maps are never written once stored.
var sysvHeaders = &sysvHeaderCache{m: map[string]map[string]int{}}

type sysvHeaderCache struct {
	mu sync.Mutex
	m  map[string]map[string]int
}

// cols returns the column map of a header line; nil for a blank line.
func (c *sysvHeaderCache) cols(line []byte) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cols, ok := c.m[string(line)]; ok {
		return cols
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return nil
	}
	cols := make(map[string]int, len(f))
	for i, name := range f {
		cols[name] = i
	}
	if len(c.m) < 16 { // the kernel has three headers; fixtures and fuzzing more
		c.m[string(line)] = cols
	}
	return cols
}

// num reads column c of row r as an integer; ok is false when it is not one.
func (t sysvTable) num(r []string, c string) (int64, bool) {
	i, ok := t.cols[c]
	if !ok || i >= len(r) {
		return 0, false
	}
	v, err := strconv.ParseInt(r[i], 10, 64)
	if err != nil {
		u, err2 := strconv.ParseUint(r[i], 10, 64)
		if err2 != nil {
			return 0, false
		}
		v = int64(min(u, math.MaxInt64))
	}
	return v, true
}

// shmSegment is one line of /proc/sysvipc/shm.
type shmSegment struct {
	Key, ID   int64
	Size      int64
	CPID      int
	Nattch    int64
	UID, CUID int
}

// semSet is one line of /proc/sysvipc/sem.
type semSet struct {
	Key, ID   int64
	NSems     int64
	UID, CUID int
}

// msgQueue is one line of /proc/sysvipc/msg.
type msgQueue struct {
	Key, ID   int64
	CBytes    int64
	QNum      int64
	UID, CUID int
}

// parseSysvShm parses /proc/sysvipc/shm; bad counts the lines skipped.
func parseSysvShm(b []byte) (segs []shmSegment, bad int, err error) {
	t, err := parseSysvTable(b, "key", "shmid", "size", "cpid", "nattch", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var s shmSegment
		var ok [7]bool
		var cpid, uid, cuid int64
		s.Key, ok[0] = t.num(r, "key")
		s.ID, ok[1] = t.num(r, "shmid")
		s.Size, ok[2] = t.num(r, "size")
		cpid, ok[3] = t.num(r, "cpid")
		s.Nattch, ok[4] = t.num(r, "nattch")
		uid, ok[5] = t.num(r, "uid")
		cuid, ok[6] = t.num(r, "cuid")
		if ok != [7]bool{true, true, true, true, true, true, true} || s.Size < 0 {
			bad++
			continue
		}
		s.CPID, s.UID, s.CUID = int(cpid), int(uid), int(cuid)
		segs = append(segs, s)
	}
	return segs, bad, nil
}

// parseSysvSem parses /proc/sysvipc/sem.
func parseSysvSem(b []byte) (sets []semSet, bad int, err error) {
	t, err := parseSysvTable(b, "key", "semid", "nsems", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var s semSet
		var ok [5]bool
		var uid, cuid int64
		s.Key, ok[0] = t.num(r, "key")
		s.ID, ok[1] = t.num(r, "semid")
		s.NSems, ok[2] = t.num(r, "nsems")
		uid, ok[3] = t.num(r, "uid")
		cuid, ok[4] = t.num(r, "cuid")
		if ok != [5]bool{true, true, true, true, true} || s.NSems < 0 {
			bad++
			continue
		}
		s.UID, s.CUID = int(uid), int(cuid)
		sets = append(sets, s)
	}
	return sets, bad, nil
}

// parseSysvMsg parses /proc/sysvipc/msg.
func parseSysvMsg(b []byte) (qs []msgQueue, bad int, err error) {
	t, err := parseSysvTable(b, "key", "msqid", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var q msgQueue
		var ok [4]bool
		var uid, cuid int64
		q.Key, ok[0] = t.num(r, "key")
		q.ID, ok[1] = t.num(r, "msqid")
		uid, ok[2] = t.num(r, "uid")
		cuid, ok[3] = t.num(r, "cuid")
		if ok != [4]bool{true, true, true, true} {
			bad++
			continue
		}
		q.CBytes, _ = t.num(r, "cbytes")
		q.QNum, _ = t.num(r, "qnum")
		q.UID, q.CUID = int(uid), int(cuid)
		qs = append(qs, q)
	}
	return qs, bad, nil
}

// parseSemCtl parses kernel.sem: SEMMSL SEMMNS SEMOPM SEMMNI.
func parseSemCtl(b []byte) ([4]int64, error) {
	var out [4]int64
	f := strings.Fields(string(b))
	if len(f) != 4 {
		return out, fmt.Errorf("kernel.sem: want 4 numbers (SEMMSL SEMMNS SEMOPM SEMMNI), have %q", strings.TrimSpace(string(b)))
	}
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return out, fmt.Errorf("kernel.sem: field %d %q is not a count", i+1, s)
		}
		out[i] = v
	}
	return out, nil
}

// mqueueFinder maps mqueue mounts to the IPC namespaces they show. Every
// mount of mqueue made in one IPC namespace shows that namespace's queues
// (one superblock per namespace, so one device number); a mount is found
// in the mount tables of processes, and belongs to the namespace of the
// processes that can see it, or to the host's when pid 1 sees it.
// mqueueMounts parses the mqueue lines of a mountinfo only: a container's
// table has dozens of mounts, a bad night's hundreds of tables thousands,
// and only these are looked at. The kernel escapes spaces in fields, so
// " - mqueue " can only be the separator and the type.
func mqueueMounts(b []byte) []Mount {
	var out []Mount
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		if !bytes.Contains(line, []byte(" - mqueue ")) {
			continue
		}
		if m, ok := parseMountInfoLine(string(line)); ok && m.FSType == "mqueue" {
			out = append(out, m)
		}
	}
	return out
}

// ipcParseUint reads one unsigned number, capped at MaxInt64
// (kernel.shmall defaults to ULONG_MAX - 2^24).
func ipcParseUint(name string, b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, err2 := strconv.ParseInt(s, 10, 64); err2 == nil && i < 0 {
			return 0, fmt.Errorf("%s: negative value %d", name, i)
		}
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if u > math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(u), nil
}
