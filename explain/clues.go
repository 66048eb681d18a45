package explain

import "github.com/enospc/enospc/limits"

// The clues of each limit of the catalog, as data: for each limit ID, the
// (errno, operation, object) combinations and the words that point to it,
// each with a prior, the share of the field's reports of that combination
// whose cause is that limit, and where that share comes from. The model
// (model.go) reads only this table; moving a limit's entry into the
// limit's own declaration changes nothing else.
//
// A clue holds when the message has one of its errnos (none named: any),
// one of its operations, one of its objects and one of its words, and
// none of its exclusions. The priors are not tuned numbers: they say how
// often that combination means that limit, from the man pages (which
// errno a call returns at which limit) and the public reports of
// testdata/explain/corpus.jsonl (which limit the reporters found).

// clue is one combination of facts that points to a limit.
type clue struct {
	errno errnoSet // one of these errnos; 0: none needed
	op    opSet    // one of these operations; 0: none needed
	obj   objSet   // one of these objects; 0: none needed
	prog  progSet  // one of these programs; 0: none needed
	words []string // one of these words; nil: none needed

	notErrno errnoSet
	notOp    opSet
	notObj   objSet
	notWords []string

	prior float64
	why   string
}

// limitClues are the clues of one limit ID.
type limitClues struct {
	limit limits.ID
	clues []clue
}

// goThreadBoilerplate is what the Go runtime prints after any failed
// thread creation, whichever limit refused it: it names ulimit -u without
// knowing.
var goThreadBoilerplate = []string{"may need to increase max user processes"}

// namedCall is every operation that names the call that failed: an errno
// with none of them is bare, and every limit whose call returns that errno
// is a candidate, the common ones first.
const namedCall = opWatch | opInotify | opFork | opThread | opMmap | opMkdir | opMount | opUnshare | opKeyring | opAIO | opEpoll |
	opFanInit | opFanMark | opShmget | opSemget | opMsgget | opMqOpen | opPty | opConnect | opBind | opNeigh | opBridge | opCgAttach |
	opBPF | opExec | opLock

