// generate writes the fixture host trees under testdata/hosts: one
// directory per scenario, each with proc/, root/ (sys/ is part of root/
// where mount points need it) and statfs.json, the numbers the golden test
// serves for statfs(2). Run from the repository root:
//
//	go run ./testdata/hosts
//
// Every scenario is named once, in generators, in the order they are
// written.
//
// The scenarios reproduce the field reports the README quotes: the numbers are
// those of the reports where they give them, scaled down where a literal
// copy would put hundreds of thousands of files into the repository (the
// scale is said in each scenario's README).
package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/internal/fixture"
)

// statfs is one entry of statfs.json (the schema is fixture.Statfs).
type statfs = fixture.Statfs

type proc struct {
	pid      int
	comm     string
	uid      int
	threads  int
	userns   uint64
	mntns    uint64
	cgroup   string
	fds      []string // symlink targets
	fdinfo   map[int]string
	children int
	// files are more files under /proc/PID (limits, maps).
	files map[string]string
	// vmSizeKB is status's VmSize, when set.
	vmSizeKB int
}

type hostTree struct {
	dir     string
	sysctl  map[string]string
	files   map[string]string // path under proc/
	procs   []proc
	mounts  []string // mountinfo lines of pid 1
	statfs  map[string]statfs
	rootDir []string // directories under root/
	rootF   map[string]string
	readme  string
	// inventory is what the host's container runtimes list, served to
	// the golden test instead of asking real sockets.
	inventory *attrib.Inventory
}

const (
	initUserNS = 4026531837
	initMntNS  = 4026531840
)

func newHost(name, kernel string) *hostTree {
	return &hostTree{
		dir: filepath.Join("testdata", "hosts", name),
		sysctl: map[string]string{
			"kernel/hostname":               name,
			"kernel/osrelease":              kernel,
			"kernel/pid_max":                "32768",
			"kernel/threads-max":            "126683",
			"kernel/keys/maxkeys":           "200",
			"kernel/keys/maxbytes":          "20000",
			"kernel/keys/root_maxkeys":      "1000000",
			"kernel/keys/root_maxbytes":     "25000000",
			"fs/file-nr":                    "4160\t0\t1620178",
			"fs/file-max":                   "1620178",
			"fs/mount-max":                  "100000",
			"fs/inotify/max_user_watches":   "8192",
			"fs/inotify/max_user_instances": "128",
			"vm/max_map_count":              "65530",
		},
		files:  map[string]string{},
		statfs: map[string]statfs{},
		rootF:  map[string]string{},
	}
}

func cgroupsFile(memory int) string {
	return fmt.Sprintf(`#subsys_name	hierarchy	num_cgroups	enabled
cpuset	5	29	1
cpu	7	126	1
cpuacct	7	126	1
memory	9	%d	1
devices	4	126	1
freezer	2	29	1
net_cls	6	29	1
blkio	10	126	1
perf_event	3	29	1
hugetlb	11	29	1
pids	8	126	1
net_prio	6	29	1
`, memory)
}

// v1Mounts are the cgroup v1 mounts of a CentOS 7 / Ubuntu 16.04 era host.
var v1Mounts = []string{
	"25 19 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
	"26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd",
	"28 25 0:25 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,freezer",
	"29 25 0:26 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,devices",
	"30 25 0:27 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,perf_event",
	"31 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset",
	"32 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio",
	"33 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct",
	"34 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids",
	"35 25 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,memory",
	"36 25 0:33 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,blkio",
	"37 25 0:34 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,hugetlb",
}

var pseudoMounts = []string{
	"18 24 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw",
	"19 24 0:4 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
	"21 24 0:19 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=000",
	"40 19 0:38 / /proc/sys/fs/binfmt_misc rw,relatime shared:24 - autofs systemd-1 rw,fd=31,pgrp=1,timeout=0,minproto=5,maxproto=5,direct",
	"41 20 0:39 / /dev/mqueue rw,relatime shared:25 - mqueue mqueue rw",
}

