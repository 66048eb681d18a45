// Package clue is the vocabulary in which each limit of the catalog
// declares the clues enospc explain reads in an error message: the errno
// (by its number, its symbolic name and the strerror wordings of libc,
// Go, Rust, Java, Python, Node, .NET and the runtimes), the operation that
// failed (the syscall or library call, named or implied by the tool), the
// object it failed on (a path and what it is), and the program. A limit's
// clues are declared with the limit (limits.Limit.Clues); explain extracts
// these facts from a message and ranks the limits whose clues hold.
package clue

// Clue is one combination of facts that points to a limit.
type Clue struct {
	Errno Errno    // one of these errnos; 0: none needed
	Op    Op       // one of these operations; 0: none needed
	Obj   Obj      // one of these objects; 0: none needed
	Prog  Prog     // one of these programs; 0: none needed
	Words []string // one of these words; nil: none needed

	NotErrno Errno
	NotOp    Op
	NotObj   Obj
	NotWords []string

	Prior float64
	Why   string
}

// Errno is a set of errnos.
type Errno uint32

const (
	ENOSPC Errno = 1 << iota
	EDQUOT
	EMFILE
	ENFILE
	EAGAIN
	ENOMEM
	EINVAL
	ENOBUFS
	EADDRNOTAVAIL
	EADDRINUSE
	EXFULL
	EPERM
	E2BIG
	EMLINK
)

// ErrnoWords are the wordings of each errno (musl's strerror says "No
// file descriptors available" for EMFILE). Numbers are written as the
// programs print them: "errno 28", "os error 28" (Rust), "(28:" (nginx,
// apt), "[errno 28]" (Python), "code: 28" (Rust's Debug), "-28" (libuv,
// pyuv), "error code 11", "err=11" (fio). "too many open files" is
// EMFILE unless "in system" follows (ENFILE): see extract.
var ErrnoWords = []struct {
	E     Errno
	Words []string
}{
	{ENOSPC, []string{"no space left on device", "enospc", "no space left", "errno 28", "errno=28", "errno: 28", "os error 28", "code: 28", "(28:", "(28)", "(-28", "[errno 28]", "failed with 28", "error 28", "err=28", "nospc"}},
	{EDQUOT, []string{"disk quota exceeded", "edquot", "quota exceeded", "errno 122", "errno=122", "os error 122", "[errno 122]"}},
	{EMFILE, []string{"no file descriptors available", "emfile", "errno 24", "errno=24", "os error 24", "[errno 24]", "code: 24", "maximum number of files open"}},
	{ENFILE, []string{"too many open files in system", "enfile", "file table overflow", "errno 23", "errno=23", "os error 23", "file-max limit"}},
	{EAGAIN, []string{"resource temporarily unavailable", "resources temporarily unavailable", "eagain", "errno 11", "errno=11", "errno: 11", "os error 11", "code: 11", "error code 11", "err=11", "wouldblock", "can't fork", "cannot fork", "no more processes"}},
	{ENOMEM, []string{"cannot allocate memory", "enomem", "errno 12", "errno=12", "os error 12", "code: 12", "(-12)", "outofmemoryerror", "unable to allocate memory", "insufficient memory"}},
	{EINVAL, []string{"invalid argument", "einval", "errno 22", "errno=22"}},
	{ENOBUFS, []string{"no buffer space available", "enobufs"}},
	{EADDRNOTAVAIL, []string{"cannot assign requested address", "eaddrnotavail", "(99:", "errno 99", "errno=99", "os error 99"}},
	{EADDRINUSE, []string{"address already in use", "eaddrinuse"}},
	{EXFULL, []string{"exchange full", "exfull"}},
	{EPERM, []string{"operation not permitted", "eperm"}},
	{E2BIG, []string{"argument list too long", "e2big"}},
	{EMLINK, []string{"too many links", "emlink"}},
}

// emfileWords and enfileWords: "too many open files" is EMFILE, unless it
// is "too many open files in system".
const TooManyOpenFiles = "too many open files"

// Op is a set of operations.
type Op uint64

const (
	OpWatch    Op = 1 << iota // inotify_add_watch and the watcher libraries built on inotify
	OpInotify                 // inotify_init: creating a watcher
	OpFork                    // fork, clone, posix_spawn, exec of a child
	OpThread                  // pthread_create, a runtime's thread
	OpMmap                    // mmap, mprotect, a mapped file
	OpFD                      // accept, socket, open, pipe, dial: a new descriptor
	OpMkdir                   // mkdir
	OpWrite                   // write, copy, extract: data written
	OpCreate                  // creating a file: touch, creat, a temp or lock file
	OpMount                   // mount, bind mounts, overlay mounts
	OpUnshare                 // unshare, clone into new namespaces
	OpKeyring                 // add_key, keyctl, session keyrings
	OpAIO                     // io_setup, io_queue_init, libaio
	OpEpoll                   // epoll_ctl
	OpFanInit                 // fanotify_init
	OpFanMark                 // fanotify_mark
	OpShmget                  // shmget, System V shared memory segments
	OpSemget                  // semget, System V semaphores
	OpMsgget                  // msgget, System V message queues
	OpMqOpen                  // mq_open, POSIX message queues
	OpPty                     // opening /dev/ptmx, openpty, forkpty
	OpConnect                 // connect, dial, upstream connections
	OpBind                    // bind
	OpNeigh                   // adding a neighbour (ARP/ND) entry
	OpBridge                  // adding a port to a bridge
	OpCgAttach                // writing a pid or a setting into a cgroup file
	OpBPF                     // bpf map creation
	OpExec                    // execve of a program with its arguments
	OpLock                    // a runtime's own lock slots
	OpSlab                    // the slab allocator's own complaint
)

