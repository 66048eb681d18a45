package limits

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

func TestParseNSRoot(t *testing.T) {
	for _, tt := range []struct {
		in   string
		kind int
		ino  uint64
		ok   bool
	}{
		{"net:[4026533101]", census.NSNet, 4026533101, true},
		{"mnt:[4026532390]", census.NSMnt, 4026532390, true},
		{"user:[4026531837]", census.NSUser, 4026531837, true},
		{"time:[1]", census.NSTime, 1, true},
		{"/", 0, 0, false},
		{"net:[]", 0, 0, false},
		{"net:[0]", 0, 0, false},
		{"net:[12", 0, 0, false},
		{"pid_for_children:[4026532001]", 0, 0, false},
		{"bogus:[4026532001]", 0, 0, false},
	} {
		kind, ino, ok := parseNSRoot(tt.in)
		if ok != tt.ok || (ok && (kind != tt.kind || ino != tt.ino)) {
			t.Errorf("parseNSRoot(%q) = %d %d %v, want %d %d %v", tt.in, kind, ino, ok, tt.kind, tt.ino, tt.ok)
		}
	}
}

func TestParseUIDMapRoot(t *testing.T) {
	for _, tt := range []struct {
		in   string
		uid  int
		want bool
	}{
		{"         0       1001          1\n         1     100000      65536\n", 1001, true},
		{"         0     100000      65536\n", 100000, true},
		{"      1001       1001          1\n", 0, false}, // bwrap: the uid to itself
		{"         0          0 4294967295\n", 0, true},  // the initial namespace
		{"         0     100000          0\n", 0, false}, // empty range
		{"", 0, false},
		{"garbage\n0 x 1\n", 0, false},
	} {
		uid, ok := parseUIDMapRoot([]byte(tt.in))
		if ok != tt.want || uid != tt.uid {
			t.Errorf("parseUIDMapRoot(%q) = %d %v, want %d %v", tt.in, uid, ok, tt.uid, tt.want)
		}
	}
}

func TestParseUserSysctls(t *testing.T) {
	// grep -H . on /proc/sys/user/max_*_namespaces inside a namespace.
	in := "/proc/sys/user/max_user_namespaces:3\n/proc/sys/user/max_mnt_namespaces:2147483647\n/proc/sys/user/max_net_namespaces:4\n" +
		"/proc/sys/user/max_inotify_watches:8192\ngrep: /proc/sys/user/max_time_namespaces: No such file or directory\n/proc/sys/user/max_pid_namespaces:x\n"
	got := parseUserSysctls([]byte(in))
	want := map[int]int64{census.NSUser: 3, census.NSMnt: nsUnlimited, census.NSNet: 4}
	if len(got) != len(want) {
		t.Fatalf("parseUserSysctls = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("kind %s: %d, want %d", census.NSNames[k], got[k], v)
		}
	}
}

