package limits

// Kernel objects behind device files and event fds: pseudo-terminals, AIO
// contexts, epoll watches and fanotify groups and marks (pty(7),
// io_setup(2), epoll(7), fanotify(7), Documentation/admin-guide/sysctl/fs.rst
// and kernel.rst, Documentation/filesystems/devpts.rst).
//
// ptys. Every open of /dev/ptmx allocates a pty pair, counted host-wide in
// kernel.pty.nr against kernel.pty.max (default 4096). A devpts instance
// mounted from a mount namespace other than the initial one (every
// container's /dev/pts) may not take the last kernel.pty.reserve (1024) of
// them: the reserve is kept for the host's own instances. So the host row,
// scope "host (kernel.pty.max)", counts kernel.pty.nr against kernel.pty.max
// minus kernel.pty.reserve, which is where containers stop getting
// terminals (the host's own /dev/pts may still take the reserve, which the
// reason says). A devpts instance mounted with max=N (a CI runner's or a
// container's private /dev/pts) stops at N ptys of its own: every devpts
// mount of the host's mount table with max= has its row, scope
// "devpts <mountpoint>", its usage the numbered entries of its directory
// (max=0 is shown by the kernel but means no limit). Past either:
//
//	open /dev/ptmx: no space left on device     (runc exec -t, docker exec -it)
//	script: failed to create pseudo-terminal: No space left on device
//	Failed to open PTY: No space left on device (terminal emulators)
//	OSError: out of pty devices                 (Python's pty module)
//
// The fix is kernel.pty.max (the host row) or remounting the instance with a
// larger max= (mount -o remount,max=N DIR), and finding who holds the ptys
// (leaked exec sessions, expect/unbuffer loops: lsof /dev/ptmx). The lab
// mounts a private devpts instance with a small max= on a temp directory and
// fills it; kernel.pty.max is global and is never touched.
//
// aio. io_setup(nr_events) charges nr_events to the host-wide fs.aio-nr,
// refused with EAGAIN when it would pass fs.aio-max-nr (default 65536).
// Databases ask for a lot (InnoDB 256 per I/O thread, ScyllaDB and fio one
// context per shard or job), so one more container of them fails with
//
//	InnoDB: io_setup() failed with EAGAIN after 5 attempts.
//	fio: ... func=io_queue_init, error=Resource temporarily unavailable
//
// while aio-nr may still be below 100%: a request of N needs N free. The
// row is one, scope "host", in events. The holders are the processes with
// an "/[aio]" mapping, which the census does not read. There is no lab:
// aio-nr and aio-max-nr are one counter and one limit for the whole host,
// with no namespace or per-user share, so exhausting them would break every
// other AIO user of the machine; the fixture carries the numbers.
//
// epoll. Every fd added to an epoll instance (epoll_ctl EPOLL_CTL_ADD) is a
// watch charged to the real uid (user_struct) that created the instance,
// against fs.epoll.max_user_watches (4% of low memory divided by the cost
// of a watch: millions). Past it epoll_ctl fails with ENOSPC, and event
// loops die with it (Go's runtime: "runtime: epollctl failed with 28").
// Rows are per uid, scope "uid N", counted from the "tfd:" lines of the
// epoll fds' fdinfo (an fd shared by two processes after fork is seen
// twice); the holders are the processes with the most watches. The lab
// fills the per-uid count of a dedicated uid to the host's real limit (a
// few million watches, about 200 MB of kernel memory for under a minute):
// the limit is global but the count is that uid's only.
//
// fanotify. fanotify_init charges a group, and each mark of a group not
// made with FAN_UNLIMITED_MARKS a mark, to the (user namespace, euid)
// counters (ucounts, like inotify) against fs.fanotify.max_user_groups
// (128) and fs.fanotify.max_user_marks (sized from RAM), since 5.13; the
// same limits per user namespace are /proc/sys/user/max_fanotify_groups and
// max_fanotify_marks. Past them
//
//	fanotify_init: too many open files   (EMFILE, groups)
//	fanotify_mark: no space left on device (ENOSPC, marks)
//
// Kernels before 5.13 have no sysctl: a fixed 128 groups per real uid and
// 8192 marks per group, which the reason says. Rows are per uid, scope
// "uid N" (fanotify.groups, fanotify.marks); marks are counted from the
// fdinfo lines of every group, unlimited ones included. The lab exhausts
// the real per-uid counters of dedicated uids (unprivileged fanotify with
// FAN_REPORT_FID, since 5.13), without changing any limit.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	AIO            ID = "aio"
	Epoll          ID = "epoll"
	FanotifyGroups ID = "fanotify.groups"
	FanotifyMarks  ID = "fanotify.marks"
	Ptys           ID = "ptys"
)

