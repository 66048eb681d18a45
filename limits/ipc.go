package limits

// System V IPC objects and POSIX message queues, per IPC namespace
// (ipc(7) sysvipc(7), shmget(2), semget(2), msgget(2), mq_overview(7),
// Documentation/admin-guide/sysctl/kernel.rst and fs.rst).
//
// Every IPC namespace has its own objects and its own limits; a new one
// (docker run without --ipc=host, every Kubernetes pod, unshare -i)
// starts with the kernel's defaults, whatever the host set. Past a limit
// the call that creates an object fails with ENOSPC, "no space left on
// device", while the disks are empty:
//
//	ipc.shm  shmget(2): more segments than kernel.shmmni (default 4096), or
//	         more pages in all segments than kernel.shmall
//	         PostgreSQL: FATAL: could not create shared memory segment: No space left on device
//	         DETAIL: Failed system call was shmget(key=5432001, size=56, 03600).
//	         HINT: ... raise the SHMMNI parameter ... or ... the system's overall limit for shared memory
//	         ipcmk: create share memory failed: No space left on device
//	ipc.sem  semget(2): more sets than SEMMNI or more semaphores than SEMMNS,
//	         the 4th and 2nd fields of kernel.sem ("SEMMSL SEMMNS SEMOPM SEMMNI")
//	         PostgreSQL: FATAL: could not create semaphores: No space left on device
//	         Apache: (28)No space left on device: Couldn't create accept lock
//	         dmsetup: Limit for the maximum number of semaphores reached. ...
//	         docker (devicemapper): Can't set cookie dm_task_set_cookie failed
//	ipc.msg  msgget(2): more queues than kernel.msgmni
//	         msgget() failed, Error: No space left on device[28]
//	mqueue   mq_open(3): more POSIX queues than fs.mqueue.queues_max (default
//	         256; a process with CAP_SYS_RESOURCE is not held to it)
//	         mq_open: no space left on device (a Go program)
//
// The known leaks: device-mapper's udev cookies, one semaphore set each
// (key 0x0d4dXXXX), left behind when udev does not complete them (LVM,
// docker's devicemapper driver; dmsetup udevcomplete_all releases them);
// and the sets and segments of an Apache, PostgreSQL or PHP that was
// killed, owned by a uid that no longer runs anything.
//
// Usage is read from /proc/sysvipc/{shm,sem,msg} and the limits from
// /proc/sys/kernel/{shmmni,shmall,sem,msgmni} and
// /proc/sys/fs/mqueue/queues_max. All of these answer for the IPC
// namespace of the thread that reads them, whatever procfs they are read
// through (/proc/PID/root/proc/... too), so another namespace is read by
// a thread that joins it with setns(2) (host.ReadInNamespace): root on the
// live host only. A fixture tree shows the initial namespace only.
//
// POSIX queues have no /proc table: they are the files of an mqueue
// filesystem of the namespace (every mount of mqueue made in one IPC
// namespace shows that namespace's queues), found in the mount table of a
// process of the namespace (/dev/mqueue) and listed through
// /proc/PID/root. A namespace with no mqueue mount cannot be counted.
// The listing misses queues unlinked while still open, which the kernel
// still counts: it is a lower bound.
//
// ipc.shm and ipc.sem each hold two limits; a namespace has one row for
// each, the worse of the two (segments or pages, sets or semaphores),
// whose reason gives the other: one row per limit and scope, as every
// other family, so that metrics and lookups by (limit, scope) stay unique.
// Consumers count in the row's unit and group the objects by owner uid
// and, for shared memory, by creator pid when it still runs in the
// namespace; the holder of a container's namespace is that container.
//
// The fix: remove what nobody uses (ipcrm -m/-s/-q ID, rm /dev/mqueue/NAME,
// dmsetup udevcomplete_all for the cookies), or raise the namespace's own
// limit: sysctl -w on the host (and /etc/sysctl.d), nsenter -t PID -i
// sysctl -w for a container's namespace now, docker run --sysctl or a
// pod's securityContext.sysctls for its next start. shmmni, msgmni and
// SEMMNI stop at IPCMNI (32768 without the ipcmni_extend boot parameter),
// queues_max at 65536.
//
// The lab (lab/kernel/ipc_test.go) exhausts all four in a private IPC
// namespace whose limits it lowers: they are the namespace's own, and the
// host's stay untouched.

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/enospc/enospc/host"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/internal/quote"
)

var ipcFamily = Family{
	Name: "ipc",
	Limits: []Limit{
		{
			ID:    "ipc.shm",
			Title: "System V shared memory (kernel.shmmni, kernel.shmall)",
			Unit:  "segments",
			Doc: "System V shared memory segments of one IPC namespace against kernel.shmmni (default 4096), " +
				"and the pages of all of them against kernel.shmall; the row is the worse of the two. Past either " +
				"shmget(2) fails with ENOSPC. Every container and pod has its own namespace with the kernel's " +
				"defaults. Segments outlive their creator until removed (ipcrm -m): a killed database leaves them.",
			Signatures: []*Signature{
				NewSignature(`(?i)shmget\b.*(no space left on device|ENOSPC|errno[ =]28)`),
				NewSignature(`(?i)could not create shared memory segment: no space left on device`),
				NewSignature(`(?i)create share(d)? memory failed: no space left on device`), // ipcmk
				NewSignature(`(?i)raise the shmmni parameter`),
				NewSignature(`(?i)unable to create shared memory segment.*(no space left|error: 28)`), // Oracle ORA-27125
			},
			Remedy: ipcRemedy,
		},
		{
			ID:    "ipc.sem",
			Title: "System V semaphores (kernel.sem SEMMNI, SEMMNS)",
			Unit:  "sets",
			Doc: "System V semaphore sets of one IPC namespace against SEMMNI (the 4th field of kernel.sem) and " +
				"their semaphores against SEMMNS (the 2nd); the row is the worse of the two. Past either semget(2) " +
				"fails with ENOSPC. Leaked device-mapper udev cookies (dmsetup udevcomplete_all) and the sets of a " +
				"killed Apache or PostgreSQL are the usual fillers.",
			Signatures: []*Signature{
				NewSignature(`(?i)semget\b.*(no space left on device|ENOSPC|errno[ =]28)`),
				NewSignature(`(?i)sem_get\(\).*no space left on device`), // PHP sysvsem
				NewSignature(`(?i)could not create semaphores: no space left on device`),
				NewSignature(`(?i)create semaphore failed: no space left on device`), // ipcmk
				NewSignature(`(?i)no space left on device: couldn't create (the )?(accept lock|[a-z-]+ mutex)`),
				NewSignature(`(?i)limit for the maximum number of semaphores reached`), // dmsetup
				NewSignature(`(?i)dm_task_set_cookie failed`),
				NewSignature(`(?i)\(SEMMNI\).*\(SEMMNS\)`),
			},
			Remedy: ipcRemedy,
		},
		{
			ID:    "ipc.msg",
			Title: "System V message queues (kernel.msgmni)",
			Unit:  "queues",
			Doc: "System V message queues of one IPC namespace against kernel.msgmni (32000 on current kernels, " +
				"16 on old ones). Past it msgget(2) fails with ENOSPC; queues outlive their creator until removed " +
				"(ipcrm -q).",
			Signatures: []*Signature{
				NewSignature(`(?i)msgget\b.*(no space left on device|ENOSPC|errno[ =]28)`),
				NewSignature(`(?i)msg_get_queue\(\).*no space left on device`),           // PHP sysvmsg
				NewSignature(`(?i)create message queue failed: no space left on device`), // ipcmk
			},
			Remedy: ipcRemedy,
		},
		{
			ID:    "mqueue",
			Title: "POSIX message queues (fs.mqueue.queues_max)",
			Unit:  "queues",
			Doc: "POSIX message queues of one IPC namespace against fs.mqueue.queues_max (default 256), counted " +
				"in a mounted mqueue filesystem of the namespace (/dev/mqueue; a namespace with none gets no row). Past the limit mq_open(3) fails " +
				"with ENOSPC for every process without CAP_SYS_RESOURCE. Queues live until mq_unlink, not until " +
				"their creator exits.",
			Signatures: []*Signature{
				NewSignature(`(?i)mq_open\w*\b.*(no space left on device|ENOSPC|errno[ =]28)`),
				NewSignature(`(?i)queues_max`),
			},
			Remedy: ipcRemedy,
		},
	},
	Read: readIPC,
}

