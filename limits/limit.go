// Package limits is the catalog of hidden kernel limits that make container
// hosts fail with "no space left on device", "disk quota exceeded" and their
// relatives while the disk has room. One file is one family of limits: its
// IDs, what each limit is, the errors it produces, how usage and maximum are
// read from the host, and how to fix it.
package limits

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// Severity of one usage row. The order is the order of badness used to sort
// output; Unknown ranks below Warning because it is not known to be bad.
type Severity int

const (
	OK Severity = iota
	Unknown
	Warning
	Critical
)

var severityNames = [...]string{"ok", "unknown", "warning", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n == name {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", name)
}

// Consumer is a holder of some of a limit's usage: a process, a uid, a
// keyring, a leaked directory. Fields are set as far as they are known.
type Consumer struct {
	PID  int    `json:"pid,omitempty"`
	UID  *int   `json:"uid,omitempty"`
	Comm string `json:"comm,omitempty"`
	Name string `json:"name,omitempty"` // keyring name, path
	// The container behind the holder: its full id, name, image, the
	// runtime that runs it and that runtime's word for its state
	// ("running", "exited", ...; "gone" when no runtime lists it and none
	// of its processes is left).
	Container     string `json:"container,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	Runtime       string `json:"runtime,omitempty"`
	State         string `json:"state,omitempty"`
	// The Kubernetes pod: name, namespace, uid and QoS class.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	QoS       string `json:"qos,omitempty"`
	// Unit is the systemd unit of a holder outside containers.
	Unit  string `json:"unit,omitempty"`
	Count int64  `json:"count"`
}

// Trend is how a row moved in the node's recorded history.
type Trend struct {
	// RatePerHour is the row's robust slope (Theil–Sen) over the last
	// hours, in its unit per hour.
	RatePerHour float64 `json:"rate_per_hour"`
	// ETASeconds is the time until used reaches max at that rate; null
	// when the row is flat or falling, or has no max.
	ETASeconds *float64 `json:"eta_seconds"`
	// Peak is the highest use of the last 24 hours, first reached at
	// PeakAt.
	Peak   int64     `json:"peak"`
	PeakAt time.Time `json:"peak_at"`
}

// Usage is one row of `enospc check`: one limit in one scope.
type Usage struct {
	Limit    string   `json:"limit"`
	Scope    string   `json:"scope"`
	Used     int64    `json:"used"`
	Max      int64    `json:"max"`
	Unit     string   `json:"unit"`
	Severity Severity `json:"severity"`
	// Reason says why the row is unknown, or what else raised its severity.
	Reason    string     `json:"reason,omitempty"`
	Consumers []Consumer `json:"consumers"`
	// ConsumersTotal is the number of consumers before the list was cut to
	// the top ones.
	ConsumersTotal int      `json:"consumers_total,omitempty"`
	Remedy         []string `json:"remedy"`
	// NeedsRoot marks rows whose usage or holders are incomplete because
	// enospc ran without root.
	NeedsRoot bool `json:"needs_root,omitempty"`
	// Leaked is the number of leaked objects (directories, keyrings,
	// cgroups) behind a leak.* row.
	Leaked int64 `json:"leaked,omitempty"`
	// History is the row's trend from the node's recorded history (serve
	// --history-dir); nil without one.
	History *Trend `json:"history,omitempty"`

	// listMax is how many consumers the row lists once attributed (0:
	// all); the full list is kept until then, for grouping by container.
	listMax int

	// floor is a severity the family asserts whatever the ratio (a leak
	// that is what fills a filesystem).
	floor Severity
	// zeroIsFull marks a configured limit whose max may be 0 (pids.max,
	// cgroup.max.descendants): then nothing more fits, and the row is full.
	zeroIsFull bool
	// keyUser is the /proc/key-users line behind a keys.* row, for the
	// remedy that must size both key sysctls together.
	keyUser *KeyUser
	// mountPoint is the filesystem of a disk or inodes row, for its
	// remedy: the scope cannot be split back into it when the mount point
	// itself holds " (".
	mountPoint string
}

// setConsumers keeps every holder for attribution and grouping; the list
// is cut to the n biggest by CutConsumers.
func (u *Usage) setConsumers(cs []Consumer, n int) {
	if cs == nil {
		cs = []Consumer{}
	}
	u.Consumers, u.listMax = cs, n
}

// holders collects the consumers of one row. With Env.ListedOnly it keeps
// the n biggest, in CutConsumers's order, and counts the others: a row
// over every process of a bad night then holds ten consumers, not five
// thousand. Otherwise it keeps every one.
type holders struct {
	n     int // the row lists n
	cut   bool
	cs    []Consumer
	total int
}

func newHolders(env *Env, n int) holders {
	h := holders{n: n, cut: env.ListedOnly && n > 0}
	if h.cut {
		h.cs = make([]Consumer, 0, n)
	}
	return h
}

// add adds a consumer.
func (h *holders) add(c Consumer) {
	h.total++
	if !h.cut {
		h.cs = append(h.cs, c)
		return
	}
	if len(h.cs) == h.n && !listedBefore(c, h.cs[h.n-1]) {
		return
	}
	i := len(h.cs)
	for i > 0 && listedBefore(c, h.cs[i-1]) {
		i--
	}
	if len(h.cs) < h.n {
		h.cs = append(h.cs, Consumer{})
	}
	copy(h.cs[i+1:], h.cs[i:len(h.cs)-1])
	h.cs[i] = c
}

// addProcess adds a process holding count, charged to uid; the consumer
// is made only if it is kept.
func (h *holders) addProcess(p *census.Process, uid int, count int64) {
	if h.cut && len(h.cs) == h.n && !listedBefore(Consumer{PID: p.PID, Count: count}, h.cs[h.n-1]) {
		h.total++
		return
	}
	h.add(Consumer{PID: p.PID, UID: intp(uid), Comm: p.Comm, Count: count})
}

// listedBefore is CutConsumers's order: the biggest first, then by pid;
// a consumer added later goes after an equal one, as in a stable sort.
func listedBefore(a, b Consumer) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return a.PID < b.PID
}

// clone is a copy of h for a second row, which sorts and cuts its own.
func (h holders) clone() holders {
	h.cs = slices.Clone(h.cs)
	return h
}

// setHolders sets the row's consumers from h.
func (u *Usage) setHolders(h holders) {
	u.setConsumers(h.cs, h.n)
	if h.cut && h.total > len(h.cs) {
		u.ConsumersTotal = h.total
	}
}

// CutConsumers sorts the holders biggest first and keeps as many as the
// family lists, recording how many there were in ConsumersTotal.
func (u *Usage) CutConsumers() {
	if u.Consumers == nil {
		u.Consumers = []Consumer{}
	}
	if u.listMax <= 0 {
		return
	}
	cs := u.Consumers
	slices.SortStableFunc(cs, func(a, b Consumer) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.PID, b.PID)
	})
	if len(cs) > u.listMax {
		u.ConsumersTotal = len(cs)
		u.Consumers = cs[:u.listMax]
	}
	u.listMax = 0
}

// Ratio is Used/Max, 0 when Max is not positive (1 for a configured limit
// of 0).
func (u Usage) Ratio() float64 {
	if u.Max == 0 && u.zeroIsFull {
		return 1
	}
	if u.Max <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Max)
}

// Limit is one entry of the catalog.
type Limit struct {
	ID    string
	Title string
	// Doc explains the limit to an operator: what it counts, where it lives
	// in the kernel, why containers hit it.
	Doc string
	// Signatures match the error messages this limit produces.
	Signatures []*Signature
	// Unit of Used and Max.
	Unit string
	// Remedy returns what an operator can do about an exhausted row.
	Remedy func(Usage) []string
}

// Family is one file of the catalog: limits read together.
type Family struct {
	Name   string
	Limits []Limit
	// Read returns the family's rows. A row that cannot be read is an
	// Unknown row with a reason; Read never fails as a whole.
	Read func(*Env) []Usage
}

// Thresholds are fractions of a limit's max.
type Thresholds struct {
	Warn, Crit float64
}

// DefaultThresholds are the warning and critical fractions of max.
var DefaultThresholds = Thresholds{Warn: 0.80, Crit: 0.95}

// Signature is a pattern of the error messages a limit produces, compiled
// when it is first used: a check never matches a message, and compiling
// the catalog's patterns was half of the start-up of every command.
type Signature struct {
	pattern string
	once    sync.Once
	re      *regexp.Regexp
}

// NewSignature is a signature of pattern, which must compile (Validate
// says when it does not).
func NewSignature(pattern string) *Signature { return &Signature{pattern: pattern} }

// Regexp is the compiled signature.
func (s *Signature) Regexp() *regexp.Regexp {
	s.once.Do(func() { s.re = regexp.MustCompile(s.pattern) })
	return s.re
}

// MatchString reports whether the message t matches.
func (s *Signature) MatchString(t string) bool { return s.Regexp().MatchString(t) }

// String is the pattern.
func (s *Signature) String() string { return s.pattern }

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
		if nb := namedBufs.get(); nb != nil {
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

// namedBufs keeps a few of them. Not a sync.Pool: a check allocates
// enough for the garbage collector to empty a pool between two checks.
var namedBufs = &namedBufList{}

type namedBufList struct {
	mu   sync.Mutex
	free []*namedBuf
}

func (l *namedBufList) get() *namedBuf {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) == 0 {
		return nil
	}
	nb := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	return nb
}

func (l *namedBufList) put(nb *namedBuf) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < 4 { // one per hierarchy with many cgroups is plenty
		l.free = append(l.free, nb)
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
			namedBufs.put(&namedBuf{named: t.Named, ends: t.NamedEnd})
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

// Grade sets the severity of a row from its ratio, its floor and its
// reason. Unknown rows stay unknown.
func (u *Usage) Grade(t Thresholds) {
	if u.Severity == Unknown {
		return
	}
	s := OK
	limited := u.Max > 0 || (u.Max == 0 && u.zeroIsFull)
	switch r := u.Ratio(); {
	case limited && r >= t.Crit:
		s = Critical
	case limited && r >= t.Warn:
		s = Warning
	}
	if u.floor > s {
		s = u.floor
	}
	u.Severity = s
}

// unknown is a row that could not be read.
func unknown(id, scope, unit string, err error) Usage {
	return Usage{Limit: id, Scope: scope, Unit: unit, Severity: Unknown, Reason: err.Error()}
}

func intp(v int) *int { return &v }
