package limits

// Env is what every family reads from: the host, the census, the options of the check, and the walks shared by several families (mount tables, cgroup hierarchies), done once per check.

import (
	"context"
	"errors"
	"io/fs"
	"sync"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// Env is what a family reads from.
type Env struct {
	Ctx        context.Context
	Host       *host.Host
	Census     *census.Census
	CensusErr  error
	Thresholds Thresholds
	// Live is true when Host is the running kernel.
	Live bool
	// Root is true when enospc runs with CAP_SYS_ADMIN-equivalent rights
	// to read every process and every uid's keys.
	Root bool
	// ContainerdState is containerd's state directory as a host path
	// (default /run/containerd), FifoDir its clients' fifo directory.
	ContainerdState string
	FifoDir         string
	// AllKeys lists every uid's keys, however many walks of the host's
	// keys that takes (keysWalkBudget).
	AllKeys bool
	// AllHolders lists every holder of a row, not its top few: fix sets
	// it to re-verify the leaks it removes with the very reads of check.
	AllHolders bool
	// ListedOnly says that only the consumers a row lists (its top few)
	// will be looked at, so a family over every process keeps just those
	// and counts the rest. check sets it unless holdings are grouped.
	ListedOnly bool

	// Attribution returns the attributor of this check (census and the
	// runtimes' inventory), waiting for the inventory; nil means no
	// runtime is asked and only cgroup paths name containers.
	Attribution func() *Attributor
	attrOnce    sync.Once
	attr        *Attributor

	// The host's mount table and cgroup hierarchies, read once for the
	// families that need them (they run concurrently).
	mountsOnce sync.Once
	mounts     []Mount
	mountsErr  error
	cgroupHier []cgroupHierarchy

	// Cgroup hierarchies by root, walked once for the families that need
	// them.
	walksMu sync.Mutex
	walks   map[string]*cgroupTree
}

// cgroupLimit is a v2 cgroup with cgroup.max.descendants or
// cgroup.max.depth set (-1 when not), the use it has of them
// (nr_descendants and nr_dying_descendants of its cgroup.stat) and the
// depth of its deepest descendant below it.
type cgroupLimit struct {
	Rel                string
	Depth              int
	MaxDescendants     int64
	MaxDepth           int64
	Descendants, Dying int64
	Deepest            int
}

// cgroupTree is what one walk of a hierarchy found, for the families that
// share it: what each needs, so that nothing else is kept per cgroup.
type cgroupTree struct {
	once sync.Once
	// Dirs counts the cgroup directories, the root included.
	Dirs int
	// Named are the paths, relative to the root, of the directories that
	// may name a container (mayNameContainer), parents first, end to end:
	// the i-th ends at NamedEnd[i]. leak.cgroups' candidates: on the bad
	// night, 30,000 of them, in two slices rather than a string each.
	Named    []byte
	NamedEnd []int32
	// Limited are the cgroups with a subtree limit (v2 only), parents
	// first.
	Limited []*cgroupLimit
	// Err is why the walk did not start or did not end.
	Err error
}

// cgroupTree walks hierarchy h on first use only. On v2 each cgroup's
// cgroup.max.descendants and cgroup.max.depth are read on the way, the
// only files read for every cgroup.
func (e *Env) cgroupTree(h cgroupHierarchy) *cgroupTree {
	root := e.Host.RootPath(h.MountPoint)
	e.walksMu.Lock()
	if e.walks == nil {
		e.walks = map[string]*cgroupTree{}
	}
	t := e.walks[root]
	if t == nil {
		t = &cgroupTree{}
		e.walks[root] = t
	}
	e.walksMu.Unlock()
	t.once.Do(func() {
		if nb := namedBufs.get(root); nb != nil {
			t.Named, t.NamedEnd = nb.named[:0], nb.ends[:0]
		}
		t.walk(e.Ctx, root, h.V2)
	})
	return t
}

// namedBuf is a cgroupTree's list of container-shaped paths, kept between
// checks: on a host of 30,000 cgroups the list is a megabyte that serve
// would otherwise grow anew, by doubling, every interval.
type namedBuf struct {
	named []byte
	ends  []int32
}

// namedBufs keeps them by hierarchy root, so that each walk starts from
// the buffer its own hierarchy grew last time (a free list handed the
// memory hierarchy's megabyte to a small one, and the memory walk grew
// again). Not a sync.Pool: a check allocates enough for the garbage
// collector to empty a pool between two checks.
var namedBufs = &namedBufList{free: map[string]*namedBuf{}}

type namedBufList struct {
	mu   sync.Mutex
	free map[string]*namedBuf
}

func (l *namedBufList) get(root string) *namedBuf {
	l.mu.Lock()
	defer l.mu.Unlock()
	nb := l.free[root]
	delete(l.free, root)
	return nb
}

func (l *namedBufList) put(root string, nb *namedBuf) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A host has a dozen hierarchies; tests that walk many fixture
	// trees must not make this grow without bound.
	if _, ok := l.free[root]; ok || len(l.free) < 32 {
		l.free[root] = nb
	}
}