func v1CgroupFile(path string) string {
	ctrls := []string{"12:hugetlb", "11:blkio", "10:memory", "9:pids", "8:cpu,cpuacct", "7:net_cls,net_prio", "6:cpuset", "5:perf_event", "4:devices", "3:freezer"}
	var b strings.Builder
	for _, c := range ctrls {
		fmt.Fprintf(&b, "%s:%s\n", c, path)
	}
	fmt.Fprintf(&b, "1:name=systemd:%s\n", path)
	return b.String()
}

func (h *hostTree) basics() {
	h.kernelDefaults()
	h.procs = append(h.procs,
		proc{pid: 1, comm: "systemd", threads: 1, cgroup: v1CgroupFile("/"), fds: []string{"anon_inode:inotify", "anon_inode:inotify", "/dev/kmsg", "socket:[10811]"},
			fdinfo: map[int]string{0: inotifyInfo(3, 0), 1: inotifyInfo(12, 100)}},
		proc{pid: 2, comm: "kthreadd", threads: 1, cgroup: v1CgroupFile("/")},
		proc{pid: 612, comm: "systemd-journal", threads: 1, cgroup: v1CgroupFile("/system.slice/systemd-journald.service"),
			fds: []string{"anon_inode:inotify", "/run/log/journal/x/system.journal"}, fdinfo: map[int]string{0: inotifyInfo(2, 200)}},
		proc{pid: 889, comm: "sshd", threads: 1, cgroup: v1CgroupFile("/system.slice/sshd.service"), fds: []string{"socket:[2201]"}},
	)
}

// kernelDefaults gives the host the kernel files every kernel of its
// version has, at their defaults, unless the scenario set them: ptys, aio,
// epoll, SysV IPC, POSIX queues, and (by version) the namespace and
// fanotify limits.
func (h *hostTree) kernelDefaults() {
	var major, minor int
	fmt.Sscanf(h.sysctl["kernel/osrelease"], "%d.%d", &major, &minor)
	atLeast := func(a, b int) bool { return major > a || (major == a && minor >= b) }
	set := func(k, v string) {
		if _, ok := h.sysctl[k]; !ok {
			h.sysctl[k] = v
		}
	}
	set("kernel/pty/max", "4096")
	set("kernel/pty/reserve", "1024")
	set("kernel/pty/nr", "2")
	set("fs/aio-nr", "0")
	set("fs/aio-max-nr", "65536")
	set("fs/epoll/max_user_watches", "3603200")
	set("kernel/shmmni", "4096")
	set("kernel/shmall", "18446744073692774399")
	set("kernel/sem", "250\t32000\t32\t128")
	set("kernel/msgmni", "32000")
	set("fs/mqueue/queues_max", "256")
	if atLeast(4, 9) {
		for _, k := range []string{"user", "mnt", "ipc", "net", "pid", "uts", "cgroup"} {
			set("user/max_"+k+"_namespaces", "63457")
		}
	}
	if atLeast(5, 13) {
		set("fs/fanotify/max_user_groups", "128")
		set("fs/fanotify/max_user_marks", "253457")
	}
	for name, header := range map[string]string{
		"sysvipc/shm": "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
		"sysvipc/sem": "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
		"sysvipc/msg": "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
	} {
		if _, ok := h.files[name]; !ok {
			h.files[name] = header
		}
	}
}

// inotifyInfo is the fdinfo of an inotify fd holding n watches.
func inotifyInfo(n int, inoBase int) string {
	var b strings.Builder
	b.WriteString("pos:\t0\nflags:\t02004000\nmnt_id:\t15\nino:\t10\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "inotify wd:%x ino:%x sdev:800001 mask:fc6 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:%016x\n", i+1, inoBase+i+2, uint64(inoBase+i)*2654435761)
	}
	return b.String()
}

