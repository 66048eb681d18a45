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
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/enospc/enospc/limits/clue"
)

// fifoGrace is how old a fifo directory must be before it can be an orphan.
const fifoGrace = time.Minute

// The IDs of this file's limits.
const (
	LeakFifo ID = "leak.fifo"
)

var leaksFamily = Family{
	Name: "leaks",
	Limits: []Limit{{
		ID:    LeakFifo,
		Clues: leakFifoClues,
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
	Read: func(env *Env) []Finding { return append(readLeaks(env), readLeakedCgroups(env)...) },
}

// FifoDir is one directory under the fifo directory.
type FifoDir struct {
	Path    string   // host path
	Tasks   []string // task or container ids named by its fifos
	Inodes  int64    // the directory and its entries
	ModTime time.Time
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
	total, err = scanFifoDirs(fifoDir, heldFifoDirNames(held, hostFifoDir), live, now, true, func(d *orphanFifoDir) {
		orphans = append(orphans, FifoDir{Path: filepath.Join(hostFifoDir, string(d.name)), Tasks: d.tasks(),
			Inodes: d.inodes, ModTime: d.mtime})
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Path < orphans[j].Path })
	return orphans, total, nil
}

// heldFifoDirNames are the names of the directories right under
// hostFifoDir among held (host paths).
func heldFifoDirNames(held map[string]bool, hostFifoDir string) map[string]bool {
	hostFifoDir = filepath.Clean(hostFifoDir)
	names := make(map[string]bool, len(held))
	for p := range held {
		if filepath.Dir(p) == hostFifoDir {
			names[filepath.Base(p)] = true
		}
	}
	return names
}

func readLeaks(env *Env) []Finding {
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
		return []Finding{unknown("leak.fifo", scope, "inodes", fmt.Errorf("no process census: %v", env.CensusErr))}
	}
	held := map[string]bool{}
	for _, p := range env.Census.Processes {
		for _, f := range p.Fifos {
			held[filepath.Dir(f)] = true
		}
	}
	u := Finding{Limit: "leak.fifo", Scope: scope, Unit: "inodes"}
	// The orphans are counted; the row lists the biggest, which are
	// the only ones given a path and a task.
	top := fifoTop{n: topConsumers}
	var all []Consumer // with env.AllHolders, every orphan
	live, err := liveTasks(env.Host.RootPath(state))
	if err == nil {
		_, err = scanFifoDirs(fifoDir, heldFifoDirNames(held, hostFifo), live, env.Host.Now(), false, func(d *orphanFifoDir) {
			u.Leaked++
			u.Used += d.inodes
			if env.AllHolders {
				all = append(all, fifoConsumer(d.name, d.firstTask(), d.unread, d.inodes, fifoDir, hostFifo))
				return
			}
			top.offer(d)
		})
	} else {
		err = fmt.Errorf("read containerd state %s: %w", env.Host.RootPath(state), err)
	}
	if err != nil {
		u := unknown("leak.fifo", scope, "inodes", err)
		u.NeedsRoot = !env.Root
		return []Finding{u}
	}
	cs := top.consumers(fifoDir, hostFifo)
	if env.AllHolders {
		cs = all
	}
	u.setConsumers(cs, topConsumers)
	if u.Leaked > int64(len(cs)) {
		u.ConsumersTotal = int(u.Leaked)
	}
	st, err := env.Host.Statfs(env.Ctx, fifoDir)
	if err != nil {
		u.Reason = fmt.Sprintf("statfs %s: %v", hostFifo, err)
		return []Finding{u}
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
	case u.Leaked > 0 && fsRatio >= env.Thresholds.Crit && u.Used*2 >= fsUsed:
		u.floor = Critical
	case u.Leaked > 0 && fsRatio >= env.Thresholds.Warn:
		u.floor = Warning
	}
	if u.Leaked > 0 {
		u.Reason = fmt.Sprintf("%d orphaned fifo directories hold %d of the %d inodes in use on that filesystem", u.Leaked, u.Used, fsUsed)
	}
	return []Finding{u}
}

// fifoTop keeps the n biggest orphans seen, biggest first and by name among
// equals (the order the row lists them in), in buffers of its own that it
// reuses, so that the orphans passing through it cost no allocation
// whatever order they come in.
type fifoTop struct {
	n     int
	items []fifoTopItem
}

type fifoTopItem struct {
	name, task []byte
	unread     bool // task not known yet
	inodes     int64
}

func (t *fifoTop) offer(d *orphanFifoDir) {
	i := len(t.items)
	for i > 0 && (d.inodes > t.items[i-1].inodes || d.inodes == t.items[i-1].inodes && bytes.Compare(d.name, t.items[i-1].name) < 0) {
		i--
	}
	if i >= t.n {
		return
	}
	if len(t.items) < t.n {
		t.items = append(t.items, fifoTopItem{})
	}
	// The last item, dropped or new, is the one overwritten.
	last := t.items[len(t.items)-1]
	copy(t.items[i+1:], t.items[i:len(t.items)-1])
	t.items[i] = fifoTopItem{name: append(last.name[:0], d.name...), task: append(last.task[:0], d.firstTask()...),
		unread: d.unread, inodes: d.inodes}
}

// consumers are the orphans kept, as the row lists them; the task of one
// the scan did not open is read now from fifoDir.
func (t *fifoTop) consumers(fifoDir, hostFifo string) []Consumer {
	cs := make([]Consumer, 0, len(t.items))
	for _, it := range t.items {
		cs = append(cs, fifoConsumer(it.name, it.task, it.unread, it.inodes, fifoDir, hostFifo))
	}
	return cs
}

// fifoConsumer is an orphaned fifo directory as the row lists it: its
// host path, its task (read now from fifoDir when the scan did not open
// the directory) and its inodes.
func fifoConsumer(name, task []byte, unread bool, inodes int64, fifoDir, hostFifo string) Consumer {
	c := Consumer{Name: filepath.Join(hostFifo, string(name)), Container: string(task), Count: inodes}
	if unread {
		// os.ReadDir sorts by name: the first task is Tasks[0].
		files, _ := os.ReadDir(filepath.Join(fifoDir, string(name)))
		for _, f := range files {
			if id := fifoTaskID([]byte(f.Name())); id != nil {
				c.Container = string(id)
				break
			}
		}
	}
	return c
}

func fifoRemedy(u Finding) []string {
	return []string{
		fmt.Sprintf("remove the orphaned directories listed (consumers) under %s; enospc re-checks each against containerd's state first", u.Scope),
		"stop the leak: delete tasks before containers (ctr task delete, then ctr container delete), and upgrade containerd",
	}
}

// leakFifoClues are the words and facts of an error message that point to leak.fifo (explain).
var leakFifoClues = []clue.Clue{
	{Errno: clue.ENOSPC, NotOp: clue.NamedCall, NotObj: clue.ObjCgroup | clue.ObjLog | clue.ObjShm, Prior: 0.12,
		Why: "orphaned fifo directories exhaust /run's inodes"},

	{Errno: clue.ENOSPC, Obj: clue.ObjFifo, Prior: 0.8,
		Why: "creating a task's fifo fails with ENOSPC when /run is out of inodes, often from orphaned fifo directories"},
	{Errno: clue.ENOSPC, Words: []string{"ctr:"}, Prior: 0.75,
		Why: "ctr run's task could not get its fifos: /run's inodes, held by orphaned fifo directories"},
	{Errno: clue.ENOSPC, Obj: clue.ObjRun, NotObj: clue.ObjCgroup, Prior: 0.45,
		Why: "orphaned containerd fifo directories are what usually fills /run"},
}
