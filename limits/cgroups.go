package limits

// Cgroup ids, hierarchy limits and dying cgroups (Documentation/admin-guide/cgroup-v2.rst,
// cgroup-v1/memory.rst).
//
// Every memory cgroup takes an id from a 16-bit space (MEM_CGROUP_ID_MAX,
// 65535) that the kernel also stores in swap records. A removed cgroup keeps
// its id while it still owns charged pages (page cache, kernel memory): it
// is "dying", invisible in /sys/fs/cgroup yet counted in /proc/cgroups.
// When ids run out, mkdir in the memory hierarchy fails with ENOSPC:
//
//	mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod...: no space left on device
//
// Kernels before 4.3 leaked ids for good once kmem accounting was enabled on
// a cgroup (runc and kubelet enabled it), which is why nodes of that era
// needed cgroup.memory=nokmem or runc built with the nokmem tag.
//
// cgroup v2 adds per-subtree limits: cgroup.max.descendants and
// cgroup.max.depth; past them mkdir fails with EAGAIN, "resource temporarily
// unavailable". nr_dying_descendants in cgroup.stat counts dying cgroups.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"

	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits/clue"
)

// memcgIDMax is the number of memory cgroup ids (MEM_CGROUP_ID_MAX).
const memcgIDMax = 65535

// The IDs of this file's limits.
const (
	Cgroups      ID = "cgroups"
	CgroupsDying ID = "cgroups.dying"
)

var cgroupsFamily = Family{
	Name: "cgroups",
	Limits: []Limit{
		{
			ID:    Cgroups,
			Clues: cgroupsClues,
			Title: "cgroup ids and hierarchy limits",
			Unit:  "cgroups",
			Doc: "Memory cgroup ids in use (live and dying) against the kernel's 65535, and, on cgroup v2, " +
				"descendants and depth of subtrees with cgroup.max.descendants or cgroup.max.depth set.",
			Signatures: []*Signature{
				NewSignature(`(?i)mkdir \S*/sys/fs/cgroup/\S*: no space left on device`),
				NewSignature(`(?i)failed to create (container|pod) cgroup.*no space left on device`),
				NewSignature(`(?i)mkdir \S*/sys/fs/cgroup/\S*: resource temporarily unavailable`),
				NewSignature(`(?i)create directory\W+/sys/fs/cgroup/\S*.*(no space left on device|resource temporarily unavailable)`),
			},
			Remedy: cgroupsRemedy,
		},
		{
			ID:    CgroupsDying,
			Clues: cgroupsDyingClues,
			Title: "dying memory cgroups",
			Unit:  "cgroups",
			Doc: "Removed memory cgroups that still hold charged memory and so keep their id. Thousands of " +
				"them mean container churn outpaces reclaim, or on kernels before 4.3 with kmem accounting, a leak.",
			Signatures: []*Signature{
				NewSignature(`(?i)mkdir \S*/sys/fs/cgroup/memory/\S*: no space left on device`),
				NewSignature(`(?i)create directory\W+/sys/fs/cgroup/memory/\S*.*no space left on device`),
			},
			Remedy: dyingRemedy,
		},
	},
	Read: readCgroups,
}

// cgroupHierarchy is a mounted cgroup hierarchy.
type cgroupHierarchy struct {
	MountPoint  string
	V2          bool
	Controllers []string
}

func (c cgroupHierarchy) has(ctrl string) bool {
	for _, x := range c.Controllers {
		if x == ctrl {
			return true
		}
	}
	return false
}