// ipcInitNS is the inode of the initial IPC namespace (PROC_IPC_INIT_INO).
const ipcInitNS = 0xEFFFFFFF

// The files of one IPC namespace, under procfs.
const (
	ipcShm       = "sysvipc/shm"
	ipcSem       = "sysvipc/sem"
	ipcMsg       = "sysvipc/msg"
	ipcShmmni    = "sys/kernel/shmmni"
	ipcShmall    = "sys/kernel/shmall"
	ipcSemCtl    = "sys/kernel/sem"
	ipcMsgmni    = "sys/kernel/msgmni"
	ipcQueuesMax = "sys/fs/mqueue/queues_max"
)

var ipcFiles = []string{ipcShm, ipcSem, ipcMsg, ipcShmmni, ipcShmall, ipcSemCtl, ipcMsgmni, ipcQueuesMax}

// ipcMNI is IPCMNI, the ceiling of shmmni, msgmni and SEMMNI without the
// ipcmni_extend boot parameter; queuesMaxCeiling is HARD_QUEUESMAX.
const (
	ipcMNI           = 32768
	queuesMaxCeiling = 65536
)

// dmCookieMagic is the high half of device-mapper's udev cookies, which
// are the keys of their semaphore sets (libdevmapper DM_COOKIE_MAGIC).
const dmCookieMagic = 0x0D4D

// ipcNamespace is one IPC namespace and the processes seen in it.
type ipcNamespace struct {
	ino   uint64
	host  bool
	procs []*census.Process // ascending pid
	// complete is true when the namespace of every process is known, so
	// that a uid with no process in it truly runs none there.
	complete bool
}

func (n *ipcNamespace) scope() string {
	s := "ipc ns " + strconv.FormatUint(n.ino, 10)
	if n.host {
		s += " (host)"
	}
	return s
}

// ipcNote is what a namespace's remedies need beyond its rows: a process
// to enter it by, kernel.sem as a whole, the leftovers found. Remedy gets
// the row only, so notes are kept by scope.
type ipcNote struct {
	host    bool
	pid     int // a process of the namespace, for nsenter
	sem     [4]int64
	semOK   bool
	orphans []int64 // shmids attached by none, creator gone
	cookies []int64 // semids of device-mapper udev cookies
	// leftovers are the ids of sets and queues whose owner runs no
	// process in the namespace, by limit.
	leftovers map[string][]int64
	mqDir     string // mount point of the mqueue fs counted
	// staleQueues are the POSIX queues whose owner runs no process in
	// the namespace.
	staleQueues []string
	pageSize    int64
}

var ipcNotes sync.Map // scope -> *ipcNote

func ipcNoteOf(scope string) *ipcNote {
	if v, ok := ipcNotes.Load(scope); ok {
		return v.(*ipcNote)
	}
	return &ipcNote{}
}

func readIPC(env *Env) []Usage {
	procfs := ipcIsProcfs(env.Host.Proc)
	nss, unseen := ipcNamespaces(env, procfs)
	self := selfIPCNamespace()
	mq := &mqueueFinder{env: env, procfs: procfs}
	out := make([]Usage, 0, 4*len(nss)+4)
	current := map[string]bool{}
	for _, ns := range nss {
		current[ns.scope()] = true
		note := &ipcNote{host: ns.host, leftovers: map[string][]int64{}, pageSize: int64(os.Getpagesize())}
		if len(ns.procs) > 0 {
			note.pid = ns.procs[0].PID
		}
		v := readIPCView(env, ns, procfs, self)
		if v.gone {
			continue // its processes exited since the census
		}
		// The rows go straight into out (a slice of their own per
		// namespace cost a quarter of a megabyte per check at 200).
		start := len(out)
		out = append(out, shmRow(env, ns, v, note), semRow(env, ns, v, note), msgRow(env, ns, v, note))
		if r := mqueueRow(env, ns, v, note, mq); r.Limit != "" {
			out = append(out, r)
		}
		ipcNotes.Store(ns.scope(), note)
		ipcAttributeToNamespace(env, ns, out[start:])
	}
	// Namespaces that are gone (pods come and go under enospc serve)
	// leave no note behind.
	ipcNotes.Range(func(k, _ any) bool {
		if !current[k.(string)] {
			ipcNotes.Delete(k)
		}
		return true
	})
	if unseen > 0 && !env.Root && env.Live {
		out = append(out, Usage{Limit: "ipc.shm", Scope: "other ipc namespaces", Unit: "segments", Severity: Unknown, NeedsRoot: true,
			Reason: fmt.Sprintf("the IPC namespaces of %d processes could not be read; run as root", unseen)})
	}
	return out
}