func (h *hostTree) write() {
	// The golden outputs beside the tree are the golden test's to write.
	for _, d := range []string{"proc", "root", "sys"} {
		must(os.RemoveAll(filepath.Join(h.dir, d)))
	}
	p := filepath.Join(h.dir, "proc")
	for k, v := range h.sysctl {
		writeFile(filepath.Join(p, "sys", k), v+"\n")
	}
	for k, v := range h.files {
		writeFile(filepath.Join(p, k), v)
	}
	threads := 0
	for _, pr := range h.procs {
		d := filepath.Join(p, fmt.Sprint(pr.pid))
		userns, mntns := pr.userns, pr.mntns
		if userns == 0 {
			userns = initUserNS
		}
		if mntns == 0 {
			mntns = initMntNS
		}
		threads += pr.threads
		status := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t1\nTracerPid:\t0\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\n",
			pr.comm, pr.pid, pr.pid, pr.uid, pr.uid, pr.uid, pr.uid, pr.uid, pr.uid, pr.uid, pr.uid)
		if pr.vmSizeKB > 0 {
			status += fmt.Sprintf("VmSize:\t%8d kB\n", pr.vmSizeKB)
		}
		writeFile(filepath.Join(d, "status"), status+fmt.Sprintf("Threads:\t%d\n", pr.threads))
		writeFile(filepath.Join(d, "cgroup"), pr.cgroup)
		must(os.MkdirAll(filepath.Join(d, "ns"), 0o755))
		must(os.Symlink(fmt.Sprintf("user:[%d]", userns), filepath.Join(d, "ns", "user")))
		must(os.Symlink(fmt.Sprintf("mnt:[%d]", mntns), filepath.Join(d, "ns", "mnt")))
		must(os.MkdirAll(filepath.Join(d, "fd"), 0o755))
		must(os.MkdirAll(filepath.Join(d, "fdinfo"), 0o755))
		for i, t := range pr.fds {
			must(os.Symlink(t, filepath.Join(d, "fd", fmt.Sprint(i+3))))
			info := "pos:\t0\nflags:\t02\nmnt_id:\t9\n"
			if s, ok := pr.fdinfo[i]; ok {
				info = s
			}
			writeFile(filepath.Join(d, "fdinfo", fmt.Sprint(i+3)), info)
		}
		mounts := strings.Join(h.mounts, "\n") + "\n"
		if pr.mntns != 0 && pr.mntns != initMntNS {
			mounts = strings.Join(h.mounts[:3], "\n") + "\n"
		}
		writeFile(filepath.Join(d, "mountinfo"), mounts)
		for name, body := range pr.files {
			writeFile(filepath.Join(d, name), body)
		}
	}
	// git keeps no empty directory: each gets the file the real one
	// would hold.
	for _, dir := range h.rootDir {
		name := "init.pid"
		if strings.HasPrefix(dir, "sys/fs/cgroup/") {
			name = "cgroup.procs"
		}
		writeFile(filepath.Join(h.dir, "root", dir, name), "")
	}
	for k, v := range h.rootF {
		writeFile(filepath.Join(h.dir, "root", k), v)
	}
	b, err := json.MarshalIndent(h.statfs, "", "  ")
	must(err)
	writeFile(filepath.Join(h.dir, "statfs.json"), string(b)+"\n")
	writeFile(filepath.Join(h.dir, "README.md"), h.readme)
	must(os.RemoveAll(filepath.Join(h.dir, "inventory.json")))
	if h.inventory != nil {
		b, err := json.MarshalIndent(h.inventory, "", "  ")
		must(err)
		writeFile(filepath.Join(h.dir, "inventory.json"), string(b)+"\n")
	}
	must(os.MkdirAll(filepath.Join(h.dir, "sys"), 0o755))
	writeFile(filepath.Join(h.dir, "sys", ".keep"), "")
}

func writeFile(path, content string) {
	must(os.MkdirAll(filepath.Dir(path), 0o755))
	must(os.WriteFile(path, []byte(content), 0o644))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func hex64(seed string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(seed)))
}