// cgroupHierarchies lists the host's cgroup mounts, one per hierarchy.
func cgroupHierarchies(env *Env, mounts []Mount) []cgroupHierarchy {
	var out []cgroupHierarchy
	seen := map[string]bool{}
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(m.Super, ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "noprefix", "xattr", "cpuset_v2_mode", "favordynmods":
					continue
				}
				if strings.HasPrefix(o, "release_agent=") {
					continue
				}
				ctrls = append(ctrls, o)
			}
			key := strings.Join(ctrls, ",")
			if seen[key] || m.Root != "/" {
				continue
			}
			seen[key] = true
			out = append(out, cgroupHierarchy{MountPoint: m.MountPoint, Controllers: ctrls})
		case "cgroup2":
			if seen["\x00v2"] || m.Root != "/" {
				continue
			}
			seen["\x00v2"] = true
			h := cgroupHierarchy{MountPoint: m.MountPoint, V2: true}
			if b, err := os.ReadFile(env.Host.RootPath(filepath.Join(m.MountPoint, "cgroup.controllers"))); err == nil {
				h.Controllers = strings.Fields(string(b))
			}
			out = append(out, h)
		}
	}
	return out
}

// walkCgroups calls fn for every cgroup directory under root (root
// included), with its path relative to root ("/" for root) and its depth.
func walkCgroups(root string, fn func(dir, rel string, depth int)) {
	walkCgroupFDs(context.TODO(), root, func(_ cgroupAt, rel []byte, depth int) bool {
		r := string(rel)
		fn(filepath.Join(root, r), r, depth)
		return true
	})
}

// readCgroupInt reads a cgroup file holding a number or "max" (returned as -1).
func readCgroupInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseFlatKeyed parses "key value" lines (cgroup.stat, pids.events).
func parseFlatKeyed(b []byte) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func readCgroups(env *Env) []Finding {
	var out []Finding
	fs, err := procfs.NewFS(env.Host.Proc)
	var sums []procfs.CgroupSummary
	if err == nil {
		sums, err = fs.CgroupSummarys()
	}
	if err != nil {
		return []Finding{
			unknown("cgroups", "memory cgroup ids", "cgroups", fmt.Errorf("read /proc/cgroups: %w", err)),
			unknown("cgroups.dying", "memory", "cgroups", fmt.Errorf("read /proc/cgroups: %w", err)),
		}
	}
	var mem *procfs.CgroupSummary
	for i := range sums {
		if sums[i].SubsysName == "memory" && sums[i].Enabled == 1 {
			mem = &sums[i]
		}
	}
	_, mountsErr := env.Mounts()
	hier := env.cgroupHierarchies()
	if mem != nil {
		ids := Finding{Limit: "cgroups", Scope: "memory cgroup ids", Used: int64(mem.Cgroups), Max: memcgIDMax, Unit: "cgroups", Consumers: []Consumer{}}
		out = append(out, ids, readDying(env, mem, hier, mountsErr))
	}
	for _, h := range hier {
		if h.V2 {
			out = append(out, readV2Limits(env, h)...)
		}
	}
	return out
}

// readDying counts dying memory cgroups: on v1, /proc/cgroups' count minus
// the directories that can still be seen; on v2, nr_dying_descendants.
func readDying(env *Env, mem *procfs.CgroupSummary, hier []cgroupHierarchy, mountsErr error) Finding {
	var memH *cgroupHierarchy
	for i := range hier {
		if (mem.Hierarchy != 0 && !hier[i].V2 && hier[i].has("memory")) || (mem.Hierarchy == 0 && hier[i].V2) {
			memH = &hier[i]
			break
		}
	}
	if memH == nil {
		err := fmt.Errorf("memory cgroup hierarchy is not mounted")
		if mountsErr != nil {
			err = mountsErr
		}
		return unknown("cgroups.dying", "memory", "cgroups", err)
	}
	root := env.Host.RootPath(memH.MountPoint)
	u := Finding{Limit: "cgroups.dying", Scope: memH.MountPoint, Max: memcgIDMax, Unit: "cgroups", Consumers: []Consumer{}}
	var visible int64
	if memH.V2 {
		b, err := os.ReadFile(filepath.Join(root, "cgroup.stat"))
		if err != nil {
			return unknown("cgroups.dying", memH.MountPoint, "cgroups", err)
		}
		u.Used = parseFlatKeyed(b)["nr_dying_descendants"]
		visible = int64(mem.Cgroups) - u.Used
	} else {
		t := env.cgroupTree(*memH)
		if t.Err != nil {
			return unknown("cgroups.dying", memH.MountPoint, "cgroups", t.Err)
		}
		visible = int64(t.Dirs)
		u.Used = max(int64(mem.Cgroups)-visible, 0)
	}
	// A leak signature whatever the id headroom: far more dying cgroups
	// than live ones.
	if u.Used >= 1000 && u.Used > 4*visible {
		u.floor = Warning
		u.Reason = fmt.Sprintf("%d dying memory cgroups against %d live ones", u.Used, visible)
	}
	if oldKmemKernel(env.Host.KernelRelease()) && !bootedNoKmem(env) && u.Used >= 100 && u.Used > visible {
		u.floor = Warning
		u.Reason = strings.TrimPrefix(u.Reason+"; kernel "+env.Host.KernelRelease()+" is older than 4.3 and not booted with cgroup.memory=nokmem: kmem accounting leaks memory cgroup ids", "; ")
	}
	return u
}