var devicesFamily = Family{
	Name: "devices",
	Limits: []Limit{
		{
			ID:    Ptys,
			Clues: ptysClues,
			Raise: ptysRaise,
			Title: "pseudo-terminals (kernel.pty.max, devpts max=)",
			Unit:  "ptys",
			Doc: "Pseudo-terminal pairs: kernel.pty.nr against kernel.pty.max minus kernel.pty.reserve, the part " +
				"that devpts instances of containers may use, and against the max= of every devpts instance " +
				"mounted with one. Leaked docker exec -t sessions, expect/unbuffer loops and CI jobs that " +
				"allocate terminals fill it; then opening /dev/ptmx fails with ENOSPC, \"no space left on device\".",
			Signatures: []*Signature{
				NewSignature(`(?i)(/dev/ptmx|/dev/pts/ptmx|\bptmx\b).*(no space left on device|\bENOSPC\b|errno=28)`),
				NewSignature(`(?i)(failed to|unable to|could not|couldn't|cannot|can't) (create|open|allocate|get) (a |new )?(pseudo-?terminal|pty|pseudo tty|console)s?\b.*no space left on device`),
				NewSignature(`(?i)\b(openpty|forkpty|posix_openpt|getpt|grantpt|ptsname)\b.*no space left on device`),
				NewSignature(`(?i)out of pty('s| devices|s)`),
				NewSignature(`(?i)the system has no more ptys`),
				NewSignature(`(?i)server refused to allocate pty`),
				NewSignature(`(?i)kernel\.pty\.max|/proc/sys/kernel/pty/max`),
			},
			Remedy: ptysRemedy,
		},
		{
			ID:    AIO,
			Clues: aioClues,
			Raise: aioRaise,
			Title: "asynchronous I/O events (fs.aio-max-nr)",
			Unit:  "events",
			Doc: "AIO events reserved by io_setup on the whole host (fs.aio-nr) against fs.aio-max-nr. " +
				"Databases in containers (MySQL/InnoDB, ScyllaDB, Ceph, fio) reserve thousands each; the next " +
				"io_setup asking for more than is left fails with EAGAIN, \"resource temporarily unavailable\".",
			Signatures: []*Signature{
				NewSignature(`(?i)\bio_setup\b.*(resource temporarily unavailable|\bEAGAIN\b|errno[ =]11\b)`),
				NewSignature(`(?i)\bio_queue_init\b.*(resource temporarily unavailable|\bEAGAIN\b|err=11\b)`),
				NewSignature(`(?i)aio-max-nr|fs\.aio-nr|/proc/sys/fs/aio-nr`),
				NewSignature(`(?i)cannot initiali[sz]e aio ?sub-?system`),
				NewSignature(`(?i)(linux[- ]?aio|native aio|libaio|aio context).*(resource temporarily unavailable|\bEAGAIN\b)`),
			},
			Remedy: aioRemedy,
		},
		{
			ID:    Epoll,
			Clues: epollClues,
			Raise: epollRaise,
			Title: "epoll watches per user (fs.epoll.max_user_watches)",
			Unit:  "watches",
			Doc: "File descriptors registered in epoll instances by one uid, against fs.epoll.max_user_watches. " +
				"Proxies, message brokers and event loops that keep millions of connections, or leak epoll " +
				"registrations, reach it; then epoll_ctl fails with ENOSPC, \"no space left on device\".",
			Signatures: []*Signature{
				NewSignature(`(?i)\bepoll_?ctl\b.*(no space left on device|\bENOSPC\b|errno[ =]28\b|failed with 28\b|\(28:)`),
				NewSignature(`(?i)epoll\.max_user_watches|epoll/max_user_watches`),
				NewSignature(`(?i)\bepoll\b.*(add|register|watch).*no space left on device`),
			},
			Remedy: epollRemedy,
		},
		{
			ID:    FanotifyGroups,
			Clues: fanotifyGroupsClues,
			Title: "fanotify groups per user (fs.fanotify.max_user_groups)",
			Unit:  "groups",
			Doc: "fanotify groups (fanotify_init calls) one uid may hold, 128 by default. Security agents, " +
				"container tracers and antivirus on-access scanners take them; a tool that leaks one per " +
				"container runs out, and fanotify_init fails with EMFILE, \"too many open files\".",
			Signatures: []*Signature{
				NewSignature(`(?i)fanotify_init\b.*(too many open files|\bEMFILE\b|errno[ =]24\b)`),
				NewSignature(`(?i)fanotify:? init error,? too many open files`),
				NewSignature(`(?i)(cannot|can't|could not|couldn't|failed to|unable to) (init|initiali[sz]e|create|open) (a )?(new )?fanotify.*too many open files`),
				NewSignature(`(?i)fanotify.*(max_user_groups|max_fanotify_groups)`),
			},
			Remedy: fanotifyRemedy,
		},
		{
			ID:    FanotifyMarks,
			Clues: fanotifyMarksClues,
			Title: "fanotify marks per user (fs.fanotify.max_user_marks)",
			Unit:  "marks",
			Doc: "Marks (watched inodes, mounts, filesystems) of all fanotify groups of one uid, against " +
				"fs.fanotify.max_user_marks; past it fanotify_mark fails with ENOSPC, \"no space left on device\".",
			Signatures: []*Signature{
				NewSignature(`(?i)fanotify_mark\b.*(no space left on device|\bENOSPC\b|errno[ =]28\b)`),
				NewSignature(`(?i)fanotify.*mark.*no space left on device`),
				NewSignature(`(?i)fanotify.*(max_user_marks|max_fanotify_marks)`),
			},
			Remedy: fanotifyRemedy,
		},
	},
	Read: readDevices,
}