// jenkinsKeyring: seed 000. A Jenkins agent with docker userns-remap to uid
// 1001; 243 container session keyrings exhaust kernel.keys.maxbytes=20000.
func jenkinsKeyring() {
	h := newHost("jenkins-keyring", "4.15.0-1057-aws")
	h.sysctl["kernel/keys/maxkeys"] = "1000000"
	h.sysctl["kernel/keys/maxbytes"] = "20000"
	h.basics()
	var keys strings.Builder
	keys.WriteString("07161a30 I------     1 perm 0f0b0000     0     0 keyring   .blacklist: empty\n")
	keys.WriteString("33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n")
	keys.WriteString("3e26ad8f I--Q---     2 perm 1f3f0000     0 65534 keyring   _uid.0: empty\n")
	for i := 0; i < 243; i++ {
		fmt.Fprintf(&keys, "%08x I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.%s: 1\n", 0x10000000+i*7919, hex64(fmt.Sprint("container", i)))
	}
	h.files["keys"] = keys.String()
	// 243 keyrings of "_ses." + 64 hex: 69 characters + 1, charged with the
	// keyring's own payload; 82 bytes each on this kernel.
	h.files["key-users"] = "    0:    10 9/9 2/1000000 40/25000000\n 1001:   246 243/243 243/1000000 19926/20000\n"
	h.files["cgroups"] = cgroupsFile(180)
	h.mounts = append([]string{
		"24 0 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme1n1p1 rw,discard",
		"20 24 0:6 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=16384000k,nr_inodes=4096000,mode=755",
		"22 20 0:20 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw",
		"23 24 0:21 / /run rw,nosuid,noexec,relatime shared:5 - tmpfs tmpfs rw,size=3276800k,mode=755",
		"27 23 0:24 / /run/lock rw,nosuid,nodev,noexec,relatime shared:7 - tmpfs tmpfs rw,size=5120k",
		"90 24 259:3 / /home/jenkins rw,relatime shared:30 - ext4 /dev/nvme0n1p3 rw",
		"91 24 259:2 / /var/lib/docker rw,relatime shared:31 - ext4 /dev/nvme0n1p2 rw",
		"300 91 0:50 / /var/lib/docker/1001.1001/overlay2/8ec5fac4206d1918bda2f/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/1001.1001/overlay2/l/A,upperdir=/var/lib/docker/1001.1001/overlay2/8ec5fac4206d1918bda2f/diff,workdir=/var/lib/docker/1001.1001/overlay2/8ec5fac4206d1918bda2f/work",
		"301 91 0:51 / /var/lib/docker/1001.1001/containers/" + hex64("container0") + "/mounts/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k",
		"302 91 259:2 /1001.1001/volumes/cache /home/jenkins/cache rw,relatime - ext4 /dev/nvme0n1p2 rw",
		"95 23 0:52 / /run/user/1001 rw,nosuid,nodev,relatime shared:40 - tmpfs tmpfs rw,size=3276800k,mode=700,uid=1001,gid=1001",
	}, append(pseudoMounts, v1Mounts...)...)
	h.procs = append(h.procs,
		proc{pid: 1020, comm: "dockerd", threads: 31, cgroup: v1CgroupFile("/system.slice/docker.service"), fds: []string{"socket:[31]", "/var/lib/docker/volumes/metadata.db"}},
		proc{pid: 1040, comm: "containerd", threads: 14, cgroup: v1CgroupFile("/system.slice/docker.service")},
		proc{pid: 1550, comm: "java", uid: 1001, threads: 68, cgroup: v1CgroupFile("/system.slice/jenkins-agent.service"),
			fds: []string{"anon_inode:inotify", "/home/jenkins/agent.log"}, fdinfo: map[int]string{0: inotifyInfo(40, 5000)}},
		proc{pid: 20311, comm: "sh", uid: 101001, threads: 1, userns: 4026532456, mntns: 4026532455, cgroup: v1CgroupFile("/docker/" + hex64("container0"))},
	)
	// docker lists the 243 build containers: three run, 240 have exited
	// and still hold their keyrings (the report's "most of them are not
	// really running").
	h.inventory = attrib.NewInventory()
	h.inventory.Sources = []attrib.Source{{Runtime: "docker", Endpoint: "unix:///var/run/docker.sock", Reached: true, Containers: 243},
		{Runtime: "containerd", Endpoint: "/run/containerd/containerd.sock", Absent: true, Error: "no socket"}}
	for i := 0; i < 243; i++ {
		c := &attrib.Container{ID: hex64(fmt.Sprint("container", i)), Name: fmt.Sprintf("build-%d", 4100+i),
			Image: "maven:3.6-jdk-8", Runtime: "docker", State: "exited"}
		if i < 3 {
			c.State, c.Live = "running", true
		}
		h.inventory.Containers[c.ID] = c
	}
	// df -h and df -ih of the report, block size 4096.
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 2018443, BlocksFree: 1494220, BlocksAvail: 1494220, Files: 1024000, FilesFree: 914432}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 4194304, BlocksFree: 4194304, BlocksAvail: 4194304, Files: 4089446, FilesFree: 4089111}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 4194304, BlocksFree: 4194304, BlocksAvail: 4194304, Files: 4089446, FilesFree: 4089445}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 819200, BlocksFree: 819054, BlocksAvail: 819054, Files: 4089446, FilesFree: 4088885}
	h.statfs["/run/lock"] = statfs{BlockSize: 4096, Blocks: 1280, BlocksFree: 1280, BlocksAvail: 1280, Files: 4089446, FilesFree: 4089443}
	h.statfs["/home/jenkins"] = statfs{BlockSize: 4096, Blocks: 7340032, BlocksFree: 3932160, BlocksAvail: 3932160, Files: 14680064, FilesFree: 14239744}
	h.statfs["/var/lib/docker"] = statfs{BlockSize: 4096, Blocks: 22020096, BlocksFree: 19791462, BlocksAvail: 19791462, Files: 44040192, FilesFree: 43780096}
	h.statfs["/var/lib/docker/1001.1001/containers/"+hex64("container0")+"/mounts/shm"] = statfs{BlockSize: 4096, Blocks: 16384, BlocksFree: 16384, BlocksAvail: 16384, Files: 4089446, FilesFree: 4089445}
	h.statfs["/run/user/1001"] = statfs{BlockSize: 4096, Blocks: 819200, BlocksFree: 819200, BlocksAvail: 819200, Files: 4089446, FilesFree: 4089436}
	h.readme = "# jenkins-keyring\n\nSeed 000: a Jenkins agent, docker with userns-remap to uid 1001, \"join session keyring: create session key: disk quota exceeded\" while df -h shows 26% and df -ih 11%. 243 session keyrings (_ses.<container id>) hold 19926 of kernel.keys.maxbytes=20000 for uid 1001. docker (inventory.json) lists the 243 build containers: 3 running, 240 exited (leak.keyrings). Filesystem numbers are those of the report's df output.\n"
	h.write()
}

