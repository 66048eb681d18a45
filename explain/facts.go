package explain

// What a message says of itself, read as facts: the errno (by its number,
// its symbolic name and the strerror wordings of libc, Go, Rust, Java,
// Python, Node, .NET and the runtimes), the operation that failed (the
// syscall or library call, named or implied by the tool), the object it
// failed on (a path and what it is), and the program. The limits' clues
// (clues.go) are written in these terms; the words below are the only way
// the model reads a message (see vocabulary).

// errnoSet is a set of errnos.
type errnoSet uint32

const (
	eNOSPC errnoSet = 1 << iota
	eDQUOT
	eMFILE
	eNFILE
	eAGAIN
	eNOMEM
	eINVAL
	eNOBUFS
	eADDRNOTAVAIL
	eADDRINUSE
	eXFULL
	ePERM
	e2BIG
	eMLINK
)

// errnoWords are the wordings of each errno (musl's strerror says "No
// file descriptors available" for EMFILE). Numbers are written as the
// programs print them: "errno 28", "os error 28" (Rust), "(28:" (nginx,
// apt), "[errno 28]" (Python), "code: 28" (Rust's Debug), "-28" (libuv,
// pyuv), "error code 11", "err=11" (fio). "too many open files" is
// EMFILE unless "in system" follows (ENFILE): see extract.
var errnoWords = []struct {
	e     errnoSet
	words []string
}{
	{eNOSPC, []string{"no space left on device", "enospc", "no space left", "errno 28", "errno=28", "errno: 28", "os error 28", "code: 28", "(28:", "(28)", "(-28", "[errno 28]", "failed with 28", "error 28", "err=28", "nospc"}},
	{eDQUOT, []string{"disk quota exceeded", "edquot", "quota exceeded", "errno 122", "errno=122", "os error 122", "[errno 122]"}},
	{eMFILE, []string{"no file descriptors available", "emfile", "errno 24", "errno=24", "os error 24", "[errno 24]", "code: 24", "maximum number of files open"}},
	{eNFILE, []string{"too many open files in system", "enfile", "file table overflow", "errno 23", "errno=23", "os error 23", "file-max limit"}},
	{eAGAIN, []string{"resource temporarily unavailable", "resources temporarily unavailable", "eagain", "errno 11", "errno=11", "errno: 11", "os error 11", "code: 11", "error code 11", "err=11", "wouldblock", "can't fork", "cannot fork", "no more processes"}},
	{eNOMEM, []string{"cannot allocate memory", "enomem", "errno 12", "errno=12", "os error 12", "code: 12", "(-12)", "outofmemoryerror", "unable to allocate memory", "insufficient memory"}},
	{eINVAL, []string{"invalid argument", "einval", "errno 22", "errno=22"}},
	{eNOBUFS, []string{"no buffer space available", "enobufs"}},
	{eADDRNOTAVAIL, []string{"cannot assign requested address", "eaddrnotavail", "(99:", "errno 99", "errno=99", "os error 99"}},
	{eADDRINUSE, []string{"address already in use", "eaddrinuse"}},
	{eXFULL, []string{"exchange full", "exfull"}},
	{ePERM, []string{"operation not permitted", "eperm"}},
	{e2BIG, []string{"argument list too long", "e2big"}},
	{eMLINK, []string{"too many links", "emlink"}},
}

// emfileWords and enfileWords: "too many open files" is EMFILE, unless it
// is "too many open files in system".
const tooManyOpenFiles = "too many open files"

// opSet is a set of operations.
type opSet uint64

const (
	opWatch    opSet = 1 << iota // inotify_add_watch and the watcher libraries built on inotify
	opInotify                    // inotify_init: creating a watcher
	opFork                       // fork, clone, posix_spawn, exec of a child
	opThread                     // pthread_create, a runtime's thread
	opMmap                       // mmap, mprotect, a mapped file
	opFD                         // accept, socket, open, pipe, dial: a new descriptor
	opMkdir                      // mkdir
	opWrite                      // write, copy, extract: data written
	opCreate                     // creating a file: touch, creat, a temp or lock file
	opMount                      // mount, bind mounts, overlay mounts
	opUnshare                    // unshare, clone into new namespaces
	opKeyring                    // add_key, keyctl, session keyrings
	opAIO                        // io_setup, io_queue_init, libaio
	opEpoll                      // epoll_ctl
	opFanInit                    // fanotify_init
	opFanMark                    // fanotify_mark
	opShmget                     // shmget, System V shared memory segments
	opSemget                     // semget, System V semaphores
	opMsgget                     // msgget, System V message queues
	opMqOpen                     // mq_open, POSIX message queues
	opPty                        // opening /dev/ptmx, openpty, forkpty
	opConnect                    // connect, dial, upstream connections
	opBind                       // bind
	opNeigh                      // adding a neighbour (ARP/ND) entry
	opBridge                     // adding a port to a bridge
	opCgAttach                   // writing a pid or a setting into a cgroup file
	opBPF                        // bpf map creation
	opExec                       // execve of a program with its arguments
	opLock                       // a runtime's own lock slots
	opSlab                       // the slab allocator's own complaint
)