func readDevices(env *Env) []Finding {
	out := readPtys(env)
	out = append(out, readAIO(env))
	out = append(out, readEpoll(env)...)
	return append(out, readFanotify(env)...)
}

// ptyHostScope is the scope of the host-wide pty row.
const ptyHostScope = "host (kernel.pty.max)"

func readPtys(env *Env) []Finding {
	var out []Finding
	nr, err := env.Host.SysctlInt("kernel.pty.nr")
	var ptyMax, reserve int64
	if err == nil {
		ptyMax, err = env.Host.SysctlInt("kernel.pty.max")
	}
	if err == nil {
		reserve, err = env.Host.SysctlInt("kernel.pty.reserve")
	}
	if err != nil {
		out = append(out, unknown("ptys", ptyHostScope, "ptys", withoutConfig(err, "CONFIG_UNIX98_PTYS")))
	} else {
		u := Finding{Limit: "ptys", Scope: ptyHostScope, Used: nr, Max: max(ptyMax-reserve, 0), Unit: "ptys", Consumers: []Consumer{}, zeroIsFull: true}
		if u.Ratio() >= env.Thresholds.Warn {
			u.Reason = ptyReason(ptyMax, reserve)
		}
		out = append(out, u)
	}
	mounts, err := env.Mounts()
	if err != nil {
		return append(out, unknown("ptys", "devpts instances", "ptys", err))
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.FSType != "devpts" {
			continue
		}
		limit, ok := devptsMax(m.Super)
		if !ok || limit == 0 {
			continue // no max= (or max=0, which the kernel takes as none)
		}
		if m.Device != "" {
			if seen[m.Device] {
				continue // a bind mount of an instance already counted
			}
			seen[m.Device] = true
		}
		scope := "devpts " + m.MountPoint
		n, err := countPtys(env.Host.RootPath(m.MountPoint))
		if err != nil {
			out = append(out, unknown("ptys", scope, "ptys", fmt.Errorf("list the ptys of %s: %w", m.MountPoint, err)))
			continue
		}
		out = append(out, Finding{Limit: "ptys", Scope: scope, Used: n, Max: limit, Unit: "ptys", Consumers: []Consumer{}})
	}
	return out
}

