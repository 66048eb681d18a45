package limits

// Attribution: from a holder (a pid, a keyring's container id, a fifo
// directory's task id) to the container, its runtime, name, image and
// state, and the Kubernetes pod. The cgroup path of a process says which
// container and pod it is in (package attrib parses every runtime's and
// driver's shapes); the runtimes' inventories say what that container is
// called and whether it still runs.

import (
	"bytes"
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// Attributor names the containers and pods behind consumers. It is built
// once per check from the census and the runtimes' inventory.
//
// Its methods are safe for concurrent use: families call them at once.
type Attributor struct {
	mu  sync.Mutex
	inv *attrib.Inventory
	// procs are the census's processes by pid, for a binary search.
	procs []*census.Process
	// refs are keyed by a process's parsed cgroup file, which the census
	// shares between the processes whose file is the same: a container's
	// hundred processes are settled once.
	refs  map[*census.CgroupMembership]attrib.Ref
	paths map[string]attrib.Ref
	// withProcs holds the container ids some live process's cgroup names.
	withProcs map[string]bool
}

// NewAttributor indexes the census. inv may be nil (no runtime asked).
func NewAttributor(c *census.Census, inv *attrib.Inventory) *Attributor {
	a := &Attributor{inv: inv, refs: map[*census.CgroupMembership]attrib.Ref{}, paths: map[string]attrib.Ref{}, withProcs: map[string]bool{}}
	if c == nil {
		return a
	}
	a.procs = make([]*census.Process, len(c.Processes))
	for i := range c.Processes {
		a.procs[i] = &c.Processes[i]
	}
	slices.SortStableFunc(a.procs, func(p, q *census.Process) int { return cmp.Compare(p.PID, q.PID) })
	for _, p := range a.procs {
		if len(p.Cgroups) == 0 {
			continue
		}
		if _, seen := a.refs[&p.Cgroups[0]]; seen {
			continue // the same cgroups as a process before
		}
		if r := a.ref(p); r.ID != "" {
			a.withProcs[r.ID] = true
		}
		// A guessed id (the plain containerd shape, not confirmed when
		// containerd did not answer) still proves processes run in it.
		for _, m := range p.Cgroups {
			if cgroupLinePreference(m) > 0 {
				if raw := attrib.ParseCgroupPath(m.Path); raw.ID != "" {
					a.withProcs[raw.ID] = true
				}
			}
		}
	}
	return a
}

// Inventory returns the runtimes' inventory the attributor uses.
func (a *Attributor) Inventory() *attrib.Inventory { return a.inv }

// HasProcesses reports whether some process lives in a cgroup of the
// container id.
func (a *Attributor) HasProcesses(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.withProcs[id]
}

// ref is what a process's cgroups say about it: the line that names a
// container, preferring the unified hierarchy, then memory, then pids, then
// any other. Most processes are settled by their first line; paths are
// parsed once per check however many processes share them.
func (a *Attributor) ref(p *census.Process) attrib.Ref {
	if len(p.Cgroups) == 0 {
		return attrib.Ref{}
	}
	if r, ok := a.refs[&p.Cgroups[0]]; ok {
		return r
	}
	var best attrib.Ref
	bestRank := -1
	for pass := 0; pass < 2 && best.ID == ""; pass++ {
		for _, m := range p.Cgroups {
			pref := cgroupLinePreference(m)
			if (pass == 0) != (pref > 0) {
				continue
			}
			r := a.parseLocked(m.Path)
			rank := 0
			switch {
			case r.ID != "":
				rank = 10
			case r.PodUID != "":
				rank = 5
			case r.Unit != "":
				rank = 2
			}
			if rank == 0 {
				continue
			}
			if rank += pref; rank > bestRank {
				best, bestRank = r, rank
			}
		}
	}
	a.refs[&p.Cgroups[0]] = best
	return best
}

// cgroupLinePreference ranks the lines of /proc/PID/cgroup: the unified
// hierarchy first, then memory, then pids; 0 for the others.
func cgroupLinePreference(m census.CgroupMembership) int {
	switch {
	case len(m.Controllers) == 0 && m.Hierarchy == 0:
		return 3
	case slices.Contains(m.Controllers, "memory"):
		return 2
	case slices.Contains(m.Controllers, "pids"):
		return 1
	}
	return 0
}

// parse is ParseCgroupPath, confirmed against the inventory. A cgroup
// directory is asked about once a check, so what it answers is not kept:
// keeping the 30,000 directories of a bad night cost more than parsing.
func (a *Attributor) parse(path string) attrib.Ref {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.paths[path]; ok {
		return r
	}
	return a.confirm(attrib.ParseCgroupPath(path))
}

// plainListed reports whether containerd lists namespace ns or a
// container id: what confirm asks before it keeps a guess of containerd's
// plain "/<ns>/<id>" shape. Without it, the guess is dropped, and the
// path need not be parsed.
func (a *Attributor) plainListed(ns, id []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inv == nil {
		return false
	}
	if a.inv.ContainerdNamespaces[string(ns)] {
		return true
	}
	_, ok := a.inv.Lookup(string(id))
	return ok
}

// parseLocked is parse for the lines of processes' cgroup files, which
// many files share: memoised.
func (a *Attributor) parseLocked(path string) attrib.Ref {
	if r, ok := a.paths[path]; ok {
		return r
	}
	r := a.confirm(attrib.ParseCgroupPath(path))
	a.paths[path] = r
	return r
}

// confirm drops the guess of the plain containerd shape "/<ns>/<id>"
// unless containerd lists that namespace.
func (a *Attributor) confirm(r attrib.Ref) attrib.Ref {
	if !r.Guess {
		return r
	}
	if a.inv != nil && a.inv.ContainerdNamespaces[r.Namespace] {
		r.Guess = false
		return r
	}
	if a.inv != nil {
		if _, ok := a.inv.Lookup(r.ID); ok {
			r.Guess = false
			return r
		}
	}
	return attrib.Ref{Unit: r.Unit}
}

// Consumer fills in what is known of c's container and pod.
func (a *Attributor) Consumer(c *Consumer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var r attrib.Ref
	if c.PID > 0 {
		if i, ok := slices.BinarySearchFunc(a.procs, c.PID, func(p *census.Process, pid int) int { return cmp.Compare(p.PID, pid) }); ok {
			r = a.ref(a.procs[i])
		}
	}
	if c.Container == "" {
		c.Container = r.ID
	}
	if c.PodUID == "" {
		c.PodUID = r.PodUID
	}
	if c.QoS == "" {
		c.QoS = r.QoS
	}
	if c.Unit == "" && c.Container == "" {
		c.Unit = r.Unit
	}
	if c.Runtime == "" {
		c.Runtime = runtimeName(r.Runtime)
	}
	if c.Container == "" {
		return
	}
	k, ok := a.inv.Lookup(c.Container)
	if !ok {
		if c.State == "" && c.PID == 0 && !a.withProcs[c.Container] && a.inv.AllAnswered() {
			c.State = "gone"
		}
		return
	}
	c.Container, c.ContainerName, c.Image, c.Runtime, c.State = k.ID, k.Name, k.Image, k.Runtime, k.State
	if k.PodName != "" {
		c.Pod, c.Namespace = k.PodName, k.PodNamespace
	}
	if k.PodUID != "" {
		c.PodUID = k.PodUID
	}
}

// runtimeName is the runtime as the inventories name it.
func runtimeName(pathRuntime string) string {
	if pathRuntime == "cri-containerd" {
		return "containerd"
	}
	return pathRuntime
}

// Attribute fills in the containers and pods of every consumer of rows.
func (a *Attributor) Attribute(rows []Finding) {
	for i := range rows {
		for j := range rows[i].Consumers {
			a.Consumer(&rows[i].Consumers[j])
		}
	}
}

// processesNaming reads every process's cgroups afresh and reports which of
// ids some process's cgroup path names: the last look before a container is
// called gone, for one that started after the census.
func processesNaming(h *host.Host, ids map[string]bool) map[string]bool {
	found := map[string]bool{}
	ents, err := os.ReadDir(h.Proc)
	if err != nil {
		return found
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.Proc, e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		for id := range ids {
			if bytes.Contains(b, []byte(id)) {
				found[id] = true
			}
		}
	}
	return found
}

// runc names the session keyring of a container "_ses.<container id>":
// the one place enospc knows it.
const sessionKeyringPrefix = "_ses."

// SessionKeyring is the description of container id's session keyring.
func SessionKeyring(id string) string { return sessionKeyringPrefix + id }

// sessionKeyringContainer returns the container id of runc's session
// keyring description "_ses.<id>", else "".
func sessionKeyringContainer(desc string) string {
	id, ok := strings.CutPrefix(desc, sessionKeyringPrefix)
	if !ok || id == "" {
		return ""
	}
	return id
}

// IsSessionKeyring tells whether a holder of a key row is a container's
// session keyring (the key rows name a key "<type> <description>").
func (c Consumer) IsSessionKeyring() bool {
	return strings.HasPrefix(c.Name, "keyring "+sessionKeyringPrefix)
}
