package limits

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

func TestDevptsMax(t *testing.T) {
	tests := []struct {
		super string
		want  int64
		ok    bool
	}{
		{"rw,mode=600,ptmxmode=666,max=4", 4, true},
		{"rw,max=0,mode=620", 0, true},
		{"rw,gid=5,mode=620,ptmxmode=000", 0, false},
		{"", 0, false},
		{"rw,max=-1", 0, false},
		{"rw,max=x", 0, false},
		{"rw,maxsize=4", 0, false},
		{"max=1048575", 1048575, true},
	}
	for _, tt := range tests {
		got, ok := devptsMax(tt.super)
		if got != tt.want || ok != tt.ok {
			t.Errorf("devptsMax(%q) = %d, %v; want %d, %v", tt.super, got, ok, tt.want, tt.ok)
		}
	}
}

func TestKernelBefore(t *testing.T) {
	tests := []struct {
		release    string
		before, ok bool
	}{
		{"5.10.0-28-amd64", true, true},
		{"5.13.0", false, true},
		{"5.12.19", true, true},
		{"6.1.0-18-amd64", false, true},
		{"4.14.105-1.el7.x86_64", true, true},
		{"3.10.0-957.21.3.el7.x86_64", true, true},
		{"6.18.44-fc-v669", false, true},
		{"5", false, false},
		{"", false, false},
		{"x.y", false, false},
		{"-1.20", false, false},
	}
	for _, tt := range tests {
		before, ok := kernelBefore(tt.release, 5, 13)
		if before != tt.before || ok != tt.ok {
			t.Errorf("kernelBefore(%q, 5, 13) = %v, %v; want %v, %v", tt.release, before, ok, tt.before, tt.ok)
		}
	}
}