// OpWords name or imply each operation.
var OpWords = []struct {
	Op    Op
	Words []string
}{
	{OpWatch, []string{"inotify_add_watch", "add_watch", "addwatch", "add watch", "failed to watch", "unable to watch", "cannot watch", "create watch", "watch enospc", "watch '", "directory watch", "file watchers", "watch descriptor", "watch limit", "watches limit", "number of watches", "fs_events", "tail_fs", "in_tail", "to watch", "watching", "watcher", " watch ", "watch:", "fsevent", "fswatch", "chokidar", "watchdog", "pyinotify", "hotwatch", "inotify", "fsnotify", "monitor.d", "incron"}},
	{OpInotify, []string{"inotify_init", "inotify init", "initialize inotify", "inotify cannot be used", "new inotify", "fsnotify.newwatcher", "inotify instance", "max_user_instances", "create watcher", "create fsnotify watcher", "create fs watcher", "create a watcher", "creating recommended watcher", "allocate directory watch", "plugin watcher", "watcher for lockfile"}},
	{OpFork, []string{"fork", "clone(", "clone:", "clone failed", "posix_spawn", "spawn", "vfork", "fork/exec", "start process", "create process"}},
	{OpThread, []string{"pthread_create", "native thread", "newosproc", "new os thread", "create thread", "creating thread", "thread creation", "error creating thread", "thread.create", "thread.start", "thread.java", "new thread", "os thread", "start0", "could not be started"}},
	{OpMmap, []string{"mmap", "map failed", "mprotect", "memory map", "native memory allocation", "mapped", "max_map_count"}},
	{OpFD, []string{"accept", "socket", "dial tcp", "dial unix", "dial udp", "open(", "open ", "fopen", "filenotfoundexception", "pipe", "open file", "opening", "sockets"}},
	{OpMkdir, []string{"mkdir", "cannot create directory", "create directory", "failed to create directory", "mkdir_p"}},
	{OpWrite, []string{"write", "writing", "could not extend", "copy", "extract", "sendfile", "wrote only", "register layer", "unpack", "download", "install", "commit", "flush", "save", "dump", "journal", "log file"}},
	{OpCreate, []string{"touch", "cannot create", "could not create", "unable to create", "failed to create", "create temp", "temp file", "temp dir", "index.lock", "mkfifo", "mknod", "creat(", "lock file"}},
	{OpMount, []string{"mount(", "mount:", " mount ", "mount to", "mount failed", "failed to mount", "mounting", "bind mount", "overlay mount", "mount of", "mount -t"}},
	{OpUnshare, []string{"unshare", "clone_new", "new namespace", "create namespace", "creating namespace", "nsenter", "/proc/self/exe", "userns", "user ns", "newuser", "re-exec"}},
	{OpKeyring, []string{"keyring", "add_key", "keyctl", "session key", "request_key", "krb5"}},
	{OpAIO, []string{"io_setup", "io_queue_init", "libaio", "aio-max-nr", "aio-nr", "aio context", "native aio", "linux-aio", "linux aio", "aiosub-system", "aio sub-system", "aio subsystem"}},
	{OpEpoll, []string{"epoll_ctl", "epollctl", "epoll"}},
	{OpFanInit, []string{"fanotify_init", "fanotify: init", "fanotify init"}},
	{OpFanMark, []string{"fanotify_mark"}},
	{OpShmget, []string{"shmget", "shared memory segment", "ipcmemorycreate", "create share memory", "create shared memory", "gm_create", "huge page for dma"}},
	{OpSemget, []string{"semget", "sem_get", "create semaphores", "semaphore", "accept lock", "accept mutex", "mutex", "udev cookie", "set cookie", "dm_task_set_cookie"}},
	{OpMsgget, []string{"msgget", "msg_get_queue", "msgqueue", "message queue"}},
	{OpMqOpen, []string{"mq_open", "mqueue", "posix message queue", "posix queue"}},
	{OpPty, []string{"ptmx", "openpty", "forkpty", "pseudo-terminal", "pseudo terminal", "pseudoterminal", "getpt", "posix_openpt", " pty", "pty allocation", "allocate pty", "ptys", "pty's", "pty devices"}},
	{OpConnect, []string{"connect", "dial ", "upstream", "backend"}},
	{OpBind, []string{"bind"}},
	{OpNeigh, []string{"neigh", "arp_cache", "ndisc_cache", "rtnetlink", "arp"}},
	{OpBridge, []string{"master", "bridge", "veth", "br0"}},
	{OpCgAttach, []string{"cgroup.procs", "/tasks", "cpuset.cpus", "cpuset.mems", "add to cgroup", "adding process"}},
	{OpBPF, []string{"bpf", "create map", "map create", "map.create", "create_map", "perf map"}},
	{OpExec, []string{"execve", "exec ", "execvp", "popen", "exec:"}},
	{OpLock, []string{"allocating lock", "allocate lock", "num_locks", "lock for new"}},
	{OpSlab, []string{"slub: unable to allocate", "slab"}},
}