// Release gives the buffers of this check's cgroup walks back for the
// next check. Call it once every family that reads them has returned
// (not while an abandoned family may still read them).
func (e *Env) Release() {
	e.walksMu.Lock()
	defer e.walksMu.Unlock()
	for root, t := range e.walks {
		if t.Named != nil && cap(t.Named) <= 8<<20 {
			namedBufs.put(root, &namedBuf{named: t.Named, ends: t.NamedEnd})
		}
		t.Named, t.NamedEnd = nil, nil
		delete(e.walks, root)
	}
}

func (t *cgroupTree) walk(ctx context.Context, root string, v2 bool) {
	var buf [4096]byte
	var stack []*cgroupLimit // limited ancestors of the current directory
	t.Err = walkCgroupFDs(ctx, root, func(c cgroupAt, rel []byte, depth int) bool {
		t.Dirs++
		if mayNameContainer(rel) {
			t.Named = append(t.Named, rel...)
			t.NamedEnd = append(t.NamedEnd, int32(len(t.Named)))
		}
		if !v2 {
			return true
		}
		for len(stack) > 0 && stack[len(stack)-1].Depth >= depth {
			stack = stack[:len(stack)-1]
		}
		for _, l := range stack {
			l.Deepest = max(l.Deepest, depth-l.Depth)
		}
		md, err1 := fileMaxDescendants.readIntAt(c, buf[:64])
		mdep, err2 := fileMaxDepth.readIntAt(c, buf[:64])
		if (err1 != nil || md < 0) && (err2 != nil || mdep < 0) {
			return true
		}
		l := &cgroupLimit{Rel: string(rel), Depth: depth, MaxDescendants: -1, MaxDepth: -1}
		if err1 == nil {
			l.MaxDescendants = md
		}
		if err2 == nil {
			l.MaxDepth = mdep
		}
		if b, err := fileCgroupStat.readAt(c, buf[:]); err == nil {
			st := parseFlatKeyed(b)
			l.Descendants, l.Dying = st["nr_descendants"], st["nr_dying_descendants"]
		}
		t.Limited = append(t.Limited, l)
		stack = append(stack, l)
		return true
	})
	if errors.Is(t.Err, fs.ErrNotExist) {
		// A tree that does not show the hierarchy (a fixture): the root
		// cgroup is there all the same.
		t.Dirs, t.Err = 1, nil
	}
}

// attributor returns the check's attributor, or one from the census alone.
func (e *Env) attributor() *Attributor {
	e.attrOnce.Do(func() {
		if e.Attribution != nil {
			e.attr = e.Attribution()
		}
		if e.attr == nil {
			e.attr = NewAttributor(e.Census, nil)
		}
	})
	return e.attr
}

// Mounts returns the host's mount table (HostMounts), read on first use.
func (e *Env) Mounts() ([]Mount, error) {
	e.loadMounts()
	return e.mounts, e.mountsErr
}

// cgroupHierarchies returns the host's mounted cgroup hierarchies.
func (e *Env) cgroupHierarchies() []cgroupHierarchy {
	e.loadMounts()
	return e.cgroupHier
}

func (e *Env) loadMounts() {
	e.mountsOnce.Do(func() {
		e.mounts, e.mountsErr = HostMounts(e.Host)
		e.cgroupHier = cgroupHierarchies(e, e.mounts)
	})
}
