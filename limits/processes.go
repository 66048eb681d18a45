package limits

// Process ids and threads (Documentation/admin-guide/sysctl/kernel.rst,
// cgroup-v1/pids.rst, cgroup-v2.rst "PID").
//
// Every thread takes a pid. kernel.pid_max bounds pid numbers,
// kernel.threads-max the number of threads, and each pids cgroup its tasks
// through pids.max. Past any of them fork(2) and clone(2) fail with EAGAIN:
//
//	fork: retry: Resource temporarily unavailable
//	runtime/cgo: pthread_create failed: Resource temporarily unavailable
//	runc create failed: unable to start container process: ... resource temporarily unavailable
//
// pids.events counts the forks a cgroup has refused ("max N"), so a limit
// that was hit and is no longer full still shows.

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Pids    ID = "pids"
	Threads ID = "threads"
)

var processesFamily = Family{
	Name: "processes",
	Limits: []Limit{
		{
			ID:    Pids,
			Clues: pidsClues,
			Raise: pidsRaise,
			Title: "process ids (kernel.pid_max, pids.max)",
			Unit:  "tasks",
			Doc: "Tasks (threads) against kernel.pid_max for the host, and against pids.max for every pids " +
				"cgroup that is near it or has refused forks. Containers and pods get pids.max from " +
				"--pids-limit, podPidsLimit or systemd's TasksMax.",
			Signatures: []*Signature{
				NewSignature(`(?i)fork(: retry)?: resource temporarily unavailable`),
				NewSignature(`(?i)pthread_create failed: resource temporarily unavailable`),
				NewSignature(`(?i)(cannot|can't|could not|unable to) (fork|clone|create (a )?(new )?(thread|process)).*resource temporarily unavailable`),
				NewSignature(`(?i)\bEAGAIN\b.*(fork|clone)`),
				NewSignature(`(?i)fork/exec \S+: resource temporarily unavailable`), // Go
				NewSignature(`(?i)can't fork`),                                      // busybox, dash
				NewSignature(`(?i)failed to create new os thread.*errno=11`),        // Go
			},
			Remedy: pidsRemedy,
		},
		{
			ID:    Threads,
			Clues: threadsClues,
			Raise: threadsRaise,
			Title: "threads (kernel.threads-max)",
			Unit:  "threads",
			Doc:   "Threads on the host against kernel.threads-max, which the kernel sizes from RAM at boot.",
			Signatures: []*Signature{
				NewSignature(`(?i)pthread_create failed: resource temporarily unavailable`),
				NewSignature(`(?i)unable to create (new )?native thread`),
				NewSignature(`(?i)max number of threads \[\d+\] for user`),  // Elasticsearch
				NewSignature(`(?i)may need to increase max user processes`), // Go
				NewSignature(`(?i)failed to create new os thread`),
			},
			Remedy: threadsRemedy,
		},
	},
	Read: readProcesses,
}

func readProcesses(env *Env) []Finding {
	var out []Finding
	if env.Census == nil {
		err := env.CensusErr
		if err == nil {
			err = fmt.Errorf("no process census")
		}
		return []Finding{unknown("pids", "host", "tasks", err), unknown("threads", "host", "threads", err)}
	}
	procs := newHolders(env, topConsumers)
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		procs.addProcess(p, p.UID, int64(p.Threads))
	}
	tasks := int64(env.Census.Tasks)
	if pidMax, err := env.Host.SysctlInt("kernel.pid_max"); err != nil {
		out = append(out, unknown("pids", "host", "tasks", err))
	} else {
		u := Finding{Limit: "pids", Scope: "host", Used: tasks, Max: pidMax, Unit: "tasks"}
		u.setHolders(procs.clone())
		out = append(out, u)
	}
	if tmax, err := env.Host.SysctlInt("kernel.threads-max"); err != nil {
		out = append(out, unknown("threads", "host", "threads", err))
	} else {
		u := Finding{Limit: "threads", Scope: "host", Used: tasks, Max: tmax, Unit: "threads"}
		u.setHolders(procs.clone())
		out = append(out, u)
	}
	if _, err := env.Mounts(); err != nil {
		return append(out, unknown("pids", "pids cgroups", "tasks", err))
	}
	for _, h := range env.cgroupHierarchies() {
		if !h.has("pids") {
			continue
		}
		out = append(out, readPidsCgroups(env, h)...)
	}
	return out
}