// runInodes: seed 002 (containerd#2421), scaled down. /run is a tmpfs with
// 1000 inodes, 988 in use, 960 of them in 240 orphaned fifo directories;
// two containers still run.
func runInodes() {
	h := newHost("run-inodes", "4.4.0-116-generic")
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     4 3/3 2/1000000 40/25000000\n"
	h.files["cgroups"] = cgroupsFile(40)
	h.mounts = append([]string{
		"24 0 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,data=ordered",
		"20 24 0:6 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=2010000k,nr_inodes=502500,mode=755",
		"22 20 0:20 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw",
		"23 24 0:21 / /run rw,nosuid,noexec,relatime shared:5 - tmpfs tmpfs rw,size=404060k,nr_inodes=1000,mode=755",
	}, append(pseudoMounts, v1Mounts...)...)
	h.rootDir = append(h.rootDir, "run/containerd/io.containerd.runtime.v1.linux/default/test.126070", "run/containerd/io.containerd.runtime.v1.linux/default/test.126071")
	fifo := "run/containerd/fifo"
	for i := 0; i < 240; i++ {
		dir := fmt.Sprintf("%s/%09d", fifo, 1714+i*2053)
		id := fmt.Sprintf("test.%d", 32583+i*521)
		for _, s := range []string{"-stderr", "-stdin", "-stdout"} {
			h.rootF[dir+"/"+id+s] = ""
		}
	}
	// The live containers' fifo dirs: one held open by its shim, one known
	// from the runtime's state only.
	for _, l := range []struct{ dir, id string }{{"497171102", "test.126070"}, {"497171209", "test.126071"}} {
		for _, s := range []string{"-stderr", "-stdin", "-stdout"} {
			h.rootF[fifo+"/"+l.dir+"/"+l.id+s] = ""
		}
	}
	h.procs = append(h.procs,
		proc{pid: 1200, comm: "containerd", threads: 22, cgroup: v1CgroupFile("/system.slice/containerd.service")},
		proc{pid: 4410, comm: "containerd-shim", threads: 9, cgroup: v1CgroupFile("/system.slice/containerd.service"),
			fds: []string{"/run/containerd/fifo/497171102/test.126070-stdout", "/run/containerd/fifo/497171102/test.126070-stderr"}},
		proc{pid: 4431, comm: "sleep", threads: 1, mntns: 4026532301, cgroup: v1CgroupFile("/default/test.126070")},
		proc{pid: 4502, comm: "containerd-shim", threads: 9, cgroup: v1CgroupFile("/system.slice/containerd.service")},
		proc{pid: 4520, comm: "sleep", threads: 1, mntns: 4026532310, cgroup: v1CgroupFile("/default/test.126071")},
	)
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 10255672, BlocksFree: 7645100, BlocksAvail: 7121000, Files: 2621440, FilesFree: 2410000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 502500, BlocksFree: 502500, BlocksAvail: 502500, Files: 502500, FilesFree: 502100}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 505078, BlocksFree: 505078, BlocksAvail: 505078, Files: 505078, FilesFree: 505077}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 101015, BlocksFree: 90624, BlocksAvail: 90624, Files: 1000, FilesFree: 12}
	h.readme = "# run-inodes\n\nSeed 002 (containerd#2421), scaled down 500 times: a ctr create/kill/delete loop leaves one fifo directory per container in /run/containerd/fifo. /run is a tmpfs of 1000 inodes with 12 free while 90% of its blocks are free; 240 orphaned directories hold 960 inodes. Two containers still run: test.126070, whose shim holds its fifos open, and test.126071, known from containerd's v1 runtime state. The fixture's fifos are empty regular files (git stores no fifos); the golden test sets the directories' mtimes to before the fixture clock.\n"
	h.write()
}