// ipcNamespaces lists the IPC namespaces of the census, the initial one
// first (and always, even with no census), and how many processes'
// namespaces could not be read.
//
// A fixture tree's processes have no ipc link: they are the host's.
func ipcNamespaces(env *Env, procfs bool) ([]*ipcNamespace, int) {
	initNS := uint64(0)
	byIno := map[uint64]*ipcNamespace{}
	unseen := 0
	var unlinked []*census.Process
	if c := env.Census; c != nil {
		for i := range c.Processes {
			p := &c.Processes[i]
			if p.PID == 1 {
				initNS = p.NS[census.NSIPC]
			}
			ino := p.NS[census.NSIPC]
			if ino == 0 {
				if procfs {
					unseen++
				} else {
					unlinked = append(unlinked, p)
				}
				continue
			}
			n := byIno[ino]
			if n == nil {
				n = &ipcNamespace{ino: ino}
				byIno[ino] = n
			}
			n.procs = append(n.procs, p)
		}
	}
	if initNS == 0 {
		if t, err := os.Readlink(env.Host.ProcPath("1", "ns", "ipc")); err == nil {
			initNS = census.NSInode(t)
		}
	}
	if initNS == 0 {
		initNS = ipcInitNS
	}
	if byIno[initNS] == nil {
		byIno[initNS] = &ipcNamespace{ino: initNS}
	}
	byIno[initNS].host = true
	byIno[initNS].procs = append(byIno[initNS].procs, unlinked...)
	out := make([]*ipcNamespace, 0, len(byIno))
	for _, n := range byIno {
		n.complete = env.Census != nil && unseen == 0
		sort.Slice(n.procs, func(i, j int) bool { return n.procs[i].PID < n.procs[j].PID })
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].host != out[j].host {
			return out[i].host
		}
		return out[i].ino < out[j].ino
	})
	return out, unseen
}

// ipcIsProcfs reports whether dir is a mounted procfs (not a fixture tree).
func ipcIsProcfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

// selfIPCNamespace is the IPC namespace this process reads /proc/sysvipc
// and the IPC sysctls of; 0 when unknown.
func selfIPCNamespace() uint64 {
	for _, p := range []string{"/proc/thread-self/ns/ipc", "/proc/self/ns/ipc"} {
		if t, err := os.Readlink(p); err == nil {
			return census.NSInode(t)
		}
	}
	return 0
}

// ipcView is the files of one namespace as read, or why they were not.
type ipcView struct {
	data      map[string][]byte
	errs      map[string]error
	needsRoot bool
	// gone: every process of the namespace exited since the census.
	gone bool
}

func (v *ipcView) get(name string) ([]byte, error) {
	if b, ok := v.data[name]; ok {
		return b, nil
	}
	if err := v.errs[name]; err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s not read", name)
}

func (v *ipcView) int(name string) (int64, error) {
	b, err := v.get(name)
	if err != nil {
		return 0, err
	}
	return ipcParseUint(name, b)
}

// ipcParseUint reads one unsigned number, capped at MaxInt64
// (kernel.shmall defaults to ULONG_MAX - 2^24).
func ipcParseUint(name string, b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, err2 := strconv.ParseInt(s, 10, 64); err2 == nil && i < 0 {
			return 0, fmt.Errorf("%s: negative value %d", name, i)
		}
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if u > math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(u), nil
}

// readIPCView reads a namespace's files: directly when they answer for it
// (the fixture tree's initial namespace, or the namespace enospc runs in),
// else by joining it through one of its processes.
func readIPCView(env *Env, ns *ipcNamespace, procfs bool, self uint64) *ipcView {
	v := &ipcView{data: map[string][]byte{}, errs: map[string]error{}}
	fail := func(err error) *ipcView {
		for _, f := range ipcFiles {
			v.errs[f] = err
		}
		return v
	}
	direct := (!procfs && ns.host) || (procfs && self != 0 && ns.ino == self)
	if direct {
		for _, f := range ipcFiles {
			if b, err := env.Host.ReadProc(f); err != nil {
				v.errs[f] = err
			} else {
				v.data[f] = b
			}
		}
		return v
	}
	switch {
	case !procfs:
		return fail(errors.New("a fixture tree shows the initial IPC namespace only"))
	case !env.Live:
		return fail(fmt.Errorf("enospc runs in IPC namespace %d and can join another only on the live host (run it there, or with hostPID)", self))
	case !env.Root:
		v.needsRoot = true
		return fail(fmt.Errorf("reading IPC namespace %d means joining it (setns), which needs root", ns.ino))
	case len(ns.procs) == 0:
		return fail(errors.New("no process of the namespace was seen to join it through"))
	}
	paths := make([]string, len(ipcFiles))
	for i, f := range ipcFiles {
		paths[i] = env.Host.ProcPath(f)
	}
	var lastErr error
	gone := true
	for i, p := range ns.procs {
		if i == 4 {
			break
		}
		files, err := env.Host.ReadInNamespace(env.Host.ProcPath(strconv.Itoa(p.PID), "ns", "ipc"), unix.CLONE_NEWIPC, ns.ino, paths...)
		if files == nil {
			lastErr = err
			gone = gone && errors.Is(err, host.ErrNamespaceGone)
			continue
		}
		for i, f := range ipcFiles {
			if b, ok := files[paths[i]]; ok {
				v.data[f] = b
			} else {
				v.errs[f] = ipcFileError(err, paths[i])
			}
		}
		return v
	}
	if gone && lastErr != nil {
		v.gone = true
	}
	return fail(fmt.Errorf("join IPC namespace %d: %w", ns.ino, lastErr))
}

// ipcFileError picks the error about path out of a joined error.
func ipcFileError(err error, path string) error {
	if err == nil {
		return fmt.Errorf("%s not read", path)
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if strings.Contains(e.Error(), path) {
				return e
			}
		}
	}
	return err
}

// ipcUnreadable words an error reading a /proc/sysvipc file.
func ipcUnreadable(name string, err error) error {
	if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(name, "sysvipc/") {
		return fmt.Errorf("%w (a kernel built without System V IPC, CONFIG_SYSVIPC, has no /proc/%s)", err, name)
	}
	return err
}

// sysvTable is a /proc/sysvipc file: a header naming the columns, one
// line per object.
type sysvTable struct {
	cols map[string]int
	rows [][]string
	// bad counts lines that do not have the header's columns.
	bad int
}

