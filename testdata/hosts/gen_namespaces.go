package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The initial namespaces of the kinds generate.go does not write (user
// and mnt are initUserNS and initMntNS there).
var initOtherNS = map[string]uint64{
	"ipc": 4026531839, "uts": 4026531838, "pid": 4026531836, "cgroup": 4026531835, "time": 4026531834, "net": 4026531992,
}

// usernsExhausted: a GitLab CI runner (uid 1001) runs its jobs in bwrap
// sandboxes (--unshare-user --unshare-pid --unshare-net --unshare-uts
// --unshare-cgroup: user, mount, pid, net, uts and cgroup namespaces
// each). Jobs killed on timeout leave their sandboxes behind, and
// with a rootless podman's pause process they hold all 32 user namespaces
// the host allows per user: the next job fails with "bwrap: Creating new
// namespace failed: No space left on device". Scaled down: the host's
// user.max_user_namespaces is 32 (28633 is the value docker's rootless
// documentation suggests); the other kinds keep this lab machine's default,
// 96365. root's `ip netns add vpn` holds a network namespace through a bind
// mount only.
func usernsExhausted() {
	h := newHost("userns-exhausted", "6.8.0-45-generic")
	for _, k := range []string{"user", "mnt", "ipc", "net", "pid", "uts", "cgroup", "time"} {
		h.sysctl["user/max_"+k+"_namespaces"] = "96365"
	}
	h.sysctl["user/max_user_namespaces"] = "32"
	// The other families' files, with this lab machine's values: nothing
	// else is near a limit here.
	for k, v := range map[string]string{
		"fs/aio-nr": "0", "fs/aio-max-nr": "65536", "fs/epoll/max_user_watches": "5491511",
		"fs/fanotify/max_user_groups": "128", "fs/fanotify/max_user_marks": "205039",
		"kernel/pty/nr": "8", "kernel/pty/max": "4096", "kernel/pty/reserve": "1024",
		"fs/mqueue/queues_max": "256", "fs/mqueue/msg_max": "10", "fs/mqueue/msgsize_max": "8192",
		"kernel/msgmni": "32000", "kernel/sem": "32000\t1024000000\t500\t32000", "kernel/shmmni": "4096",
		"kernel/shmall": "18446744073692774399", "kernel/shmmax": "18446744073692774399",
	} {
		h.sysctl[k] = v
	}
	h.files["sysvipc/msg"] = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n"
	h.files["sysvipc/sem"] = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
	h.files["sysvipc/shm"] = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"
	h.basics()
	h.files["keys"] = ""
	h.files["key-users"] = ""
	h.files["cgroups"] = cgroupsFile(90)
	h.mounts = append([]string{
		"24 0 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
		"23 24 0:21 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1620000k,mode=755",
		"610 23 0:22 / /run/netns rw,nosuid,nodev,noexec,relatime shared:310 - tmpfs tmpfs rw,size=1620000k,mode=755",
		"611 610 0:4 net:[4026533101] /run/netns/vpn rw shared:311 - nsfs nsfs rw",
	}, append(pseudoMounts, v1Mounts...)...)
	runner := v1CgroupFile("/system.slice/gitlab-runner.service")
	h.procs = append(h.procs,
		proc{pid: 2100, comm: "gitlab-runner", uid: 1001, threads: 14, cgroup: runner},
	)
	// Each leaked sandbox: bwrap as the sandbox's pid 1 and the job's
	// shell, in namespaces of their own. bwrap maps the uid to itself.
	others := map[int]map[string]uint64{}
	const sandboxes = 31
	for i := 0; i < sandboxes; i++ {
		base := uint64(4026532400 + i*8)
		ns := map[string]uint64{"uts": base + 3, "pid": base + 4, "net": base + 5, "cgroup": base + 6}
		for j, comm := range []string{"bwrap", "sh"} {
			pid := 3100 + i*10 + j
			h.procs = append(h.procs, proc{pid: pid, comm: comm, uid: 1001, threads: 1, userns: base, mntns: base + 1, cgroup: runner,
				files: map[string]string{"uid_map": "      1001       1001          1\n"}})
			others[pid] = ns
		}
	}
	// A rootless podman's pause process keeps its user namespace (root
	// mapped to uid 1001, subuids above) and a mount namespace.
	h.procs = append(h.procs, proc{pid: 2600, comm: "catatonit", uid: 1001, threads: 1, userns: 4026532390, mntns: 4026532391,
		cgroup: v1CgroupFile("/user.slice/user-1001.slice/user@1001.service/user.slice/podman-pause-5a1f0c3e.scope"),
		files:  map[string]string{"uid_map": "         0       1001          1\n         1     100000      65536\n"}})
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 10480385, BlocksFree: 7100000, BlocksAvail: 7100000, Files: 2621440, FilesFree: 2480000}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 405000, BlocksFree: 404000, BlocksAvail: 404000, Files: 2025000, FilesFree: 2024000}
	h.statfs["/run/netns"] = statfs{BlockSize: 4096, Blocks: 405000, BlocksFree: 405000, BlocksAvail: 405000, Files: 2025000, FilesFree: 2024999}
	h.readme = "# userns-exhausted\n\nA GitLab CI runner (uid 1001) runs its jobs in bwrap sandboxes (their own user, mount, pid, net, uts and cgroup namespaces); jobs killed on timeout left 31 sandboxes behind (bwrap and the job's sh each), and a rootless podman pause process (catatonit) holds one more user namespace: uid 1001 holds 32 of user.max_user_namespaces=32 and the next job fails with \"bwrap: Creating new namespace failed: No space left on device\". Scaled down: 32 stands for the 28633 docker's rootless documentation suggests; the other user.max_*_namespaces keep this lab machine's default, 96365, and are far from full. root's `ip netns add vpn` holds a network namespace through its bind mount in /run/netns only. The namespaces' own limits inside the sandboxes cannot be read from a fixture (they are read with nsenter on a live host): those rows are unknown.\n"
	h.write()

	// generate.go writes the user and mnt links; the other kinds here.
	for _, pr := range h.procs {
		for kind, ino := range initOtherNS {
			if v, ok := others[pr.pid][kind]; ok {
				ino = v
			}
			must(os.Symlink(fmt.Sprintf("%s:[%d]", kind, ino), filepath.Join(h.dir, "proc", fmt.Sprint(pr.pid), "ns", kind)))
		}
	}
}