// ptyReason says what the host row's max is made of; ptysRemedy reads the
// numbers back.
func ptyReason(ptyMax, reserve int64) string {
	return fmt.Sprintf("kernel.pty.max %d minus kernel.pty.reserve %d: what the devpts instances of containers "+
		"(mounted outside the initial mount namespace) may use; the host's own /dev/pts may also take the reserve", ptyMax, reserve)
}

var ptyReasonNumbers = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`kernel\.pty\.max (\d+) minus kernel\.pty\.reserve (\d+)`)
})

// devptsMax returns the max= of a devpts superblock option list.
func devptsMax(super string) (int64, bool) {
	for _, o := range strings.Split(super, ",") {
		v, ok := strings.CutPrefix(o, "max=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// countPtys counts the numbered entries of a devpts directory: one per pty
// allocated in that instance (ptmx is not one).
func countPtys(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if isPtyIndex(e.Name()) {
			n++
		}
	}
	return n, nil
}

// isPtyIndex reports whether a devpts entry name is a pty index.
func isPtyIndex(name string) bool {
	if name == "" || len(name) > 10 {
		return false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ptyNumbers are kernel.pty.max and kernel.pty.reserve as the host row
// says them in its reason (its Max is what containers may use: the max
// less the reserve).
func ptyNumbers(u Finding) (ptyMax, reserve int64) {
	ptyMax, reserve = u.Max+1024, 1024
	if m := ptyReasonNumbers().FindStringSubmatch(u.Reason); m != nil {
		ptyMax, _ = strconv.ParseInt(m[1], 10, 64)
		reserve, _ = strconv.ParseInt(m[2], 10, 64)
	}
	return ptyMax, reserve
}

// ptysRaise raises kernel.pty.max, for the host's ptys only (a devpts
// instance of a container has its own max= option): twice the max, and
// room for twice today's use beside the reserve.
var ptysRaise = &Raise{
	For:     func(u Finding) bool { return strings.HasPrefix(u.Scope, "host") },
	Risk:    "low",
	Sysctls: []string{"kernel.pty.max"},
	Settings: func(u Finding, cur func(string) (int64, error)) ([]Setting, error) {
		c, err := cur("kernel.pty.max")
		if err != nil {
			return nil, err
		}
		_, reserve := ptyNumbers(u)
		if v := roundUp(max(c*2, u.Used*2+reserve), 1024); v > c {
			return []Setting{{Name: "kernel.pty.max", To: v}}, nil
		}
		return nil, nil
	},
}

func ptysRemedy(u Finding) []string {
	if mp, ok := strings.CutPrefix(u.Scope, "devpts "); ok {
		suggest := max(u.Max*2, u.Used*2, 16)
		return []string{
			fmt.Sprintf("find what holds the ptys of %s: ls -l /proc/*/fd 2>/dev/null | grep %s (leaked exec sessions, terminals nobody reads)", mp, quote.Shell(mp+"/")),
			fmt.Sprintf("raise this instance's limit now: mount -o remount,max=%d %s", suggest, quote.Shell(mp)),
			fmt.Sprintf("keep it: put max=%d in the options of whatever mounts %s (its /etc/fstab line, the devpts mount of a container's config.json)", suggest, mp),
		}
	}
	_, reserve := ptyNumbers(u)
	suggest := advised(ptysRaise, u, nil)
	return []string{
		"find who holds them: lsof /dev/ptmx (or ls -l /proc/*/fd | grep -c ptmx): leaked docker exec -t sessions, ssh sessions, expect/unbuffer loops",
		fmt.Sprintf("raise the limit now: sysctl -w kernel.pty.max=%d (containers may use it minus kernel.pty.reserve %d)", suggest, reserve),
		fmt.Sprintf("keep it across reboots: echo 'kernel.pty.max = %d' > /etc/sysctl.d/90-enospc-ptys.conf", suggest),
	}
}

func readAIO(env *Env) Finding {
	nr, err := env.Host.SysctlInt("fs.aio-nr")
	var limit int64
	if err == nil {
		limit, err = env.Host.SysctlInt("fs.aio-max-nr")
	}
	if err != nil {
		return unknown("aio", "host", "events", withoutConfig(err, "CONFIG_AIO"))
	}
	return Finding{Limit: "aio", Scope: "host", Used: nr, Max: limit, Unit: "events", Consumers: []Consumer{}, zeroIsFull: true}
}

// aioRaise: four times the limit, at least the 1048576 databases ask for.
var aioRaise = raiseTo("fs.aio-max-nr", func(u Finding, cur int64) int64 { return max(cur*4, 1048576) },
	"low: pinned memory per AIO context, only when used")

func aioRemedy(u Finding) []string {
	suggest := advised(aioRaise, u, nil)
	return []string{
		"find who reserved them: grep -l '/\\[aio\\]' /proc/[0-9]*/maps (each io_setup context is one /[aio] mapping; databases with native AIO, fio, ScyllaDB)",
		fmt.Sprintf("raise the limit now: sysctl -w fs.aio-max-nr=%d (it costs no memory until used)", suggest),
		fmt.Sprintf("keep it across reboots: echo 'fs.aio-max-nr = %d' > /etc/sysctl.d/90-enospc-aio.conf", suggest),
		"or ask for fewer: innodb_use_native_aio=0 or a smaller innodb_write_io_threads/innodb_read_io_threads, fewer fio jobs or a lower iodepth",
	}
}

func readEpoll(env *Env) []Finding {
	limit, err := env.Host.SysctlInt("fs.epoll.max_user_watches")
	if err != nil {
		return []Finding{unknown("epoll", "all users", "watches", withoutConfig(err, "CONFIG_EPOLL"))}
	}
	if env.Census == nil {
		return []Finding{unknown("epoll", "all users", "watches", censusMissing(env))}
	}
	type acc struct {
		watches int64
		holders []Consumer
	}
	byUID := map[int]*acc{}
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		if p.EpollInstances == 0 {
			continue
		}
		// The kernel charges the real uid's user_struct of the process
		// that created the instance (ep->user = get_current_user()),
		// global across user namespaces: the uid as the host sees it.
		a := byUID[p.UID]
		if a == nil {
			a = &acc{}
			byUID[p.UID] = a
		}
		a.watches += int64(p.EpollWatches)
		a.holders = append(a.holders, Consumer{PID: p.PID, UID: intp(p.UID), Comm: p.Comm, Count: int64(p.EpollWatches)})
	}
	if len(byUID) == 0 {
		byUID[0] = &acc{}
	}
	var out []Finding
	for _, uid := range sortedUIDs(byUID) {
		a := byUID[uid]
		u := Finding{Limit: "epoll", Scope: UIDScope(uid), Used: a.watches, Max: limit, Unit: "watches"}
		u.setConsumers(a.holders, topConsumers)
		noteUnreadableFDs(env, &u)
		out = append(out, u)
	}
	return out
}

// epollRaise: twice the limit, at least 1048576.
var epollRaise = raiseTo("fs.epoll.max_user_watches", func(u Finding, cur int64) int64 { return max(cur*2, 1048576) },
	"low: about 160 bytes of kernel memory per watch")

func epollRemedy(u Finding) []string {
	suggest := advised(epollRaise, u, nil)
	out := []string{}
	if len(u.Consumers) > 0 {
		c := u.Consumers[0]
		holders := max(u.ConsumersTotal, len(u.Consumers))
		out = append(out, fmt.Sprintf("held by %s; the biggest, pid %d (%s), holds %d of %d: a connection or registration leak shows as a count that only grows", processCount(holders), c.PID, c.Comm, c.Count, u.Used))
	}
	return append(out,
		fmt.Sprintf("raise the limit now: sysctl -w fs.epoll.max_user_watches=%d (each watch costs about 160 bytes of kernel memory)", suggest),
		fmt.Sprintf("keep it across reboots: echo 'fs.epoll.max_user_watches = %d' > /etc/sysctl.d/90-enospc-epoll.conf", suggest),
	)
}

// Before 5.13 fanotify had no sysctl: FANOTIFY_DEFAULT_MAX_LISTENERS groups
// per user and FANOTIFY_DEFAULT_MAX_MARKS marks per group.
const (
	fanotifyOldGroups = 128
	fanotifyOldMarks  = 8192
)

// fanotifyOldReason starts the reason of rows read with the fixed limits
// of kernels before 5.13; fanotifyRemedy looks for it.
const fanotifyOldReason = "kernel older than 5.13"

func readFanotify(env *Env) []Finding {
	maxGroups, errG := env.Host.SysctlInt("fs.fanotify.max_user_groups")
	maxMarks, errM := env.Host.SysctlInt("fs.fanotify.max_user_marks")
	release := env.Host.KernelRelease()
	old := false
	if errors.Is(errG, fs.ErrNotExist) && errors.Is(errM, fs.ErrNotExist) {
		if before, ok := kernelBefore(release, 5, 13); ok && before {
			old, errG, errM = true, nil, nil
			maxGroups, maxMarks = fanotifyOldGroups, fanotifyOldMarks
		}
	}
	errG, errM = withoutConfig(errG, "CONFIG_FANOTIFY"), withoutConfig(errM, "CONFIG_FANOTIFY")
	if env.Census == nil {
		err := censusMissing(env)
		return []Finding{unknown("fanotify.groups", "all users", "groups", err), unknown("fanotify.marks", "all users", "marks", err)}
	}
	type acc struct {
		groups, marks, mostMarks  int64
		groupHolders, markHolders []Consumer
	}
	byUID := map[int]*acc{}
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		if p.FanotifyGroups == 0 {
			continue
		}
		// Since 5.13 groups and marks are ucounts of (user namespace,
		// euid), charged up to the initial namespace as its owner; before,
		// the real uid's user_struct.
		uid := env.Census.ChargedUID(p)
		if old {
			uid = p.UID
		}
		a := byUID[uid]
		if a == nil {
			a = &acc{}
			byUID[uid] = a
		}
		a.groups += int64(p.FanotifyGroups)
		a.marks += int64(p.FanotifyMarks)
		a.mostMarks = max(a.mostMarks, int64(p.FanotifyMarks))
		a.groupHolders = append(a.groupHolders, Consumer{PID: p.PID, UID: intp(p.EUID), Comm: p.Comm, Count: int64(p.FanotifyGroups)})
		if p.FanotifyMarks > 0 {
			a.markHolders = append(a.markHolders, Consumer{PID: p.PID, UID: intp(p.EUID), Comm: p.Comm, Count: int64(p.FanotifyMarks)})
		}
	}
	if len(byUID) == 0 {
		byUID[0] = &acc{}
	}
	var out []Finding
	for _, uid := range sortedUIDs(byUID) {
		a := byUID[uid]
		scope := UIDScope(uid)
		g := Finding{Limit: "fanotify.groups", Scope: scope, Used: a.groups, Max: maxGroups, Unit: "groups", zeroIsFull: true}
		g.setConsumers(a.groupHolders, topConsumers)
		m := Finding{Limit: "fanotify.marks", Scope: scope, Used: a.marks, Max: maxMarks, Unit: "marks", zeroIsFull: true}
		m.setConsumers(a.markHolders, topConsumers)
		if old {
			g.Reason = fmt.Sprintf("%s (%s): no sysctl, a fixed %d groups per user", fanotifyOldReason, release, fanotifyOldGroups)
			m.Used = a.mostMarks
			m.Reason = fmt.Sprintf("%s (%s): no sysctl, a fixed %d marks per group; used is the most marks one process holds, "+
				"a bound of its biggest group", fanotifyOldReason, release, fanotifyOldMarks)
		}
		noteUnreadableFDs(env, &g)
		noteUnreadableFDs(env, &m)
		if errG != nil {
			g = unknown("fanotify.groups", scope, "groups", errG)
		}
		if errM != nil {
			m = unknown("fanotify.marks", scope, "marks", errM)
		}
		out = append(out, g, m)
	}
	return out
}

func fanotifyRemedy(u Finding) []string {
	name, floor, what := "fs.fanotify.max_user_groups", int64(1024), "groups"
	if u.Limit == "fanotify.marks" {
		name, floor, what = "fs.fanotify.max_user_marks", 1048576, "marks"
	}
	out := []string{}
	if len(u.Consumers) > 0 {
		c := u.Consumers[0]
		holders := max(u.ConsumersTotal, len(u.Consumers))
		out = append(out, fmt.Sprintf("held by %s; the biggest, pid %d (%s), holds %d %s of %d: a tool that opens a group per container or per file and never closes it leaks them", processCount(holders), c.PID, c.Comm, c.Count, what, u.Used))
	}
	if strings.HasPrefix(u.Reason, fanotifyOldReason) {
		return append(out, "this kernel (before 5.13) has no sysctl for it: only fewer "+what+" help (restart or reconfigure the holders), or a kernel of 5.13 or later")
	}
	suggest := max(u.Max*4, floor)
	return append(out,
		fmt.Sprintf("raise the limit now: sysctl -w %s=%d (a container's own user namespace has its own, /proc/sys/user/max_fanotify_%s)", name, suggest, what),
		fmt.Sprintf("keep it across reboots: echo '%s = %d' > /etc/sysctl.d/90-enospc-fanotify.conf", name, suggest),
	)
}

// ptysClues are the words and facts of an error message that point to ptys (explain).
var ptysClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpPty, Prior: 0.92,
		Why: "opening /dev/ptmx returns ENOSPC at kernel.pty.max (less kernel.pty.reserve in containers) or a devpts instance's max="},
	{Words: []string{"out of pty devices", "out of pty's", "out of ptys", "no more ptys", "kernel.pty.max", "pty/max", "pty.nr"}, Prior: 0.9,
		Why: "the program ran out of pseudo-terminals: kernel.pty.max or a devpts max="},
	{Words: []string{"refused to allocate pty", "pty allocation request failed"}, Prior: 0.78,
		Why: "sshd could not allocate a pty: kernel.pty.max in most reports, though a permission or devpts mount problem reads the same"},
	{Errno: clue.ENOSPC, Words: []string{"console", " tty", "terminal"}, Prior: 0.5,
		Why: "a terminal could not be set up with ENOSPC: the pty limits"},
}

