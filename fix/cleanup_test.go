package fix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/host"
)

// cgroupTree makes dirs (host paths) under a root and a cgroup.procs file
// in each of files.
func cgroupTree(t *testing.T, dirs, files []string) (*host.Host, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		os.MkdirAll(filepath.Join(root, f), 0o755)
		os.WriteFile(filepath.Join(root, f, "cgroup.procs"), nil, 0o644)
	}
	return host.New(filepath.Join(root, "proc"), filepath.Join(root, "sys"), root), root
}

// The leaked cgroup goes at its exact path, in every hierarchy on v1, and
// never a same-named empty cgroup in another subtree.
func TestRemoveCgroupExactPath(t *testing.T) {
	scope := "docker-" + cid('a') + ".scope"
	for _, tc := range []struct {
		name        string
		hierarchies []string // directories with a cgroup.procs of their own
		dirs        []string
		leaked      string
		gone, left  []string
	}{{
		name:        "v2",
		hierarchies: []string{"/sys/fs/cgroup", "/sys/fs/cgroup/system.slice", "/sys/fs/cgroup/user.slice", "/sys/fs/cgroup/kubepods.slice"},
		dirs: []string{"/sys/fs/cgroup/system.slice/" + scope + "/init", "/sys/fs/cgroup/user.slice/" + scope,
			"/sys/fs/cgroup/kubepods.slice/" + scope, "/sys/fs/cgroup/" + scope},
		leaked: "/sys/fs/cgroup/system.slice/" + scope,
		gone:   []string{"/sys/fs/cgroup/system.slice/" + scope},
		left:   []string{"/sys/fs/cgroup/user.slice/" + scope, "/sys/fs/cgroup/kubepods.slice/" + scope, "/sys/fs/cgroup/" + scope},
	}, {
		name:        "v1",
		hierarchies: []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"},
		dirs: []string{"/sys/fs/cgroup/memory/docker/" + cid('a'), "/sys/fs/cgroup/pids/docker/" + cid('a'),
			"/sys/fs/cgroup/unified/docker/" + cid('a'), "/sys/fs/cgroup/pids/other/docker/" + cid('a'),
			"/sys/fs/cgroup/memory/docker/docker/" + cid('a')},
		leaked: "/sys/fs/cgroup/memory/docker/" + cid('a'),
		gone: []string{"/sys/fs/cgroup/memory/docker/" + cid('a'), "/sys/fs/cgroup/pids/docker/" + cid('a'),
			"/sys/fs/cgroup/unified/docker/" + cid('a')},
		left: []string{"/sys/fs/cgroup/pids/other/docker/" + cid('a'), "/sys/fs/cgroup/memory/docker/docker/" + cid('a')},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h, root := cgroupTree(t, tc.dirs, tc.hierarchies)
			e := removeCgroupEverywhere(h, tc.leaked)
			if e.State != StateRemoved {
				t.Errorf("%+v", e)
			}
			for _, p := range tc.gone {
				if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
					t.Errorf("%s left", p)
				}
			}
			for _, p := range tc.left {
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s removed: same name, another cgroup", p)
				}
			}
		})
	}
	h, _ := cgroupTree(t, []string{"/sys/fs/cgroup/a"}, []string{"/sys/fs/cgroup"})
	for _, p := range []string{"/sys/fs/cgroup/a/../a", "/sys/fs/cgroupx/a", "/etc"} {
		if e := removeCgroupEverywhere(h, p); e.State != StateSkipped || !strings.Contains(e.Note, "not below") {
			t.Errorf("%s: %+v", p, e)
		}
	}
}
