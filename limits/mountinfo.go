package limits

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/enospc/enospc/host"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)).
type Mount struct {
	ID, Parent int
	Device     string // major:minor
	Root       string // root of the mount within its filesystem
	MountPoint string
	Options    string
	FSType     string
	Source     string
	Super      string // superblock options
}

// HostMounts reads the mount table of the host's initial mount namespace,
// <proc>/1/mountinfo, falling back to <proc>/self/mountinfo when pid 1 is not
// readable (no hostPID).
func HostMounts(h *host.Host) ([]Mount, error) {
	b, err := h.ReadProc("1", "mountinfo")
	if err != nil {
		var err2 error
		if b, err2 = h.ReadProc("self", "mountinfo"); err2 != nil {
			return nil, fmt.Errorf("read mountinfo: %w", err)
		}
	}
	return parseMountInfo(bytes.NewReader(b))
}

// parseMountInfo parses mountinfo. Malformed lines are skipped rather than
// failing the table: one odd mount must not hide the others.
func parseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if m, ok := parseMountInfoLine(sc.Text()); ok {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("parse mountinfo: %w", err)
	}
	return out, nil
}

// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// The kernel separates fields with one space and escapes only space, tab,
// newline and backslash inside them: a path may hold a raw \v or a
// non-breaking space, which strings.Fields would split on. It prints an
// empty source as an empty field ("- tmpfs  rw" after mount -t tmpfs ""
// /mnt), so the part after the separator is split on single spaces and the
// super options do not slide into the source.
func parseMountInfoLine(line string) (Mount, bool) {
	head, tail, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, false
	}
	f := strings.FieldsFunc(head, func(r rune) bool { return r == ' ' || r == '\t' })
	t := strings.Split(tail, " ")
	if len(f) < 6 || len(t) < 2 || t[0] == "" {
		return Mount{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Mount{}, false
	}
	m := Mount{
		ID: id, Parent: parent, Device: f[2],
		Root: unescapeOctal(f[3]), MountPoint: unescapeOctal(f[4]), Options: f[5],
		FSType: t[0], Source: unescapeOctal(t[1]),
	}
	if len(t) > 2 {
		m.Super = t[2]
	}
	return m, true
}

// unescapeOctal undoes the kernel's \040-style escaping of spaces, tabs,
// newlines and backslashes in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
