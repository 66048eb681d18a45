package limits

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/host"
)

// fixtureLines returns the distinct lines of the fixture hosts' files that
// match pattern (relative to testdata/hosts/*/proc), at most max of them.
func fixtureLines(f *testing.F, pattern string, max int) []string {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "hosts", "*", "proc", pattern))
	if err != nil {
		f.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l == "" || seen[l] || len(out) >= max {
				continue
			}
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// FuzzAttributorParse feeds the attributor cgroup paths (what
// /proc/PID/cgroup holds, from any process on the host): no panic, the
// memo gives what a fresh parse gives, and the plain containerd guess is
// kept only when the inventory lists its namespace.
func FuzzAttributorParse(f *testing.F) {
	for _, l := range fixtureLines(f, "*/cgroup", 200) {
		if _, path, ok := strings.Cut(l, ":"); ok {
			if _, path, ok = strings.Cut(path, ":"); ok {
				f.Add(path, "k8s.io")
			}
		}
	}
	f.Add("/k8s.io/4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c", "k8s.io")
	f.Add("/default/4F1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C", "moby")
	f.Add("/system.slice/docker-4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c.scope", "")
	f.Fuzz(func(t *testing.T, path, ns string) {
		raw := attrib.ParseCgroupPath(path)
		none := NewAttributor(nil, nil)
		inv := attrib.NewInventory()
		inv.ContainerdNamespaces[ns] = true
		listed := NewAttributor(nil, inv)

		r := none.parse(path)
		if again := none.parse(path); again != r {
			t.Fatalf("parse(%q) = %+v, then from the memo %+v", path, r, again)
		}
		if locked := NewAttributor(nil, nil).parseLocked(path); locked != r {
			t.Fatalf("parseLocked(%q) = %+v, parse %+v", path, locked, r)
		}
		if r.Guess {
			t.Fatalf("parse(%q) kept a guess: %+v", path, r)
		}
		want := raw
		if raw.Guess {
			want = attrib.Ref{Unit: raw.Unit}
		}
		if r != want {
			t.Errorf("parse(%q) without inventory = %+v, want %+v", path, r, want)
		}
		if r.ID != "" && !strings.Contains(strings.ToLower(path), r.ID) {
			t.Errorf("parse(%q): id %q not in the path", path, r.ID)
		}

		l := listed.parse(path)
		want = raw
		if raw.Guess {
			want = attrib.Ref{Unit: raw.Unit}
			if raw.Namespace == ns {
				want = raw
				want.Guess = false
			}
		}
		if l != want {
			t.Errorf("parse(%q) with namespace %q listed = %+v, want %+v", path, ns, l, want)
		}
	})
}

// formatKeyLine writes a key as proc_keys_show does, with the usage,
// timeout and permissions given.
func formatKeyLine(l keyLine, usage int, timeout string, perm uint32) string {
	return fmt.Sprintf("%08x %s %5d %4s %08x %5d %5d %-9.9s %s",
		l.serial, l.Flags, usage, timeout, perm, int32(l.UID), int32(l.GID), l.Type, l.text)
}

// FuzzParseKeyLine feeds one line of /proc/keys: a line is accepted only
// with every fixed field in the kernel's shape, and what is accepted,
// printed again by the kernel's format, parses back to the same key.
func FuzzParseKeyLine(f *testing.F) {
	for _, l := range fixtureLines(f, "keys", 300) {
		f.Add(l)
	}
	f.Add("00000001 IRDQUNi 99999 expd ffffffff -2147483648    -1 user      a: b: 7")
	f.Add("7fffffff I------ 123456 13w 3f010000 100000 100000 logon     x")
	f.Add("0000000a I------     1 perm 3f010000     0     0 keyring   :")
	f.Add("0000000A I------     1 perm 3f010000     0     0 keyring   _ses: 1")
	f.Fuzz(func(t *testing.T, line string) {
		l, ok := parseKeyLine(line)
		if !ok {
			if !reflect.DeepEqual(l, keyLine{}) {
				t.Errorf("%q refused but gave %+v", line, l)
			}
			return
		}
		if l.serial <= 0 || fmt.Sprintf("%08x", l.serial) != l.ID || !strings.HasPrefix(line, l.ID+" "+l.Flags+" ") {
			t.Errorf("%q: serial %d, id %q, flags %q", line, l.serial, l.ID, l.Flags)
		}
		if !keyFlags(l.Flags) || l.Type == "" || len(l.Type) > 9 || strings.ContainsAny(l.Type, " \t\n") {
			t.Errorf("%q: fields %+v", line, l.Key)
		}
		if !strings.HasSuffix(line, l.text) || !strings.HasPrefix(l.text, l.Description) {
			t.Errorf("%q: text %q, description %q", line, l.text, l.Description)
		}
		if l.UID < 0 || l.UID > 1<<32-1 || l.GID < 0 || l.GID > 1<<32-1 {
			t.Errorf("%q: uid %d gid %d", line, l.UID, l.GID)
		}
		for _, v := range []struct {
			usage   int
			timeout string
			perm    uint32
		}{{1, "perm", 0x3f010000}, {123456, "expd", 0}, {0, "59m", 0xffffffff}} {
			back := formatKeyLine(l, v.usage, v.timeout, v.perm)
			again, ok := parseKeyLine(back)
			if !ok || !reflect.DeepEqual(again, l) {
				t.Fatalf("round trip of %q through %q: %+v, %v; want %+v", line, back, again, ok, l)
			}
		}
	})
}

// FuzzParseKeyLines feeds a whole /proc/keys: at most one key a line,
// each the parse of one line, no serial twice, and a serial on two lines
// for neither.
func FuzzParseKeyLines(f *testing.F) {
	for _, p := range []string{keysHost, strings.Join(fixtureLines(f, "keys", 300), "\n") + "\n"} {
		f.Add(p)
	}
	f.Add("00000001 I------     1 perm 3f010000     0     0 user      a\r\n00000001 I------     1 perm 3f010000     0     0 user      a\n")
	f.Add("00000002 I------     1 perm 3f010000     0     0 user      a\nb\r\r\n00000003 I------     1 perm 3f010000     0     0 user      c\r")
	f.Fuzz(func(t *testing.T, in string) {
		got := parseKeyLines(strings.NewReader(in))
		if len(got) > lines(in) {
			t.Fatalf("%d keys from %d lines", len(got), lines(in))
		}
		var want []keyLine
		count := map[int32]int{}
		// Lines end at "\n" only: a "\r" is part of a description.
		for _, line := range strings.Split(strings.TrimSuffix(in, "\n"), "\n") {
			if l, ok := parseKeyLine(line); ok {
				count[l.serial]++
				want = append(want, l)
			}
		}
		kept := want[:0]
		for _, l := range want {
			if count[l.serial] == 1 {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			kept = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, kept) {
			t.Errorf("parseKeyLines:\n%+v\nline by line:\n%+v", got, kept)
		}
	})
}

// putInetDiagMsg writes s as the kernel's struct inet_diag_msg.
func putInetDiagMsg(s tcpSocket) []byte {
	b := make([]byte, inetDiagMsgLen)
	b[0], b[1] = unix.AF_INET6, s.State
	if s.Local.Addr().Is4() {
		b[0] = unix.AF_INET
	}
	binary.BigEndian.PutUint16(b[4:], s.Local.Port())
	binary.BigEndian.PutUint16(b[6:], s.Remote.Port())
	if s.Local.Addr().Is4() {
		l, r := s.Local.Addr().As4(), s.Remote.Addr().As4()
		copy(b[8:], l[:])
		copy(b[24:], r[:])
	} else {
		l, r := s.Local.Addr().As16(), s.Remote.Addr().As16()
		copy(b[8:], l[:])
		copy(b[24:], r[:])
	}
	return b
}

// FuzzParseInetDiagMsg feeds the sock_diag reader's message parser bytes:
// it accepts exactly the messages long enough of the two families, reads
// the state and ports where the kernel puts them, and a socket written
// back as the kernel would parses to itself.
func FuzzParseInetDiagMsg(f *testing.F) {
	for _, in := range []string{tcpHost, tcp6Host} {
		scanTCP(strings.NewReader(in), func(s tcpSocket) { f.Add(putInetDiagMsg(s)) })
	}
	f.Add(make([]byte, inetDiagMsgLen-1))
	f.Add(append(putInetDiagMsg(tcpSocket{}), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := parseInetDiagMsg(b)
		want := len(b) >= inetDiagMsgLen && (b[0] == unix.AF_INET || b[0] == unix.AF_INET6)
		if ok != want {
			t.Fatalf("parseInetDiagMsg(% x) ok = %v", b, ok)
		}
		if !ok {
			if s != (tcpSocket{}) {
				t.Errorf("refused but gave %v", s)
			}
			return
		}
		if s.State != b[1] || s.Local.Port() != binary.BigEndian.Uint16(b[4:]) || s.Remote.Port() != binary.BigEndian.Uint16(b[6:]) {
			t.Errorf("% x: %v", b[:8], s)
		}
		if is4 := b[0] == unix.AF_INET; s.Local.Addr().Is4() != is4 || s.Remote.Addr().Is4() != is4 || !s.Local.IsValid() || !s.Remote.IsValid() {
			t.Errorf("family %d: %v", b[0], s)
		}
		if again, ok := parseInetDiagMsg(b[:inetDiagMsgLen]); !ok || again != s {
			t.Errorf("what follows the message changed it: %v, %v", again, s)
		}
		if again, ok := parseInetDiagMsg(putInetDiagMsg(s)); !ok || again != s {
			t.Errorf("round trip of %v: %v, %v", s, again, ok)
		}
	})
}

// FuzzParseProjectFiles feeds /etc/projid and /etc/projects: at most one
// project a line, names and paths trimmed and not empty, and what was
// read, written back one "name:id" or "id:path" a line, reads the same.
func FuzzParseProjectFiles(f *testing.F) {
	f.Add("# xfs_quota projects\nbuilds:42\nlogs:43\n\n  cache : 44 \n", "42:/srv/builds\n43:/var/log/app\n42:/srv/builds2\n# c\n")
	f.Add("a:b\n:1\nx:4294967296\nx:-1\n#y:2\nz:3:4\n", "1:\n:/x\n4294967295:/a:b\n 7 : /with space \n")
	f.Fuzz(func(t *testing.T, projid, projects string) {
		names := parseProjid(strings.NewReader(projid))
		if len(names) > lines(projid) {
			t.Fatalf("%d projects from %d lines", len(names), lines(projid))
		}
		var w strings.Builder
		for id, name := range names {
			if name == "" || name != strings.TrimSpace(name) || strings.ContainsAny(name, ":\n") || name[0] == '#' {
				t.Errorf("project %d named %q", id, name)
			}
			fmt.Fprintf(&w, "%s:%d\n", name, id)
		}
		if again := parseProjid(strings.NewReader(w.String())); !reflect.DeepEqual(again, names) {
			t.Errorf("round trip of %v: %v", names, again)
		}

		paths := parseProjects(strings.NewReader(projects))
		n := 0
		w.Reset()
		for id, ps := range paths {
			n += len(ps)
			for _, p := range ps {
				if p == "" || p != strings.TrimSpace(p) || strings.Contains(p, "\n") {
					t.Errorf("project %d path %q", id, p)
				}
				fmt.Fprintf(&w, "%d:%s\n", id, p)
			}
		}
		if n > lines(projects) {
			t.Fatalf("%d paths from %d lines", n, lines(projects))
		}
		if again := parseProjects(strings.NewReader(w.String())); !reflect.DeepEqual(again, paths) {
			t.Errorf("round trip of %v: %v", paths, again)
		}
	})
}

// FuzzQuotaRemedy builds a quota row from a project name (/etc/projid)
// and a mount's type and source (mountinfo), any of them hostile, and
// reads its remedy: the command it suggests is the one of the quota's own
// filesystem type, with the quota's own numbers.
func FuzzQuotaRemedy(f *testing.F) {
	for _, l := range fixtureLines(f, "*/mountinfo", 100) {
		if _, after, ok := strings.Cut(l, " - "); ok {
			if fs := strings.Fields(after); len(fs) >= 2 {
				f.Add(2, uint32(42), "builds /srv/b (old)", fs[0], fs[1], uint64(2048), uint64(4096), uint64(5), uint64(6))
			}
		}
	}
	f.Add(0, uint32(1000), "", "ext4", "/dev/disk/by-label/my home (xfs y", uint64(0), uint64(1<<40), uint64(0), uint64(1<<63))
	f.Add(2, uint32(7), "overlay upper dir /var/lib/docker/overlay2/abc/diff", "xfs", "/dev/sdb1", uint64(1023), uint64(1025), uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, kind int, id uint32, name, fstype, source string, bsoft, bhard, isoft, ihard uint64) {
		if kind < 0 || kind >= len(quotaScopeWord) || fstype == "" {
			return
		}
		q := host.Quota{ID: id, BytesSoft: bsoft, BytesHard: bhard, InodesSoft: isoft, InodesHard: ihard}
		qi := newQuotaInfo(kind, q, name, Mount{FSType: fstype, Source: source})
		u := Finding{Limit: string(QuotaInodes), Scope: fmt.Sprintf("%s %d on /m", quotaScopeWord[kind], id), Used: 1, Max: 2}
		u.setConsumers([]Consumer{quotaConsumer(kind, id, qi, 1)}, 0)
		rem := strings.Join(quotaRemedy(u), "\n")
		xfs := strings.Contains(rem, "or raise its limit: xfs_quota")
		if xfs != (fstype == "xfs") || !xfs && !strings.Contains(rem, "or raise its limit: setquota") {
			t.Fatalf("%s quota (source %q): remedy\n%s", fstype, source, rem)
		}
		if !xfs && !strings.Contains(rem, fmt.Sprintf(" %d %d %d %d /m", bsoft/1024, bhard/1024, raiseLimit(isoft, 1), raiseLimit(ihard, 1))) {
			t.Fatalf("remedy without the quota's own numbers:\n%s", rem)
		}
	})
}

// formatLimit writes a soft limit as proc_pid_limits does.
func formatLimit(v int64) string {
	if v == -1 {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// FuzzParseLimitsRoundTrip feeds /proc/PID/limits, seeded with the
// fixture hosts' files: what parses, printed again in the kernel's
// columns, parses to the same limits; the last line of each name wins.
func FuzzParseLimitsRoundTrip(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "hosts", "*", "proc", "*", "limits"))
	for i, p := range files {
		if b, err := os.ReadFile(p); err == nil && i < 20 {
			f.Add(b)
		}
	}
	f.Add([]byte("Max processes unlimited unlimited processes\nMax open files 9223372036854775807 1 files\nMax processes 7 7 processes\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseLimits(b)
		if err != nil {
			return
		}
		var w strings.Builder
		fmt.Fprintf(&w, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units")
		fmt.Fprintf(&w, "%-25s %-20s %-20s %-10s\n", "Max processes", formatLimit(r.nproc), "unlimited", "processes")
		fmt.Fprintf(&w, "%-25s %-20s %-20s %-10s\n", "Max open files", formatLimit(r.nofile), "4096", "files")
		again, err := parseLimits([]byte(w.String()))
		if err != nil || again != r {
			t.Errorf("round trip of %+v through %q: %+v, %v", r, w.String(), again, err)
		}
		// Lines of other limits change nothing.
		other := append([]byte("Max cpu time              unlimited            unlimited            seconds   \n"), b...)
		if again, err := parseLimits(other); err != nil || again != r {
			t.Errorf("with another limit first: %+v, %v; want %+v", again, err, r)
		}
	})
}

// nonBlankAfterHeader counts the lines with a field after the first such
// line, as bufio.ScanLines and strings.Fields see them.
func nonBlankAfterHeader(in string) int {
	n := -1
	sc := bufio.NewScanner(strings.NewReader(in))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(strings.Fields(sc.Text())) > 0 {
			n++
		}
	}
	return max(n, 0)
}

// FuzzParseSysvTables feeds /proc/sysvipc/shm, sem and msg, seeded with
// the fixture hosts' files: once the header parses, every other line with
// a field is an entry or counted bad; entries printed again in the
// kernel's columns parse to the same entries.
func FuzzParseSysvTables(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "hosts", "*", "proc", "sysvipc", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("key shmid size cpid nattch uid cuid key\n1 2 3 4 5 6 7\n-1 0 18446744073709551615 1 1 4294967295 0 9\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		b := []byte(in)
		want := nonBlankAfterHeader(in)
		if segs, bad, err := parseSysvShm(b); err == nil {
			if len(segs)+bad != want {
				t.Errorf("shm: %d segments and %d bad of %d lines", len(segs), bad, want)
			}
			var w strings.Builder
			w.WriteString("       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid\n")
			for _, s := range segs {
				fmt.Fprintf(&w, "%10d %10d %5o %10d %5d %5d %5d %5d %5d %5d %5d\n", s.Key, s.ID, 0o600, s.Size, s.CPID, 0, s.Nattch, s.UID, 0, s.CUID, 0)
			}
			if again, bad, err := parseSysvShm([]byte(w.String())); err != nil || bad != 0 || !reflect.DeepEqual(again, segs) {
				t.Errorf("shm round trip of %+v: %+v, %d bad, %v", segs, again, bad, err)
			}
		}
		if sets, bad, err := parseSysvSem(b); err == nil {
			if len(sets)+bad != want {
				t.Errorf("sem: %d sets and %d bad of %d lines", len(sets), bad, want)
			}
			var w strings.Builder
			w.WriteString("       key      semid perms      nsems   uid   gid  cuid  cgid\n")
			for _, s := range sets {
				fmt.Fprintf(&w, "%10d %10d %5o %10d %5d %5d %5d %5d\n", s.Key, s.ID, 0o600, s.NSems, s.UID, 0, s.CUID, 0)
			}
			if again, bad, err := parseSysvSem([]byte(w.String())); err != nil || bad != 0 || !reflect.DeepEqual(again, sets) {
				t.Errorf("sem round trip of %+v: %+v, %d bad, %v", sets, again, bad, err)
			}
		}
		if qs, bad, err := parseSysvMsg(b); err == nil {
			if len(qs)+bad != want {
				t.Errorf("msg: %d queues and %d bad of %d lines", len(qs), bad, want)
			}
			var w strings.Builder
			w.WriteString("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid\n")
			for _, q := range qs {
				fmt.Fprintf(&w, "%10d %10d %5o %11d %10d %5d %5d %5d %5d %5d %5d\n", q.Key, q.ID, 0o600, q.CBytes, q.QNum, 0, 0, q.UID, 0, q.CUID, 0)
			}
			if again, bad, err := parseSysvMsg([]byte(w.String())); err != nil || bad != 0 || !reflect.DeepEqual(again, qs) {
				t.Errorf("msg round trip of %+v: %+v, %d bad, %v", qs, again, bad, err)
			}
		}
	})
}