// opWords name or imply each operation.
var opWords = []struct {
	op    opSet
	words []string
}{
	{opWatch, []string{"inotify_add_watch", "add_watch", "addwatch", "add watch", "failed to watch", "unable to watch", "cannot watch", "create watch", "watch enospc", "watch '", "directory watch", "file watchers", "watch descriptor", "watch limit", "watches limit", "number of watches", "fs_events", "tail_fs", "in_tail", "to watch", "watching", "watcher", " watch ", "watch:", "fsevent", "fswatch", "chokidar", "watchdog", "pyinotify", "hotwatch", "inotify", "fsnotify", "monitor.d", "incron"}},
	{opInotify, []string{"inotify_init", "inotify init", "initialize inotify", "inotify cannot be used", "new inotify", "fsnotify.newwatcher", "inotify instance", "max_user_instances", "create watcher", "create fsnotify watcher", "create fs watcher", "create a watcher", "creating recommended watcher", "allocate directory watch", "plugin watcher", "watcher for lockfile"}},
	{opFork, []string{"fork", "clone(", "clone:", "clone failed", "posix_spawn", "spawn", "vfork", "fork/exec", "start process", "create process"}},
	{opThread, []string{"pthread_create", "native thread", "newosproc", "new os thread", "create thread", "creating thread", "thread creation", "error creating thread", "thread.create", "thread.start", "thread.java", "new thread", "os thread", "start0", "could not be started"}},
	{opMmap, []string{"mmap", "map failed", "mprotect", "memory map", "native memory allocation", "mapped", "max_map_count"}},
	{opFD, []string{"accept", "socket", "dial tcp", "dial unix", "dial udp", "open(", "open ", "fopen", "filenotfoundexception", "pipe", "open file", "opening", "sockets"}},
	{opMkdir, []string{"mkdir", "cannot create directory", "create directory", "failed to create directory", "mkdir_p"}},
	{opWrite, []string{"write", "writing", "could not extend", "copy", "extract", "sendfile", "wrote only", "register layer", "unpack", "download", "install", "commit", "flush", "save", "dump", "journal", "log file"}},
	{opCreate, []string{"touch", "cannot create", "could not create", "unable to create", "failed to create", "create temp", "temp file", "temp dir", "index.lock", "mkfifo", "mknod", "creat(", "lock file"}},
	{opMount, []string{"mount(", "mount:", " mount ", "mount to", "mount failed", "failed to mount", "mounting", "bind mount", "overlay mount", "mount of", "mount -t"}},
	{opUnshare, []string{"unshare", "clone_new", "new namespace", "create namespace", "creating namespace", "nsenter", "/proc/self/exe", "userns", "user ns", "newuser", "re-exec"}},
	{opKeyring, []string{"keyring", "add_key", "keyctl", "session key", "request_key", "krb5"}},
	{opAIO, []string{"io_setup", "io_queue_init", "libaio", "aio-max-nr", "aio-nr", "aio context", "native aio", "linux-aio", "linux aio", "aiosub-system", "aio sub-system", "aio subsystem"}},
	{opEpoll, []string{"epoll_ctl", "epollctl", "epoll"}},
	{opFanInit, []string{"fanotify_init", "fanotify: init", "fanotify init"}},
	{opFanMark, []string{"fanotify_mark"}},
	{opShmget, []string{"shmget", "shared memory segment", "ipcmemorycreate", "create share memory", "create shared memory", "gm_create", "huge page for dma"}},
	{opSemget, []string{"semget", "sem_get", "create semaphores", "semaphore", "accept lock", "accept mutex", "mutex", "udev cookie", "set cookie", "dm_task_set_cookie"}},
	{opMsgget, []string{"msgget", "msg_get_queue", "msgqueue", "message queue"}},
	{opMqOpen, []string{"mq_open", "mqueue", "posix message queue", "posix queue"}},
	{opPty, []string{"ptmx", "openpty", "forkpty", "pseudo-terminal", "pseudo terminal", "pseudoterminal", "getpt", "posix_openpt", " pty", "pty allocation", "allocate pty", "ptys", "pty's", "pty devices"}},
	{opConnect, []string{"connect", "dial ", "upstream", "backend"}},
	{opBind, []string{"bind"}},
	{opNeigh, []string{"neigh", "arp_cache", "ndisc_cache", "rtnetlink", "arp"}},
	{opBridge, []string{"master", "bridge", "veth", "br0"}},
	{opCgAttach, []string{"cgroup.procs", "/tasks", "cpuset.cpus", "cpuset.mems", "add to cgroup", "adding process"}},
	{opBPF, []string{"bpf", "create map", "map create", "map.create", "create_map", "perf map"}},
	{opExec, []string{"execve", "exec ", "execvp", "popen", "exec:"}},
	{opLock, []string{"allocating lock", "allocate lock", "num_locks", "lock for new"}},
	{opSlab, []string{"slub: unable to allocate", "slab"}},
}