// readPidsCgroups reports pids cgroups that are at or past the warning
// threshold, or that have refused forks. Kernels before 6.12 (and v1, and
// v2 mounted with pids_localevents) count a refused fork in pids.events of
// the forking task's cgroup, not of the ancestor whose pids.max stopped it:
// in Kubernetes the pod cgroup holds the limit and the forks fail in its
// container cgroups. So events are read everywhere and charged to the
// nearest limited ancestor-or-self.
func readPidsCgroups(env *Env, h cgroupHierarchy) []Finding {
	type node struct {
		rel          string
		limit, cur   int64
		refused      int64
		limited      bool
		childRefused int64
	}
	var nodes []*node
	var stack []*node // limited ancestors of the current directory
	walkCgroups(env.Host.RootPath(h.MountPoint), func(dir, rel string, depth int) {
		for len(stack) > 0 && !isUnder(rel, stack[len(stack)-1].rel) {
			stack = stack[:len(stack)-1]
		}
		if depth == 0 {
			return
		}
		var refused int64
		if b, err := os.ReadFile(filepath.Join(dir, "pids.events")); err == nil {
			refused = parseFlatKeyed(b)["max"]
		}
		limit, err := readCgroupInt(filepath.Join(dir, "pids.max"))
		if err == nil && limit >= 0 {
			cur, err := readCgroupInt(filepath.Join(dir, "pids.current"))
			if err == nil {
				n := &node{rel: rel, limit: limit, cur: cur, refused: refused, limited: true}
				nodes = append(nodes, n)
				stack = append(stack, n)
				return
			}
		}
		if refused > 0 && len(stack) > 0 {
			// Hierarchical pids.events repeat the ancestor's count in
			// the children: take the largest, not the sum.
			a := stack[len(stack)-1]
			a.childRefused = max(a.childRefused, refused)
		}
	})
	var out []Finding
	for _, n := range nodes {
		refused := max(n.refused, n.childRefused)
		u := Finding{Limit: "pids", Scope: filepath.Join(h.MountPoint, n.rel), Used: n.cur, Max: n.limit, Unit: "tasks", zeroIsFull: true}
		if refused > 0 {
			// pids.events only grows: a refusal long ago is information,
			// not an alarm; the severity follows pids.current.
			u.Reason = fmt.Sprintf("pids.events: %d forks refused at pids.max since the cgroup was created", refused)
		}
		if refused == 0 && u.Ratio() < env.Thresholds.Warn {
			continue
		}
		var cs []Consumer
		for _, p := range env.Census.Processes {
			path, ok := p.ControllerPath("pids")
			if h.V2 {
				path, ok = p.ControllerPath("")
			}
			if ok && isUnder(path, n.rel) {
				cs = append(cs, Consumer{PID: p.PID, UID: intp(p.UID), Comm: p.Comm, Count: int64(p.Threads)})
			}
		}
		u.setConsumers(cs, topConsumers)
		out = append(out, u)
	}
	return out
}

// pidsRaise raises kernel.pid_max (the host row only; a pids cgroup has
// its own pids.max): four times, at least 2^20, at most PID_MAX_LIMIT.
var pidsRaise = &Raise{
	For:      func(u Finding) bool { return u.Scope == "host" },
	Risk:     "low on 64-bit kernels (PID_MAX_LIMIT 4194304); tools that assume 5-digit pids may misalign",
	Sysctls:  []string{"kernel.pid_max"},
	Settings: raiseTo("kernel.pid_max", func(u Finding, cur int64) int64 { return min(max(cur*4, 1<<20), pidMaxLimit) }, "").Settings,
}

