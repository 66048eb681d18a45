package main

import (
	"fmt"
	"strings"
)

// ipcSemaphores: a CentOS 7 docker host on the devicemapper storage driver
// (moby/moby#33603, docker/for-linux#85) where docker will not start:
// "devicemapper: Can't set cookie dm_task_set_cookie failed", and dmsetup
// says "Limit for the maximum number of semaphores reached". The initial
// IPC namespace has RHEL 7's kernel.sem "250 32000 32 128": 119 of its 128
// semaphore sets are device-mapper udev cookies (keys 0x0d4dXXXX, root,
// one semaphore each) that udev never completed, and 9 are the accept
// mutexes of an Apache (uid 48) killed with kill -9, which runs no more.
// PostgreSQL (uid 26) holds one shared memory segment; two POSIX queues
// sit in /dev/mqueue. The other limits are the kernel's defaults.
func ipcSemaphores() {
	h := newHost("ipc-semaphores", "3.10.0-693.el7.x86_64")
	h.sysctl["kernel/shmmni"] = "4096"
	h.sysctl["kernel/shmall"] = "18446744073692774399"
	h.sysctl["kernel/sem"] = "250\t32000\t32\t128"
	h.sysctl["kernel/msgmni"] = "32000"
	h.sysctl["fs/mqueue/queues_max"] = "256"
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     4 3/3 2/1000000 40/25000000\n"
	h.files["cgroups"] = cgroupsFile(60)

	var sem strings.Builder
	sem.WriteString("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n")
	id := 0
	for i := 0; i < 119; i++ {
		// libdevmapper's cookie: 0x0D4D in the high half, a random base.
		key := int32(0x0D4D0000 | (0x1a2b+i*1031)&0xffff)
		fmt.Fprintf(&sem, "%10d %10d %5o %10d %5d %5d %5d %5d %10d %10d\n", key, id, 0600, 1, 0, 0, 0, 0, 1497000000+i*61, 1497000000+i*61)
		id += 32769
	}
	for i := 0; i < 9; i++ {
		// Apache's mutexes: private keys, created by root, handed to
		// the User apache.
		fmt.Fprintf(&sem, "%10d %10d %5o %10d %5d %5d %5d %5d %10d %10d\n", 0, id, 0600, 1, 48, 48, 0, 0, 1497400000, 1497300000)
		id += 32769
	}
	h.files["sysvipc/sem"] = sem.String()
	h.files["sysvipc/shm"] = "       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime\n" +
		"   5432001          0  1600         56  1480  1533      6    26    26    26    26 1497410000 1497410000 1497000100\n"
	h.files["sysvipc/msg"] = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n"
	h.rootF["dev/mqueue/jobs.in"] = "QSIZE:0          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"
	h.rootF["dev/mqueue/jobs.out"] = "QSIZE:128        NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"

	h.mounts = append([]string{
		"24 0 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota",
		"20 24 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=8118700k,nr_inodes=2029675,mode=755",
		"22 20 0:18 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw",
		"23 24 0:19 / /run rw,nosuid,nodev shared:22 - tmpfs tmpfs rw,mode=755",
		"90 24 253:2 / /var/lib/docker rw,relatime shared:30 - xfs /dev/mapper/centos-docker rw,attr2,inode64,noquota",
	}, append(pseudoMounts, v1Mounts...)...)
	h.procs = append(h.procs,
		proc{pid: 1011, comm: "dockerd-current", threads: 24, cgroup: v1CgroupFile("/system.slice/docker.service")},
		proc{pid: 1480, comm: "postgres", uid: 26, threads: 1, cgroup: v1CgroupFile("/system.slice/postgresql.service")},
		proc{pid: 1533, comm: "postgres", uid: 26, threads: 1, cgroup: v1CgroupFile("/system.slice/postgresql.service")},
	)
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 13100800, BlocksFree: 9800000, BlocksAvail: 9800000, Files: 52428800, FilesFree: 52200000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2029675, BlocksAvail: 2029675, Files: 2029675, FilesFree: 2029300}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2029675, BlocksAvail: 2029675, Files: 2029675, FilesFree: 2029674}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 2029675, BlocksFree: 2027000, BlocksAvail: 2027000, Files: 2029675, FilesFree: 2029000}
	h.statfs["/var/lib/docker"] = statfs{BlockSize: 4096, Blocks: 26214400, BlocksFree: 20000000, BlocksAvail: 20000000, Files: 104857600, FilesFree: 104800000}
	h.readme = "# ipc-semaphores\n\nA CentOS 7 docker host on the devicemapper storage driver (moby/moby#33603, docker/for-linux#85): docker fails with \"devicemapper: Can't set cookie dm_task_set_cookie failed\" and dmsetup with \"Limit for the maximum number of semaphores reached\" while the disks have room. The initial IPC namespace has RHEL 7's kernel.sem \"250 32000 32 128\" and all 128 semaphore sets in use: 119 device-mapper udev cookies (keys 0x0d4dXXXX, root) that udev never completed (dmsetup udevcomplete_all releases them) and 9 sets of uid 48 (apache), whose httpd was killed and runs no more. PostgreSQL (uid 26) holds one shared memory segment; /dev/mqueue holds two POSIX queues.\n"
	h.write()
}