// catalogClues is the clue table, in the catalog's order of families.
var catalogClues = []limitClues{
	{limits.Cgroups, []clue{
		{errno: eAGAIN | eNOSPC, notOp: namedCall, notObj: objCgroup, prior: 0.12,
			why: "mkdir in cgroupfs returns ENOSPC or EAGAIN at the cgroup limits"},

		{words: []string{"cgroup.max.descendants", "cgroup.max.depth", "max.descendants"}, prior: 0.9,
			why: "the message names cgroup.max.descendants or max.depth"},
		{errno: eAGAIN, op: opMkdir | opCreate, obj: objCgroup, prior: 0.85,
			why: "mkdir in cgroupfs returns EAGAIN at cgroup.max.descendants or max.depth (cgroup-v2.rst)"},
		{errno: eNOSPC, op: opMkdir, obj: objCgroup, notObj: objCgCpuset, prior: 0.62,
			why: "mkdir in cgroupfs returns ENOSPC when the controller's 65535 ids run out; live cgroups hold them too"},
		{errno: eNOSPC, obj: objCgMemory, notOp: opMkdir | opCgAttach | opWatch, prior: 0.64,
			why: "a memory cgroup could not be created: its 65535 ids, held by live cgroups where many pods run"},
	}},
	{limits.CgroupsDying, []clue{
		{errno: eNOMEM, notOp: namedCall, prior: 0.25,
			why: "mkdir of a memory cgroup returns ENOMEM when dying cgroups leak kmem (3.10 kernels)"},

		{errno: eNOSPC, op: opMkdir, obj: objCgroup, notObj: objCgCpuset, notOp: opWatch, prior: 0.72,
			why: "mkdir of a memory cgroup fails with ENOSPC when the 65535 ids run out; in the field's reports dying cgroups (kmem, page cache) hold most of them on hosts that churn containers"},
		{errno: eNOSPC, obj: objCgMemory, notOp: opMkdir | opCgAttach | opWatch, prior: 0.66,
			why: "a memory cgroup's ids are held by dying cgroups on hosts that churn containers"},
		{errno: eNOMEM, op: opMkdir, obj: objCgroup, prior: 0.82,
			why: "mkdir of a memory cgroup fails with ENOMEM on the 3.10 kernels of RHEL/CentOS 7 when kmem accounting of dying cgroups leaks (docker/for-linux#841, cgroup.memory=nokmem)"},
		{words: []string{"slub: unable to allocate memory on node"}, prior: 0.75,
			why: "SLUB cannot grow a per-cgroup kmem cache: the kmem accounting of memory cgroups on old kernels, the same leak"},
		{errno: eNOSPC, words: []string{"dying", "kmem", "zombie cgroup", "nr_dying_descendants"}, prior: 0.86,
			why: "the message points at dying cgroups or kmem accounting"},
	}},
	{limits.LeakCgroups, []clue{
		{errno: eNOSPC, op: opMkdir, obj: objCgroup, notObj: objCgCpuset, notOp: opWatch, prior: 0.3,
			why: "cgroups of containers that no longer exist hold ids too"},
	}},
	{limits.Ptys, []clue{
		{errno: eNOSPC, op: opPty, prior: 0.92,
			why: "opening /dev/ptmx returns ENOSPC at kernel.pty.max (less kernel.pty.reserve in containers) or a devpts instance's max="},
		{words: []string{"out of pty devices", "out of pty's", "out of ptys", "no more ptys", "kernel.pty.max", "pty/max", "pty.nr"}, prior: 0.9,
			why: "the program ran out of pseudo-terminals: kernel.pty.max or a devpts max="},
		{words: []string{"refused to allocate pty", "pty allocation request failed"}, prior: 0.78,
			why: "sshd could not allocate a pty: kernel.pty.max in most reports, though a permission or devpts mount problem reads the same"},
		{errno: eNOSPC, words: []string{"console", " tty", "terminal"}, prior: 0.5,
			why: "a terminal could not be set up with ENOSPC: the pty limits"},
	}},
	{limits.AIO, []clue{
		{errno: eAGAIN, notOp: namedCall, prior: 0.25,
			why: "EAGAIN alone: io_setup returns it at fs.aio-max-nr"},

		{errno: eAGAIN, op: opAIO, prior: 0.92,
			why: "io_setup returns EAGAIN when fs.aio-nr plus the events asked for passes fs.aio-max-nr (io_setup(2))"},
		{words: []string{"cannot initialize aiosub-system", "cannot initialize aio sub-system", "cannot initialise aio"}, prior: 0.85,
			why: "InnoDB could not set up native AIO: io_setup was refused, as at fs.aio-max-nr"},
		{op: opAIO, prior: 0.6,
			why: "an AIO setup failed: fs.aio-max-nr is the usual limit"},
	}},
	{limits.Epoll, []clue{
		{errno: eNOSPC, op: opEpoll, prior: 0.92,
			why: "epoll_ctl ADD returns ENOSPC when the uid's registrations reach fs.epoll.max_user_watches (epoll_ctl(2))"},
		{words: []string{"epoll.max_user_watches", "epoll/max_user_watches", "epollctl failed with 28"}, prior: 0.93,
			why: "the message names fs.epoll.max_user_watches"},
	}},
	{limits.FanotifyGroups, []clue{
		{errno: eMFILE, notOp: namedCall | opFD, prior: 0.1,
			why: "fanotify_init returns EMFILE at max_user_groups"},

		{errno: eMFILE, words: []string{"fanotify"}, prior: 0.92,
			why: "fanotify_init returns EMFILE when the uid's fs.fanotify.max_user_groups is reached"},
		{errno: eMFILE, op: opFanInit, prior: 0.9,
			why: "fanotify_init returns EMFILE at the uid's fs.fanotify.max_user_groups"},
		{words: []string{"max_user_groups", "max_fanotify_groups"}, prior: 0.92,
			why: "the message names fs.fanotify.max_user_groups"},
	}},
	{limits.FanotifyMarks, []clue{
		{errno: eNOSPC, words: []string{"fanotify"}, prior: 0.92,
			why: "fanotify_mark returns ENOSPC when the uid's fs.fanotify.max_user_marks is reached"},
		{words: []string{"max_user_marks", "max_fanotify_marks"}, prior: 0.92,
			why: "the message names fs.fanotify.max_user_marks"},
	}},
	{limits.Files, []clue{
		{errno: eNFILE, prior: 0.9,
			why: "ENFILE, \"too many open files in system\": the host's fs.file-max is reached"},
		{words: []string{"file-max", "vfs: file-max"}, prior: 0.9,
			why: "the message names fs.file-max"},
	}},
	{limits.Disk, []clue{
		{errno: eNOSPC, op: opWrite, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock, notObj: objCgroup, prior: 0.6,
			why: "data was being written when the filesystem said ENOSPC: in the field a full filesystem is the common cause (df -h)"},
		{errno: eNOSPC, op: opCreate | opMkdir, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock | opMount, notObj: objCgroup | objSmall, prior: 0.5,
			why: "creating a file or directory failed with ENOSPC: a full filesystem, or one out of inodes"},
		{errno: eNOSPC, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock | opMount | opMkdir | opInotify, notObj: objCgroup, prior: 0.45,
			why: "\"no space left on device\" alone: a full filesystem is the common cause"},
		{errno: eNOSPC, obj: objLog, prior: 0.7,
			why: "logs were being written: log volumes fill up"},
		{words: []string{"disk full", "disk is full", "filesystem full", "file system full", "could not extend file", "check free disk space", "flood stage", "disk watermark", "ephemeral-storage", "diskpressure", "disk space error", "not enough space", "insufficient disk space"}, prior: 0.86,
			why: "the message says the disk itself is full (kubelet's ephemeral-storage eviction counts the node's filesystem)"},
		{obj: objShm, words: []string{"bus error", "insufficient shared memory", "out of shared memory", "raise your shared memory limit", "could not resize shared memory"}, prior: 0.86,
			why: "/dev/shm is full: a tmpfs of 64 MiB in a docker container unless --shm-size (PyTorch's DataLoader passes tensors through it)"},
		{prog: progPyTorch, words: []string{"bus error"}, prior: 0.8,
			why: "a DataLoader worker killed by a bus error: its tensors go through /dev/shm, which is full (pytorch#5040)"},
		{errno: eNOSPC, obj: objShm, prior: 0.8,
			why: "a file of the /dev/shm tmpfs could not grow: the tmpfs is full"},
	}},
	{limits.Inodes, []clue{
		{words: []string{"inodes", "no free inode", "out of inode", "ifree", "iused", "df -i", "inode table"}, prior: 0.9,
			why: "the message speaks of inodes"},
		{errno: eNOSPC, obj: objSmall, notOp: opWatch | opInotify, prior: 0.55,
			why: "a tree of many small files (node_modules, caches, git objects) was being created: such trees run out of inodes before blocks"},
		{errno: eNOSPC, op: opCreate | opMkdir, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock | opMount, notObj: objCgroup, prior: 0.45,
			why: "creating a file takes an inode: ENOSPC there is often a filesystem out of inodes (df -i)"},
		{errno: eNOSPC, words: []string{"cannot touch", "touch:"}, prior: 0.62,
			why: "creating an empty file fails with ENOSPC when the filesystem has no free inode"},
		{errno: eNOSPC, obj: objRun, notObj: objCgroup, prior: 0.55,
			why: "a file under /run, a tmpfs whose inodes are few"},
		{errno: eNOSPC, words: []string{"directory index full", "htree"}, prior: 0.7,
			why: "ext4's directory index is full: one huge directory"},
		{errno: eNOSPC, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock | opInotify, notObj: objCgroup, prior: 0.36,
			why: "or the filesystem is out of inodes (df -i)"},
	}},
	{limits.InotifyWatches, []clue{
		{errno: eNOSPC, op: opWatch, notOp: opInotify, prior: 0.9,
			why: "inotify_add_watch, and the watcher libraries on it (fsnotify, chokidar, watchdog, notify), return ENOSPC at the uid's fs.inotify.max_user_watches (inotify(7))"},
		{words: []string{"max_user_watches", "inotify watch limit", "system limit for number of file watchers", "inotify resources exhausted", "unable to watch for file changes", "watch limit", "watches limit", "number of watches"}, notWords: []string{"epoll.max_user_watches", "epoll/max_user_watches"}, prior: 0.92,
			why: "the message names the inotify watch limit"},
		{errno: eNOSPC, notOp: opWatch | opPty | opUnshare | opKeyring | opShmget | opSemget | opMsgget | opMqOpen | opEpoll | opCgAttach | opLock | opWrite | opCreate | opMkdir, notObj: objLog | objLayer | objSmall, prior: 0.25,
			why: "inotify_add_watch reports its watch limit as ENOSPC"},
	}},
	{limits.InotifyInstances, []clue{
		{errno: eMFILE, op: opInotify | opWatch, prior: 0.9,
			why: "inotify_init returns EMFILE at the uid's fs.inotify.max_user_instances; only inotify_init and the watcher libraries built on it give EMFILE for this limit (inotify(7))"},
		{errno: eAGAIN | eNOMEM, op: opInotify, notOp: opFork | opThread, prior: 0.5,
			why: "inotify_init failed: its instances, or memory"},
		{words: []string{"max_user_instances"}, prior: 0.92,
			why: "the message names fs.inotify.max_user_instances"},
		{errno: eMFILE, notOp: opFD | opInotify | opWatch, prior: 0.3,
			why: "EMFILE is also inotify_init's error at max_user_instances"},
	}},
	{limits.IPCShm, []clue{
		{errno: eNOSPC, op: opShmget, notObj: objShm, prior: 0.92,
			why: "shmget returns ENOSPC when the IPC namespace has kernel.shmmni segments or its pages would pass kernel.shmall (shmget(2))"},
		{errno: eINVAL, op: opShmget, notObj: objShm, prior: 0.86,
			why: "shmget returns EINVAL when the size asked for passes kernel.shmmax (shmget(2)); PostgreSQL's HINT says so"},
		{words: []string{"shmmax", "shmmni", "shmall"}, prior: 0.88,
			why: "the message names the System V shared memory limits"},
		{op: opShmget, notObj: objShm, notErrno: eNOMEM | ePERM, prior: 0.6,
			why: "a System V shared memory segment could not be created: kernel.shmmax, shmmni or shmall"},
	}},
	{limits.IPCSem, []clue{
		{errno: eNOSPC, op: opSemget, notObj: objShm, prior: 0.9,
			why: "semget returns ENOSPC when the IPC namespace has SEMMNI sets or SEMMNS semaphores (kernel.sem; semget(2))"},
		{words: []string{"semmni", "semmns", "kernel.sem", "kernel/sem", "maximum number of semaphores"}, prior: 0.9,
			why: "the message names the semaphore limits (kernel.sem)"},
		{words: []string{"dm_task_set_cookie", "udev cookie", "udevcomplete"}, prior: 0.85,
			why: "device-mapper could not get a udev cookie, a semaphore set: leaked cookies fill SEMMNI (dmsetup udevcomplete_all)"},
	}},
	{limits.IPCMsg, []clue{
		{errno: eNOSPC, words: []string{"msgget", "msg_get_queue", "msgmni"}, prior: 0.92,
			why: "msgget returns ENOSPC when the IPC namespace has kernel.msgmni System V queues (msgget(2))"},
		{errno: eNOSPC, op: opMsgget, notOp: opMqOpen, prior: 0.6,
			why: "a message queue could not be created with ENOSPC: System V queues stop at kernel.msgmni"},
	}},
	{limits.Mqueue, []clue{
		{errno: eNOSPC, op: opMqOpen, prior: 0.92,
			why: "mq_open returns ENOSPC when the IPC namespace has fs.mqueue.queues_max queues (mq_open(3))"},
		{words: []string{"queues_max"}, prior: 0.9,
			why: "the message names fs.mqueue.queues_max"},
		{errno: eNOSPC, op: opMsgget, notOp: opMqOpen, prior: 0.55,
			why: "or POSIX queues at fs.mqueue.queues_max"},
	}},
	{limits.KeysCount, []clue{
		{errno: eDQUOT, op: opKeyring, prior: 0.8,
			why: "add_key and keyctl return EDQUOT at the uid's key quota; runc and crun create a session keyring per container (kernel.keys.maxkeys)"},
		{words: []string{"maxkeys", "root_maxkeys"}, prior: 0.9,
			why: "the message names kernel.keys.maxkeys or the keys it counts"},
	}},
	{limits.KeysBytes, []clue{
		{errno: eDQUOT, op: opKeyring, prior: 0.75,
			why: "the same quota counts bytes (kernel.keys.maxbytes), often the first to run out"},
		{words: []string{"maxbytes", "root_maxbytes", "key byte usage"}, prior: 0.9,
			why: "the message names kernel.keys.maxbytes or the key bytes it counts"},
	}},
	{limits.LeakKeyrings, []clue{
		{errno: eDQUOT, op: opKeyring, prior: 0.4,
			why: "keyrings of containers that no longer run fill the quota"},
	}},
	{limits.LeakFifo, []clue{
		{errno: eNOSPC, notOp: namedCall, notObj: objCgroup | objLog | objShm, prior: 0.12,
			why: "orphaned fifo directories exhaust /run's inodes"},

		{errno: eNOSPC, obj: objFifo, prior: 0.8,
			why: "creating a task's fifo fails with ENOSPC when /run is out of inodes, often from orphaned fifo directories"},
		{errno: eNOSPC, words: []string{"ctr:"}, prior: 0.75,
			why: "ctr run's task could not get its fifos: /run's inodes, held by orphaned fifo directories"},
		{errno: eNOSPC, obj: objRun, notObj: objCgroup, prior: 0.45,
			why: "orphaned containerd fifo directories are what usually fills /run"},
	}},
	{limits.Mounts, []clue{
		{errno: eNOSPC, notOp: namedCall, notObj: objCgroup | objLog | objShm, prior: 0.1,
			why: "mount reports fs.mount-max as ENOSPC"},

		{words: []string{"mount-max", "mount_max"}, prior: 0.92,
			why: "the message names fs.mount-max"},
		{errno: eNOSPC, op: opMount, notObj: objCgroup | objFifo, notOp: opUnshare | opMkdir | opWrite, prior: 0.62,
			why: "mount returns ENOSPC when a mount namespace reaches fs.mount-max (mount(2))"},
	}},
	{limits.Userns, []clue{
		{words: []string{"max_user_namespaces"}, prior: 0.95,
			why: "the message names user.max_user_namespaces"},
		{errno: eNOSPC, words: []string{"user namespace", "unshare user", "user ns", "userns", "clone_newuser", "newuser"}, prior: 0.92,
			why: "creating a user namespace returns ENOSPC when the uid's user.max_user_namespaces is reached or 0"},
		{errno: eNOSPC, words: []string{"fork/exec /proc/self/exe"}, prior: 0.88,
			why: "a runtime re-executing itself into new namespaces (rootlesskit, runsc, containerd's netns helper) got ENOSPC: a user namespace among them, user.max_user_namespaces"},
		{errno: eNOSPC, op: opUnshare, notObj: objCgroup, prior: 0.86,
			why: "unshare/clone into new namespaces returns ENOSPC at a user.max_*_namespaces limit, most often max_user_namespaces (reached, or 0)"},
		{errno: eNOSPC, words: []string{"special execution directory"}, prior: 0.8,
			why: "systemd sets up RuntimeDirectory= with an id-mapped mount in a new user namespace"},
		{errno: eNOSPC, words: []string{"max_*_namespaces"}, prior: 0.9,
			why: "the message names /proc/sys/user/max_*_namespaces; user namespaces are the kind most often limited (0 on some distributions, the hardening guides' advice)"},
		{words: []string{"final child's pid from pipe"}, prior: 0.5,
			why: "runc lost its container's init before it reported a pid: nsexec failing to unshare a user namespace ends like this"},
	}},
	{limits.Namespaces, []clue{
		{words: []string{"max_mnt_namespaces", "max_ipc_namespaces", "max_net_namespaces", "max_pid_namespaces", "max_uts_namespaces", "max_cgroup_namespaces", "max_time_namespaces"}, prior: 0.95,
			why: "the message names a user.max_*_namespaces limit"},
		{words: []string{"max_*_namespaces"}, prior: 0.85,
			why: "the message names /proc/sys/user/max_*_namespaces"},
		{errno: eNOSPC, words: []string{"network namespace", "net namespace", "netns", "mount namespace", "mnt namespace", "pid namespace", "ipc namespace", "uts namespace", "cgroup namespace", "clone_newnet", "clone_newns", "clone_newpid"}, notWords: []string{"/proc/self/exe"}, prior: 0.88,
			why: "creating that namespace failed with ENOSPC: user.max_*_namespaces of its kind (a re-exec of /proc/self/exe creates a user namespace with it: userns)"},
		{errno: eNOSPC, op: opUnshare, notObj: objCgroup, prior: 0.8,
			why: "or the limit of another kind unshared with it (max_net_namespaces, max_mnt_namespaces)"},
		{words: []string{"mount namespacing"}, prior: 0.7,
			why: "systemd could not set up the unit's mount namespace"},
	}},
	{limits.Conntrack, []clue{
		{words: []string{"nf_conntrack: table full", "ip_conntrack: table full", "table full, dropping packet"}, prior: 0.95,
			why: "the kernel logs \"nf_conntrack: table full, dropping packet\" at net.netfilter.nf_conntrack_max"},
		{words: []string{"nf_conntrack_max", "conntrack_max"}, prior: 0.85,
			why: "the message names nf_conntrack_max"},
	}},
	{limits.Neighbour, []clue{
		{words: []string{"neighbor table overflow", "neighbour table overflow"}, prior: 0.95,
			why: "the kernel logs \"neighbour table overflow\" when the ARP or ND table reaches gc_thresh3"},
		{words: []string{"gc_thresh3", "gc_thresh"}, prior: 0.85,
			why: "the message names the neighbour table's gc_thresh"},
		{errno: eNOBUFS, op: opNeigh, prior: 0.72,
			why: "adding a neighbour entry returns ENOBUFS when the table is at gc_thresh3"},
		{errno: eNOBUFS, notOp: opNeigh, prior: 0.5,
			why: "ENOBUFS from the network stack: a full neighbour table is the hidden limit that gives it"},
		{errno: eINVAL, words: []string{"sendmsg"}, prior: 0.55,
			why: "sendmsg fails with EINVAL when no neighbour entry can be made at a full table"},
	}},
	{limits.Ports, []clue{
		{words: []string{"ip_local_port_range", "ephemeral port", "local port range"}, prior: 0.9,
			why: "the message names the ephemeral port range (net.ipv4.ip_local_port_range)"},
		{errno: eADDRNOTAVAIL, op: opConnect, notOp: opBind, prior: 0.9,
			why: "connect returns EADDRNOTAVAIL when the namespace's ephemeral ports towards that destination are all taken"},
		{errno: eADDRNOTAVAIL, notOp: opBind, prior: 0.7,
			why: "EADDRNOTAVAIL is what connect returns when the ephemeral ports run out"},
		{errno: eADDRNOTAVAIL, op: opBind, prior: 0.35,
			why: "bind fails with EADDRNOTAVAIL mostly because the address is not on the host"},
		{errno: eADDRINUSE, words: []string{":0->"}, prior: 0.85,
			why: "a dial bound to port 0 fails with EADDRINUSE when no ephemeral port is free"},
		{errno: eADDRINUSE, op: opBind, notWords: []string{":0->"}, prior: 0.4,
			why: "bind before connect fails with EADDRINUSE when no ephemeral port is free; a listener's port taken gives the same"},
	}},
	{limits.BridgePorts, []clue{
		{errno: eXFULL, prior: 0.95,
			why: "adding a port to a bridge fails with EXFULL, \"exchange full\", at the kernel's 1023 ports per bridge"},
	}},
	{limits.Pids, []clue{
		{words: []string{"pids.max", "pids limit", "pid_max", "fork rejected by pids controller", "pids controller", "tasksmax", "pids-limit", "pod-max-pids", "podpidslimit"}, prior: 0.92,
			why: "the message names the pids limit"},
		{errno: eAGAIN, op: opThread, prior: 0.8,
			why: "creating a thread fails with EAGAIN at a pids cgroup's pids.max, the usual cap in containers and systemd units (TasksMax)"},
		{words: []string{"unable to create new native thread", "unable to create native thread"}, prior: 0.8,
			why: "the JVM could not start a thread: pids.max in containers most often, or RLIMIT_NPROC"},
		{errno: eAGAIN, op: opFork, notObj: objCgroup, prior: 0.76,
			why: "fork fails with EAGAIN at a pids cgroup's pids.max or kernel.pid_max"},
		{errno: eNOMEM, op: opThread, notOp: opFork, prior: 0.55,
			why: "a thread refused for lack of memory can also be a pids limit"},
		{errno: eAGAIN, notOp: opFork | opThread | opAIO | opMkdir, notObj: objCgroup, prior: 0.35,
			why: "EAGAIN alone: fork and clone return it at pids.max"},
	}},
	{limits.Threads, []clue{
		{errno: eAGAIN, notOp: namedCall, notObj: objCgroup, prior: 0.2,
			why: "EAGAIN alone: clone returns it at kernel.threads-max, which the kernel sizes large from memory"},

		{words: []string{"threads-max", "threads_max"}, prior: 0.9,
			why: "the message names kernel.threads-max"},
		{errno: eAGAIN, op: opThread, prior: 0.7,
			why: "or at kernel.threads-max"},
		{errno: eAGAIN, op: opFork, notObj: objCgroup, prior: 0.5,
			why: "or kernel.threads-max"},
	}},
	{limits.NProc, []clue{
		{errno: eAGAIN, notOp: namedCall, notObj: objCgroup, prior: 0.3,
			why: "EAGAIN alone: fork returns it at the uid's RLIMIT_NPROC"},

		{words: []string{"ulimit -u", "max user processes", "rlimit_nproc", "max number of threads", "number of threads for user"}, notWords: goThreadBoilerplate, prior: 0.9,
			why: "the message names the per-user process limit (RLIMIT_NPROC, ulimit -u), which counts threads"},
		{errno: eAGAIN, words: []string{"nproc"}, prior: 0.88,
			why: "EAGAIN with the per-user process limit (nproc) named"},
		{errno: eAGAIN, op: opThread, prior: 0.75,
			why: "or at the uid's RLIMIT_NPROC (ulimit -u)"},
		{words: goThreadBoilerplate, prior: 0.82,
			why: "the Go runtime names ulimit -u after any refused thread: RLIMIT_NPROC in most of its reports, pids.max in containers"},
		{errno: eAGAIN, op: opFork, notObj: objCgroup, prior: 0.55,
			why: "or the uid's RLIMIT_NPROC"},
	}},
	{limits.FilesProcess, []clue{
		{words: []string{"ulimit -n", "max open files", "max file descriptors"}, prior: 0.92,
			why: "the message names the process's open files limit (RLIMIT_NOFILE)"},
		{errno: eMFILE, words: []string{"nofile", "rlimit_nofile", "limitnofile"}, prior: 0.92,
			why: "EMFILE with the process's RLIMIT_NOFILE named"},
		{errno: eMFILE, op: opFD, notOp: opInotify | opWatch, notWords: []string{"fanotify"}, prior: 0.86,
			why: "accept, socket, open or pipe returns EMFILE at the process's RLIMIT_NOFILE: in the field a bare EMFILE is the process's own limit almost always; inotify's instances show up as EMFILE only from inotify_init and its watchers"},
		{errno: eMFILE, notOp: opInotify | opWatch | opFD, notWords: []string{"fanotify"}, prior: 0.74,
			why: "EMFILE, \"too many open files\": the process's RLIMIT_NOFILE"},
	}},
	{limits.Mapcount, []clue{
		{errno: eNOMEM, notOp: namedCall, prior: 0.3,
			why: "ENOMEM alone: mmap returns it at vm.max_map_count"},

		{words: []string{"max_map_count", "max virtual memory areas", "map count", "memory map areas"}, prior: 0.93,
			why: "the message names vm.max_map_count, the mappings one process may have"},
		{words: []string{"map failed"}, prior: 0.8,
			why: "Java's FileChannel.map fails with \"Map failed\" when mmap returns ENOMEM, most often at vm.max_map_count"},
		{errno: eNOMEM, op: opMmap, notOp: opFork, prior: 0.7,
			why: "mmap and mprotect return ENOMEM at vm.max_map_count as well as when memory is short"},
		{words: []string{"native memory allocation (mmap) failed"}, prior: 0.7,
			why: "the JVM's mmap failed: vm.max_map_count, or memory"},
	}},
	{limits.Quota, []clue{
		{errno: eDQUOT, notOp: opKeyring, prior: 0.75,
			why: "EDQUOT from a file operation: a user, group or project quota of the filesystem; the block quota is the one usually full"},
		{errno: eNOSPC, words: []string{"storage-opt", "project quota", "prjquota", "pquota"}, prior: 0.8,
			why: "overlay2 with --storage-opt size on XFS reports its project quota as ENOSPC"},
		{errno: eDQUOT, op: opKeyring, prior: 0.2,
			why: "EDQUOT is also the filesystem quota's error"},
	}},
	{limits.QuotaInodes, []clue{
		{errno: eDQUOT, op: opCreate | opMkdir, notOp: opKeyring, prior: 0.6,
			why: "creating a file fails with EDQUOT when its owner's inode quota is used up as well as at its block quota"},
		{errno: eDQUOT, notOp: opKeyring, prior: 0.5,
			why: "or the inode quota of that user, group or project"},
		{errno: eDQUOT, words: []string{"file limit", "files quota", "inode quota"}, prior: 0.85,
			why: "the message names the file (inode) quota"},
	}},
}

