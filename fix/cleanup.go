package fix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Cleanup removes what the leak rows found, each target re-verified right
// before it goes: orphaned containerd fifo directories (no process holds
// one of their fifos, containerd has no state for their task, older than a
// minute: the same test check makes, run again now) and empty container
// cgroups no runtime lists (check's leak.cgroups, run again now; rmdir
// itself refuses a cgroup with a process in it). A directory that is live
// again by then is left. Removals cannot be undone: they are journaled as
// a record.
func Cleanup(ctx context.Context, h *host.Host, copts check.Options, p Plan, o Options) (*Result, error) {
	if copts.FifoDir != "" {
		o.FifoDir = copts.FifoDir
	}
	o.defaults()
	wanted := map[string]bool{}
	for _, a := range p.Actions {
		if a.Kind == KindCleanup {
			wanted[a.Limit] = true
		}
	}
	if len(wanted) == 0 {
		return &Result{}, nil
	}
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := newResult(j)
	var journalErr error
	record := func(e Entry) {
		e.Time = o.Now().UTC()
		if k, err := j.add(e); err != nil {
			if journalErr == nil {
				journalErr = fmt.Errorf("journal: %w", err)
			}
		} else {
			e = *k
		}
		res.Entries = append(res.Entries, e)
	}
	if wanted["leak.fifo"] {
		if err := cleanFifos(ctx, h, copts, record); err != nil {
			record(Entry{Kind: KindCleanup, Limit: "leak.fifo", State: StateFailed, Note: err.Error()})
		}
	}
	if wanted["leak.cgroups"] {
		cleanCgroups(ctx, h, copts, record)
	}
	if wanted["leak.keyrings"] {
		verify := o.keyring
		if verify == nil {
			verify = kernelKeyring(h)
		}
		if err := pruneKeyrings(ctx, h, copts, verify, record); err != nil {
			record(Entry{Kind: KindCleanup, Limit: "leak.keyrings", State: StateFailed, Note: err.Error()})
		}
	}
	return res, journalErr
}

// reverify looks at the host again for one leak, the way check does
// (check.Run of that limit alone), listing every holder of its rows: the
// one way every cleanup and prune re-verifies what it is about to remove.
func reverify(ctx context.Context, h *host.Host, copts check.Options, id limits.ID) ([]limits.Consumer, error) {
	copts.Only = []string{string(id)}
	copts.AllHolders = true
	rep, err := check.Run(ctx, h, copts)
	if err != nil {
		return nil, err
	}
	var cs []limits.Consumer
	for _, u := range rep.Findings {
		if u.Limit != string(id) {
			continue
		}
		if u.Severity == limits.Unknown {
			return nil, fmt.Errorf("%s %s: %s", id, u.Scope, u.Reason)
		}
		cs = append(cs, u.Consumers...)
	}
	return cs, nil
}

// cleanFifos removes the orphaned fifo directories leak.fifo lists now:
// no process holds one of their fifos, containerd has no state for their
// task, and they are older than a minute.
func cleanFifos(ctx context.Context, h *host.Host, copts check.Options, record func(Entry)) error {
	orphans, err := reverify(ctx, h, copts, limits.LeakFifo)
	if err != nil {
		return err
	}
	for _, d := range orphans {
		path := h.RootPath(d.Name)
		// Only what a client's fifo dir holds: its task's fifos.
		ents, err := os.ReadDir(path)
		if err != nil {
			record(Entry{Kind: KindCleanup, Limit: "leak.fifo", Path: d.Name, State: StateSkipped, Note: err.Error()})
			continue
		}
		ok := true
		for _, e := range ents {
			ok = ok && isTaskFifo(e)
		}
		if !ok {
			record(Entry{Kind: KindCleanup, Limit: "leak.fifo", Path: d.Name, State: StateSkipped, Note: "holds more than fifos: left for a person to look at"})
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			record(Entry{Kind: KindCleanup, Limit: "leak.fifo", Path: d.Name, State: StateFailed, Note: err.Error()})
			continue
		}
		record(Entry{Kind: KindCleanup, Limit: "leak.fifo", Path: d.Name, State: StateRemoved, Note: fmt.Sprintf("%d inodes, task %s", d.Count, d.Container)})
	}
	return nil
}