// parseSysvTable parses a /proc/sysvipc file and checks that its header
// has the columns need.
func parseSysvTable(b []byte, need ...string) (sysvTable, error) {
	var t sysvTable
	header := true
	// Lines are cut from b as it is: a scanner's buffer for each table of
	// each of a bad night's 200 IPC namespaces was most of what it cost.
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		if header {
			if t.cols = sysvHeaders.cols(line); t.cols != nil {
				header = false
			}
			continue
		}
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) < len(t.cols) {
			t.bad++
			continue
		}
		t.rows = append(t.rows, f)
	}
	if header {
		return t, errors.New("empty: no header line")
	}
	var missing []string
	for _, c := range need {
		if _, ok := t.cols[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("header lacks the columns %s", strings.Join(missing, ", "))
	}
	return t, nil
}

// sysvHeaders keeps the column maps of the headers seen: every IPC
// namespace's tables have the same header, and building its map again
// for each of 200 namespaces was most of what parsing them allocated.
// The maps are never written once stored.
var sysvHeaders = &sysvHeaderCache{m: map[string]map[string]int{}}

type sysvHeaderCache struct {
	mu sync.Mutex
	m  map[string]map[string]int
}

// cols returns the column map of a header line; nil for a blank line.
func (c *sysvHeaderCache) cols(line []byte) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cols, ok := c.m[string(line)]; ok {
		return cols
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return nil
	}
	cols := make(map[string]int, len(f))
	for i, name := range f {
		cols[name] = i
	}
	if len(c.m) < 16 { // the kernel has three headers; fixtures and fuzzing more
		c.m[string(line)] = cols
	}
	return cols
}

// num reads column c of row r as an integer; ok is false when it is not one.
func (t sysvTable) num(r []string, c string) (int64, bool) {
	i, ok := t.cols[c]
	if !ok || i >= len(r) {
		return 0, false
	}
	v, err := strconv.ParseInt(r[i], 10, 64)
	if err != nil {
		u, err2 := strconv.ParseUint(r[i], 10, 64)
		if err2 != nil {
			return 0, false
		}
		v = int64(min(u, math.MaxInt64))
	}
	return v, true
}

// shmSegment is one line of /proc/sysvipc/shm.
type shmSegment struct {
	Key, ID   int64
	Size      int64
	CPID      int
	Nattch    int64
	UID, CUID int
}

// semSet is one line of /proc/sysvipc/sem.
type semSet struct {
	Key, ID   int64
	NSems     int64
	UID, CUID int
}

// msgQueue is one line of /proc/sysvipc/msg.
type msgQueue struct {
	Key, ID   int64
	CBytes    int64
	QNum      int64
	UID, CUID int
}

// parseSysvShm parses /proc/sysvipc/shm; bad counts the lines skipped.
func parseSysvShm(b []byte) (segs []shmSegment, bad int, err error) {
	t, err := parseSysvTable(b, "key", "shmid", "size", "cpid", "nattch", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var s shmSegment
		var ok [7]bool
		var cpid, uid, cuid int64
		s.Key, ok[0] = t.num(r, "key")
		s.ID, ok[1] = t.num(r, "shmid")
		s.Size, ok[2] = t.num(r, "size")
		cpid, ok[3] = t.num(r, "cpid")
		s.Nattch, ok[4] = t.num(r, "nattch")
		uid, ok[5] = t.num(r, "uid")
		cuid, ok[6] = t.num(r, "cuid")
		if ok != [7]bool{true, true, true, true, true, true, true} || s.Size < 0 {
			bad++
			continue
		}
		s.CPID, s.UID, s.CUID = int(cpid), int(uid), int(cuid)
		segs = append(segs, s)
	}
	return segs, bad, nil
}

// parseSysvSem parses /proc/sysvipc/sem.
func parseSysvSem(b []byte) (sets []semSet, bad int, err error) {
	t, err := parseSysvTable(b, "key", "semid", "nsems", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var s semSet
		var ok [5]bool
		var uid, cuid int64
		s.Key, ok[0] = t.num(r, "key")
		s.ID, ok[1] = t.num(r, "semid")
		s.NSems, ok[2] = t.num(r, "nsems")
		uid, ok[3] = t.num(r, "uid")
		cuid, ok[4] = t.num(r, "cuid")
		if ok != [5]bool{true, true, true, true, true} || s.NSems < 0 {
			bad++
			continue
		}
		s.UID, s.CUID = int(uid), int(cuid)
		sets = append(sets, s)
	}
	return sets, bad, nil
}

// parseSysvMsg parses /proc/sysvipc/msg.
func parseSysvMsg(b []byte) (qs []msgQueue, bad int, err error) {
	t, err := parseSysvTable(b, "key", "msqid", "uid", "cuid")
	if err != nil {
		return nil, 0, err
	}
	bad = t.bad
	for _, r := range t.rows {
		var q msgQueue
		var ok [4]bool
		var uid, cuid int64
		q.Key, ok[0] = t.num(r, "key")
		q.ID, ok[1] = t.num(r, "msqid")
		uid, ok[2] = t.num(r, "uid")
		cuid, ok[3] = t.num(r, "cuid")
		if ok != [4]bool{true, true, true, true} {
			bad++
			continue
		}
		q.CBytes, _ = t.num(r, "cbytes")
		q.QNum, _ = t.num(r, "qnum")
		q.UID, q.CUID = int(uid), int(cuid)
		qs = append(qs, q)
	}
	return qs, bad, nil
}

// parseSemCtl parses kernel.sem: SEMMSL SEMMNS SEMOPM SEMMNI.
func parseSemCtl(b []byte) ([4]int64, error) {
	var out [4]int64
	f := strings.Fields(string(b))
	if len(f) != 4 {
		return out, fmt.Errorf("kernel.sem: want 4 numbers (SEMMSL SEMMNS SEMOPM SEMMNI), have %q", strings.TrimSpace(string(b)))
	}
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return out, fmt.Errorf("kernel.sem: field %d %q is not a count", i+1, s)
		}
		out[i] = v
	}
	return out, nil
}

// ipcUIDProcs says which uids run processes in a namespace, and what.
type ipcUIDProcs map[int][]*census.Process

func ipcNSUIDs(ns *ipcNamespace) ipcUIDProcs {
	m := ipcUIDProcs{}
	for _, p := range ns.procs {
		m[p.UID] = append(m[p.UID], p)
		if p.EUID != p.UID {
			m[p.EUID] = append(m[p.EUID], p)
		}
	}
	return m
}

// runs words what a uid runs in the namespace: "runs postgres (12
// processes)", or that it runs nothing.
func (m ipcUIDProcs) runs(uid int, known bool) string {
	ps := m[uid]
	if len(ps) == 0 {
		if !known {
			return ""
		}
		return fmt.Sprintf("uid %d runs no process in this namespace", uid)
	}
	return fmt.Sprintf("uid %d runs %s (%d %s)", uid, ps[0].Comm, len(ps), ipcPlural(len(ps), "process", "processes"))
}

func ipcPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ipcIDList lists ids for a consumer's name: "3, 4, 5 and 12 more".
func ipcIDList(ids []int64, n int) string {
	var b strings.Builder
	for i, id := range ids {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(ids)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// alive returns the census process pid when it runs in the namespace.
func (n *ipcNamespace) alive(pid int) *census.Process {
	if pid <= 0 {
		return nil
	}
	i := sort.Search(len(n.procs), func(i int) bool { return n.procs[i].PID >= pid })
	if i < len(n.procs) && n.procs[i].PID == pid {
		return n.procs[i]
	}
	return nil
}

// ipcPages is the pages a segment of size bytes takes, rounded up.
func ipcPages(size, pageSize int64) int64 {
	p := size / pageSize
	if size%pageSize != 0 {
		p++
	}
	return p
}

// ipcWithOther notes the other limit of a two-limit row in its reason.
func ipcWithOther(u, o Usage) Usage {
	if o.Max >= 1<<62 {
		// kernel.shmall's default, ULONG_MAX - 2^24: no limit.
		u.Reason = fmt.Sprintf("also %d %s in use, of no set limit", o.Used, o.Unit)
		return u
	}
	u.Reason = fmt.Sprintf("also %d of %d %s in use", o.Used, o.Max, o.Unit)
	return u
}

func (v *ipcView) unknownAll(id ID, scope, unit, file string, err error) Usage {
	u := unknown(id, scope, unit, ipcUnreadable(file, err))
	u.NeedsRoot = v.needsRoot
	return u
}

func shmRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Usage {
	scope := ns.scope()
	b, err := v.get(ipcShm)
	if err != nil {
		return v.unknownAll("ipc.shm", scope, "segments", ipcShm, err)
	}
	segs, bad, err := parseSysvShm(b)
	if err != nil {
		return unknown("ipc.shm", scope, "segments", fmt.Errorf("/proc/%s: %w", ipcShm, err))
	}
	mni, errN := v.int(ipcShmmni)
	all, errA := v.int(ipcShmall)
	if errN != nil && errA != nil {
		return unknown("ipc.shm", scope, "segments", errN)
	}
	var pages int64
	for _, s := range segs {
		pages += ipcPages(s.Size, note.pageSize)
	}
	segRow := Usage{Limit: "ipc.shm", Scope: scope, Used: int64(len(segs)), Max: mni, Unit: "segments", zeroIsFull: true}
	pageRow := Usage{Limit: "ipc.shm", Scope: scope, Used: pages, Max: all, Unit: "pages", zeroIsFull: true}
	var u Usage
	switch {
	case errN != nil:
		u = pageRow
		u.Reason = fmt.Sprintf("kernel.shmmni unreadable: %v", errN)
	case errA != nil:
		u = segRow
		u.Reason = fmt.Sprintf("kernel.shmall unreadable: %v", errA)
	case pageRow.Ratio() > segRow.Ratio():
		u = ipcWithOther(pageRow, segRow)
		u.Reason += " (kernel.shmmni)"
	default:
		u = ipcWithOther(segRow, pageRow)
		u.Reason += " (kernel.shmall)"
	}
	// Holders: the segments of one owner and creator; a creator that no
	// longer runs in the namespace is named, not attributed.
	uids := ipcNSUIDs(ns)
	type key struct {
		uid, cpid int
		orphan    bool
	}
	type group struct {
		ids   []int64
		gone  []int64 // pids of creators that have exited
		count int64
	}
	groups := map[key]*group{}
	var order []key
	for _, s := range segs {
		creator := ns.alive(s.CPID)
		k := key{uid: s.UID, orphan: creator == nil && s.Nattch == 0}
		if creator != nil {
			k.cpid = creator.PID
		}
		if k.orphan {
			note.orphans = append(note.orphans, s.ID)
		}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.ids = append(g.ids, s.ID)
		if creator == nil && s.CPID > 0 && !slices.Contains(g.gone, int64(s.CPID)) {
			g.gone = append(g.gone, int64(s.CPID))
		}
		if u.Unit == "pages" {
			g.count += ipcPages(s.Size, note.pageSize)
		} else {
			g.count++
		}
	}
	var cs []Consumer
	for _, k := range order {
		g := groups[k]
		c := Consumer{UID: intp(k.uid), Count: g.count}
		name := "shmid " + ipcIDList(g.ids, 5)
		if p := ns.alive(k.cpid); p != nil {
			c.PID, c.Comm = p.PID, p.Comm
		}
		switch len(g.gone) {
		case 0:
		case 1:
			name += fmt.Sprintf("; created by pid %d, which has exited", g.gone[0])
		default:
			name += fmt.Sprintf("; created by pids %s, which have exited", ipcIDList(g.gone, 5))
		}
		if k.orphan {
			name += "; attached by no process"
		}
		if r := uids.runs(k.uid, c.PID == 0 && ns.complete); r != "" {
			name += "; " + r
		}
		c.Name = name
		cs = append(cs, c)
	}
	u.setConsumers(cs, topConsumers)
	if len(note.orphans) > 0 {
		u.Reason += fmt.Sprintf("; %d segments are attached by no process and their creator has exited", len(note.orphans))
	}
	if bad > 0 {
		u.Reason += fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcShm)
	}
	u.NeedsRoot = v.needsRoot
	return u
}

func semRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Usage {
	scope := ns.scope()
	b, err := v.get(ipcSem)
	if err != nil {
		return v.unknownAll("ipc.sem", scope, "sets", ipcSem, err)
	}
	sets, bad, err := parseSysvSem(b)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", fmt.Errorf("/proc/%s: %w", ipcSem, err))
	}
	cb, err := v.get(ipcSemCtl)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", err)
	}
	ctl, err := parseSemCtl(cb)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", err)
	}
	note.sem, note.semOK = ctl, true
	var sems int64
	for _, s := range sets {
		sems += s.NSems
	}
	setRow := Usage{Limit: "ipc.sem", Scope: scope, Used: int64(len(sets)), Max: ctl[3], Unit: "sets", zeroIsFull: true}
	semsRow := Usage{Limit: "ipc.sem", Scope: scope, Used: sems, Max: ctl[1], Unit: "semaphores", zeroIsFull: true}
	var u Usage
	if semsRow.Ratio() > setRow.Ratio() {
		u = ipcWithOther(semsRow, setRow)
		u.Reason += " (SEMMNI, kernel.sem's 4th field)"
	} else {
		u = ipcWithOther(setRow, semsRow)
		u.Reason += " (SEMMNS, kernel.sem's 2nd field)"
	}
	uids := ipcNSUIDs(ns)
	type key struct {
		uid, cuid int
		cookie    bool
	}
	type group struct {
		ids   []int64
		count int64
	}
	groups := map[key]*group{}
	var order []key
	for _, s := range sets {
		k := key{uid: s.UID, cuid: s.CUID, cookie: uint32(s.Key)>>16 == dmCookieMagic}
		if k.cookie {
			note.cookies = append(note.cookies, s.ID)
		} else if ns.complete && s.UID != 0 && len(uids[s.UID]) == 0 {
			note.leftovers["ipc.sem"] = append(note.leftovers["ipc.sem"], s.ID)
		}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.ids = append(g.ids, s.ID)
		if u.Unit == "semaphores" {
			g.count += s.NSems
		} else {
			g.count++
		}
	}
	var cs []Consumer
	for _, k := range order {
		g := groups[k]
		name := "semid " + ipcIDList(g.ids, 5)
		if k.cookie {
			name = "device-mapper udev cookies (keys 0x0d4dXXXX), " + name
		}
		if k.cuid != k.uid {
			name += fmt.Sprintf("; created by uid %d", k.cuid)
		}
		if r := uids.runs(k.uid, ns.complete); r != "" {
			name += "; " + r
		}
		cs = append(cs, Consumer{UID: intp(k.uid), Name: name, Count: g.count})
	}
	u.setConsumers(cs, topConsumers)
	if n := len(note.cookies); n > 0 {
		u.Reason += fmt.Sprintf("; %d sets are device-mapper udev cookies", n)
	}
	if n := len(note.leftovers["ipc.sem"]); n > 0 {
		u.Reason += fmt.Sprintf("; %d sets belong to uids that run no process in this namespace", n)
	}
	if bad > 0 {
		u.Reason += fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcSem)
	}
	u.NeedsRoot = v.needsRoot
	return u
}

func msgRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Usage {
	scope := ns.scope()
	b, err := v.get(ipcMsg)
	if err != nil {
		return v.unknownAll("ipc.msg", scope, "queues", ipcMsg, err)
	}
	qs, bad, err := parseSysvMsg(b)
	if err != nil {
		return unknown("ipc.msg", scope, "queues", fmt.Errorf("/proc/%s: %w", ipcMsg, err))
	}
	mni, err := v.int(ipcMsgmni)
	if err != nil {
		return unknown("ipc.msg", scope, "queues", err)
	}
	u := Usage{Limit: "ipc.msg", Scope: scope, Used: int64(len(qs)), Max: mni, Unit: "queues", zeroIsFull: true}
	uids := ipcNSUIDs(ns)
	type key struct{ uid, cuid int }
	type group struct {
		ids      []int64
		messages int64
	}
	groups := map[key]*group{}
	var order []key
	for _, q := range qs {
		k := key{q.UID, q.CUID}
		if ns.complete && q.UID != 0 && len(uids[q.UID]) == 0 {
			note.leftovers["ipc.msg"] = append(note.leftovers["ipc.msg"], q.ID)
		}
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.ids = append(g.ids, q.ID)
		g.messages += q.QNum
	}
	var cs []Consumer
	for _, k := range order {
		g := groups[k]
		name := fmt.Sprintf("msqid %s; %d messages queued", ipcIDList(g.ids, 5), g.messages)
		if k.cuid != k.uid {
			name += fmt.Sprintf("; created by uid %d", k.cuid)
		}
		if r := uids.runs(k.uid, ns.complete); r != "" {
			name += "; " + r
		}
		cs = append(cs, Consumer{UID: intp(k.uid), Name: name, Count: int64(len(g.ids))})
	}
	u.setConsumers(cs, topConsumers)
	if n := len(note.leftovers["ipc.msg"]); n > 0 {
		u.Reason = fmt.Sprintf("%d queues belong to uids that run no process in this namespace", n)
	}
	if bad > 0 {
		u.Reason = strings.TrimPrefix(u.Reason+fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcMsg), "; ")
	}
	u.NeedsRoot = v.needsRoot
	return u
}

// errNoMqueueMount: the namespace's POSIX queues cannot be counted. Such a
// namespace gets no mqueue row rather than an unknown one: most hosts
// without /dev/mqueue use no POSIX queues, and an unknown row would make
// every check of them exit 3.
var errNoMqueueMount = errors.New("no mqueue filesystem of this IPC namespace is mounted where its processes see it (mount -t mqueue none /dev/mqueue in it to count its POSIX queues)")

// mqueueDir is where one IPC namespace's mqueue filesystem can be listed.
type mqueueDir struct {
	path       string // readable path of the directory
	fallback   string // another path to try (the host's root)
	mountPoint string // as the namespace's processes see it
}

// mqueueFinder maps mqueue mounts to the IPC namespaces they show. Every
// mount of mqueue made in one IPC namespace shows that namespace's queues
// (one superblock per namespace, so one device number); a mount is found
// in the mount tables of processes, and belongs to the namespace of the
// processes that can see it, or to the host's when pid 1 sees it.
// mqueueMounts parses the mqueue lines of a mountinfo only: a container's
// table has dozens of mounts, a bad night's hundreds of tables thousands,
// and only these are looked at. The kernel escapes spaces in fields, so
// " - mqueue " can only be the separator and the type.
func mqueueMounts(b []byte) []Mount {
	var out []Mount
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		if !bytes.Contains(line, []byte(" - mqueue ")) {
			continue
		}
		if m, ok := parseMountInfoLine(string(line)); ok && m.FSType == "mqueue" {
			out = append(out, m)
		}
	}
	return out
}

type mqueueFinder struct {
	env    *Env
	procfs bool
	once   sync.Once
	dirs   map[uint64]mqueueDir
	err    map[uint64]error
}

func (f *mqueueFinder) find(ns *ipcNamespace) (mqueueDir, error) {
	f.once.Do(f.load)
	if d, ok := f.dirs[ns.ino]; ok {
		return d, nil
	}
	if err := f.err[ns.ino]; err != nil {
		return mqueueDir{}, err
	}
	return mqueueDir{}, errNoMqueueMount
}