// threadsRaise doubles kernel.threads-max.
var threadsRaise = raiseTo("kernel.threads-max", func(u Finding, cur int64) int64 { return cur * 2 },
	"medium: the default is sized from memory; runaway threads can then use more of it")

func pidsRemedy(u Finding) []string {
	if u.Scope == "host" {
		out := []string{"find the process with the most threads (consumers) and whether it leaks them"}
		if u.Max < pidMaxLimit {
			out = append(out, fmt.Sprintf("raise the pid space: sysctl -w kernel.pid_max=%d", advised(pidsRaise, u, nil)))
		} else {
			out = append(out, "kernel.pid_max is at its ceiling (4194304): only fewer tasks help")
		}
		return out
	}
	return []string{
		"find what forks in that cgroup (consumers): a fork bomb, a thread leak, zombie children not reaped",
		"raise its limit if the workload needs it: echo N > " + quote.Shell(u.Scope+"/pids.max") + ", or the container's --pids-limit / the pod's podPidsLimit / the unit's TasksMax",
	}
}

// pidMaxLimit is PID_MAX_LIMIT on 64-bit kernels.
const pidMaxLimit = 4194304

func threadsRemedy(u Finding) []string {
	return []string{
		"find the process with the most threads (consumers)",
		fmt.Sprintf("raise the limit: sysctl -w kernel.threads-max=%d", advised(threadsRaise, u, nil)),
	}
}

// pidsClues are the words and facts of an error message that point to pids (explain).
var pidsClues = []clue.Clue{
	{Words: []string{"pids.max", "pids limit", "pid_max", "fork rejected by pids controller", "pids controller", "tasksmax", "pids-limit", "pod-max-pids", "podpidslimit"}, Prior: 0.92,
		Why: "the message names the pids limit"},
	{Errno: clue.EAGAIN, Op: clue.OpThread, Prior: 0.8,
		Why: "creating a thread fails with EAGAIN at a pids cgroup's pids.max, the usual cap in containers and systemd units (TasksMax)"},
	{Words: []string{"unable to create new native thread", "unable to create native thread"}, Prior: 0.8,
		Why: "the JVM could not start a thread: pids.max in containers most often, or RLIMIT_NPROC"},
	{Errno: clue.EAGAIN, Op: clue.OpFork, NotObj: clue.ObjCgroup, Prior: 0.76,
		Why: "fork fails with EAGAIN at a pids cgroup's pids.max or kernel.pid_max"},
	{Errno: clue.ENOMEM, Op: clue.OpThread, NotOp: clue.OpFork, Prior: 0.55,
		Why: "a thread refused for lack of memory can also be a pids limit"},
	{Errno: clue.EAGAIN, NotOp: clue.OpFork | clue.OpThread | clue.OpAIO | clue.OpMkdir, NotObj: clue.ObjCgroup, Prior: 0.35,
		Why: "EAGAIN alone: fork and clone return it at pids.max"},
}

// threadsClues are the words and facts of an error message that point to threads (explain).
var threadsClues = []clue.Clue{
	{Errno: clue.EAGAIN, NotOp: clue.NamedCall, NotObj: clue.ObjCgroup, Prior: 0.2,
		Why: "EAGAIN alone: clone returns it at kernel.threads-max, which the kernel sizes large from memory"},

	{Words: []string{"threads-max", "threads_max"}, Prior: 0.9,
		Why: "the message names kernel.threads-max"},
	{Errno: clue.EAGAIN, Op: clue.OpThread, Prior: 0.7,
		Why: "or at kernel.threads-max"},
	{Errno: clue.EAGAIN, Op: clue.OpFork, NotObj: clue.ObjCgroup, Prior: 0.5,
		Why: "or kernel.threads-max"},
}
