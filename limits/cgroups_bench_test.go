package limits

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// benchCgroupParent makes n cgroups in one cgroup of a private parent of
// the hierarchy mounted at mnt: all but one in a hundred named like the
// bad night's (cgNNNNN), the others by a container id (the docker
// --cgroup-parent shape), empty, so that leak.cgroups has candidates to
// read. Everything is removed when b ends, deepest first.
func benchCgroupParent(b *testing.B, mnt string, n int) string {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("making cgroups needs root")
	}
	if _, err := os.Stat(filepath.Join(mnt, "cgroup.procs")); err != nil {
		b.Skipf("no cgroup hierarchy at %s", mnt)
	}
	parent := filepath.Join(mnt, fmt.Sprintf("enospc-bench-%d", os.Getpid()))
	var made []string
	b.Cleanup(func() {
		slices.Reverse(made)
		for _, d := range made {
			if err := os.Remove(d); err != nil {
				b.Errorf("remove %s: %v", d, err)
			}
		}
	})
	mk := func(d string) {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
		made = append(made, d)
	}
	mk(parent)
	// One level more, so that their paths from the private parent are
	// "/night/cgNNNNN" as the bad night's are from the hierarchy's root:
	// two components, which might be containerd's "/<namespace>/<id>".
	night := filepath.Join(parent, "night")
	mk(night)
	for i := range n {
		name := fmt.Sprintf("cg%05d", i)
		if i%100 == 99 {
			name = fmt.Sprintf("%064x", i)
		}
		mk(filepath.Join(night, name))
	}
	return parent
}

// benchCgroupEnv is an Env for which the hierarchy mounted at mnt is the
// private parent alone, so that a walk sees the benchmark's cgroups and
// nothing else of the host's. The attributor is made once: its cost is
// the host's processes', not the cgroups'.
func benchCgroupEnv(c *census.Census, a *Attributor, parent string, v2 bool) *Env {
	env := &Env{Ctx: context.Background(), Host: host.New("/proc", "/sys", "/"), Census: c, Live: true, Root: true, Thresholds: DefaultThresholds,
		Attribution: func() *Attributor { return a }}
	h := cgroupHierarchy{MountPoint: parent, V2: v2}
	if !v2 {
		h.Controllers = []string{"memory"}
	}
	env.mountsOnce.Do(func() { env.cgroupHier = []cgroupHierarchy{h} })
	return env
}

// BenchmarkCgroupFamilies reads the cgroups and leak.cgroups families over
// n empty cgroups under one parent, the bad night's shape, in a v1 memory
// hierarchy and in a v2 one (where cgroup.max.* are read too):
//
//	sudo go test -run '^$' -bench CgroupFamilies -benchmem ./limits/
func BenchmarkCgroupFamilies(b *testing.B) {
	c, err := census.Take(context.Background(), host.New("/proc", "/sys", "/"), census.Options{Live: true})
	if err != nil {
		b.Fatal(err)
	}
	a := NewAttributor(c, nil)
	for _, hier := range []struct {
		name, mnt string
		v2        bool
	}{
		{"v1-memory", "/sys/fs/cgroup/memory", false},
		{"v2", v2Mount(), true},
	} {
		for _, n := range []int{3000, 30000} {
			b.Run(fmt.Sprintf("%s/%d", hier.name, n), func(b *testing.B) {
				parent := benchCgroupParent(b, hier.mnt, n)
				if hier.v2 {
					// A limited subtree, so that its headroom is read.
					if err := os.WriteFile(filepath.Join(parent, "cgroup.max.descendants"), []byte("50000"), 0); err != nil {
						b.Fatal(err)
					}
				}
				mem := &procfs.CgroupSummary{SubsysName: "memory", Cgroups: n + 2, Enabled: 1}
				if !hier.v2 {
					mem.Hierarchy = 1
				}
				for b.Loop() {
					env := benchCgroupEnv(c, a, parent, hier.v2)
					hs := env.cgroupHierarchies()
					rows := []Finding{readDying(env, mem, hs, nil)}
					if hier.v2 {
						rows = append(rows, readV2Limits(env, hs[0])...)
					}
					leak := readLeakedCgroups(env)
					// No runtime is asked: the container-named cgroups
					// are found, and left undecided.
					if want := fmt.Sprintf("%d empty container cgroups", n/100); len(leak) != 1 || !strings.Contains(leak[0].Reason, want) {
						b.Fatalf("leak.cgroups: %+v, want %q", leak, want)
					}
					rows = append(rows, leak...)
					if len(rows) == 0 {
						b.Fatal("no rows")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+2)/1000, "µs/cgroup")
			})
		}
	}
}

// v2Mount is where the unified hierarchy is mounted: /sys/fs/cgroup on a
// v2 host, /sys/fs/cgroup/unified on a hybrid one.
func v2Mount() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 8 && slices.Contains(f, "cgroup2") && f[3] == "/" {
				return f[4]
			}
		}
	}
	return "/sys/fs/cgroup"
}