func (f *mqueueFinder) load() {
	f.dirs, f.err = map[uint64]mqueueDir{}, map[uint64]error{}
	env := f.env
	if !f.procfs || env.Census == nil {
		// A fixture tree (or no census): the host's mount table, for the
		// initial namespace.
		mounts, err := env.Mounts()
		nss, _ := ipcNamespaces(env, false)
		host := nss[0].ino
		if err != nil {
			f.err[host] = err
			return
		}
		for _, m := range mounts {
			if m.FSType == "mqueue" {
				f.dirs[host] = mqueueDir{path: env.Host.RootPath(m.MountPoint), mountPoint: m.MountPoint}
				return
			}
		}
		return
	}
	// One process per mount namespace, and the IPC namespaces seen with it.
	type mntNS struct {
		pids []int
		ipc  map[uint64]bool
	}
	byMnt := map[uint64]*mntNS{}
	var mntOrder []uint64
	var initMnt, initIPC uint64
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		mnt, ipc := p.NS[census.NSMnt], p.NS[census.NSIPC]
		if p.PID == 1 {
			initMnt, initIPC = mnt, ipc
		}
		if mnt == 0 || ipc == 0 {
			continue
		}
		m := byMnt[mnt]
		if m == nil {
			m = &mntNS{ipc: map[uint64]bool{}}
			byMnt[mnt] = m
			mntOrder = append(mntOrder, mnt)
		}
		if len(m.pids) < 4 {
			m.pids = append(m.pids, p.PID)
		}
		m.ipc[ipc] = true
	}
	type seen struct {
		ipc   map[uint64]bool
		where []mqueueDir // a process that sees the mount, and where
		host  bool
	}
	byDev := map[string]*seen{}
	var devOrder []string
	for _, mnt := range mntOrder {
		m := byMnt[mnt]
		var mounts []Mount
		pid := 0
		for _, p := range m.pids {
			err := env.Host.ViewProc(func(b []byte) error {
				mounts = mqueueMounts(b)
				return nil
			}, strconv.Itoa(p), "mountinfo")
			if err != nil {
				continue
			}
			pid = p
			break
		}
		for _, mt := range mounts {
			if mt.FSType != "mqueue" {
				continue
			}
			s := byDev[mt.Device]
			if s == nil {
				s = &seen{ipc: map[uint64]bool{}}
				byDev[mt.Device] = s
				devOrder = append(devOrder, mt.Device)
			}
			for ipc := range m.ipc {
				s.ipc[ipc] = true
			}
			if mnt == initMnt {
				s.host = true
			}
			d := mqueueDir{path: env.Host.ProcPath(strconv.Itoa(pid), "root"+mt.MountPoint), mountPoint: mt.MountPoint}
			if mnt == initMnt {
				d.fallback = env.Host.RootPath(mt.MountPoint)
			}
			s.where = append(s.where, d)
		}
	}
	for _, dev := range devOrder {
		s := byDev[dev]
		owner := uint64(0)
		switch {
		case s.host && initIPC != 0:
			// pid 1's mount table shows the host's queues: systemd
			// mounts /dev/mqueue at boot, in the initial namespace.
			owner = initIPC
		case len(s.ipc) == 1:
			for ipc := range s.ipc {
				owner = ipc
			}
		}
		if owner == 0 {
			continue
		}
		if _, ok := f.dirs[owner]; !ok {
			f.dirs[owner] = s.where[0]
		}
	}
}

func mqueueRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote, f *mqueueFinder) Usage {
	scope := ns.scope()
	maxQ, err := v.int(ipcQueuesMax)
	if err != nil {
		u := unknown("mqueue", scope, "queues", err)
		u.NeedsRoot = v.needsRoot
		return u
	}
	d, err := f.find(ns)
	if errors.Is(err, errNoMqueueMount) {
		return Usage{} // no row
	}
	if err != nil {
		return unknown("mqueue", scope, "queues", err)
	}
	entries, err := os.ReadDir(d.path)
	if err != nil && d.fallback != "" {
		entries, err = os.ReadDir(d.fallback)
		if err == nil {
			d.path = d.fallback
		}
	}
	if err != nil {
		u := unknown("mqueue", scope, "queues", fmt.Errorf("list the mqueue filesystem at %s: %w", d.mountPoint, err))
		u.NeedsRoot = !env.Root && errors.Is(err, os.ErrPermission)
		return u
	}
	note.mqDir = d.mountPoint
	uids := ipcNSUIDs(ns)
	type group struct{ names []string }
	groups := map[int]*group{}
	var order []int
	var count int64
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		count++
		uid := -1
		if fi, err := os.Lstat(filepath.Join(d.path, e.Name())); err == nil && f.procfs {
			// A fixture's files belong to whoever checked it out.
			uid = ipcFileUID(fi)
		}
		if ns.complete && uid > 0 && len(uids[uid]) == 0 {
			note.staleQueues = append(note.staleQueues, "/"+e.Name())
		}
		g := groups[uid]
		if g == nil {
			g = &group{}
			groups[uid] = g
			order = append(order, uid)
		}
		g.names = append(g.names, "/"+e.Name())
	}
	u := Usage{Limit: "mqueue", Scope: scope, Used: count, Max: maxQ, Unit: "queues", zeroIsFull: true}
	var cs []Consumer
	for _, uid := range order {
		g := groups[uid]
		names := g.names
		name := strings.Join(names[:min(len(names), 5)], ", ")
		if len(names) > 5 {
			name += fmt.Sprintf(" and %d more", len(names)-5)
		}
		c := Consumer{Name: "queues " + name, Count: int64(len(names))}
		if uid >= 0 {
			c.UID = intp(uid)
			if r := uids.runs(uid, ns.complete); r != "" {
				c.Name += "; " + r
			}
		}
		cs = append(cs, c)
	}
	u.setConsumers(cs, topConsumers)
	u.Reason = fmt.Sprintf("counted in the mqueue filesystem at %s; queues unlinked while still open count too and are not seen", d.mountPoint)
	return u
}

// ipcFileUID is the owner of a file from its stat, -1 when unknown.
func ipcFileUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// ipcAttributeToNamespace names the container or pod behind the holders of
// a container's namespace whose creator no longer runs: the objects of an
// IPC namespace belong to whoever owns the namespace, and die with it.
func ipcAttributeToNamespace(env *Env, ns *ipcNamespace, rows []Usage) {
	if ns.host || len(ns.procs) == 0 {
		return
	}
	a := env.attributor()
	var ref Consumer
	same, first := true, true
	for _, p := range ns.procs {
		c := Consumer{PID: p.PID}
		a.Consumer(&c)
		if first {
			ref, first = c, false
			continue
		}
		if c.Container != ref.Container {
			same = false
		}
		if c.PodUID != ref.PodUID {
			return
		}
	}
	if !same {
		ref.Container = ""
	}
	if ref.Container == "" && ref.PodUID == "" {
		return
	}
	for i := range rows {
		for j := range rows[i].Consumers {
			c := &rows[i].Consumers[j]
			if c.PID != 0 {
				continue
			}
			if c.Container == "" {
				c.Container = ref.Container
			}
			if c.PodUID == "" {
				c.PodUID, c.QoS = ref.PodUID, ref.QoS
			}
		}
	}
}

