package limits

// leak.cgroups: cgroups of containers that no longer exist. A runtime
// removes a container's cgroups when it deletes the container; when it
// crashes in between, or the removal fails (EBUSY on a cgroup that still
// had a task, a systemd scope left behind), the directory stays. Each one
// keeps a cgroup id in every hierarchy and, with kernel memory accounting,
// its memory charged; enough of them and the 65535 memory cgroup ids run
// out ("mkdir /sys/fs/cgroup/memory/...: no space left on device").
//
// A container cgroup is leaked when it is named by a container id (the
// path shapes of package attrib), has no process in it or below it, and
// the runtime that made it answered and does not list that container.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	LeakCgroups ID = "leak.cgroups"
)

var leakCgroupsLimit = Limit{
	ID:    LeakCgroups,
	Clues: leakCgroupsClues,
	Title: "cgroups of containers that no longer exist",
	Unit:  "cgroups",
	Doc: "Empty cgroup directories named by a container id that no runtime lists any more, against the " +
		"65535 memory cgroup ids they help exhaust. Found by walking the memory hierarchy (v1) or the unified " +
		"one; the same directory is usually left in every other hierarchy too. A cgroup is only called " +
		"leaked when the runtime that made it answered.",
	Signatures: []*Signature{
		NewSignature(`(?i)mkdir \S*/sys/fs/cgroup/\S*: no space left on device`),
		NewSignature(`(?i)(failed to|unable to) (remove|delete|destroy) cgroup`),
	},
	Remedy: leakCgroupsRemedy,
}

// leakedCgroup is one container's leaked cgroup directories.
type leakedCgroup struct {
	ref   attrib.Ref
	paths []string
}

func readLeakedCgroups(env *Env) []Finding {
	h, ok := leakHierarchy(env.cgroupHierarchies())
	if !ok {
		return nil
	}
	a := env.attributor()
	inv := a.Inventory()
	u := Finding{Limit: "leak.cgroups", Scope: "host", Max: memcgIDMax, Unit: "cgroups"}
	leaked := map[string]*leakedCgroup{}
	// undecided counts empty container cgroups whose runtime did not
	// answer: without it, leaked cannot be told from stopped.
	undecided := map[string]bool{}
	// The walk of the hierarchy is shared with the cgroups family; it
	// keeps only the paths that may name a container. A container's
	// cgroup is decided as a whole: what is below it (a runtime's
	// sub-cgroups) is skipped.
	root := env.Host.RootPath(h.MountPoint)
	t := env.cgroupTree(h)
	walkErr := t.Err
	var decided []byte
	var start int32
	for i, end := range t.NamedEnd {
		relb := t.Named[start:end]
		start = end
		if i%256 == 0 && env.Ctx.Err() != nil {
			walkErr = env.Ctx.Err()
			break
		}
		if decided != nil && len(relb) > len(decided) && bytes.HasPrefix(relb, decided) && relb[len(decided)] == '/' {
			continue
		}
		if ns, id, ok := plainOnly(relb); ok && !a.plainListed(ns, id) {
			continue
		}
		rel := string(relb)
		r := a.parse(rel)
		if r.ID == "" || r.Conmon {
			continue
		}
		decided = relb
		if _, ok := inv.Lookup(r.ID); ok || a.HasProcesses(r.ID) || !cgroupEmpty(filepath.Join(root, rel)) {
			continue
		}
		if !runtimeAnswered(inv, r) {
			undecided[r.ID] = true
			continue
		}
		l := leaked[r.ID]
		if l == nil {
			l = &leakedCgroup{ref: r}
			leaked[r.ID] = l
		}
		l.paths = append(l.paths, filepath.Join(h.MountPoint, rel))
	}
	ids := make([]string, 0, len(leaked))
	for id := range leaked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var cs []Consumer
	for _, id := range ids {
		l := leaked[id]
		u.Used += int64(len(l.paths))
		c := Consumer{Name: l.paths[0], Container: id, Runtime: runtimeName(l.ref.Runtime), PodUID: l.ref.PodUID,
			QoS: l.ref.QoS, State: "gone", Count: int64(len(l.paths))}
		cs = append(cs, c)
	}
	u.Leaked = int64(len(ids))
	u.setConsumers(cs, topConsumers)
	if len(ids) > 0 {
		u.floor = Warning
		u.Reason = fmt.Sprintf("%d %s no runtime lists left empty cgroups under %s (and, as a rule, in every other hierarchy)", len(ids), pluralS(len(ids), "container"), h.MountPoint)
	}
	if len(undecided) > 0 {
		why := fmt.Sprintf("%d empty container cgroups whose runtime was not asked or did not answer: not counted", len(undecided))
		if inv.AnyFailed() {
			why = fmt.Sprintf("%d empty container cgroups whose runtime did not answer (see the notes): leaked or not is unknown", len(undecided))
			if len(ids) == 0 {
				u.Severity = Unknown
			}
		}
		u.Reason = strings.TrimPrefix(u.Reason+"; ", "; ") + why
	}
	if walkErr != nil {
		u.Reason = strings.TrimPrefix(u.Reason+"; ", "; ") + "incomplete: " + walkErr.Error()
		u.NeedsRoot = !env.Root
	}
	return []Finding{u}
}

