//go:build lab

package kernel

// cgroup limits: a cgroup v2 subtree limit (cgroup.max.descendants) hit for
// real, and dying memory cgroups (v1) made for real: removed cgroups that
// keep their id because page cache is still charged to them.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

const (
	unifiedRoot = "/sys/fs/cgroup/unified"
	memoryRoot  = "/sys/fs/cgroup/memory"
)

func requireCgroupMount(t *testing.T, dir, fstype string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("LAB CANNOT RUN %s: %s: %v", t.Name(), dir, err)
	}
	magic := map[string]int64{"cgroup2": unix.CGROUP2_SUPER_MAGIC, "cgroup": unix.CGROUP_SUPER_MAGIC}[fstype]
	if int64(st.Type) != magic {
		t.Fatalf("LAB CANNOT RUN %s: %s is not a %s mount (statfs type %#x)", t.Name(), dir, fstype, st.Type)
	}
}

func TestCgroupV2Descendants(t *testing.T) {
	requireCgroupMount(t, unifiedRoot, "cgroup2")
	const maxDesc = 5
	parent := filepath.Join(unifiedRoot, fmt.Sprintf("enospc-lab-%d", os.Getpid()))
	makeCgroup(t, parent)
	writeFile(t, filepath.Join(parent, "cgroup.max.descendants"), strconv.Itoa(maxDesc))

	var made int
	var lastErr error
	for i := 0; i < 10*maxDesc; i++ {
		if err := os.Mkdir(filepath.Join(parent, fmt.Sprintf("c%d", i)), 0o755); err != nil {
			lastErr = err
			break
		}
		made++
	}
	if lastErr == nil {
		t.Fatalf("made %d cgroups under cgroup.max.descendants=%d and never hit the limit", made, maxDesc)
	}
	t.Logf("made %d child cgroups, then: %v (%s)", made, lastErr, statusOf(errnoOf(lastErr)))
	if !errors.Is(lastErr, syscall.EAGAIN) {
		t.Fatalf("mkdir failed with %v, want EAGAIN", lastErr)
	}
	if made != maxDesc {
		t.Errorf("made %d children before EAGAIN, want %d", made, maxDesc)
	}
	out, err := exec.Command("mkdir", filepath.Join(parent, "one-more")).CombinedOutput()
	t.Logf("mkdir printed: %q (%v)", strings.TrimSpace(string(out)), err)
	if err == nil || !strings.Contains(string(out), "Resource temporarily unavailable") {
		t.Errorf("mkdir past the limit: %v %q, want Resource temporarily unavailable", err, out)
	}

	rep, code := labkit.RunCheck(t)
	scope := parent + " descendants"
	u := labkit.Find(t, rep, "cgroups", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("cgroups %q is %s, want critical", scope, u.Severity)
	}
	if u.Used != maxDesc || u.Max != maxDesc {
		t.Errorf("cgroups %q: used %d max %d, want %d of %d", scope, u.Used, u.Max, maxDesc, maxDesc)
	}
	if !strings.Contains(strings.Join(u.Remedy, "\n"), parent+"/cgroup.max.descendants") {
		t.Errorf("cgroups %q: remedy does not name %s/cgroup.max.descendants: %q", scope, parent, u.Remedy)
	}
	// Only the limited subtree is reported: its unlimited depth is not a row.
	for _, f := range rep.Findings {
		if f.Limit == "cgroups" && f.Scope == parent+" depth" {
			t.Errorf("unexpected depth row for a subtree without cgroup.max.depth: %s", describe(f))
		}
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
}

// memcgCount is the memory line's num_cgroups of /proc/cgroups: live and
// dying memory cgroups.
func memcgCount(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "memory" {
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("/proc/cgroups: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("LAB CANNOT RUN %s: no memory line in /proc/cgroups:\n%s", t.Name(), b)
	return 0
}

func TestDyingMemoryCgroups(t *testing.T) {
	requireCgroupMount(t, memoryRoot, "cgroup")
	const n = 50
	const fileSize = 256 << 10

	// Page cache on a disk filesystem: tmpfs pages are shmem, which would
	// also pin the cgroups but is not the churn pattern this limit is about.
	data, err := os.MkdirTemp("/var/tmp", "enospc-lab-dying-")
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: %v", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(data, &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		os.RemoveAll(data)
		t.Fatalf("LAB CANNOT RUN %s: %s must be on a disk filesystem (statfs type %#x, %v)", t.Name(), data, st.Type, err)
	}
	parent := filepath.Join(memoryRoot, fmt.Sprintf("enospc-lab-%d", os.Getpid()))
	// Cleanup runs last-registered first: the cgroups are removed, then the
	// files, whose uncharged pages free the dying cgroups.
	t.Cleanup(func() {
		if err := os.RemoveAll(data); err != nil {
			t.Errorf("CLEANUP FAILED: %v", err)
		}
	})
	makeCgroup(t, parent)

	before, _ := labkit.RunCheck(t)
	u0 := labkit.Find(t, before, "cgroups.dying", labkit.ScopeIs(memoryRoot))
	count0 := memcgCount(t)
	t.Logf("before: %s; /proc/cgroups memory %d", describe(u0), count0)

	sh := labkit.RequireTool(t, "sh")
	for i := 0; i < n; i++ {
		cg := filepath.Join(parent, fmt.Sprintf("c%02d", i))
		if err := os.Mkdir(cg, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", cg, err)
		}
		// A short-lived "container": joins the cgroup, writes a file, exits.
		cmd := exec.Command(sh, "-c", `echo $$ > "$1/cgroup.procs" && exec head -c "$3" /dev/urandom > "$2"`,
			"sh", cg, filepath.Join(data, fmt.Sprintf("f%02d", i)), strconv.Itoa(fileSize))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("writer in %s: %v: %s", cg, err, out)
		}
		if i == 0 {
			usage := readInt(t, filepath.Join(cg, "memory.usage_in_bytes"))
			if usage < fileSize {
				t.Fatalf("cgroup %s is charged %d bytes after its writer wrote %d: page cache is not charged to it", cg, usage, fileSize)
			}
		}
		if err := syscall.Rmdir(cg); err != nil {
			t.Fatalf("rmdir %s: %v", cg, err)
		}
	}
	count1 := memcgCount(t)
	after, _ := labkit.RunCheck(t)
	u1 := labkit.Find(t, after, "cgroups.dying", labkit.ScopeIs(memoryRoot))
	t.Logf("after %d cgroups written to and removed: %s; /proc/cgroups memory %d", n, describe(u1), count1)

	// Other dying cgroups on a shared machine come and go (reclaim frees
	// some, other tenants make some): ask for most of ours, not exactly n.
	if grown := count1 - count0; grown < n*8/10 {
		t.Fatalf("/proc/cgroups memory grew by %d, want about %d: the removed cgroups did not stay dying, the premise of this test", grown, n)
	}
	if grown := u1.Used - u0.Used; grown < n*8/10 || grown > count1-count0+n/2 {
		t.Errorf("cgroups.dying grew by %d (from %d to %d), want about %d (/proc/cgroups grew by %d)", grown, u0.Used, u1.Used, n, count1-count0)
	}
	if u1.Max != 65535 {
		t.Errorf("cgroups.dying max %d, want the memcg id space 65535", u1.Max)
	}
	// The severity follows the id headroom (used against 65535), so a few
	// dozen dying cgroups are ok. Exhausting the memcg id space would take
	// 65535 of them on a shared machine, where it would break every other
	// tenant's mkdir in the memory hierarchy: this test does not do that.
	if u1.Severity != limits.OK {
		t.Errorf("cgroups.dying is %s with %d of %d, want ok", u1.Severity, u1.Used, u1.Max)
	}
	ids := labkit.Find(t, after, "cgroups", labkit.ScopeIs("memory cgroup ids"))
	if absDiff(ids.Used, count1) > n/5 {
		t.Errorf("cgroups memory cgroup ids used %d, /proc/cgroups says %d", ids.Used, count1)
	}

	// Uncharging the page cache frees the dying cgroups: the row comes back
	// down (bounded wait; pages go when the files are deleted).
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	ok := labkit.WaitFor(10*time.Second, func() bool { return memcgCount(t) <= count1-n*8/10 })
	t.Logf("files deleted: /proc/cgroups memory %d (freed: %v)", memcgCount(t), ok)
	if !ok {
		t.Errorf("deleting the files did not free the dying cgroups: /proc/cgroups memory %d, was %d with them and %d before", memcgCount(t), count1, count0)
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
