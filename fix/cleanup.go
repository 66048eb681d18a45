package fix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/enospc/enospc/census"
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
	o.defaults()
	wanted := map[string]bool{}
	for _, a := range p.Actions {
		if a.Kind == "cleanup" {
			wanted[a.Limit] = true
		}
	}
	res := &Result{}
	if len(wanted) == 0 {
		return res, nil
	}
	j, unlock, err := openJournal(h, &o)
	if err != nil {
		return nil, err
	}
	defer unlock()
	record := func(e Entry) {
		e.Time = o.Now().UTC()
		j.Entries = append(j.Entries, e)
		res.Entries = append(res.Entries, e)
	}
	if wanted["leak.fifo"] {
		if err := cleanFifos(ctx, h, copts, record); err != nil {
			record(Entry{Kind: "cleanup", Limit: "leak.fifo", State: "failed", Note: err.Error()})
		}
	}
	if wanted["leak.cgroups"] {
		cleanCgroups(ctx, h, copts, record)
	}
	if wanted["leak.keyrings"] {
		if err := pruneKeyrings(ctx, h, copts, record); err != nil {
			record(Entry{Kind: "cleanup", Limit: "leak.keyrings", State: "failed", Note: err.Error()})
		}
	}
	return res, j.save(o)
}

func cleanFifos(ctx context.Context, h *host.Host, copts check.Options, record func(Entry)) error {
	fifoDir, state := copts.FifoDir, copts.ContainerdState
	if fifoDir == "" {
		fifoDir = "/run/containerd/fifo"
	}
	if state == "" {
		state = "/run/containerd"
	}
	// A fresh census: who holds which fifo now.
	c, err := census.Take(ctx, h, census.Options{FifoDirs: []string{fifoDir}, Live: h.Live()})
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for _, p := range c.Processes {
		for _, f := range p.Fifos {
			held[filepath.Dir(f)] = true
		}
	}
	orphans, _, err := limits.OrphanFifoDirs(h.RootPath(fifoDir), fifoDir, h.RootPath(state), held, h.Now())
	if err != nil {
		return err
	}
	for _, d := range orphans {
		path := h.RootPath(d.Path)
		// Only what a client's fifo dir holds: its task's fifos.
		ents, err := os.ReadDir(path)
		if err != nil {
			record(Entry{Kind: "cleanup", Limit: "leak.fifo", Path: d.Path, State: "skipped", Note: err.Error()})
			continue
		}
		ok := true
		for _, e := range ents {
			ok = ok && isTaskFifo(e)
		}
		if !ok {
			record(Entry{Kind: "cleanup", Limit: "leak.fifo", Path: d.Path, State: "skipped", Note: "holds more than fifos: left for a person to look at"})
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			record(Entry{Kind: "cleanup", Limit: "leak.fifo", Path: d.Path, State: "failed", Note: err.Error()})
			continue
		}
		record(Entry{Kind: "cleanup", Limit: "leak.fifo", Path: d.Path, State: "removed", Note: fmt.Sprintf("%d inodes, task %s", d.Inodes, strings.Join(d.Tasks, ","))})
	}
	return nil
}

// cleanCgroups runs leak.cgroups again and removes each listed container
// cgroup from every hierarchy, deepest first; rounds until none is left
// (the list is cut to the top holders), bounded.
func cleanCgroups(ctx context.Context, h *host.Host, copts check.Options, record func(Entry)) {
	copts.Only = []string{"leak.cgroups"}
	tried := map[string]bool{}
	for round := 0; round < 100; round++ {
		rep, err := check.Run(ctx, h, copts)
		if err != nil {
			record(Entry{Kind: "cleanup", Limit: "leak.cgroups", State: "failed", Note: err.Error()})
			return
		}
		progress := false
		for _, f := range rep.Findings {
			for _, c := range f.Consumers {
				if c.Name == "" || tried[c.Name] {
					continue
				}
				tried[c.Name] = true
				progress = true
				record(removeCgroupEverywhere(h, c.Name))
			}
		}
		if !progress {
			return
		}
	}
}

// removeCgroupEverywhere rmdirs the cgroup at path (under one hierarchy's
// mount point) and the same relative path in every other hierarchy.
func removeCgroupEverywhere(h *host.Host, path string) Entry {
	e := Entry{Kind: "cleanup", Limit: "leak.cgroups", Path: path}
	const base = "/sys/fs/cgroup"
	rest, ok := strings.CutPrefix(path, base+"/")
	if !ok {
		e.State, e.Note = "skipped", "not under "+base
		return e
	}
	// rest is "<hierarchy>/<relative path>" (or the relative path on a
	// unified-only host, where the hierarchy is the root itself).
	roots, _ := filepath.Glob(h.RootPath(base) + "/*")
	rel := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		if fi, err := os.Stat(h.RootPath(base + "/" + rest[:i] + "/cgroup.procs")); err == nil && !fi.IsDir() {
			rel = rest[i+1:]
		}
	}
	roots = append(roots, h.RootPath(base))
	removed, busy := 0, 0
	var firstErr error
	for _, root := range roots {
		top := filepath.Join(root, rel)
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
			if err := os.Remove(d); err != nil {
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
		e.State, e.Note = "removed", fmt.Sprintf("%d cgroup directories", removed)
	case removed > 0:
		e.State, e.Note = "partial", fmt.Sprintf("%d cgroup directories removed; %d refused (%v): left in place", removed, busy, firstErr)
	default:
		e.State, e.Note = "skipped", fmt.Sprintf("rmdir refused (%v): not empty any more", firstErr)
	}
	return e
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
