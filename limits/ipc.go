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
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits/clue"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
)

// The IDs of this file's limits.
const (
	IPCMsg ID = "ipc.msg"
	IPCSem ID = "ipc.sem"
	IPCShm ID = "ipc.shm"
	Mqueue ID = "mqueue"
)

var ipcFamily = Family{
	Name: "ipc",
	Limits: []Limit{
		{
			ID:    IPCShm,
			Clues: ipcShmClues,
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
			ID:    IPCSem,
			Clues: ipcSemClues,
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
			ID:    IPCMsg,
			Clues: ipcMsgClues,
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
			ID:    Mqueue,
			Clues: mqueueClues,
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

func readIPC(env *Env) []Finding {
	procfs := ipcIsProcfs(env.Host.Proc)
	nss, unseen := ipcNamespaces(env, procfs)
	self := selfIPCNamespace()
	mq := &mqueueFinder{env: env, procfs: procfs}
	out := make([]Finding, 0, 4*len(nss)+4)
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
		out = append(out, Finding{Limit: "ipc.shm", Scope: "other ipc namespaces", Unit: "segments", Severity: Unknown, NeedsRoot: true,
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

// ipcShmClues are the words and facts of an error message that point to ipc.shm (explain).
var ipcShmClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpShmget, NotObj: clue.ObjShm, Prior: 0.92,
		Why: "shmget returns ENOSPC when the IPC namespace has kernel.shmmni segments or its pages would pass kernel.shmall (shmget(2))"},
	{Errno: clue.EINVAL, Op: clue.OpShmget, NotObj: clue.ObjShm, Prior: 0.86,
		Why: "shmget returns EINVAL when the size asked for passes kernel.shmmax (shmget(2)); PostgreSQL's HINT says so"},
	{Words: []string{"shmmax", "shmmni", "shmall"}, Prior: 0.88,
		Why: "the message names the System V shared memory limits"},
	{Op: clue.OpShmget, NotObj: clue.ObjShm, NotErrno: clue.ENOMEM | clue.EPERM, Prior: 0.6,
		Why: "a System V shared memory segment could not be created: kernel.shmmax, shmmni or shmall"},
}

// ipcSemClues are the words and facts of an error message that point to ipc.sem (explain).
var ipcSemClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpSemget, NotObj: clue.ObjShm, Prior: 0.9,
		Why: "semget returns ENOSPC when the IPC namespace has SEMMNI sets or SEMMNS semaphores (kernel.sem; semget(2))"},
	{Words: []string{"semmni", "semmns", "kernel.sem", "kernel/sem", "maximum number of semaphores"}, Prior: 0.9,
		Why: "the message names the semaphore limits (kernel.sem)"},
	{Words: []string{"dm_task_set_cookie", "udev cookie", "udevcomplete"}, Prior: 0.85,
		Why: "device-mapper could not get a udev cookie, a semaphore set: leaked cookies fill SEMMNI (dmsetup udevcomplete_all)"},
}

// ipcMsgClues are the words and facts of an error message that point to ipc.msg (explain).
var ipcMsgClues = []clue.Clue{
	{Errno: clue.ENOSPC, Words: []string{"msgget", "msg_get_queue", "msgmni"}, Prior: 0.92,
		Why: "msgget returns ENOSPC when the IPC namespace has kernel.msgmni System V queues (msgget(2))"},
	{Errno: clue.ENOSPC, Op: clue.OpMsgget, NotOp: clue.OpMqOpen, Prior: 0.6,
		Why: "a message queue could not be created with ENOSPC: System V queues stop at kernel.msgmni"},
}

// mqueueClues are the words and facts of an error message that point to mqueue (explain).
var mqueueClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpMqOpen, Prior: 0.92,
		Why: "mq_open returns ENOSPC when the IPC namespace has fs.mqueue.queues_max queues (mq_open(3))"},
	{Words: []string{"queues_max"}, Prior: 0.9,
		Why: "the message names fs.mqueue.queues_max"},
	{Errno: clue.ENOSPC, Op: clue.OpMsgget, NotOp: clue.OpMqOpen, Prior: 0.55,
		Why: "or POSIX queues at fs.mqueue.queues_max"},
}