// leakHierarchy is the one hierarchy walked for leaked container cgroups.
// A runtime makes a container's cgroup in every hierarchy, so one tells
// them all: the memory one, whose ids are the scarce ones (v1), else the
// unified one, else any.
func leakHierarchy(hs []cgroupHierarchy) (cgroupHierarchy, bool) {
	for _, h := range hs {
		if !h.V2 && h.has("memory") {
			return h, true
		}
	}
	for _, h := range hs {
		if h.V2 {
			return h, true
		}
	}
	if len(hs) > 0 {
		return hs[0], true
	}
	return cgroupHierarchy{}, false
}

// runtimeAnswered reports whether the runtime that made a cgroup of this
// shape answered, so that its not listing the container means something.
func runtimeAnswered(inv *attrib.Inventory, r attrib.Ref) bool {
	if inv == nil {
		return false
	}
	switch r.Runtime {
	case "docker":
		return inv.Reached("docker")
	case "containerd", "cri-containerd":
		return inv.Reached("containerd")
	case "cri-o":
		return inv.Reached("cri-o")
	case "":
		// A bare id (kubepods on cgroupfs, a --cgroup-parent): whichever
		// runtime made it, all must have answered.
		return inv.AllAnswered()
	}
	// podman, lxc: no inventory of theirs is read.
	return false
}

// cgroupEmpty reports whether no process is in dir or below it.
func cgroupEmpty(dir string) bool {
	empty := true
	n := 0
	var buf [16]byte
	err := walkCgroupFDs(context.TODO(), dir, func(c cgroupAt, _ []byte, _ int) bool {
		if n++; n > 1000 {
			empty = false // too deep to be a container's: leave it
			return false
		}
		b, err := fileCgroupProcs.readAt(c, buf[:])
		if err != nil || len(bytes.TrimSpace(b)) > 0 {
			empty = false
			return false
		}
		return true
	})
	return empty && err == nil
}

// mayNameContainer reports whether a cgroup path relative to its
// hierarchy's root can be a container's in a shape attrib.ParseCgroupPath
// knows: two components (containerd's "/<namespace>/<id>"), "lxc" in it
// (lxc's shapes name containers by name), or a run of 64 hex digits (every
// other shape holds the container id). Only such paths are parsed and
// kept from the walk.
func mayNameContainer(rel []byte) bool {
	return hexRun64(rel) || bytes.Contains(rel, []byte("lxc")) || components(rel) == 2
}

// plainOnly splits a path that mayNameContainer keeps for its two
// components alone (no container id, no lxc in it) into those: it can
// only be containerd's "/<namespace>/<id>", which attrib.ParseCgroupPath
// guesses and only containerd's listing confirms (Attributor.confirm).
// The bad night's "/parent/cgNNNNN" are such paths.
func plainOnly(rel []byte) (ns, id []byte, ok bool) {
	if components(rel) != 2 || hexRun64(rel) || bytes.Contains(rel, []byte("lxc")) {
		return nil, nil, false
	}
	return bytes.Cut(bytes.Trim(rel, "/"), []byte("/"))
}

// components counts the non-empty components of a path.
func components(rel []byte) int {
	n := 0
	for i, c := range rel {
		if c != '/' && (i == 0 || rel[i-1] == '/') {
			n++
		}
	}
	return n
}

// hexRun64 reports whether p holds 64 hex digits in a row.
func hexRun64(p []byte) bool {
	run := 0
	for _, c := range p {
		if !isHexDigit(c) {
			run = 0
		} else if run++; run >= 64 {
			return true
		}
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func leakCgroupsRemedy(u Finding) []string {
	return []string{
		"remove the empty cgroup directories listed with rmdir (deepest first, in every hierarchy); enospc fix re-checks each is empty and unlisted first",
		"find why the runtime left them: its log around the container's removal (\"failed to remove cgroup\", a killed shim)",
	}
}

func pluralS(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// leakCgroupsClues are the words and facts of an error message that point to leak.cgroups (explain).
var leakCgroupsClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpMkdir, Obj: clue.ObjCgroup, NotObj: clue.ObjCgCpuset, NotOp: clue.OpWatch, Prior: 0.3,
		Why: "cgroups of containers that no longer exist hold ids too"},
}
