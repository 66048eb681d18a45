package explain

import (
	"github.com/enospc/enospc/limits"
	"github.com/enospc/enospc/limits/clue"
)

// The clues of each limit are declared with the limit (limits.Limit.Clues,
// in the vocabulary of package clue): the (errno, operation, object)
// combinations and the words that point to it, each with a prior (the
// share of the field's reports of that combination whose cause is that
// limit) and where that share comes from. The model (model.go) reads them
// and the causes outside the catalog below, nothing else.

// limitClues are the clues of one limit ID.
type limitClues struct {
	limit limits.ID
	clues []clue.Clue
}

// catalogClues are the clues of every limit, in the catalog's order:
// among limits of equal confidence the first listed ranks first.
func catalogClues() []limitClues {
	var out []limitClues
	for _, f := range limits.Catalog() {
		for _, l := range f.Limits {
			if len(l.Clues) > 0 {
				out = append(out, limitClues{l.ID, l.Clues})
			}
		}
	}
	return out
}

// outside is a kind of cause outside the catalog that is worded like a
// hidden limit.
type outside struct {
	kind   string
	title  string
	remedy string
	clues  []clue.Clue
}

// outsideClues: what the words say when they name something else.
var outsideClues = []outside{
	{"cpuset", "a cpuset cgroup without CPUs or memory nodes (cpuset.cpus or cpuset.mems empty, or taken by an exclusive partition): attaching a task to it returns ENOSPC",
		"fill the cgroup's cpuset.cpus and cpuset.mems (from its parent's); no counted limit ran out", []clue.Clue{
			{Errno: clue.ENOSPC, Op: clue.OpCgAttach, Obj: clue.ObjCgCpuset | clue.ObjCgroup, Prior: 0.88, Why: "writing a pid or a cpuset setting into a cgroup returns ENOSPC when the cpuset has no CPUs or memory nodes"},
			{Errno: clue.ENOSPC, Words: []string{"cpuset.cpus", "cpuset.mems"}, Prior: 0.88, Why: "the message names the cpuset's cpus or mems"},
			{Errno: clue.ENOSPC, Obj: clue.ObjCgCpuset, NotOp: clue.OpMkdir, Prior: 0.8, Why: "ENOSPC in the cpuset hierarchy: an empty cpuset"},
		}},
	{"locks", "podman's own lock slots (engine.num_locks in containers.conf), held by containers, pods and volumes",
		"podman system prune and podman volume prune, or raise num_locks and run podman system renumber", []clue.Clue{
			{Op: clue.OpLock, Prior: 0.92, Why: "libpod allocates a lock slot per container, pod and volume and reports a full table as ENOSPC or \"exceeded num_locks\""},
		}},
	{"oom", "the OOM killer: memory ran out (a container's memory limit or the host's), not a counted limit",
		"raise the memory limit or lower the usage; kubectl describe pod shows OOMKilled", []clue.Clue{
			{Words: []string{"oom-killer", "out of memory: kill", "out of memory: killed", "memory cgroup out of memory", "total-vm", "oom_reaper", "oomkilled", "oom_kill_process"}, Prior: 0.92, Why: "the kernel's OOM killer's words"},
		}},
	{"app", "the application's own limit on connections or clients (max_connections and the like), not a kernel one",
		"raise the application's limit or pool its connections", []clue.Clue{
			{Words: []string{"too many clients", "too many connections", "max_user_connections", "remaining connection slots are reserved", "max number of clients reached", "worker_connections are not enough"}, Prior: 0.92, Why: "the application says its own connection limit is reached"},
		}},
	{"ipam", "an address pool of the container network is used up (CNI host-local IPAM, docker's default address pools), not a kernel limit",
		"free the leaked leases (/var/lib/cni/networks) or give the network a larger or non-overlapping pool", []clue.Clue{
			{Words: []string{"no ip addresses available", "range is full", "non-overlapping ipv4 address pool", "failed to allocate for range"}, Prior: 0.93, Why: "IP address management has no free address"},
		}},
	{"emlink", "the filesystem's limit on links to one inode (ext2/ext3: 32000, so 31998 subdirectories in a directory)",
		"spread the entries over more directories, or use ext4 (dir_nlink) or XFS", []clue.Clue{
			{Errno: clue.EMLINK, Prior: 0.92, Why: "EMLINK, \"too many links\": the filesystem's link count per inode"},
		}},
	{"e2big", "the arguments and environment of execve exceed ARG_MAX (or one string MAX_ARG_STRLEN)",
		"pass fewer or shorter arguments (xargs, a file), or a smaller environment", []clue.Clue{
			{Errno: clue.E2BIG, Prior: 0.92, Why: "E2BIG, \"argument list too long\": execve's argument size"},
		}},
	{"tcp_mem", "the TCP stack's memory (net.ipv4.tcp_mem) or its orphaned sockets (tcp_max_orphans), limits the catalog does not count",
		"raise net.ipv4.tcp_mem or tcp_max_orphans, or find the program holding the sockets", []clue.Clue{
			{Words: []string{"tcp: out of memory", "consider tuning tcp_mem", "out of socket memory", "too many orphaned sockets"}, Prior: 0.92, Why: "the kernel's words when TCP memory or orphans pass their limits"},
		}},
	{"memlock", "the process's locked-memory limit (RLIMIT_MEMLOCK), which BPF maps were charged to before Linux 5.11",
		"raise the memlock ulimit of the program (LimitMEMLOCK=, ulimit -l) or use a 5.11+ kernel", []clue.Clue{
			{Errno: clue.EPERM, Op: clue.OpBPF, Prior: 0.85, Why: "creating a BPF map returns EPERM when RLIMIT_MEMLOCK is exceeded (before 5.11)"},
			{Words: []string{"memlock", "ulimit -l"}, Op: clue.OpBPF, Prior: 0.9, Why: "the message names the memlock limit"},
		}},
	{"memory", "memory itself: fork or exec could not commit memory (RAM, swap, vm.overcommit_memory)",
		"free memory or swap, or relax vm.overcommit_memory", []clue.Clue{
			{Errno: clue.ENOMEM, Op: clue.OpFork | clue.OpExec, NotOp: clue.OpThread | clue.OpMkdir | clue.OpMmap, NotObj: clue.ObjCgroup, Prior: 0.72, Why: "fork and exec return ENOMEM when memory cannot be committed; a pids limit gives EAGAIN instead"},
		}},
	{"txqueue", "a network device's transmit queue is full (txqueuelen), not the neighbour table",
		"raise the device's txqueuelen or send less at once", []clue.Clue{
			{Errno: clue.ENOBUFS, Words: []string{"libnet_write", "only -1 bytes written"}, Prior: 0.82, Why: "a raw packet write got ENOBUFS: the device's queue, not a table"},
		}},
	{"pmem", "a persistent-memory region's capacity (ndctl namespaces), not a kernel namespace",
		"free or enlarge the region", []clue.Clue{
			{Words: []string{"ndctl", "create-namespace", "nvdimm"}, Prior: 0.9, Why: "ndctl's namespaces are regions of persistent memory"},
		}},
}
