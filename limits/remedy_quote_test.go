package limits

import (
	"strings"
	"testing"
)

// TestRemediesQuoteTheHost checks that the commands remedies suggest take
// a host's path or name as one shell word, and leave an ordinary one as it
// is.
func TestRemediesQuoteTheHost(t *testing.T) {
	const evil = "/mnt/x;$(id)"
	tests := []struct {
		name   string
		remedy func(Finding) []string
		u      Finding
		want   []string
	}{
		{"disk", diskRemedy, Finding{Limit: "disk", Scope: evil + " (tmpfs tmpfs)", mountPoint: evil},
			[]string{`du -xh --max-depth=2 '/mnt/x;$(id)' | sort -h`}},
		{"disk of a mount point holding \" (\"", diskRemedy, Finding{Limit: "disk", Scope: "/mnt/a (b (tmpfs tmpfs)", mountPoint: "/mnt/a (b"},
			[]string{`du -xh --max-depth=2 '/mnt/a (b' | sort -h`}},
		{"disk, ordinary", diskRemedy, Finding{Limit: "disk", Scope: "/var/lib/docker (ext4 /dev/sda2)", mountPoint: "/var/lib/docker"},
			[]string{`du -xh --max-depth=2 /var/lib/docker | sort -h`}},
		{"disk, scope only", diskRemedy, Finding{Limit: "disk", Scope: "/run (tmpfs tmpfs)"},
			[]string{`du -xh --max-depth=2 /run | sort -h`}},
		{"a container's /dev/shm", diskRemedy, Finding{Limit: "disk", Scope: evil + " (tmpfs shm)", mountPoint: evil,
			Consumers: []Consumer{{Name: "/dev/shm of container", ContainerName: "web;reboot"}}},
			[]string{`mount -o remount,size=1g '/mnt/x;$(id)'`}},
		{"inodes", inodesRemedy, Finding{Limit: "inodes", Scope: evil + " (tmpfs tmpfs)", mountPoint: evil},
			[]string{`du -x --inodes --max-depth=3 '/mnt/x;$(id)' | sort -n`, `mount -o remount,nr_inodes=N '/mnt/x;$(id)'`}},
		{"ptys of a devpts", ptysRemedy, Finding{Limit: "ptys", Scope: "devpts " + evil, Max: 10},
			[]string{`| grep '/mnt/x;$(id)/' (`, `mount -o remount,max=20 '/mnt/x;$(id)'`}},
		{"pids of a cgroup", pidsRemedy, Finding{Limit: "pids", Scope: "/sys/fs/cgroup/it's"},
			[]string{`echo N > '/sys/fs/cgroup/it'\''s/pids.max',`}},
		{"cgroup descendants", cgroupsRemedy, Finding{Limit: "cgroups", Scope: "/sys/fs/cgroup/a b descendants"},
			[]string{`echo N > '/sys/fs/cgroup/a b/cgroup.max.descendants' (or max)`}},
		{"cgroup descendants, ordinary", cgroupsRemedy, Finding{Limit: "cgroups", Scope: "/sys/fs/cgroup/kubepods.slice descendants"},
			[]string{`echo N > /sys/fs/cgroup/kubepods.slice/cgroup.max.descendants (or max)`}},
		{"quota", quotaRemedy, Finding{Limit: "quota.inodes", Scope: "uid 1000 on " + evil},
			[]string{`find '/mnt/x;$(id)' -xdev -user 1000`, `xfs_quota -x -c 'limit ...' '/mnt/x;$(id)' (XFS)`}},
		{"bridge", bridgeRemedy, Finding{Limit: "bridge.ports", Scope: "bridge br$(id)"},
			[]string{`ip link show master 'br$(id)' and`}},
		{"ports", portsRemedy, Finding{Limit: "ports", Scope: "10.0.0.1 (host)", Consumers: []Consumer{{Name: "to [::1]:80", Count: 1}}},
			[]string{`ss -tan dst '[::1]:80'`}},
		{"nofile", nofileRemedy, Finding{Limit: "nofile", Scope: "pid 1;id (x)", Max: 1024},
			[]string{`--pid '1;id' (up to`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(tt.remedy(tt.u), "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %s in\n%s", w, got)
				}
			}
		})
	}
}