// memcgDying: seed 003/004. A CentOS 7 node (3.10) with kmem accounting:
// /proc/cgroups counts 65535 memory cgroups, 127 of which can still be seen.
func memcgDying() {
	h := newHost("memcg-dying", "3.10.0-957.21.3.el7.x86_64")
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:    30 29/29 24/1000000 420/25000000\n"
	h.files["cgroups"] = cgroupsFile(65535)
	h.mounts = append([]string{
		"24 0 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota",
		"20 24 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=8118700k,nr_inodes=2029675,mode=755",
		"22 20 0:18 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw",
		"23 24 0:19 / /run rw,nosuid,nodev shared:22 - tmpfs tmpfs rw,mode=755",
	}, append(pseudoMounts, v1Mounts...)...)
	mem := "sys/fs/cgroup/memory"
	dirs := []string{mem, mem + "/system.slice", mem + "/user.slice", mem + "/kubepods", mem + "/kubepods/besteffort", mem + "/kubepods/burstable"}
	n := len(dirs)
	for i := 0; n < 127; i++ {
		pod := fmt.Sprintf("%s/kubepods/burstable/pod%s", mem, uuidLike(i))
		dirs = append(dirs, pod)
		n++
		for j := 0; j < 2 && n < 127; j++ {
			dirs = append(dirs, pod+"/"+hex64(fmt.Sprint(i, j)))
			n++
		}
	}
	h.rootDir = dirs
	h.procs = append(h.procs,
		proc{pid: 1011, comm: "dockerd", threads: 40, cgroup: v1CgroupFile("/system.slice/docker.service")},
		proc{pid: 1402, comm: "kubelet", threads: 44, cgroup: v1CgroupFile("/system.slice/kubelet.service"),
			fds: []string{"anon_inode:inotify", "anon_inode:inotify"}, fdinfo: map[int]string{0: inotifyInfo(30, 9000), 1: inotifyInfo(4, 9100)}},
	)
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 13100800, BlocksFree: 9800000, BlocksAvail: 9800000, Files: 52428800, FilesFree: 52200000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2029675, BlocksAvail: 2029675, Files: 2029675, FilesFree: 2029300}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2029675, BlocksAvail: 2029675, Files: 2029675, FilesFree: 2029674}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2027000, BlocksAvail: 2027000, Files: 2029675, FilesFree: 2029000}
	h.readme = "# memcg-dying\n\nSeeds 003 and 004: a CentOS 7 Kubernetes node (kernel 3.10) where kubelet and runc enabled kmem accounting; /proc/cgroups counts 65535 memory cgroups while find /sys/fs/cgroup/memory -type d sees 127, so 65408 are dying and every pod fails with \"mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod...: no space left on device\".\n"
	h.write()
}

