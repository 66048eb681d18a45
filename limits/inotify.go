package limits

// inotify instances and watches (inotify(7), Documentation/admin-guide/sysctl/fs.rst).
//
// The kernel charges every inotify instance and every watch to a per-user
// counter (ucounts) of the user namespace and uid that created the instance,
// and to the same counters of every ancestor namespace, where the charged
// uid is the namespace's owner. The limits in the initial namespace are
// fs.inotify.max_user_instances (default 128) and fs.inotify.max_user_watches
// (default 8192 on old kernels, up to 1% of RAM since 5.11). Past them:
//
//	inotify_init: too many open files             (EMFILE, instances)
//	inotify_add_watch ...: no space left on device (ENOSPC, watches)
//
// and the kubelet ("Failed to watch directory ... no space left on
// device"), Node's "System limit for number of file watchers reached",
// systemd's "Failed to allocate directory watch: Too many open files" or
// tail -f's "inotify cannot be used, reverting to polling".
//
// Usage is counted from /proc/PID/fdinfo of each inotify fd (one
// "inotify wd:" line per watch). An fd inherited by a child is seen twice;
// the kernel charges it once.

import (
	"fmt"
	"sort"

	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	InotifyInstances ID = "inotify.instances"
	InotifyWatches   ID = "inotify.watches"
)

var inotifyFamily = Family{
	Name: "inotify",
	Limits: []Limit{
		{
			ID:    InotifyWatches,
			Clues: inotifyWatchesClues,
			Raise: inotifyWatchesRaise,
			Title: "inotify watches per user (fs.inotify.max_user_watches)",
			Unit:  "watches",
			Doc: "Watches that all inotify instances of one uid may hold. Kubelet, cAdvisor, log shippers, " +
				"IDEs and file-watching dev servers in containers add up; past the limit " +
				"inotify_add_watch fails with ENOSPC, \"no space left on device\".",
			Signatures: []*Signature{
				NewSignature(`(?i)inotify_add_watch.*no space left on device`),
				NewSignature(`(?i)system limit for number of file watchers reached`),
				NewSignature(`(?i)failed to (add|create) (a )?watch.*no space left on device`),
				NewSignature(`(?i)inotify resources exhausted`),
				NewSignature(`(?i)\bwatch ENOSPC\b`),                                 // Node's fs.watch
				NewSignature(`(?i)unable to watch for file changes`),                 // VS Code
				NewSignature(`(?i)(in_tail|tail_fs).*(errno=28|no space left)`),      // fluent-bit
				NewSignature(`(?i)(add_watch|cannot watch).*(ENOSPC|no space left)`), // pyinotify
			},
			Remedy: inotifyRemedy,
		},
		{
			ID:    InotifyInstances,
			Clues: inotifyInstancesClues,
			Raise: inotifyInstancesRaise,
			Title: "inotify instances per user (fs.inotify.max_user_instances)",
			Unit:  "instances",
			Doc: "inotify instances (inotify_init calls) one uid may hold, default 128. Every container " +
				"running systemd, every kubelet, every tail -f takes some; past the limit inotify_init " +
				"fails with EMFILE, \"too many open files\".",
			Signatures: []*Signature{
				NewSignature(`(?i)inotify_init1?\b.*too many open files`),
				NewSignature(`(?i)failed to allocate directory watch.*too many open files`),
				NewSignature(`(?i)failed to create (fsnotify|inotify) watcher.*too many open files`),
				NewSignature(`(?i)inotify cannot be used,? reverting to polling: too many open files`),
				NewSignature(`(?i)(couldn't|could not|failed to|unable to) initiali[sz]e inotify`),
				NewSignature(`(?i)(recommended |file ?)watcher.*too many open files?`),
				// A bare EMFILE: of the limits here, the uid's inotify
				// instances (a process's RLIMIT_NOFILE is not a shared one).
				NewSignature(`(?i)too many open files($|[^ ]| [^i])`),
				NewSignature(`(?i)too many open file($|[^s])`),
			},
			Remedy: inotifyRemedy,
		},
	},
	Read: readInotify,
}

