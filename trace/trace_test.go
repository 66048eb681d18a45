package trace

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name            string
		flags           uint32
		path, dirfd     int
		wantPathArgBits uint32
	}{
		{"openat", 0, 1, 0, 2},
		{"mkdir", flagEAGAIN | flagENOMEM, 0, -1, 1},
		{"clone", flagEAGAIN | flagENOMEM, -1, -1, 0},
		{"write", flagFD0, -1, -1, 0},
		{"connect", flagEADDRNOTAVAIL, -1, -1, 0},
		{"read", 0, -1, -1, 0},
		{"futex", 0, -1, -1, 0},
		{"linkat", 0, 3, 2, 4},
	} {
		si := classify(tc.name)
		if got := si.flags &^ (7 << pathArgShift); got != tc.flags {
			t.Errorf("%s: flags %#x, want %#x", tc.name, got, tc.flags)
		}
		if si.pathArg != tc.path || si.dirfdArg != tc.dirfd {
			t.Errorf("%s: path arg %d dirfd %d, want %d %d", tc.name, si.pathArg, si.dirfdArg, tc.path, tc.dirfd)
		}
		if got := si.flags >> pathArgShift & 7; got != tc.wantPathArgBits {
			t.Errorf("%s: path bits %d, want %d", tc.name, got, tc.wantPathArgBits)
		}
	}
}

// The names the tables use must be syscalls of this architecture or of
// the other one the tracer is built for (arm64 has no open, fork, mkdir).
func TestSyscallNames(t *testing.T) {
	have := map[string]bool{}
	for _, n := range sysnames {
		have[n] = true
	}
	if len(sysnames) == 0 {
		t.Skip("no syscall table on this architecture")
	}
	for _, n := range []string{"openat", "clone", "clone3", "write", "inotify_init1", "inotify_add_watch", "connect", "add_key", "mmap", "unshare"} {
		if !have[n] {
			t.Errorf("%s is not in this architecture's syscall table", n)
		}
	}
	if got := syscallName(100000); got != "syscall_100000" {
		t.Errorf("unknown syscall named %q", got)
	}
}

func TestErrnoName(t *testing.T) {
	if got := ErrnoName(uint32(unix.ENOSPC)); got != "ENOSPC" {
		t.Errorf("ENOSPC named %q", got)
	}
	if got := ErrnoName(4000); got != "errno 4000" {
		t.Errorf("errno 4000 named %q", got)
	}
}