// aioClues are the words and facts of an error message that point to aio (explain).
var aioClues = []clue.Clue{
	{Errno: clue.EAGAIN, NotOp: clue.NamedCall, Prior: 0.25,
		Why: "EAGAIN alone: io_setup returns it at fs.aio-max-nr"},

	{Errno: clue.EAGAIN, Op: clue.OpAIO, Prior: 0.92,
		Why: "io_setup returns EAGAIN when fs.aio-nr plus the events asked for passes fs.aio-max-nr (io_setup(2))"},
	{Words: []string{"cannot initialize aiosub-system", "cannot initialize aio sub-system", "cannot initialise aio"}, Prior: 0.85,
		Why: "InnoDB could not set up native AIO: io_setup was refused, as at fs.aio-max-nr"},
	{Op: clue.OpAIO, Prior: 0.6,
		Why: "an AIO setup failed: fs.aio-max-nr is the usual limit"},
}

// epollClues are the words and facts of an error message that point to epoll (explain).
var epollClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpEpoll, Prior: 0.92,
		Why: "epoll_ctl ADD returns ENOSPC when the uid's registrations reach fs.epoll.max_user_watches (epoll_ctl(2))"},
	{Words: []string{"epoll.max_user_watches", "epoll/max_user_watches", "epollctl failed with 28"}, Prior: 0.93,
		Why: "the message names fs.epoll.max_user_watches"},
}