// Obj is a set of kinds of objects.
type Obj uint32

const (
	ObjCgMemory Obj = 1 << iota // the memory controller's hierarchy
	ObjCgCpuset                 // the cpuset controller's hierarchy
	ObjCgroup                   // cgroupfs, any controller
	ObjRun                      // the /run tmpfs and the runtimes' state in it
	ObjFifo                     // fifos of containers' stdio
	ObjShm                      // /dev/shm and what lives in it
	ObjSmall                    // a tree of many small files
	ObjLayer                    // image layers being pulled or extracted
	ObjLog                      // logs
	ObjCgPids                   // the pids controller
)

var ObjWords = []struct {
	Obj   Obj
	Words []string
}{
	{ObjCgMemory, []string{"/sys/fs/cgroup/memory", "cgroup/memory", "memory cgroup", "memcg", "kmem"}},
	{ObjCgCpuset, []string{"/sys/fs/cgroup/cpuset", "cpuset."}},
	{ObjCgroup, []string{"/sys/fs/cgroup", "cgroup"}},
	{ObjRun, []string{" /run/", "\"/run/", "'/run/", "/var/run/", "/run/containerd", "/run/docker", "libcontainerd"}},
	{ObjFifo, []string{"fifo", "containerd-fifo"}},
	{ObjShm, []string{"/dev/shm", "shared memory (shm)", "out of shared memory", "shared memory limit", "shm-size", "resize shared memory", "shm_open", "sem_open"}},
	{ObjSmall, []string{"node_modules", ".cache", "yarn", "npm", "pnpm", "site-packages", ".git/", "/objects/", "maildir", "sessions"}},
	{ObjLayer, []string{"register layer", "tar file", "extracting", "applylayer", "pulling", "pull image", "error pulling", "layer"}},
	{ObjLog, []string{"/var/log", "syslog", "log file", "daemon.log", "server.log"}},
	{ObjCgPids, []string{"pids controller", "/sys/fs/cgroup/pids", "pids.max", "tasksmax"}},
}

// Prog is a set of programs.
type Prog uint32

const (
	ProgElastic Prog = 1 << iota
	ProgJava
	ProgGo
	ProgNode
	ProgPostgres
	ProgKubelet
	ProgSystemd
	ProgPodman
	ProgPyTorch
	ProgMySQL
)

var ProgWords = []struct {
	Prog  Prog
	Words []string
}{
	{ProgElastic, []string{"elasticsearch", "bootstrap checks", "bootstrap check"}},
	{ProgJava, []string{"java.", "jvm", "hotspot"}},
	{ProgGo, []string{"runtime: ", "goroutine", "runtime/cgo"}},
	{ProgNode, []string{"node_modules", "npm err", "node:", "(node"}},
	{ProgPostgres, []string{"postgres", "fatal:  ", "pg_"}},
	{ProgKubelet, []string{"kubelet", "kubepods"}},
	{ProgSystemd, []string{"systemd", ".service", ".slice"}},
	{ProgPodman, []string{"podman", "libpod"}},
	{ProgPyTorch, []string{"dataloader", "pytorch", "torch"}},
	{ProgMySQL, []string{"mysql", "sqlstate[hy000]", "hy000", "innodb"}},
}

// GoThreadBoilerplate is what the Go runtime prints after any failed
// thread creation, whichever limit refused it: it names ulimit -u without
// knowing.
var GoThreadBoilerplate = []string{"may need to increase max user processes"}

// NamedCall is every operation that names the call that failed: an errno
// with none of them is bare, and every limit whose call returns that errno
// is a candidate, the common ones first.
const NamedCall = OpWatch | OpInotify | OpFork | OpThread | OpMmap | OpMkdir | OpMount | OpUnshare | OpKeyring | OpAIO | OpEpoll |
	OpFanInit | OpFanMark | OpShmget | OpSemget | OpMsgget | OpMqOpen | OpPty | OpConnect | OpBind | OpNeigh | OpBridge | OpCgAttach |
	OpBPF | OpExec | OpLock