func readInotify(env *Env) []Finding {
	maxWatches, errW := env.Host.SysctlInt("fs.inotify.max_user_watches")
	maxInst, errI := env.Host.SysctlInt("fs.inotify.max_user_instances")
	if env.Census == nil {
		err := env.CensusErr
		if err == nil {
			err = fmt.Errorf("no process census")
		}
		return []Finding{unknown("inotify.watches", "all users", "watches", err), unknown("inotify.instances", "all users", "instances", err)}
	}
	type acc struct {
		watches, instances int64
		procs, watchers    holders
	}
	byUID := map[int]*acc{}
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		if p.InotifyInstances == 0 {
			continue
		}
		uid := env.Census.ChargedUID(p)
		a := byUID[uid]
		if a == nil {
			a = &acc{procs: newHolders(env, topConsumers), watchers: newHolders(env, topConsumers)}
			byUID[uid] = a
		}
		a.watches += int64(p.InotifyWatches)
		a.instances += int64(p.InotifyInstances)
		a.procs.addProcess(p, p.EUID, int64(p.InotifyInstances))
		a.watchers.addProcess(p, p.EUID, int64(p.InotifyWatches))
	}
	if len(byUID) == 0 {
		byUID[0] = &acc{procs: newHolders(env, topConsumers), watchers: newHolders(env, topConsumers)}
	}
	uids := make([]int, 0, len(byUID))
	for uid := range byUID {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	needsRoot := env.Census.FDUnreadable > 0
	var out []Finding
	for _, uid := range uids {
		a := byUID[uid]
		scope := UIDScope(uid)
		w := Finding{Limit: "inotify.watches", Scope: scope, Used: a.watches, Max: maxWatches, Unit: "watches"}
		w.setHolders(a.watchers)
		if errW != nil {
			w = unknown("inotify.watches", scope, "watches", errW)
		}
		in := Finding{Limit: "inotify.instances", Scope: scope, Used: a.instances, Max: maxInst, Unit: "instances"}
		in.setHolders(a.procs)
		if errI != nil {
			in = unknown("inotify.instances", scope, "instances", errI)
		}
		if needsRoot {
			note := fmt.Sprintf("the fds of %d processes could not be read, so this is a lower bound", env.Census.FDUnreadable)
			if !env.Root {
				note += "; run as root for a full count"
			}
			for _, u := range []*Finding{&w, &in} {
				u.NeedsRoot = !env.Root
				if u.Severity != Unknown {
					u.Reason = note
				}
			}
		}
		out = append(out, w, in)
	}
	return out
}

// The inotify sysctls: four times the limit, at least the values common
// in production (kubelet's nodes, IDEs' advice).
var (
	inotifyWatchesRaise = raiseTo("fs.inotify.max_user_watches", func(u Finding, cur int64) int64 { return max(cur*4, 524288) },
		"low: about 1 KiB of kernel memory per watch, only when used")
	inotifyInstancesRaise = raiseTo("fs.inotify.max_user_instances", func(u Finding, cur int64) int64 { return max(cur*4, 8192) }, "low")
)

func inotifyRemedy(u Finding) []string {
	name, rule := "fs.inotify.max_user_watches", inotifyWatchesRaise
	if u.Limit == "inotify.instances" {
		name, rule = "fs.inotify.max_user_instances", inotifyInstancesRaise
	}
	suggest := advised(rule, u, nil)
	out := []string{}
	if len(u.Consumers) > 0 {
		c := u.Consumers[0]
		holders := max(u.ConsumersTotal, len(u.Consumers))
		out = append(out, fmt.Sprintf("%d processes hold them, the biggest pid %d (%s) with %d of %d: restart or reconfigure the ones that hold more than they should", holders, c.PID, c.Comm, c.Count, u.Used))
	}
	return append(out,
		fmt.Sprintf("raise the limit now: sysctl -w %s=%d", name, suggest),
		fmt.Sprintf("keep it across reboots: echo '%s = %d' > /etc/sysctl.d/90-enospc-inotify.conf", name, suggest),
	)
}

// inotifyWatchesClues are the words and facts of an error message that point to inotify.watches (explain).
var inotifyWatchesClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpWatch, NotOp: clue.OpInotify, Prior: 0.9,
		Why: "inotify_add_watch, and the watcher libraries on it (fsnotify, chokidar, watchdog, notify), return ENOSPC at the uid's fs.inotify.max_user_watches (inotify(7))"},
	{Words: []string{"max_user_watches", "inotify watch limit", "system limit for number of file watchers", "inotify resources exhausted", "unable to watch for file changes", "watch limit", "watches limit", "number of watches"}, NotWords: []string{"epoll.max_user_watches", "epoll/max_user_watches"}, Prior: 0.92,
		Why: "the message names the inotify watch limit"},
	{Errno: clue.ENOSPC, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock | clue.OpWrite | clue.OpCreate | clue.OpMkdir, NotObj: clue.ObjLog | clue.ObjLayer | clue.ObjSmall, Prior: 0.25,
		Why: "inotify_add_watch reports its watch limit as ENOSPC"},
}

// inotifyInstancesClues are the words and facts of an error message that point to inotify.instances (explain).
var inotifyInstancesClues = []clue.Clue{
	{Errno: clue.EMFILE, Op: clue.OpInotify | clue.OpWatch, Prior: 0.9,
		Why: "inotify_init returns EMFILE at the uid's fs.inotify.max_user_instances; only inotify_init and the watcher libraries built on it give EMFILE for this limit (inotify(7))"},
	{Errno: clue.EAGAIN | clue.ENOMEM, Op: clue.OpInotify, NotOp: clue.OpFork | clue.OpThread, Prior: 0.5,
		Why: "inotify_init failed: its instances, or memory"},
	{Words: []string{"max_user_instances"}, Prior: 0.92,
		Why: "the message names fs.inotify.max_user_instances"},
	{Errno: clue.EMFILE, NotOp: clue.OpFD | clue.OpInotify | clue.OpWatch, Prior: 0.3,
		Why: "EMFILE is also inotify_init's error at max_user_instances"},
}