// objSet is a set of kinds of objects.
type objSet uint32

const (
	objCgMemory objSet = 1 << iota // the memory controller's hierarchy
	objCgCpuset                    // the cpuset controller's hierarchy
	objCgroup                      // cgroupfs, any controller
	objRun                         // the /run tmpfs and the runtimes' state in it
	objFifo                        // fifos of containers' stdio
	objShm                         // /dev/shm and what lives in it
	objSmall                       // a tree of many small files
	objLayer                       // image layers being pulled or extracted
	objLog                         // logs
	objCgPids                      // the pids controller
)

var objWords = []struct {
	obj   objSet
	words []string
}{
	{objCgMemory, []string{"/sys/fs/cgroup/memory", "cgroup/memory", "memory cgroup", "memcg", "kmem"}},
	{objCgCpuset, []string{"/sys/fs/cgroup/cpuset", "cpuset."}},
	{objCgroup, []string{"/sys/fs/cgroup", "cgroup"}},
	{objRun, []string{" /run/", "\"/run/", "'/run/", "/var/run/", "/run/containerd", "/run/docker", "libcontainerd"}},
	{objFifo, []string{"fifo", "containerd-fifo"}},
	{objShm, []string{"/dev/shm", "shared memory (shm)", "out of shared memory", "shared memory limit", "shm-size", "resize shared memory", "shm_open", "sem_open"}},
	{objSmall, []string{"node_modules", ".cache", "yarn", "npm", "pnpm", "site-packages", ".git/", "/objects/", "maildir", "sessions"}},
	{objLayer, []string{"register layer", "tar file", "extracting", "applylayer", "pulling", "pull image", "error pulling", "layer"}},
	{objLog, []string{"/var/log", "syslog", "log file", "daemon.log", "server.log"}},
	{objCgPids, []string{"pids controller", "/sys/fs/cgroup/pids", "pids.max", "tasksmax"}},
}

// progSet is a set of programs.
type progSet uint32

const (
	progElastic progSet = 1 << iota
	progJava
	progGo
	progNode
	progPostgres
	progKubelet
	progSystemd
	progPodman
	progPyTorch
	progMySQL
)

var progWords = []struct {
	prog  progSet
	words []string
}{
	{progElastic, []string{"elasticsearch", "bootstrap checks", "bootstrap check"}},
	{progJava, []string{"java.", "jvm", "hotspot"}},
	{progGo, []string{"runtime: ", "goroutine", "runtime/cgo"}},
	{progNode, []string{"node_modules", "npm err", "node:", "(node"}},
	{progPostgres, []string{"postgres", "fatal:  ", "pg_"}},
	{progKubelet, []string{"kubelet", "kubepods"}},
	{progSystemd, []string{"systemd", ".service", ".slice"}},
	{progPodman, []string{"podman", "libpod"}},
	{progPyTorch, []string{"dataloader", "pytorch", "torch"}},
	{progMySQL, []string{"mysql", "sqlstate[hy000]", "hy000", "innodb"}},
}

// facts is what a message says.
type facts struct {
	errno errnoSet
	op    opSet
	obj   objSet
	prog  progSet
	found wordSet // the vocabulary's words found
}

// extract reads the facts of a normalized message in one pass.
func extract(t string) facts {
	var f facts
	v := vocab()
	v.index.find(t, &f.found)
	for _, x := range v.errnos {
		if holdsAny(x.ids, &f.found) {
			f.errno |= x.e
		}
	}
	if f.found.has(v.ids[tooManyOpenFiles]) && !f.found.has(v.ids["too many open files in system"]) {
		f.errno |= eMFILE
	}
	for _, x := range v.ops {
		if holdsAny(x.ids, &f.found) {
			f.op |= x.op
		}
	}
	for _, x := range v.objs {
		if holdsAny(x.ids, &f.found) {
			f.obj |= x.obj
		}
	}
	for _, x := range v.progs {
		if holdsAny(x.ids, &f.found) {
			f.prog |= x.pr
		}
	}
	return f
}

func holdsAny(ids []int, found *wordSet) bool {
	for _, id := range ids {
		if found.has(id) {
			return true
		}
	}
	return false
}
