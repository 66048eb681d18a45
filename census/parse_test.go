package census

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// statusCat is /proc/self/status of cat(1), as root, on a 6.18 kernel.
const statusCat = "Name:\tcat\n" +
	"Umask:\t0022\n" +
	"State:\tR (running)\n" +
	"Tgid:\t6115\n" +
	"Ngid:\t0\n" +
	"Pid:\t6115\n" +
	"PPid:\t6113\n" +
	"TracerPid:\t0\n" +
	"Uid:\t0\t0\t0\t0\n" +
	"Gid:\t0\t0\t0\t0\n" +
	"FDSize:\t256\n" +
	"Groups:\t \n" +
	"NStgid:\t6115\n" +
	"NSpid:\t6115\n" +
	"NSpgid:\t6113\n" +
	"NSsid:\t5506\n" +
	"Kthread:\t0\n" +
	"VmPeak:\t    3060 kB\n" +
	"VmSize:\t    3060 kB\n" +
	"VmRSS:\t    1688 kB\n" +
	"THP_enabled:\t1\n" +
	"untag_mask:\t0xffffffffffffffff\n" +
	"Threads:\t1\n" +
	"SigQ:\t0/96365\n" +
	"CapEff:\t000001fffeffffff\n" +
	"Seccomp:\t0\n" +
	"Speculation_Store_Bypass:\tvulnerable\n" +
	"Cpus_allowed_list:\t0-1\n" +
	"Mems_allowed_list:\t0\n" +
	"voluntary_ctxt_switches:\t1\n" +
	"nonvoluntary_ctxt_switches:\t1\n"

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Process
	}{
		{"cat as root", statusCat, Process{Comm: "cat", Threads: 1, VmSizeKB: 3060}},
		{
			// setpriv --ruid=100123 --euid=100124 cat /proc/self/status
			"real and effective uid differ",
			"Name:\tcat\nUid:\t100123\t100124\t100124\t100124\nGid:\t100123\t100123\t100123\t100123\nThreads:\t1\n",
			Process{Comm: "cat", UID: 100123, EUID: 100124, Threads: 1},
		},
		{
			// A kernel worker: the comm holds ':' and '-', cut at the first ':' only.
			"kworker comm with colon",
			"Name:\tkworker/1:1-cgroup_pidlist_destroy\nUmask:\t0000\nUid:\t0\t0\t0\t0\nThreads:\t1\n",
			Process{Comm: "kworker/1:1-cgroup_pidlist_destroy", Threads: 1},
		},
		{"comm with a space", "Name:\tmy cat\nUid:\t1000\t1000\t1000\t1000\nThreads:\t1\n", Process{Comm: "my cat", UID: 1000, EUID: 1000, Threads: 1}},
		{
			// The kernel escapes a newline in the comm as backslash-n.
			"comm with an escaped newline",
			"Name:\ta\\nb\nThreads:\t1\n",
			Process{Comm: `a\nb`, Threads: 1},
		},
		{"many threads, no trailing newline", "Name:\tjava\nUid:\t1001\t1001\t1001\t1001\nThreads:\t4213", Process{Comm: "java", UID: 1001, EUID: 1001, Threads: 4213}},
		{"empty", "", Process{}},
		{"lines without a colon are skipped", "Name cat\nThreads 5\n", Process{}},
		{"Uid with one field keeps zero", "Uid:\t1000\n", Process{}},
		{"non-numeric Threads is zero", "Threads:\tmany\n", Process{}},
		{"keys are case sensitive", "name:\tcat\nthreads:\t3\n", Process{}},
		{"VmSize in kB", "VmSize:\t  123456 kB\n", Process{VmSizeKB: 123456}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseStatus([]byte(tt.in), nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatusSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	p := parseStatus(b, nil)
	if p.UID != os.Getuid() || p.EUID != os.Geteuid() {
		t.Errorf("uid/euid = %d/%d, want %d/%d", p.UID, p.EUID, os.Getuid(), os.Geteuid())
	}
	// A Go test binary runs several threads (sysmon, GC workers).
	if p.Threads < 2 {
		t.Errorf("Threads = %d, want >= 2", p.Threads)
	}
	comm := filepath.Base(os.Args[0])
	if len(comm) > 15 {
		comm = comm[:15]
	}
	if p.Comm != comm {
		t.Errorf("Comm = %q, want %q", p.Comm, comm)
	}
}

// cgroupV1Host is /proc/self/cgroup on a cgroup v1 host with a v2 hierarchy
// mounted beside it (this repository's CI machine).
const cgroupV1Host = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/b745e31bec66614be34a31effc56dca2
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

// cgroupDocker is /proc/PID/cgroup of a process in a docker container
// (cgroupfs driver, cgroup v1, CentOS 7 era).
const cgroupDocker = `11:hugetlb:/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b
10:memory:/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b
9:cpu,cpuacct:/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b
8:net_cls,net_prio:/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b
1:name=systemd:/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b
`

func TestParseCgroup(t *testing.T) {
	const docker = "/docker/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b"
	const kubepods = "/kubepods/burstable/pod79fe803c-072f-11e9-90ca-525400090c71/b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b"
	const kubeSlice = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod79fe803c_072f_11e9_90ca_525400090c71.slice/cri-containerd-b98d4aea818bf9d1d1aa84079e1688cd9b4218e008c58a8ef6d6c3c106403e7b.scope"
	tests := []struct {
		name string
		in   string
		want []CgroupMembership
	}{
		{"v1 host", cgroupV1Host, []CgroupMembership{
			{9, []string{"name=systemd"}, "/"},
			{8, []string{"pids"}, "/"},
			{7, []string{"blkio"}, "/"},
			{6, []string{"freezer"}, "/"},
			{5, []string{"devices"}, "/"},
			{4, []string{"memory"}, "/process_api/b745e31bec66614be34a31effc56dca2"},
			{3, []string{"cpuset"}, "/"},
			{2, []string{"cpuacct"}, "/"},
			{1, []string{"cpu"}, "/"},
			{0, nil, "/"},
		}},
		{"docker v1 container", cgroupDocker, []CgroupMembership{
			{11, []string{"hugetlb"}, docker},
			{10, []string{"memory"}, docker},
			{9, []string{"cpu", "cpuacct"}, docker},
			{8, []string{"net_cls", "net_prio"}, docker},
			{1, []string{"name=systemd"}, docker},
		}},
		{"kubepods v1, cgroupfs driver", "4:memory:" + kubepods + "\n", []CgroupMembership{{4, []string{"memory"}, kubepods}}},
		{"kubepods v2, systemd driver", "0::" + kubeSlice + "\n", []CgroupMembership{{0, nil, kubeSlice}}},
		{"v2 only, no trailing newline", "0::/user.slice/user-1000.slice/session-3.scope", []CgroupMembership{{0, nil, "/user.slice/user-1000.slice/session-3.scope"}}},
		{"path keeps later colons", "0::/a:b:c\n", []CgroupMembership{{0, nil, "/a:b:c"}}},
		{"empty", "", nil},
		{"one colon only: skipped", "4:memory\n0::/\n", []CgroupMembership{{0, nil, "/"}}},
		{"non-numeric hierarchy: skipped", "x:memory:/a\n0::/\n", []CgroupMembership{{0, nil, "/"}}},
		{"no colon: skipped", "garbage\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCgroup([]byte(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseCgroup =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestControllerPath(t *testing.T) {
	p := Process{Cgroups: parseCgroup([]byte(cgroupV1Host))}
	if got, ok := p.ControllerPath("memory"); !ok || got != "/process_api/b745e31bec66614be34a31effc56dca2" {
		t.Errorf("memory = %q, %v", got, ok)
	}
	if got, ok := p.ControllerPath(""); !ok || got != "/" {
		t.Errorf("v2 = %q, %v", got, ok)
	}
	if _, ok := p.ControllerPath("rdma"); ok {
		t.Error("rdma found in a hierarchy list without it")
	}
	d := Process{Cgroups: parseCgroup([]byte(cgroupDocker))}
	if _, ok := d.ControllerPath(""); ok {
		t.Error("v2 path found for a v1-only process")
	}
	if got, _ := d.ControllerPath("cpuacct"); !strings.HasPrefix(got, "/docker/") {
		t.Errorf("cpuacct (co-mounted with cpu) = %q", got)
	}
}

// fdinfoInotify is the fdinfo of an inotify fd holding two watches, read on
// a 6.18 kernel.
const fdinfoInotify = `pos:	0
flags:	00
mnt_id:	17
ino:	1038
inotify wd:2 ino:13 sdev:fe00000 mask:202 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:1300000000000000
inotify wd:1 ino:3c4a3 sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a3c4030000000000
`

func TestCountInotifyWatches(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"two watches", fdinfoInotify, 2},
		{"no watches", "pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1038\n", 0},
		{"last line without newline", "pos:\t0\ninotify wd:1 ino:3c4a3 sdev:fe00000 mask:100", 1},
		{"empty", "", 0},
		// fanotify fdinfo lists marks, not watches.
		{"fanotify marks are not watches", "pos:\t0\nfanotify flags:10 event-flags:0\nfanotify ino:3c4a3 sdev:fe00000 mflags:0 mask:1 ignored_mask:0\n", 0},
		{"prefix must start the line", " inotify wd:1 ino:1\nxinotify wd:2\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := countInotifyWatches([]byte(tt.in)); got != tt.want {
				t.Errorf("countInotifyWatches = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCountInotifyWatchesLive adds watches on this kernel and counts them in
// the fd's real fdinfo.
func TestCountInotifyWatchesLive(t *testing.T) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	dir := t.TempDir()
	var wds []int
	for _, name := range []string{"a", "b", "c d"} {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		wd, err := unix.InotifyAddWatch(fd, p, unix.IN_CREATE|unix.IN_DELETE)
		if err != nil {
			t.Fatal(err)
		}
		wds = append(wds, wd)
	}
	fdinfo := "/proc/self/fdinfo/" + strconv.Itoa(fd)
	count := func() int {
		b, err := os.ReadFile(fdinfo)
		if err != nil {
			t.Fatal(err)
		}
		return countInotifyWatches(b)
	}
	if got := count(); got != 3 {
		t.Errorf("after 3 watches: %d", got)
	}
	if _, err := unix.InotifyRmWatch(fd, uint32(wds[0])); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 2 {
		t.Errorf("after removing one: %d", got)
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err != nil || target != "anon_inode:inotify" {
		t.Errorf("fd link = %q, %v; the census matches on anon_inode:inotify", target, err)
	}
}

func TestParseNSLink(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"user:[4026531837]", 4026531837, false},
		{"mnt:[4026531832]", 4026531832, false},
		{"pid_for_children:[4026531836]", 4026531836, false},
		{"[7]", 7, false},
		{"user:[]", 0, true},
		{"user:[abc]", 0, true},
		{"user:[-1]", 0, true},
		{"user:[18446744073709551616]", 0, true},
		{"user:4026531837", 0, true},
		{"user:[4026531837", 0, true},
		{"4026531837]", 0, true},
		{"/proc/1/ns/user", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseNSLink(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseNSLink(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestNSInodeSelf checks the link text against the namespace file's inode.
func TestNSInodeSelf(t *testing.T) {
	for _, ns := range []string{"user", "mnt"} {
		path := "/proc/self/ns/" + ns
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Skipf("stat %s: %v", path, err)
		}
		got, err := nsInode(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.Ino {
			t.Errorf("%s: nsInode = %d, stat inode = %d", ns, got, st.Ino)
		}
	}
}

func TestCountLines(t *testing.T) {
	// An epoll fd's fdinfo (cat /proc/self/fdinfo/N of an epoll fd watching two fds).
	epoll := "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\ntfd:        5 events:       19 data:                5  pos:0 ino:3f4 sdev:8\ntfd:        7 events:       19 data:                7  pos:0 ino:3f5 sdev:8\n"
	if n := countLines([]byte(epoll), "tfd:"); n != 2 {
		t.Errorf("epoll watches: %d, want 2", n)
	}
	// A fanotify fd's fdinfo with one inode mark (fs/notify/fdinfo.c).
	fan := "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1058\nfanotify flags:10 event-flags:0\nfanotify ino:2 sdev:800001 mflags:0 mask:1 ignored_mask:0\n"
	if n := countLines([]byte(fan), "fanotify ino:"); n != 1 {
		t.Errorf("fanotify marks: %d, want 1", n)
	}
}