// fanotifyGroupsClues are the words and facts of an error message that point to fanotify.groups (explain).
var fanotifyGroupsClues = []clue.Clue{
	{Errno: clue.EMFILE, NotOp: clue.NamedCall | clue.OpFD, Prior: 0.1,
		Why: "fanotify_init returns EMFILE at max_user_groups"},

	{Errno: clue.EMFILE, Words: []string{"fanotify"}, Prior: 0.92,
		Why: "fanotify_init returns EMFILE when the uid's fs.fanotify.max_user_groups is reached"},
	{Errno: clue.EMFILE, Op: clue.OpFanInit, Prior: 0.9,
		Why: "fanotify_init returns EMFILE at the uid's fs.fanotify.max_user_groups"},
	{Words: []string{"max_user_groups", "max_fanotify_groups"}, Prior: 0.92,
		Why: "the message names fs.fanotify.max_user_groups"},
}

// fanotifyMarksClues are the words and facts of an error message that point to fanotify.marks (explain).
var fanotifyMarksClues = []clue.Clue{
	{Errno: clue.ENOSPC, Words: []string{"fanotify"}, Prior: 0.92,
		Why: "fanotify_mark returns ENOSPC when the uid's fs.fanotify.max_user_marks is reached"},
	{Words: []string{"max_user_marks", "max_fanotify_marks"}, Prior: 0.92,
		Why: "the message names fs.fanotify.max_user_marks"},
}