func TestBestCgroup(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0::/\n8:pids:/kubepods/pod1/abc\n4:memory:/kubepods/pod1/abc\n", "/kubepods/pod1/abc"},
		{"0::/system.slice/docker-abc.scope\n", "/system.slice/docker-abc.scope"},
		{"0::/\n4:memory:/process_api/x\n8:pids:/\n", "/process_api/x"},
		{"0::/\n", "/"},
		{"", ""},
		{"garbage\n:::\n", ""},
	} {
		if got := bestCgroup(tc.in); got != tc.want {
			t.Errorf("bestCgroup(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParsePidsEvents(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"max 3\n", 3},
		{"max 0\n", 0},
		{"", 0},
		{"max x\n", 0},
		{"other 1\nmax 12\n", 12},
	} {
		if got := parsePidsEvents(tc.in); got != tc.want {
			t.Errorf("parsePidsEvents(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestMountByDev(t *testing.T) {
	mounts := []limits.Mount{
		{Device: "0:45", Root: "/", MountPoint: "/run", FSType: "tmpfs", Source: "tmpfs"},
		{Device: "8:1", Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/sda1"},
		{Device: "8:1", Root: "/var/lib/x", MountPoint: "/mnt/bind", FSType: "ext4", Source: "/dev/sda1"},
	}
	m, ok := mountByDev(8<<20|1, mounts)
	if !ok || m.MountPoint != "/" {
		t.Errorf("8:1 -> %+v %v, want the mount of the filesystem's root", m, ok)
	}
	if m, ok := mountByDev(0<<20|45, mounts); !ok || m.MountPoint != "/run" {
		t.Errorf("0:45 -> %+v %v", m, ok)
	}
	if _, ok := mountByDev(9<<20|9, mounts); ok {
		t.Errorf("9:9 found in a table without it")
	}
}

// decide names the limit from the syscall and errno alone where they
// admit one, and leaves what no limit explains unexplained.
func TestDecide(t *testing.T) {
	n := &namer{h: host.New(t.TempDir(), t.TempDir(), t.TempDir())}
	n.cg = newCgroupPaths(n.h)
	for _, tc := range []struct {
		syscall string
		errno   unix.Errno
		arg0    uint64
		limit   string
		ask     []string
	}{
		{"inotify_add_watch", unix.ENOSPC, 0, "inotify.watches", []string{"inotify.watches"}},
		{"epoll_ctl", unix.ENOSPC, 0, "epoll", []string{"epoll"}},
		{"add_key", unix.EDQUOT, 0, "", []string{"keys.count", "keys.bytes"}},
		{"unshare", unix.ENOSPC, unix.CLONE_NEWUSER, "userns", []string{"userns"}},
		{"unshare", unix.ENOSPC, unix.CLONE_NEWNET, "namespaces", []string{"namespaces"}},
		{"mount", unix.ENOSPC, 0, "mounts", []string{"mounts"}},
		{"connect", unix.EADDRNOTAVAIL, 0, "ports", []string{"ports"}},
		{"io_setup", unix.EAGAIN, 0, "aio", []string{"aio"}},
		{"openat", unix.ENFILE, 0, "files", []string{"files"}},
		{"pipe2", unix.EMFILE, 0, "files.process", nil},
		{"bind", unix.EADDRNOTAVAIL, 0, Unexplained, nil},
		{"openat", unix.ENOSPC, 0, Unexplained, nil}, // no path, no fd: nothing to look at
	} {
		nr := uint32(0)
		for k, v := range sysnames {
			if v == tc.syscall {
				nr = k
			}
		}
		if sysnames[nr] != tc.syscall {
			continue // not a syscall of this architecture
		}
		p := &pending{key: fkey{tgid: 1 << 30, nr: nr, err: uint32(tc.errno)}, raw: rawFailure{Args: [4]uint64{tc.arg0}, NofileCur: 1024, Comm: "x"}}
		n.identify(context.Background(), p)
		n.decide(context.Background(), p)
		if p.out.Limit != tc.limit || strings.Join(p.ask, ",") != strings.Join(tc.ask, ",") {
			t.Errorf("%s %s: limit %q ask %v, want %q %v (%s)", tc.syscall, tc.errno, p.out.Limit, p.ask, tc.limit, tc.ask, p.out.Reason)
		}
	}
}

func TestSettle(t *testing.T) {
	full := &limits.Finding{Limit: "inotify.watches", Scope: "uid 5", Used: 10, Max: 10, Unit: "watches"}
	below := &limits.Finding{Limit: "inotify.watches", Scope: "uid 5", Used: 3, Max: 10, Unit: "watches"}
	for _, tc := range []struct {
		name  string
		sure  bool
		row   *limits.Finding
		limit string
	}{
		{"at max", false, full, "inotify.watches"},
		{"below, sure", true, below, "inotify.watches"},
		{"below, not sure", false, below, Unexplained},
		{"no row, not sure", false, nil, Unexplained},
	} {
		p := &pending{sure: tc.sure, ask: []string{"inotify.watches"}}
		if tc.sure {
			p.out.Limit = "inotify.watches"
		}
		p.settle(tc.row, "")
		if p.out.Limit != tc.limit {
			t.Errorf("%s: limit %q, want %q (%s)", tc.name, p.out.Limit, tc.limit, p.out.Reason)
		}
		if tc.row != nil && (p.out.Used == nil || *p.out.Used != tc.row.Used) {
			t.Errorf("%s: used not taken from the row", tc.name)
		}
	}
}

func TestNotSupportedIsErrNotSupported(t *testing.T) {
	var err error = &NotSupportedError{Reason: "no BTF"}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		t.Error("NotSupportedError is not ebpf.ErrNotSupported")
	}
	if !strings.Contains(err.Error(), "no BTF") || !strings.Contains(err.Error(), "enospc check") {
		t.Errorf("message %q does not say why and what to use instead", err)
	}
	if err := classifyLoadError(unix.EPERM); !errors.As(err, new(*NotSupportedError)) {
		t.Errorf("EPERM on load is %v, want not supported here", err)
	}
	if err := classifyLoadError(errors.New("verifier: invalid mem access")); errors.As(err, new(*NotSupportedError)) {
		t.Errorf("a verifier rejection is %v, want an error", err)
	}
}