// cleanCgroups runs leak.cgroups again and removes each listed container
// cgroup from every hierarchy, deepest first; it looks again until no new
// one is listed (removing a cgroup can leave its parent an empty
// container cgroup), bounded.
func cleanCgroups(ctx context.Context, h *host.Host, copts check.Options, record func(Entry)) {
	tried := map[string]bool{}
	for round := 0; round < 100; round++ {
		cs, err := reverify(ctx, h, copts, limits.LeakCgroups)
		if err != nil {
			record(Entry{Kind: KindCleanup, Limit: "leak.cgroups", State: StateFailed, Note: err.Error()})
			return
		}
		progress := false
		for _, c := range cs {
			if c.Name == "" || tried[c.Name] {
				continue
			}
			tried[c.Name] = true
			progress = true
			record(removeCgroupEverywhere(h, c.Name))
		}
		if !progress {
			return
		}
	}
}

// removeCgroupEverywhere rmdirs the cgroup at path (under one hierarchy's
// mount point) and the same path in every other hierarchy, and nowhere
// else. On a unified-only host (/sys/fs/cgroup itself is the cgroup2 root:
// it has cgroup.procs) there is one hierarchy, and the path's first
// component is a cgroup like any other, not a hierarchy: the cgroup is
// removed at that exact path only, never a same-named one in another
// subtree. On v1 and hybrid hosts the first component is the hierarchy's
// mount point, and the rest is the same in each.
func removeCgroupEverywhere(h *host.Host, path string) Entry {
	e := Entry{Kind: KindCleanup, Limit: "leak.cgroups", Path: path}
	rest, ok := strings.CutPrefix(path, cgroupRoot+"/")
	if !ok || filepath.Clean(path) != path {
		e.State, e.Note = StateSkipped, "not below "+cgroupRoot
		return e
	}
	var roots []string
	rel := rest
	if isFile(h.RootPath(cgroupRoot + "/cgroup.procs")) {
		roots = []string{h.RootPath(cgroupRoot)}
	} else {
		hier, r, ok := strings.Cut(rest, "/")
		if !ok || !isFile(h.RootPath(cgroupRoot+"/"+hier+"/cgroup.procs")) {
			e.State, e.Note = StateSkipped, "not in a cgroup hierarchy mounted under "+cgroupRoot
			return e
		}
		rel = r
		// The hierarchies: directories (not the symbolic links
		// cpu -> cpu,cpuacct) under the root whose own root cgroup is
		// there.
		ents, _ := os.ReadDir(h.RootPath(cgroupRoot))
		for _, d := range ents {
			dir := h.RootPath(cgroupRoot + "/" + d.Name())
			if d.IsDir() && isFile(dir+"/cgroup.procs") {
				roots = append(roots, dir)
			}
		}
	}
	removed, busy := 0, 0
	var firstErr error
	for _, root := range roots {
		top := filepath.Join(root, rel)
		if _, err := os.Lstat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			// rmdir of a cgroup with a task in it fails (EBUSY): the
			// kernel's own check that it is empty.
			if err := os.Remove(d); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				busy++
				if firstErr == nil {
					firstErr = err
				}
			} else {
				removed++
			}
		}
	}
	switch {
	case removed > 0 && busy == 0:
		e.State, e.Note = StateRemoved, fmt.Sprintf("%d cgroup directories", removed)
	case removed > 0:
		e.State, e.Note = StatePartial, fmt.Sprintf("%d cgroup directories removed; %d refused (%v): left in place", removed, busy, firstErr)
	case busy > 0:
		e.State, e.Note = StateSkipped, fmt.Sprintf("rmdir refused (%v): not empty any more", firstErr)
	default:
		e.State, e.Note = StateSkipped, "gone already"
	}
	return e
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// isTaskFifo: an entry a client's fifo directory holds, a fifo named
// <id>-stdin, -stdout or -stderr (or, left by a tool that could not make
// fifos, an empty file of that name).
func isTaskFifo(e os.DirEntry) bool {
	name := e.Name()
	if !strings.HasSuffix(name, "-stdin") && !strings.HasSuffix(name, "-stdout") && !strings.HasSuffix(name, "-stderr") {
		return false
	}
	if e.Type()&os.ModeNamedPipe != 0 {
		return true
	}
	info, err := e.Info()
	return err == nil && info.Mode().IsRegular() && info.Size() == 0
}