// devicesEnv is a host tree with the family's sysctls and a devpts mount.
func devicesEnv(t *testing.T, sysctls map[string]string, mountinfo string, procs []census.Process) *Env {
	t.Helper()
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	files := map[string]string{"1/mountinfo": mountinfo}
	for k, v := range sysctls {
		files[filepath.Join("sys", strings.ReplaceAll(k, ".", "/"))] = v + "\n"
	}
	for name, body := range files {
		p := filepath.Join(proc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Env{Ctx: context.Background(), Host: host.New(proc, filepath.Join(dir, "sys"), root),
		Census: &census.Census{Processes: procs}, Thresholds: DefaultThresholds, Root: true}
}

func findUsage(t *testing.T, rows []Finding, id, scope string) Finding {
	t.Helper()
	for _, u := range rows {
		if u.Limit == id && u.Scope == scope {
			u.Grade(DefaultThresholds)
			return u
		}
	}
	t.Fatalf("no %s row %q in %+v", id, scope, rows)
	return Finding{}
}

func TestReadDevices(t *testing.T) {
	sysctls := map[string]string{
		"kernel.osrelease": "6.1.0-18-amd64",
		"kernel.pty.nr":    "3070", "kernel.pty.max": "4096", "kernel.pty.reserve": "1024",
		"fs.aio-nr": "65024", "fs.aio-max-nr": "65536",
		"fs.epoll.max_user_watches":     "1000",
		"fs.fanotify.max_user_groups":   "128",
		"fs.fanotify.max_user_marks":    "8192",
		"fs.inotify.max_user_watches":   "8192",
		"fs.inotify.max_user_instances": "128",
	}
	mountinfo := "21 24 0:19 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=000\n" +
		"60 24 0:60 / /srv/ci/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=666,max=4\n" +
		"61 24 0:60 / /srv/ci/pts2 rw,relatime - devpts devpts rw,mode=600,ptmxmode=666,max=4\n" +
		"62 24 0:61 / /srv/open/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=666,max=0\n"
	procs := []census.Process{
		{PID: 10, Comm: "envoy", UID: 101, EUID: 101, EpollInstances: 2, EpollWatches: 900},
		{PID: 11, Comm: "envoy", UID: 101, EUID: 101, EpollInstances: 1, EpollWatches: 60},
		{PID: 12, Comm: "sshd", UID: 0, EUID: 0, EpollInstances: 1, EpollWatches: 3},
		{PID: 20, Comm: "ig", UID: 0, EUID: 0, FanotifyGroups: 126, FanotifyMarks: 126},
	}
	env := devicesEnv(t, sysctls, mountinfo, procs)
	pts := env.Host.RootPath("/srv/ci/pts")
	if err := os.MkdirAll(pts, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0", "1", "2", "3", "ptmx"} {
		if err := os.WriteFile(filepath.Join(pts, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := readDevices(env)

	host := findUsage(t, rows, "ptys", "host (kernel.pty.max)")
	if host.Used != 3070 || host.Max != 3072 || host.Severity != Critical || !strings.Contains(host.Reason, "kernel.pty.reserve 1024") {
		t.Errorf("host ptys row: %+v", host)
	}
	if r := ptysRemedy(host); !strings.Contains(strings.Join(r, "\n"), "kernel.pty.max=8192") {
		t.Errorf("host ptys remedy: %q", r)
	}
	inst := findUsage(t, rows, "ptys", "devpts /srv/ci/pts")
	if inst.Used != 4 || inst.Max != 4 || inst.Severity != Critical {
		t.Errorf("devpts row: %+v", inst)
	}
	if r := ptysRemedy(inst); !strings.Contains(strings.Join(r, "\n"), "mount -o remount,max=16 /srv/ci/pts") {
		t.Errorf("devpts remedy: %q", r)
	}
	for _, u := range rows {
		if u.Scope == "devpts /srv/ci/pts2" || u.Scope == "devpts /srv/open/pts" || u.Scope == "devpts /dev/pts" {
			t.Errorf("unexpected row %q (a bind mount, max=0 or no max=)", u.Scope)
		}
	}

	aio := findUsage(t, rows, "aio", "host")
	if aio.Used != 65024 || aio.Max != 65536 || aio.Severity != Critical {
		t.Errorf("aio row: %+v", aio)
	}

	ep := findUsage(t, rows, "epoll", "uid 101")
	if ep.Used != 960 || ep.Max != 1000 || ep.Severity != Critical || len(ep.Consumers) != 2 {
		t.Errorf("epoll row: %+v", ep)
	}
	ep.CutConsumers()
	if ep.Consumers[0].PID != 10 {
		t.Errorf("epoll top holder %+v, want pid 10", ep.Consumers[0])
	}
	if r := epollRemedy(ep); !strings.Contains(strings.Join(r, "\n"), "fs.epoll.max_user_watches=1048576") {
		t.Errorf("epoll remedy: %q", r)
	}
	if u := findUsage(t, rows, "epoll", "uid 0"); u.Used != 3 || u.Severity != OK {
		t.Errorf("epoll uid 0: %+v", u)
	}

	g := findUsage(t, rows, "fanotify.groups", "uid 0")
	if g.Used != 126 || g.Max != 128 || g.Severity != Critical || g.Reason != "" {
		t.Errorf("fanotify.groups: %+v", g)
	}
	if r := fanotifyRemedy(g); !strings.Contains(strings.Join(r, "\n"), "fs.fanotify.max_user_groups=1024") {
		t.Errorf("fanotify remedy: %q", r)
	}
	if m := findUsage(t, rows, "fanotify.marks", "uid 0"); m.Used != 126 || m.Max != 8192 || m.Severity != OK {
		t.Errorf("fanotify.marks: %+v", m)
	}
}

func TestReadDevicesOldAndMissing(t *testing.T) {
	// A 4.14 kernel: no fanotify sysctls (fixed limits), no pty, aio or
	// epoll files in this tree (unknown rows).
	env := devicesEnv(t, map[string]string{"kernel.osrelease": "4.14.105-1.el7.x86_64"},
		"24 0 253:1 / / rw - xfs /dev/vda1 rw\n",
		[]census.Process{{PID: 5, Comm: "clamonacc", UID: 0, FanotifyGroups: 1, FanotifyMarks: 7000}, {PID: 6, Comm: "falcon", UID: 0, FanotifyGroups: 2, FanotifyMarks: 300}})
	rows := readDevices(env)
	for _, id := range []string{"ptys", "aio", "epoll"} {
		found := false
		for _, u := range rows {
			if u.Limit == id {
				found = true
				if u.Severity != Unknown || u.Reason == "" {
					t.Errorf("%s %s: %s %q, want unknown with a reason", id, u.Scope, u.Severity, u.Reason)
				}
			}
		}
		if !found {
			t.Errorf("no %s row", id)
		}
	}
	g := findUsage(t, rows, "fanotify.groups", "uid 0")
	if g.Used != 3 || g.Max != 128 || !strings.HasPrefix(g.Reason, fanotifyOldReason) {
		t.Errorf("old fanotify.groups: %+v", g)
	}
	m := findUsage(t, rows, "fanotify.marks", "uid 0")
	if m.Used != 7000 || m.Max != 8192 || m.Severity != Warning {
		t.Errorf("old fanotify.marks: %+v", m)
	}
	if r := strings.Join(fanotifyRemedy(m), "\n"); !strings.Contains(r, "no sysctl") || strings.Contains(r, "sysctl -w") {
		t.Errorf("old fanotify remedy: %q", r)
	}

	// A 5.15 kernel without the files: unknown, not the old fixed limits.
	env = devicesEnv(t, map[string]string{"kernel.osrelease": "5.15.0-91-generic"}, "", nil)
	for _, u := range readFanotify(env) {
		if u.Severity != Unknown {
			t.Errorf("5.15 without fanotify sysctls: %s %s is %s, want unknown", u.Limit, u.Scope, u.Severity)
		}
	}

	// No census: unknown rows, never a panic.
	env.Census, env.CensusErr = nil, os.ErrPermission
	for _, u := range append(readEpoll(env), readFanotify(env)...) {
		if u.Severity != Unknown {
			t.Errorf("no census: %s %s is %s", u.Limit, u.Scope, u.Severity)
		}
	}
}

func FuzzDevptsMax(f *testing.F) {
	for _, s := range []string{"rw,mode=600,ptmxmode=666,max=4", "max=0", "rw,max=-3", "max=99999999999999999999", ",,max=,", "max=4,max=5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, super string) {
		n, ok := devptsMax(super)
		if n < 0 || (!ok && n != 0) {
			t.Errorf("devptsMax(%q) = %d, %v", super, n, ok)
		}
		if ok && !strings.Contains(super, "max=") {
			t.Errorf("devptsMax(%q) found a max without max=", super)
		}
		kernelBefore(super, 5, 13)
		if isPtyIndex(super) {
			if _, err := strconv.ParseUint(super, 10, 64); err != nil {
				t.Errorf("isPtyIndex(%q) but it is not a decimal index: %v", super, err)
			}
		}
	})
}
