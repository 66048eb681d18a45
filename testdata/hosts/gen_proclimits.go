package main

import (
	"fmt"
	"strings"
)

// limitsFile is /proc/PID/limits with the given soft and hard nproc and
// nofile.
func limitsFile(nproc, nofile int) string {
	return fmt.Sprintf(`Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max processes             %-20d %-20d processes 
Max open files            %-20d %-20d files     
`, nproc, nproc, nofile, nofile*4)
}

// mapsFile is a /proc/PID/maps of n mappings.
func mapsFile(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "7f%010x-7f%010x r--p 00000000 fd:01 %d /usr/share/elasticsearch/data/seg%d\n", i*4096, i*4096+4096, 1000+i, i)
	}
	return b.String()
}

// procLimits: a CI runner uid near its RLIMIT_NPROC, nginx at its
// RLIMIT_NOFILE and Elasticsearch at vm.max_map_count. Scaled down: nginx
// has a soft limit of 256 open files, the host a vm.max_map_count of 2000
// (65530 by default), so that the tree stays small.
func procLimits() {
	h := newHost("proc-limits", "5.15.0-91-generic")
	h.sysctl["vm/max_map_count"] = "2000"
	h.basics()
	h.files["keys"] = ""
	h.files["key-users"] = ""
	h.files["cgroups"] = cgroupsFile(60)
	h.mounts = append([]string{
		"24 0 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
	}, append(pseudoMounts, v1Mounts...)...)
	var nginxFDs []string
	for i := 0; i < 250; i++ {
		nginxFDs = append(nginxFDs, fmt.Sprintf("socket:[%d]", 70000+i))
	}
	h.procs = append(h.procs,
		proc{pid: 3100, comm: "gitlab-runner", uid: 1500, threads: 3400, cgroup: v1CgroupFile("/system.slice/gitlab-runner.service"),
			files: map[string]string{"limits": limitsFile(4096, 1024), "maps": mapsFile(40)}, vmSizeKB: 2100000},
		proc{pid: 3200, comm: "bash", uid: 1500, threads: 1, cgroup: v1CgroupFile("/system.slice/gitlab-runner.service"),
			files: map[string]string{"limits": limitsFile(4096, 1024), "maps": mapsFile(20)}, vmSizeKB: 9000},
		proc{pid: 4100, comm: "nginx", uid: 33, threads: 1, cgroup: v1CgroupFile("/system.slice/nginx.service"), fds: nginxFDs,
			files: map[string]string{"limits": limitsFile(256, 256), "maps": mapsFile(60)}, vmSizeKB: 60000},
		proc{pid: 5100, comm: "java", uid: 1000, threads: 80, cgroup: v1CgroupFile("/system.slice/elasticsearch.service"),
			files: map[string]string{"limits": limitsFile(4096, 65535), "maps": mapsFile(1990)}, vmSizeKB: 9400000},
	)
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 10480385, BlocksFree: 6200000, BlocksAvail: 6200000, Files: 2621440, FilesFree: 2500000}
	h.readme = "# proc-limits\n\nPer-process limits: uid 1500 (a CI runner) has 3401 tasks against RLIMIT_NPROC 4096; nginx holds 250 of its 256 open files; Elasticsearch's java has 1990 mappings against vm.max_map_count=2000. Scaled down: a soft nofile of 256 and a max_map_count of 2000 keep the tree small.\n"
	h.write()
}