// outside is a kind of cause outside the catalog that is worded like a
// hidden limit.
type outside struct {
	kind   string
	title  string
	remedy string
	clues  []clue
}

// outsideClues: what the words say when they name something else.
var outsideClues = []outside{
	{"cpuset", "a cpuset cgroup without CPUs or memory nodes (cpuset.cpus or cpuset.mems empty, or taken by an exclusive partition): attaching a task to it returns ENOSPC",
		"fill the cgroup's cpuset.cpus and cpuset.mems (from its parent's); no counted limit ran out", []clue{
			{errno: eNOSPC, op: opCgAttach, obj: objCgCpuset | objCgroup, prior: 0.88, why: "writing a pid or a cpuset setting into a cgroup returns ENOSPC when the cpuset has no CPUs or memory nodes"},
			{errno: eNOSPC, words: []string{"cpuset.cpus", "cpuset.mems"}, prior: 0.88, why: "the message names the cpuset's cpus or mems"},
			{errno: eNOSPC, obj: objCgCpuset, notOp: opMkdir, prior: 0.8, why: "ENOSPC in the cpuset hierarchy: an empty cpuset"},
		}},
	{"locks", "podman's own lock slots (engine.num_locks in containers.conf), held by containers, pods and volumes",
		"podman system prune and podman volume prune, or raise num_locks and run podman system renumber", []clue{
			{op: opLock, prior: 0.92, why: "libpod allocates a lock slot per container, pod and volume and reports a full table as ENOSPC or \"exceeded num_locks\""},
		}},
	{"oom", "the OOM killer: memory ran out (a container's memory limit or the host's), not a counted limit",
		"raise the memory limit or lower the usage; kubectl describe pod shows OOMKilled", []clue{
			{words: []string{"oom-killer", "out of memory: kill", "out of memory: killed", "memory cgroup out of memory", "total-vm", "oom_reaper", "oomkilled", "oom_kill_process"}, prior: 0.92, why: "the kernel's OOM killer's words"},
		}},
	{"app", "the application's own limit on connections or clients (max_connections and the like), not a kernel one",
		"raise the application's limit or pool its connections", []clue{
			{words: []string{"too many clients", "too many connections", "max_user_connections", "remaining connection slots are reserved", "max number of clients reached", "worker_connections are not enough"}, prior: 0.92, why: "the application says its own connection limit is reached"},
		}},
	{"ipam", "an address pool of the container network is used up (CNI host-local IPAM, docker's default address pools), not a kernel limit",
		"free the leaked leases (/var/lib/cni/networks) or give the network a larger or non-overlapping pool", []clue{
			{words: []string{"no ip addresses available", "range is full", "non-overlapping ipv4 address pool", "failed to allocate for range"}, prior: 0.93, why: "IP address management has no free address"},
		}},
	{"emlink", "the filesystem's limit on links to one inode (ext2/ext3: 32000, so 31998 subdirectories in a directory)",
		"spread the entries over more directories, or use ext4 (dir_nlink) or XFS", []clue{
			{errno: eMLINK, prior: 0.92, why: "EMLINK, \"too many links\": the filesystem's link count per inode"},
		}},
	{"e2big", "the arguments and environment of execve exceed ARG_MAX (or one string MAX_ARG_STRLEN)",
		"pass fewer or shorter arguments (xargs, a file), or a smaller environment", []clue{
			{errno: e2BIG, prior: 0.92, why: "E2BIG, \"argument list too long\": execve's argument size"},
		}},
	{"tcp_mem", "the TCP stack's memory (net.ipv4.tcp_mem) or its orphaned sockets (tcp_max_orphans), limits the catalog does not count",
		"raise net.ipv4.tcp_mem or tcp_max_orphans, or find the program holding the sockets", []clue{
			{words: []string{"tcp: out of memory", "consider tuning tcp_mem", "out of socket memory", "too many orphaned sockets"}, prior: 0.92, why: "the kernel's words when TCP memory or orphans pass their limits"},
		}},
	{"memlock", "the process's locked-memory limit (RLIMIT_MEMLOCK), which BPF maps were charged to before Linux 5.11",
		"raise the memlock ulimit of the program (LimitMEMLOCK=, ulimit -l) or use a 5.11+ kernel", []clue{
			{errno: ePERM, op: opBPF, prior: 0.85, why: "creating a BPF map returns EPERM when RLIMIT_MEMLOCK is exceeded (before 5.11)"},
			{words: []string{"memlock", "ulimit -l"}, op: opBPF, prior: 0.9, why: "the message names the memlock limit"},
		}},
	{"memory", "memory itself: fork or exec could not commit memory (RAM, swap, vm.overcommit_memory)",
		"free memory or swap, or relax vm.overcommit_memory", []clue{
			{errno: eNOMEM, op: opFork | opExec, notOp: opThread | opMkdir | opMmap, notObj: objCgroup, prior: 0.72, why: "fork and exec return ENOMEM when memory cannot be committed; a pids limit gives EAGAIN instead"},
		}},
	{"txqueue", "a network device's transmit queue is full (txqueuelen), not the neighbour table",
		"raise the device's txqueuelen or send less at once", []clue{
			{errno: eNOBUFS, words: []string{"libnet_write", "only -1 bytes written"}, prior: 0.82, why: "a raw packet write got ENOBUFS: the device's queue, not a table"},
		}},
	{"pmem", "a persistent-memory region's capacity (ndctl namespaces), not a kernel namespace",
		"free or enlarge the region", []clue{
			{words: []string{"ndctl", "create-namespace", "nvdimm"}, prior: 0.9, why: "ndctl's namespaces are regions of persistent memory"},
		}},
}
