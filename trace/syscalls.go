package trace

// What a syscall's failure can mean, by name: the numbers differ between
// amd64 and arm64 (sysnames_GOARCH.go), the meaning does not.

// Flags of syscall_class in the BPF program (bpf/trace.c).
const (
	flagEAGAIN        = 1 << 0 // EAGAIN from it means a limit
	flagENOMEM        = 1 << 1 // ENOMEM from it means a limit
	flagEADDRNOTAVAIL = 1 << 2 // EADDRNOTAVAIL from it means a limit
	flagFD0           = 1 << 3 // its first argument is a file descriptor whose filesystem matters
	pathArgShift      = 8      // bits 8-10: index+1 of its path argument
)

// syscallInfo is what the tracer knows of one syscall.
type syscallInfo struct {
	flags uint32
	// pathArg is the index of its path argument, -1 when none; dirfdArg
	// the index of the directory fd it is relative to, -1 when none.
	pathArg, dirfdArg int
}

// EAGAIN and ENOMEM are kept only from the calls where a limit returns
// them: from read, futex or connect on a non-blocking socket they are
// the normal business of busy daemons, and would flood the output.
var limitCalls = map[string]uint32{
	"fork": flagEAGAIN | flagENOMEM, "vfork": flagEAGAIN | flagENOMEM,
	"clone": flagEAGAIN | flagENOMEM, "clone3": flagEAGAIN | flagENOMEM,
	"io_setup": flagEAGAIN | flagENOMEM,
	"mkdir":    flagEAGAIN | flagENOMEM, "mkdirat": flagEAGAIN | flagENOMEM,
	"shmget": flagEAGAIN | flagENOMEM, "semget": flagEAGAIN | flagENOMEM, "msgget": flagEAGAIN | flagENOMEM,
	"mount": flagEAGAIN | flagENOMEM, "fsmount": flagEAGAIN | flagENOMEM, "move_mount": flagEAGAIN | flagENOMEM,
	"open_tree": flagEAGAIN | flagENOMEM, "unshare": flagEAGAIN | flagENOMEM, "setns": flagEAGAIN | flagENOMEM,
	"add_key": flagEAGAIN | flagENOMEM, "keyctl": flagEAGAIN | flagENOMEM, "request_key": flagEAGAIN | flagENOMEM,
	"epoll_ctl": flagEAGAIN | flagENOMEM,
	"mmap":      flagEAGAIN | flagENOMEM, "mprotect": flagEAGAIN | flagENOMEM,
	"connect": flagEADDRNOTAVAIL, "bind": flagEADDRNOTAVAIL,
}

// pathArgs are the calls whose path argument names the object that
// failed, with the directory fd it is relative to.
var pathArgs = map[string][2]int{ // name: {path index, dirfd index}
	"open": {0, -1}, "creat": {0, -1}, "openat": {1, 0}, "openat2": {1, 0},
	"mkdir": {0, -1}, "mkdirat": {1, 0}, "mknod": {0, -1}, "mknodat": {1, 0},
	"symlink": {1, -1}, "symlinkat": {2, 1}, "link": {1, -1}, "linkat": {3, 2},
	"rename": {1, -1}, "renameat": {3, 2}, "renameat2": {3, 2},
	"setxattr": {0, -1}, "lsetxattr": {0, -1}, "truncate": {0, -1},
	"mount": {1, -1}, "mq_open": {0, -1},
}

// fdCalls write through their first argument, a file descriptor: the
// filesystem behind it is read in the kernel at the failure, so it is
// known even when the process has exited since.
var fdCalls = map[string]bool{
	"write": true, "pwrite64": true, "writev": true, "pwritev": true, "pwritev2": true,
	"fallocate": true, "ftruncate": true, "fsync": true, "fdatasync": true,
	"sync_file_range": true, "sendfile": true, "fsetxattr": true, "close": true,
	"fchmod": true, "fchown": true,
}

func classify(name string) syscallInfo {
	si := syscallInfo{flags: limitCalls[name], pathArg: -1, dirfdArg: -1}
	if pa, ok := pathArgs[name]; ok {
		si.pathArg, si.dirfdArg = pa[0], pa[1]
		si.flags |= uint32(pa[0]+1) << pathArgShift
	}
	if fdCalls[name] {
		si.flags |= flagFD0
	}
	return si
}

// syscallName is the name of syscall nr on this architecture.
func syscallName(nr uint32) string {
	if n, ok := sysnames[nr]; ok {
		return n
	}
	return "syscall_" + itoa(int64(nr))
}