func uuidLike(i int) string {
	s := hex64(fmt.Sprint("pod", i))
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// inotifyExhausted: seed 003. kubelet and a node dev server as root hold
// 8100 of fs.inotify.max_user_watches=8192.
func inotifyExhausted() {
	h := newHost("inotify-exhausted", "4.14.105-1.el7.x86_64")
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     8 7/7 6/1000000 120/25000000\n 1000:     2 2/2 2/200 36/20000\n"
	h.files["cgroups"] = cgroupsFile(300)
	h.mounts = append([]string{
		"24 0 253:1 / / rw,relatime shared:1 - xfs /dev/vda1 rw,attr2,inode64,noquota",
		"20 24 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=3990000k,nr_inodes=997500,mode=755",
		"22 20 0:18 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw",
		"23 24 0:19 / /run rw,nosuid,nodev shared:22 - tmpfs tmpfs rw,mode=755",
	}, append(pseudoMounts, v1Mounts...)...)
	// kubelet (5424 watches over three instances) and a file-watching dev
	// server in a pod (2571) hold most; systemd and journald 17.
	h.procs = append(h.procs,
		proc{pid: 11519, comm: "kubelet", threads: 52, cgroup: v1CgroupFile("/system.slice/kubelet.service"),
			fds:    []string{"anon_inode:inotify", "anon_inode:inotify", "anon_inode:inotify", "socket:[88121]"},
			fdinfo: map[int]string{0: inotifyInfo(5120, 20000), 1: inotifyInfo(300, 40000), 2: inotifyInfo(4, 50000)}},
		proc{pid: 23871, comm: "node", threads: 11, mntns: 4026532612, cgroup: v1CgroupFile("/kubepods/burstable/pod926b7ff4-7bff-11e8-945b-52540048533c/6e85761a30707b43ed874e0140f58839618285fc90717153b3cbe7f91629ef5a"),
			fds: []string{"anon_inode:inotify"}, fdinfo: map[int]string{0: inotifyInfo(2571, 60000)}},
		proc{pid: 2210, comm: "tail", uid: 1000, threads: 1, cgroup: v1CgroupFile("/user.slice"),
			fds: []string{"anon_inode:inotify", "/var/log/messages"}, fdinfo: map[int]string{0: inotifyInfo(1, 70000)}},
	)
	// containerd's CRI lists the dev server's container with the labels
	// of its pod. A container of a deleted pod left its cgroups behind.
	webpack := "6e85761a30707b43ed874e0140f58839618285fc90717153b3cbe7f91629ef5a"
	h.inventory = attrib.NewInventory()
	h.inventory.Sources = []attrib.Source{{Runtime: "containerd", Endpoint: "/run/containerd/containerd.sock", Reached: true, Containers: 1}}
	h.inventory.ContainerdNamespaces["k8s.io"] = true
	h.inventory.Containers[webpack] = &attrib.Container{ID: webpack, Name: "webpack", Image: "registry.local/shop/frontend-dev:1.4",
		Runtime: "containerd", State: "running", Live: true, Namespace: "k8s.io", PodName: "frontend-dev-5c7d8f9b6-x2x7k", PodNamespace: "shop",
		PodUID: "926b7ff4-7bff-11e8-945b-52540048533c", Labels: map[string]string{attrib.LabelPodName: "frontend-dev-5c7d8f9b6-x2x7k",
			attrib.LabelPodNamespace: "shop", attrib.LabelPodUID: "926b7ff4-7bff-11e8-945b-52540048533c", attrib.LabelContainerName: "webpack"}}
	gone := "kubepods/besteffort/pod3b1f6c2a-7c01-11e8-945b-52540048533c/" + hex64("deleted pod's container")
	for _, ctrl := range []string{"memory", "pids", "cpu,cpuacct"} {
		h.rootDir = append(h.rootDir,
			"sys/fs/cgroup/"+ctrl+"/kubepods/burstable/pod926b7ff4-7bff-11e8-945b-52540048533c/"+webpack,
			"sys/fs/cgroup/"+ctrl+"/"+gone)
	}
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 10480385, BlocksFree: 6200000, BlocksAvail: 6200000, Files: 41942528, FilesFree: 41800000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 997500, BlocksAvail: 997500, Files: 997500, FilesFree: 997100}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 997500, BlocksAvail: 997500, Files: 997500, FilesFree: 997499}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 995000, BlocksAvail: 995000, Files: 997500, FilesFree: 996900}
	h.readme = "# inotify-exhausted\n\nSeed 003: the kubelet logs \"inotify_add_watch /sys/fs/cgroup/memory/kubepods/burstable/pod926b7ff4-...: no space left on device\" and the node goes NotReady. Root's processes hold 8012 of fs.inotify.max_user_watches=8192: the kubelet 5424, a file-watching node server (container webpack of pod shop/frontend-dev-5c7d8f9b6-x2x7k, as containerd's CRI labels it in inventory.json) 2571, systemd and journald 17. uid 1000's tail -f holds one. A container of a deleted pod left its empty cgroups in three hierarchies (leak.cgroups).\n"
	h.write()
}