// ipcRemedy is the remedy of every row of the family.
func ipcRemedy(u Usage) []string {
	n := ipcNoteOf(u.Scope)
	out := []string{}
	in := ""
	if !n.host {
		pid := "PID"
		if n.pid > 0 {
			pid = strconv.Itoa(n.pid)
		}
		in = "nsenter -t " + pid + " -i "
	}
	var name string
	var value int64
	switch {
	case u.Limit == "ipc.shm" && u.Unit == "pages":
		name, value = "kernel.shmall", max(u.Max*2, u.Used*2)
	case u.Limit == "ipc.shm":
		name, value = "kernel.shmmni", min(max(u.Max*2, 4096), ipcMNI)
	case u.Limit == "ipc.msg":
		name, value = "kernel.msgmni", min(max(u.Max*2, 32000), ipcMNI)
	case u.Limit == "mqueue":
		name, value = "fs.mqueue.queues_max", min(max(u.Max*4, 1024), queuesMaxCeiling)
	}
	switch u.Limit {
	case "ipc.shm":
		if len(n.orphans) > 0 {
			out = append(out, fmt.Sprintf("%d segments are attached by no process and their creator has exited (shmid %s): if nothing will attach them again, remove them: %sipcrm -m SHMID (%sipcs -m -p shows creator and last user)",
				len(n.orphans), ipcIDList(n.orphans, 10), in, in))
		} else {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -m -p -c; a segment lives until removed (ipcrm -m SHMID), not until its creator exits", in))
		}
	case "ipc.sem":
		if len(n.cookies) > 0 {
			out = append(out, fmt.Sprintf("%d sets are device-mapper udev cookies that udev never completed (leaked by dmsetup, LVM or docker's devicemapper driver): release them with %sdmsetup udevcomplete_all while no LVM or device-mapper operation runs, and check that udev runs its dm rules", len(n.cookies), in))
		}
		if ids := n.leftovers["ipc.sem"]; len(ids) > 0 {
			out = append(out, fmt.Sprintf("%d sets belong to uids that run no process in this namespace, leftovers of a killed Apache, PostgreSQL or PHP (semid %s): check with %sipcs -s -c, then %sipcrm -s SEMID", len(ids), ipcIDList(ids, 10), in, in))
		}
		if len(out) == 0 {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -s -c; a set lives until removed (ipcrm -s SEMID), not until its creator exits", in))
		}
	case "ipc.msg":
		if ids := n.leftovers["ipc.msg"]; len(ids) > 0 {
			out = append(out, fmt.Sprintf("%d queues belong to uids that run no process in this namespace (msqid %s): check with %sipcs -q -c, then %sipcrm -q MSQID", len(ids), ipcIDList(ids, 10), in, in))
		} else {
			out = append(out, fmt.Sprintf("see who holds them: %sipcs -q -c -p; a queue lives until removed (ipcrm -q MSQID)", in))
		}
	case "mqueue":
		dir := n.mqDir
		if dir == "" {
			dir = "/dev/mqueue"
		}
		mnt := ""
		if !n.host {
			mnt = strings.Replace(in, "-i ", "-m -i ", 1)
		}
		if k := len(n.staleQueues); k > 0 {
			out = append(out, fmt.Sprintf("%d queues belong to uids that run no process in this namespace (%s): remove the ones nothing uses: %srm %s/NAME (mq_unlink)", k, strings.Join(n.staleQueues[:min(k, 5)], ", "), mnt, quote.Shell(dir)))
		} else {
			out = append(out, fmt.Sprintf("queues live until mq_unlink: list them with %sls -l %s and remove the stale ones (%srm %s/NAME)", mnt, quote.Shell(dir), mnt, quote.Shell(dir)))
		}
	}
	if u.Limit == "ipc.sem" {
		if !n.semOK {
			return out
		}
		s := n.sem
		if u.Unit == "semaphores" {
			s[1] = min(max(s[1]*2, s[0]*s[3]), math.MaxInt32)
		} else {
			s[3] = min(max(s[3]*2, 256), ipcMNI)
			s[1] = min(max(s[1], s[0]*s[3]), math.MaxInt32)
		}
		if s == n.sem {
			return append(out, "kernel.sem is at its ceilings: only fewer sets help")
		}
		v := fmt.Sprintf("%d %d %d %d", s[0], s[1], s[2], s[3])
		return append(out, ipcRaise("kernel.sem", "'"+v+"'", n, in)...)
	}
	if u.Limit == "ipc.shm" && u.Unit == "segments" && u.Max >= ipcMNI || u.Limit == "ipc.msg" && u.Max >= ipcMNI {
		return append(out, fmt.Sprintf("%s is at its ceiling (32768; the boot parameter ipcmni_extend raises it to 16M): only fewer objects help", name))
	}
	if u.Limit == "mqueue" && u.Max >= queuesMaxCeiling {
		return append(out, "fs.mqueue.queues_max is at its ceiling (65536): only fewer queues help")
	}
	return append(out, ipcRaise(name, strconv.FormatInt(value, 10), n, in)...)
}

// ipcRaise words raising an IPC sysctl: on the host, for now and across
// reboots; in a container's namespace, from the host now and in the
// container's definition for its next start.
func ipcRaise(name, value string, n *ipcNote, in string) []string {
	if n.host {
		conf := strings.Trim(value, "'")
		return []string{
			fmt.Sprintf("raise the limit now: sysctl -w %s=%s", name, value),
			fmt.Sprintf("keep it across reboots: echo '%s = %s' > /etc/sysctl.d/90-enospc-ipc.conf", name, conf),
		}
	}
	pattern := name
	if i := strings.LastIndexByte(name, '.'); i > 0 && name != "kernel.sem" {
		pattern = name[:i+1] + "*"
		if strings.HasPrefix(name, "kernel.shm") {
			pattern = "kernel.shm*"
		} else if strings.HasPrefix(name, "kernel.msg") {
			pattern = "kernel.msg*"
		}
	}
	return []string{
		fmt.Sprintf("this IPC namespace has its own limit, the kernel's default unless its container set one: raise it now from the host: %ssysctl -w %s=%s", in, name, value),
		fmt.Sprintf("for the container's next start: docker run --sysctl %s=%s, or the pod's securityContext.sysctls (allowed by the kubelet's --allowed-unsafe-sysctls '%s')", name, value, pattern),
	}
}
