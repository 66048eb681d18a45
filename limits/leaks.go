package limits

// Resources left behind by containers that no longer exist.
//
// leak.fifo: containerd's clients (ctr, nerdctl, the docker shim of old)
// create a directory per task under the fifo directory, default
// /run/containerd/fifo, holding the task's <id>-stdin, -stdout and -stderr
// fifos. containerd#2421: when a task is deleted without its client cleaning
// up, the directory stays, four inodes each, until /run (a tmpfs with a fixed
// nr_inodes) has none left and every new container fails with "no space
// left on device" while df -h shows free space.
//
// A fifo directory is live when a process holds one of its fifos open, or
// when the task it names still has state in containerd's runtime v2 (or v1)
// state directory, in any namespace; directories younger than a grace period
// are in the middle of a create and also left alone. Everything else is an
// orphan.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// fifoGrace is how old a fifo directory must be before it can be an orphan.
const fifoGrace = time.Minute

var leaksFamily = Family{
	Name: "leaks",
	Limits: []Limit{{
		ID:    "leak.fifo",
		Title: "orphaned containerd fifo directories",
		Unit:  "inodes",
		Doc: "Inodes held by fifo directories of containerd tasks that no longer exist, against the inodes " +
			"of the filesystem that holds them (usually the /run tmpfs).",
		Signatures: []*Signature{
			NewSignature(`(?i)ctr: .*no space left on device`),
			NewSignature(`(?i)/run/containerd/fifo/\S*: no space left on device`),
			NewSignature(`(?i)failed to (create|open) (fifo|stdio).*no space left on device`),
		},
		Remedy: fifoRemedy,
	}, leakCgroupsLimit},
	Read: func(env *Env) []Usage { return append(readLeaks(env), readLeakedCgroups(env)...) },
}

// FifoDir is one directory under the fifo directory.
type FifoDir struct {
	Path    string   // host path
	Tasks   []string // task or container ids named by its fifos
	Inodes  int64    // the directory and its entries
	ModTime time.Time
}

// fifoTaskID returns the task id a fifo file names: "<id>-stdin" and the like.
func fifoTaskID(name string) string {
	for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
		if strings.HasSuffix(name, s) {
			return strings.TrimSuffix(name, s)
		}
	}
	return ""
}

// liveTasks lists the task ids that have state under containerd's state
// directory: <state>/io.containerd.runtime.v2.task/<namespace>/<id> (and the
// v1 runtime's io.containerd.runtime.v1.linux).
func liveTasks(state string) (map[string]bool, error) {
	live := map[string]bool{}
	for _, rt := range []string{"io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux"} {
		nss, err := os.ReadDir(filepath.Join(state, rt))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		for _, ns := range nss {
			ids, err := os.ReadDir(filepath.Join(state, rt, ns.Name()))
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				live[id.Name()] = true
			}
		}
	}
	return live, nil
}

// OrphanFifoDirs lists the fifo directories under fifoDir (a path readable
// from here) that no process holds open and whose tasks have no state under
// stateDir. held is the set of fifo directories (host paths) that processes
// hold open; hostFifoDir is fifoDir as the host names it.
func OrphanFifoDirs(fifoDir, hostFifoDir, stateDir string, held map[string]bool, now time.Time) (orphans []FifoDir, total int, err error) {
	live, err := liveTasks(stateDir)
	if err != nil {
		return nil, 0, fmt.Errorf("read containerd state %s: %w", stateDir, err)
	}
	entries, err := os.ReadDir(fifoDir)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		total++
		dir := filepath.Join(fifoDir, e.Name())
		hostPath := filepath.Join(hostFifoDir, e.Name())
		if held[hostPath] {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < fifoGrace {
			continue
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		d := FifoDir{Path: hostPath, Inodes: 1 + int64(len(files)), ModTime: info.ModTime()}
		isLive := false
		seen := map[string]bool{}
		for _, f := range files {
			id := fifoTaskID(f.Name())
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			d.Tasks = append(d.Tasks, id)
			if live[id] {
				isLive = true
			}
		}
		if isLive {
			continue
		}
		orphans = append(orphans, d)
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Path < orphans[j].Path })
	return orphans, total, nil
}

func readLeaks(env *Env) []Usage {
	hostFifo := env.FifoDir
	if hostFifo == "" {
		hostFifo = "/run/containerd/fifo"
	}
	state := env.ContainerdState
	if state == "" {
		state = "/run/containerd"
	}
	fifoDir := env.Host.RootPath(hostFifo)
	if _, err := os.Stat(fifoDir); os.IsNotExist(err) {
		return nil
	}
	scope := hostFifo
	if env.Census == nil {
		return []Usage{unknown("leak.fifo", scope, "inodes", fmt.Errorf("no process census: %v", env.CensusErr))}
	}
	held := map[string]bool{}
	for _, p := range env.Census.Processes {
		for _, f := range p.Fifos {
			held[filepath.Dir(f)] = true
		}
	}
	orphans, _, err := OrphanFifoDirs(fifoDir, hostFifo, env.Host.RootPath(state), held, env.Host.Now())
	if err != nil {
		u := unknown("leak.fifo", scope, "inodes", err)
		u.NeedsRoot = !env.Root
		return []Usage{u}
	}
	u := Usage{Limit: "leak.fifo", Scope: scope, Unit: "inodes", Leaked: int64(len(orphans))}
	var cs []Consumer
	for _, o := range orphans {
		u.Used += o.Inodes
		c := Consumer{Name: o.Path, Count: o.Inodes}
		if len(o.Tasks) > 0 {
			c.Container = o.Tasks[0]
		}
		cs = append(cs, c)
	}
	u.setConsumers(cs, topConsumers)
	st, err := env.Host.Statfs(env.Ctx, fifoDir)
	if err != nil {
		u.Reason = fmt.Sprintf("statfs %s: %v", hostFifo, err)
		return []Usage{u}
	}
	u.Max = int64(st.Files)
	fsUsed := int64(st.Files - min(st.FilesFree, st.Files))
	// The leak is what exhausts the filesystem when the filesystem is
	// full and the orphans hold much of it.
	fsRatio := 0.0
	if st.Files > 0 {
		fsRatio = float64(fsUsed) / float64(st.Files)
	}
	switch {
	case len(orphans) > 0 && fsRatio >= env.Thresholds.Crit && u.Used*2 >= fsUsed:
		u.floor = Critical
	case len(orphans) > 0 && fsRatio >= env.Thresholds.Warn:
		u.floor = Warning
	}
	if len(orphans) > 0 {
		u.Reason = fmt.Sprintf("%d orphaned fifo directories hold %d of the %d inodes in use on that filesystem", len(orphans), u.Used, fsUsed)
	}
	return []Usage{u}
}

func fifoRemedy(u Usage) []string {
	return []string{
		fmt.Sprintf("remove the orphaned directories listed (consumers) under %s; enospc re-checks each against containerd's state first", u.Scope),
		"stop the leak: delete tasks before containers (ctr task delete, then ctr container delete), and upgrade containerd",
	}
}