// unreadable: a host whose kernel files are missing or garbage; every limit
// that cannot be read must be unknown with its reason while the others
// report.
func unreadable() {
	h := newHost("unreadable", "5.15.0-91-generic")
	delete(h.sysctl, "fs/inotify/max_user_watches")
	delete(h.sysctl, "fs/mount-max")
	h.sysctl["fs/file-nr"] = "\x00\x7fgarbage\xff"
	h.basics()
	h.files["cgroups"] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\tnine\t12\n"
	h.mounts = []string{
		"24 0 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
		"this line is not a mount",
		"25 24 0:45 / /mnt/nfs rw,relatime shared:40 - nfs4 fileserver:/export rw,vers=4.2",
	}
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 1000000, BlocksFree: 500000, BlocksAvail: 450000, Files: 655360, FilesFree: 600000}
	// The golden test's statfs never answers for /mnt/nfs, as on a dead
	// NFS server: the check must time out on it.
	h.statfs["/mnt/nfs"] = statfs{Hang: true}
	h.readme = "# unreadable\n\nA host where /proc/key-users and /proc/keys are missing (kernel without CONFIG_KEYS), fs.inotify.max_user_watches and fs.mount-max are missing, fs/file-nr is binary garbage, /proc/cgroups is malformed, mountinfo has a malformed line, and /mnt/nfs is a dead NFS mount whose statfs never returns. Each affected limit must be unknown with its reason; the rest report.\n"
	h.write()
}

// generators write one scenario each: the one list of the fixture hosts.
var generators = []func(){
	jenkinsKeyring, runInodes, memcgDying, inotifyExhausted, unreadable,
	devicesExhausted, ipcSemaphores, usernsExhausted, portsExhausted, procLimits, homeQuota,
}

func main() {
	for _, g := range generators {
		g()
	}
}