// bootedNoKmem reports whether the kernel command line turns kmem
// accounting off, the fix for the pre-4.3 id leak.
func bootedNoKmem(env *Env) bool {
	b, err := env.Host.ReadProc("cmdline")
	return err == nil && strings.Contains(" "+string(b)+" ", " cgroup.memory=nokmem")
}

// oldKmemKernel reports whether release is a kernel before 4.3.
func oldKmemKernel(release string) bool {
	maj, rest, ok := strings.Cut(release, ".")
	if !ok {
		return false
	}
	mn := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mn = rest[:i]
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mn)
	if err1 != nil || err2 != nil {
		return false
	}
	return a < 4 || (a == 4 && b < 3)
}

// readV2Limits reports every v2 cgroup with cgroup.max.descendants or
// cgroup.max.depth set. Its use is the kernel's own count, cgroup.stat's
// nr_descendants; the walk (shared with leak.cgroups) reads the two limit
// files of each cgroup and nothing else.
func readV2Limits(env *Env, h cgroupHierarchy) []Finding {
	var out []Finding
	t := env.cgroupTree(h)
	for _, l := range t.Limited {
		p := filepath.Join(h.MountPoint, l.Rel)
		if l.MaxDescendants >= 0 {
			u := Finding{Limit: "cgroups", Scope: p + " descendants", Used: l.Descendants, Max: l.MaxDescendants, Unit: "cgroups", Consumers: []Consumer{}, zeroIsFull: true}
			if l.Dying > 0 {
				u.Reason = fmt.Sprintf("%d more dying descendants", l.Dying)
			}
			out = append(out, u)
		}
		if l.MaxDepth >= 0 {
			out = append(out, Finding{Limit: "cgroups", Scope: p + " depth", Used: int64(l.Deepest), Max: l.MaxDepth, Unit: "levels", Consumers: []Consumer{}, zeroIsFull: true})
		}
	}
	if t.Err != nil {
		out = append(out, unknown("cgroups", h.MountPoint+" subtree limits", "cgroups", t.Err))
	}
	return out
}

func isUnder(rel, parent string) bool {
	if parent == "/" {
		return true
	}
	return rel == parent || strings.HasPrefix(rel, parent+"/")
}

func cgroupsRemedy(u Finding) []string {
	if u.Scope == "memory cgroup ids" {
		return []string{
			"most ids held by dying cgroups (cgroups.dying) are freed by reclaiming the page cache and slab they still hold: echo 3 > /proc/sys/vm/drop_caches (costly on a busy node)",
			"remove leaked container cgroups and exited containers",
			"on kernels before 4.3 only a reboot frees leaked ids: boot with cgroup.memory=nokmem, or use runc/kubelet built with the nokmem tag",
		}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.Scope, " descendants"), " depth")
	file := "cgroup.max.descendants"
	if strings.HasSuffix(u.Scope, " depth") {
		file = "cgroup.max.depth"
	}
	return []string{
		"raise the subtree limit: echo N > " + quote.Shell(base+"/"+file) + " (or max)",
		"remove empty cgroups left behind by exited containers in that subtree",
	}
}

