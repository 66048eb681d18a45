package main

import (
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/fixture"
)

// quotaRecord is one id's quota on one filesystem in quota.json (the
// schema is fixture.Quotas): what quotactl(2) reports, served by the
// golden test through Host.QuotaFunc, as quotactl cannot run on a fixture
// tree.
type quotaRecord = host.Quota

// homeQuota: a shared Ubuntu 22.04 server where every user gets a 10 GB
// home (ext4 mounted with usrquota,grpquota) and runs rootless docker,
// which keeps its images and containers in ~/.local/share/docker
// (mikeizbicki/cmc-csci143#276, #459). uid 1000's home is at its 10 GiB
// hard limit: "ApplyLayer ... write ...: disk quota exceeded", while /home
// is 38% full. uid 1001 is over its 8 GiB soft limit with 4 days of grace
// left; uid 1002 has room; the users group (gid 100) has a 400 GiB limit.
func homeQuota() {
	h := newHost("home-quota", "5.15.0-91-generic")
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     4 3/3 2/1000000 40/25000000\n 1000:     3 3/3 3/200 120/20000\n"
	h.files["cgroups"] = cgroupsFile(80)
	h.mounts = append([]string{
		"24 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,discard,errors=remount-ro",
		"20 24 0:6 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8150000k,nr_inodes=2037500,mode=755",
		"22 20 0:20 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw",
		"23 24 0:21 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1632000k,mode=755",
		"90 24 8:17 / /home rw,relatime shared:30 - ext4 /dev/sdb1 rw,quota,usrquota,grpquota",
		"95 23 0:52 / /run/user/1000 rw,nosuid,nodev,relatime shared:40 - tmpfs tmpfs rw,size=1632000k,nr_inodes=408000,mode=700,uid=1000,gid=1000",
	}, append(pseudoMounts, v1Mounts...)...)
	h.procs = append(h.procs,
		proc{pid: 2101, comm: "rootlesskit", uid: 1000, threads: 9, cgroup: v1CgroupFile("/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service")},
		proc{pid: 2140, comm: "dockerd", uid: 1000, threads: 18, userns: 4026532601, mntns: 4026532602, cgroup: v1CgroupFile("/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service")},
		proc{pid: 2166, comm: "containerd", uid: 1000, threads: 11, userns: 4026532601, mntns: 4026532602, cgroup: v1CgroupFile("/user.slice/user-1000.slice/user@1000.service/app.slice/docker.service")},
		proc{pid: 3310, comm: "bash", uid: 1001, threads: 1, cgroup: v1CgroupFile("/user.slice/user-1001.slice/session-12.scope")},
	)
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 25600000, BlocksFree: 17000000, BlocksAvail: 15700000, Files: 6400000, FilesFree: 5900000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 2037500, BlocksFree: 2037500, BlocksAvail: 2037500, Files: 2037500, FilesFree: 2037000}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 2040000, BlocksFree: 2040000, BlocksAvail: 2040000, Files: 2040000, FilesFree: 2039999}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 408000, BlocksFree: 407000, BlocksAvail: 407000, Files: 2040000, FilesFree: 2039000}
	h.statfs["/run/user/1000"] = statfs{BlockSize: 4096, Blocks: 408000, BlocksFree: 407990, BlocksAvail: 407990, Files: 408000, FilesFree: 407960}
	// /home: 500 GiB, 38% used.
	h.statfs["/home"] = statfs{BlockSize: 4096, Blocks: 131072000, BlocksFree: 81264640, BlocksAvail: 74711040, Files: 32768000, FilesFree: 31900000}
	h.readme = "# home-quota\n\nA shared Ubuntu 22.04 server whose users each get a 10 GB home (mikeizbicki/cmc-csci143#459) on an ext4 /home mounted with usrquota,grpquota, and run rootless docker, which keeps its layers in ~/.local/share/docker (cmc-csci143#276): `docker build` fails with \"ApplyLayer ... write ...: disk quota exceeded\" while /home is 38% full. quota.json holds what quotactl(2) reports for /home, served by the golden test through Host.QuotaFunc: uid 1000 (rootlesskit, dockerd) uses all of its 10 GiB hard limit (10485760 KiB) and 212345 of 1000000 inodes; uid 1001 is over its 8 GiB soft limit with 4 days of grace left; uid 1002 has 3.1 GiB of 10 GiB; uid 0 has files but no limit; the users group (gid 100) has 65 GiB of 400 GiB.\n"
	h.write()

	const gib = 1 << 30
	clock := fixture.Clock
	quotas := fixture.Quotas{
		"/home": {
			{Type: "user", ID: 0, Bytes: 2254857830, Inodes: 48211},
			{Type: "user", ID: 1000, Bytes: 10 * gib, BytesHard: 10 * gib, Inodes: 212345, InodesHard: 1000000},
			{Type: "user", ID: 1001, Bytes: 9234179686, BytesSoft: 8 * gib, BytesHard: 10 * gib, BytesGrace: clock.Add(4 * 24 * time.Hour).Unix(), Inodes: 88120, InodesHard: 1000000},
			{Type: "user", ID: 1002, Bytes: 3328599654, BytesSoft: 8 * gib, BytesHard: 10 * gib, Inodes: 40277, InodesHard: 1000000},
			{Type: "group", ID: 100, Bytes: 65 * gib, BytesHard: 400 * gib, Inodes: 340742},
		},
	}
	b, err := json.MarshalIndent(quotas, "", "  ")
	must(err)
	writeFile(filepath.Join(h.dir, "quota.json"), string(b)+"\n")
}
