package main

import (
	"fmt"
	"strings"

	"github.com/enospc/enospc/attrib"
)

// epollInfo is the fdinfo of an epoll fd watching n fds, from fd first on.
func epollInfo(first, n int) string {
	var b strings.Builder
	b.WriteString("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t2056\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "tfd: %8d events: %8x data: %16x  pos:0 ino:%x sdev:8\n", first+i, 0x2019, first+i, 0x40000+first+i)
	}
	return b.String()
}

// fanotifyInfo is the fdinfo of an unprivileged fanotify group with one
// inode mark.
func fanotifyInfo(ino int) string {
	return fmt.Sprintf("pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t2056\nfanotify flags:201 event-flags:8000\n"+
		"fanotify ino:%x sdev:800001 mflags:0 mask:8 ignored_mask:0 fhandle-bytes:c fhandle-type:1 f_handle:%024x\n", ino, ino)
}

// devicesExhausted: a Debian 12 docker host running CI jobs, databases and
// a proxy, with every limit of the devices family at its end. The limits
// are this lab machine's (kernel 6.18): kernel.pty.max 4096 with a reserve
// of 1024, fs.aio-max-nr 65536, fs.fanotify.max_user_groups 128 and
// max_user_marks 205039; fs.epoll.max_user_watches (5491511 there) is
// scaled down to 2048 so that the holder's fdinfo stays small.
func devicesExhausted() {
	h := newHost("devices-exhausted", "6.1.0-18-amd64")
	h.sysctl["kernel/pty/max"] = "4096"
	h.sysctl["kernel/pty/reserve"] = "1024"
	h.sysctl["kernel/pty/nr"] = "3071"
	h.sysctl["fs/aio-max-nr"] = "65536"
	h.sysctl["fs/aio-nr"] = "65280"
	h.sysctl["fs/epoll/max_user_watches"] = "2048"
	h.sysctl["fs/fanotify/max_user_groups"] = "128"
	h.sysctl["fs/fanotify/max_user_marks"] = "205039"
	h.sysctl["fs/inotify/max_user_watches"] = "124523"
	h.sysctl["fs/inotify/max_user_instances"] = "128"
	// The other families' files, with this machine's values and no
	// System V IPC object, so that only the devices family is at its end.
	h.sysctl["kernel/shmmni"] = "4096"
	h.sysctl["kernel/shmall"] = "18446744073692774399"
	h.sysctl["kernel/sem"] = "32000\t1024000000\t500\t32000"
	h.sysctl["kernel/msgmni"] = "32000"
	h.sysctl["fs/mqueue/queues_max"] = "256"
	h.files["sysvipc/msg"] = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n"
	h.files["sysvipc/sem"] = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
	h.files["sysvipc/shm"] = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     4 3/3 2/1000000 40/25000000\n"
	h.files["cgroups"] = cgroupsFile(120)
	h.mounts = append([]string{
		"24 0 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro",
		"20 24 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8156000k,nr_inodes=2039000,mode=755",
		"22 20 0:23 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw",
		"23 24 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1634000k,mode=755",
		// A build sandbox's private devpts, limited to 32 ptys.
		"95 24 0:61 / /srv/ci/sandbox/dev/pts rw,nosuid,noexec,relatime shared:40 - devpts devpts rw,mode=620,ptmxmode=666,max=32",
		// The same instance bound into the job's view: one instance, one row.
		"96 24 0:61 / /srv/ci/job-4711/dev/pts rw,nosuid,noexec,relatime shared:40 - devpts devpts rw,mode=620,ptmxmode=666,max=32",
	}, append(pseudoMounts, v1Mounts...)...)
	for i := 0; i < 32; i++ {
		h.rootF[fmt.Sprintf("srv/ci/sandbox/dev/pts/%d", i)] = ""
	}
	h.rootF["srv/ci/sandbox/dev/pts/ptmx"] = ""

	mysql := []string{hex64("mysql-1"), hex64("mysql-2"), hex64("mysql-3")}
	envoy := hex64("envoy")
	h.procs = append(h.procs,
		proc{pid: 1020, comm: "dockerd", threads: 24, cgroup: v1CgroupFile("/system.slice/docker.service"),
			fds: []string{"anon_inode:[eventpoll]", "socket:[3101]"}, fdinfo: map[int]string{0: epollInfo(4, 2)}},
		proc{pid: 1040, comm: "containerd", threads: 14, cgroup: v1CgroupFile("/system.slice/containerd.service")},
		// Three MySQL servers hold 3 x 21760 AIO events; a fourth asks
		// for more than the 256 left.
		proc{pid: 3101, comm: "mysqld", uid: 999, threads: 38, mntns: 4026532401, cgroup: v1CgroupFile("/docker/" + mysql[0])},
		proc{pid: 3342, comm: "mysqld", uid: 999, threads: 38, mntns: 4026532411, cgroup: v1CgroupFile("/docker/" + mysql[1])},
		proc{pid: 3590, comm: "mysqld", uid: 999, threads: 38, mntns: 4026532421, cgroup: v1CgroupFile("/docker/" + mysql[2])},
		// envoy as uid 101 holds 1990 of the 2048 epoll watches.
		proc{pid: 4410, comm: "envoy", uid: 101, threads: 9, mntns: 4026532431, cgroup: v1CgroupFile("/docker/" + envoy),
			fds:    []string{"anon_inode:[eventpoll]", "anon_inode:[eventpoll]", "socket:[5120]"},
			fdinfo: map[int]string{0: epollInfo(10, 1500), 1: epollInfo(1510, 490)}},
		proc{pid: 4415, comm: "envoy-hot-resta", uid: 101, threads: 1, mntns: 4026532431, cgroup: v1CgroupFile("/docker/" + envoy),
			fds: []string{"anon_inode:[eventpoll]"}, fdinfo: map[int]string{0: epollInfo(3, 2)}},
	)
	// inspektor-gadget leaking one fanotify group per runc it watches
	// (inspektor-gadget#2967): 128 of 128.
	ig := proc{pid: 5120, comm: "ig", threads: 12, cgroup: v1CgroupFile("/system.slice/ig.service"), fdinfo: map[int]string{}}
	for i := 0; i < 128; i++ {
		ig.fds = append(ig.fds, "anon_inode:[fanotify]")
		ig.fdinfo[i] = fanotifyInfo(0x9000 + i)
	}
	h.procs = append(h.procs, ig)

	h.inventory = attrib.NewInventory()
	h.inventory.Sources = []attrib.Source{{Runtime: "docker", Endpoint: "unix:///var/run/docker.sock", Reached: true, Containers: 4}}
	for i, id := range mysql {
		h.inventory.Containers[id] = &attrib.Container{ID: id, Name: fmt.Sprintf("mysql-%d", i+1), Image: "mysql:8.0", Runtime: "docker", State: "running", Live: true}
	}
	h.inventory.Containers[envoy] = &attrib.Container{ID: envoy, Name: "edge-proxy", Image: "envoyproxy/envoy:v1.29", Runtime: "docker", State: "running", Live: true}

	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 13107200, BlocksFree: 9437184, BlocksAvail: 8912896, Files: 3276800, FilesFree: 3000000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 2039000, BlocksFree: 2039000, BlocksAvail: 2039000, Files: 2039000, FilesFree: 2038500}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 2039000, BlocksFree: 2039000, BlocksAvail: 2039000, Files: 2039000, FilesFree: 2038999}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 408500, BlocksFree: 406000, BlocksAvail: 406000, Files: 2039000, FilesFree: 2038200}
	h.readme = "# devices-exhausted\n\nA Debian 12 docker host (kernel 6.1) with every limit of the devices family at its end. " +
		"kernel.pty.nr is 3071 of kernel.pty.max 4096 less kernel.pty.reserve 1024, so `docker exec -it` fails with " +
		"\"open /dev/ptmx: no space left on device\" while the host's own /dev/pts may still take the reserve; a build " +
		"sandbox's private devpts at /srv/ci/sandbox/dev/pts (bound again at /srv/ci/job-4711/dev/pts) holds 32 ptys " +
		"of its max=32. Three MySQL containers reserved 65280 of fs.aio-max-nr 65536 AIO events, so a fourth fails " +
		"with \"InnoDB: io_setup() failed with EAGAIN\" (the holders have /[aio] mappings, which enospc does not read). " +
		"The edge-proxy envoy, uid 101, holds 1990 epoll watches of fs.epoll.max_user_watches, scaled down to 2048 " +
		"from this lab machine's 5491511. inspektor-gadget (ig, uid 0) leaked 128 fanotify groups of " +
		"fs.fanotify.max_user_groups 128 (inspektor-gadget#2967: \"fanotify: init error, too many open files\"), each " +
		"with one mark of max_user_marks 205039. The limits are this lab machine's but for epoll.\n"
	h.write()
}