func dyingRemedy(u Finding) []string {
	out := []string{
		"dying cgroups are freed when the page cache and slab objects charged to them are reclaimed: echo 3 > /proc/sys/vm/drop_caches on the node, at a quiet time",
		"slow the churn: fewer short-lived containers or pods writing files they leave in the page cache",
	}
	if bytes.Contains([]byte(u.Reason), []byte("older than 4.3")) {
		out = append(out, "this kernel leaks kmem-accounted ids until reboot: boot with cgroup.memory=nokmem or run runc and kubelet built with nokmem; upgrade the kernel")
	}
	return out
}

// cgroupsClues are the words and facts of an error message that point to cgroups (explain).
var cgroupsClues = []clue.Clue{
	{Errno: clue.EAGAIN | clue.ENOSPC, NotOp: clue.NamedCall, NotObj: clue.ObjCgroup, Prior: 0.12,
		Why: "mkdir in cgroupfs returns ENOSPC or EAGAIN at the cgroup limits"},

	{Words: []string{"cgroup.max.descendants", "cgroup.max.depth", "max.descendants"}, Prior: 0.9,
		Why: "the message names cgroup.max.descendants or max.depth"},
	{Errno: clue.EAGAIN, Op: clue.OpMkdir | clue.OpCreate, Obj: clue.ObjCgroup, Prior: 0.85,
		Why: "mkdir in cgroupfs returns EAGAIN at cgroup.max.descendants or max.depth (cgroup-v2.rst)"},
	{Errno: clue.ENOSPC, Op: clue.OpMkdir, Obj: clue.ObjCgroup, NotObj: clue.ObjCgCpuset, Prior: 0.62,
		Why: "mkdir in cgroupfs returns ENOSPC when the controller's 65535 ids run out; live cgroups hold them too"},
	{Errno: clue.ENOSPC, Obj: clue.ObjCgMemory, NotOp: clue.OpMkdir | clue.OpCgAttach | clue.OpWatch, Prior: 0.64,
		Why: "a memory cgroup could not be created: its 65535 ids, held by live cgroups where many pods run"},
}

// cgroupsDyingClues are the words and facts of an error message that point to cgroups.dying (explain).
var cgroupsDyingClues = []clue.Clue{
	{Errno: clue.ENOMEM, NotOp: clue.NamedCall, Prior: 0.25,
		Why: "mkdir of a memory cgroup returns ENOMEM when dying cgroups leak kmem (3.10 kernels)"},

	{Errno: clue.ENOSPC, Op: clue.OpMkdir, Obj: clue.ObjCgroup, NotObj: clue.ObjCgCpuset, NotOp: clue.OpWatch, Prior: 0.72,
		Why: "mkdir of a memory cgroup fails with ENOSPC when the 65535 ids run out; in the field's reports dying cgroups (kmem, page cache) hold most of them on hosts that churn containers"},
	{Errno: clue.ENOSPC, Obj: clue.ObjCgMemory, NotOp: clue.OpMkdir | clue.OpCgAttach | clue.OpWatch, Prior: 0.66,
		Why: "a memory cgroup's ids are held by dying cgroups on hosts that churn containers"},
	{Errno: clue.ENOMEM, Op: clue.OpMkdir, Obj: clue.ObjCgroup, Prior: 0.82,
		Why: "mkdir of a memory cgroup fails with ENOMEM on the 3.10 kernels of RHEL/CentOS 7 when kmem accounting of dying cgroups leaks (docker/for-linux#841, cgroup.memory=nokmem)"},
	{Words: []string{"slub: unable to allocate memory on node"}, Prior: 0.75,
		Why: "SLUB cannot grow a per-cgroup kmem cache: the kmem accounting of memory cgroups on old kernels, the same leak"},
	{Errno: clue.ENOSPC, Words: []string{"dying", "kmem", "zombie cgroup", "nr_dying_descendants"}, Prior: 0.86,
		Why: "the message points at dying cgroups or kmem accounting"},
}