// nsEnv is a fixture host with the given /proc/sys/user values and
// processes; nil values leave the file out.
func nsEnv(t *testing.T, maxes map[string]string, procs []census.Process, mountinfo string) *Env {
	t.Helper()
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	for name, v := range maxes {
		p := filepath.Join(proc, "sys", "user", "max_"+name+"_namespaces")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if mountinfo != "" {
		if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "1", "mountinfo"), []byte(mountinfo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &census.Census{Processes: procs, InitUserNS: 4026531837, UserNSOwner: map[uint64]int{}}
	return &Env{Ctx: context.Background(), Host: host.New(proc, filepath.Join(dir, "sys"), dir), Census: c, Thresholds: DefaultThresholds}
}

// nsProc is a process in the given namespaces, the initial ones for 0.
func nsProc(pid, uid int, comm string, ns map[int]uint64) census.Process {
	p := census.Process{PID: pid, UID: uid, EUID: uid, Comm: comm, Threads: 1}
	init := [census.NSKinds]uint64{4026531837, 4026531840, 4026531839, 4026531992, 4026531836, 4026531838, 4026531835, 4026531834}
	for k := range p.NS {
		p.NS[k] = init[k]
		if v, ok := ns[k]; ok {
			p.NS[k] = v
		}
	}
	p.UserNS, p.MntNS = p.NS[census.NSUser], p.NS[census.NSMnt]
	return p
}

func nsFindRow(rows []Finding, limit, scope string) *Finding {
	for i := range rows {
		if rows[i].Limit == limit && rows[i].Scope == scope {
			return &rows[i]
		}
	}
	return nil
}

func TestReadNamespaces(t *testing.T) {
	all := map[string]string{"user": "3", "mnt": "96365", "ipc": "96365", "net": "96365", "pid": "96365", "uts": "96365", "cgroup": "96365", "time": "96365"}
	procs := []census.Process{
		nsProc(1, 0, "systemd", nil),
		nsProc(2, 0, "kthreadd", nil),
		// A private mount namespace of a root service.
		nsProc(400, 33, "nginx", map[int]uint64{census.NSMnt: 4026532201}),
		// Two sandboxes of uid 1001, each with two processes.
		nsProc(3100, 1001, "bwrap", map[int]uint64{census.NSUser: 4026532400, census.NSMnt: 4026532401, census.NSNet: 4026532405}),
		nsProc(3101, 1001, "sh", map[int]uint64{census.NSUser: 4026532400, census.NSMnt: 4026532401, census.NSNet: 4026532405}),
		nsProc(3110, 1001, "bwrap", map[int]uint64{census.NSUser: 4026532408, census.NSMnt: 4026532409}),
		nsProc(3111, 1001, "sh", map[int]uint64{census.NSUser: 4026532408, census.NSMnt: 4026532409}),
		// A process whose links could not be read.
		{PID: 5000, Comm: "hidden", UID: 2000, EUID: 2000},
	}
	mountinfo := "24 0 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n" +
		"611 24 0:4 net:[4026533101] /run/netns/vpn rw shared:311 - nsfs nsfs rw\n" +
		"612 24 0:4 net:[4026532405] /run/netns/sandbox rw shared:312 - nsfs nsfs rw\n"
	env := nsEnv(t, all, procs, mountinfo)
	rows := readNamespaces(env)
	for i := range rows {
		rows[i].Grade(env.Thresholds)
	}

	u := nsFindRow(rows, "userns", "uid 1001 (initial user ns)")
	if u == nil || u.Used != 2 || u.Max != 3 || u.Severity != OK {
		t.Fatalf("userns uid 1001: %+v", u)
	}
	if len(u.Consumers) != 2 || u.Consumers[0].PID != 3100 || u.Consumers[1].PID != 3110 {
		t.Errorf("userns uid 1001 consumers: %+v, want the two bwraps", u.Consumers)
	}
	if !strings.Contains(u.Reason, "lower bound") {
		t.Errorf("userns reason %q does not say that an unreadable process makes it a lower bound", u.Reason)
	}
	// Namespaces owned by a sandbox's user namespace are charged to its
	// owner at the initial level; those owned by the initial one to root.
	if m := nsFindRow(rows, "namespaces", "mnt ns of uid 1001 (initial user ns)"); m == nil || m.Used != 2 {
		t.Errorf("mnt ns of uid 1001: %+v", m)
	}
	if m := nsFindRow(rows, "namespaces", "mnt ns of uid 0 (initial user ns)"); m == nil || m.Used != 1 || m.Consumers[0].PID != 400 {
		t.Errorf("mnt ns of uid 0 (nginx's, created by root): %+v", m)
	}
	if n := nsFindRow(rows, "namespaces", "net ns of uid 1001 (initial user ns)"); n == nil || n.Used != 1 {
		t.Errorf("net ns of uid 1001 (a sandbox's, bind-mounted too, counted once): %+v", n)
	}
	if n := nsFindRow(rows, "namespaces", "net ns of uid 0 (initial user ns)"); n == nil || n.Used != 1 || n.Consumers[0].Name != "bind mount /run/netns/vpn" {
		t.Errorf("net ns of uid 0 held by a bind mount only: %+v", n)
	}
	if z := nsFindRow(rows, "namespaces", "ipc ns of uid 0 (initial user ns)"); z == nil || z.Used != 0 || z.Max != 96365 {
		t.Errorf("ipc: want a zero row for uid 0, have %+v", z)
	}
	// Not the live kernel: the sandboxes' own limits are unknown.
	c := nsFindRow(rows, "namespaces", "child user namespaces")
	if c == nil || c.Severity != Unknown || !strings.Contains(c.Reason, "2 child user namespaces") {
		t.Errorf("child levels: %+v", c)
	}
	if nsFindRow(rows, "userns", "child user namespaces") != nil {
		t.Errorf("no user namespace is nested in a child: no userns row for child levels")
	}

	// One more sandbox: at the limit.
	procs = append(procs, nsProc(3120, 1001, "bwrap", map[int]uint64{census.NSUser: 4026532416}))
	rows = readNamespaces(nsEnv(t, all, procs, ""))
	for i := range rows {
		rows[i].Grade(DefaultThresholds)
	}
	if u := nsFindRow(rows, "userns", "uid 1001 (initial user ns)"); u == nil || u.Used != 3 || u.Severity != Critical {
		t.Errorf("userns uid 1001 at the limit: %+v", u)
	} else if r := namespacesRemedy(*u); len(r) != 3 || !strings.Contains(r[1], "sysctl -w user.max_user_namespaces=28633") {
		t.Errorf("remedy: %q", r)
	}
}

func TestReadNamespacesDisabledAndMissing(t *testing.T) {
	procs := []census.Process{nsProc(1, 0, "systemd", nil)}
	// user.max_user_namespaces = 0 on a hardened host: ok with the
	// reason while nothing is in use (no standing warning).
	rows := readNamespaces(nsEnv(t, map[string]string{"user": "0", "net": "100"}, procs, ""))
	for i := range rows {
		rows[i].Grade(DefaultThresholds)
	}
	u := nsFindRow(rows, "userns", "uid 0 (initial user ns)")
	if u == nil || u.Severity != OK || !strings.Contains(u.Reason, "is 0") {
		t.Fatalf("max_user_namespaces=0: %+v", u)
	}
	if r := namespacesRemedy(*u); !strings.Contains(strings.Join(r, "\n"), "disabled") {
		t.Errorf("remedy for 0: %q", r)
	}
	if len(rows) != 2 {
		t.Errorf("a kernel without the other files has no such limits: want 2 rows, have %d: %+v", len(rows), rows)
	}
	// A kernel older than 4.9: no rows at all.
	if rows := readNamespaces(nsEnv(t, nil, procs, "")); len(rows) != 0 {
		t.Errorf("no /proc/sys/user: %+v", rows)
	}
	// A malformed value: that kind is unknown, the others read.
	rows = readNamespaces(nsEnv(t, map[string]string{"user": "lots", "net": "100"}, procs, ""))
	if u := nsFindRow(rows, "userns", "all users"); u == nil || u.Severity != Unknown {
		t.Errorf("malformed max_user_namespaces: %+v", rows)
	}
	if n := nsFindRow(rows, "namespaces", "net ns of uid 0 (initial user ns)"); n == nil || n.Max != 100 {
		t.Errorf("net still reads: %+v", rows)
	}
}

func TestNamespacesRemedyChild(t *testing.T) {
	u := Finding{Limit: "namespaces", Scope: "net ns of uid 200011 in user ns 4026532177", Used: 4, Max: 4, Unit: "net namespaces",
		Reason:    "max_net_namespaces is 4 inside user ns 4026532177, which pid 18447 is in; a new user namespace starts unlimited",
		Consumers: []Consumer{{PID: 18458, Comm: "sleep", Count: 1}, {PID: 18460, Comm: "sleep", Count: 1}}}
	r := strings.Join(namespacesRemedy(u), "\n")
	for _, want := range []string{"lsns -t net", "setpriv --reuid=200011 --regid=200011 --clear-groups nsenter --user=/proc/18447/ns/user --preserve-credentials sh -c 'echo 64 > /proc/sys/user/max_net_namespaces'"} {
		if !strings.Contains(r, want) {
			t.Errorf("remedy lacks %q:\n%s", want, r)
		}
	}
}

// FuzzNamespacesParsers feeds the namespaces family's parsers (nsfs mount
// roots, uid_map, grep -H output of /proc/sys/user) arbitrary text: no
// panic, and only well-formed values come out.
func FuzzNamespacesParsers(f *testing.F) {
	for _, s := range []string{
		"net:[4026533101]", "user:[1]", "net:[]", ":[", "net:[18446744073709551616]",
		"         0       1001          1\n         1     100000      65536\n",
		"/proc/sys/user/max_user_namespaces:3\n/proc/sys/user/max_net_namespaces:-1\n",
		"max_user_namespaces:99999999999999999999\n:\n/:/\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if kind, ino, ok := parseNSRoot(s); ok {
			if kind < 0 || kind >= census.NSKinds || ino == 0 || !strings.HasPrefix(s, census.NSNames[kind]+":[") {
				t.Errorf("parseNSRoot(%q) = %d %d", s, kind, ino)
			}
		}
		if uid, ok := parseUIDMapRoot([]byte(s)); ok && (uid < 0 || uid > 1<<32-1) {
			t.Errorf("parseUIDMapRoot(%q) = %d", s, uid)
		}
		for k := range parseUserSysctls([]byte(s)) {
			if k < 0 || k >= census.NSKinds {
				t.Errorf("parseUserSysctls(%q): kind %d", s, k)
			}
		}
	})
}
