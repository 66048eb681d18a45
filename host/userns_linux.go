package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A value of a /proc/sys/user file is one decimal number; a record says
// how the read of one file went and carries at most userNSValueMax bytes.
const (
	userNSValueMax   = 48
	userNSRecordSize = 8 + userNSValueMax
	// UserNSMaxFiles bounds how many files one ReadInUserNamespace reads.
	UserNSMaxFiles = 16
)

// userNSReadTimeout bounds one read when the context has no deadline.
const userNSReadTimeout = 5 * time.Second

// ErrUserNSUnsupported is returned where the safe reader cannot run: a
// build for a processor whose clone(2) argument order is not known here.
var ErrUserNSUnsupported = errors.New("reading inside a user namespace is not supported on this processor")

// ReadInUserNamespace reads small files (up to 48 bytes each: the
// /proc/sys/user sysctls) as seen from inside the user namespace that the
// open file descriptor nsfd names. The files of /proc/sys/user show the
// limits of the user namespace of the process that opens them, so someone
// must open them from inside; a multithreaded process such as this one
// cannot join a user namespace (setns(2) refuses it), so a child does.
//
// The child is the danger. A process with root's kuid whose credentials
// belong to a user namespace that an unprivileged user owns can be
// ptraced by that user when it is dumpable: the owner holds
// CAP_SYS_PTRACE over the credentials' namespace, and after an execve the
// memory map belongs to that namespace too. Running `nsenter --user ...
// grep` there let such a user take over the grep, with root's kuid on the
// host. So the child here never executes anything: it is a fork(2) of
// this process (its memory map stays in the initial user namespace),
// made non-dumpable before it joins (ptrace and /proc/PID/mem then need
// CAP_SYS_PTRACE in the initial namespace), with every descriptor but the
// namespace and its result pipe closed. It opens and reads the files, writes
// fixed-size records to a pipe and exits. Between fork and exit it runs
// only raw system calls on memory prepared by the parent, the way the Go
// runtime's own fork-and-exec child does.
//
// The whole read is bounded by ctx (or 5 s): a child that does not finish
// is killed. The map holds each file that was read; the error names the
// files that were not.
func (h *Host) ReadInUserNamespace(ctx context.Context, nsfd int, paths ...string) (map[string][]byte, error) {
	if len(paths) == 0 {
		return map[string][]byte{}, nil
	}
	if len(paths) > UserNSMaxFiles {
		return nil, fmt.Errorf("read in user namespace: %d files, at most %d", len(paths), UserNSMaxFiles)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" && runtime.GOARCH != "riscv64" && runtime.GOARCH != "loong64" {
		return nil, ErrUserNSUnsupported
	}
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return nil, fmt.Errorf("stat user namespace fd: %w", err)
	}
	// Everything the child touches is allocated here, before the fork.
	job := &userNSJob{nsfd: uintptr(nsfd)}
	for _, p := range paths {
		b, err := unix.BytePtrFromString(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		job.paths = append(job.paths, b)
	}
	job.buf = make([]byte, userNSRecordSize)
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	job.out = uintptr(fds[1])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("pipe: %w", err)
	}
	r := os.NewFile(uintptr(fds[0]), "userns-result")
	defer r.Close()

	pid, err := job.fork()
	unix.Close(fds[1])
	if err != nil {
		return nil, fmt.Errorf("fork reader: %w", err)
	}
	reaped := false
	defer func() {
		if !reaped {
			unix.Kill(pid, unix.SIGKILL)
		}
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()

	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > userNSReadTimeout {
		deadline = time.Now().Add(userNSReadTimeout)
	}
	r.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Now()) })
	defer stop()

	out := make(map[string][]byte, len(paths))
	var errs []error
	rec := make([]byte, userNSRecordSize)
	for i, p := range paths {
		if _, err := io.ReadFull(r, rec); err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return nil, errors.New("the reader in the user namespace ended without an answer")
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("no answer in time: %w", context.DeadlineExceeded)
			}
			errs = append(errs, fmt.Errorf("read %s in user namespace: %w", p, err))
			break
		}
		status := int32(binary.NativeEndian.Uint32(rec[0:4]))
		n := int(binary.NativeEndian.Uint32(rec[4:8]))
		switch {
		case status == -1:
			// The join itself failed: one record, for every file.
			return nil, fmt.Errorf("setns to user namespace: %w", syscall.Errno(n))
		case status > 0:
			errs = append(errs, fmt.Errorf("read %s in user namespace: %w", p, syscall.Errno(status)))
		case n < 0 || n > userNSValueMax:
			errs = append(errs, fmt.Errorf("read %s in user namespace: bad record", p))
		default:
			out[p] = append([]byte(nil), rec[8:8+n]...)
		}
	}
	var ws unix.WaitStatus
	if wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && wpid == pid {
		reaped = true
		if !ws.Exited() || ws.ExitStatus() != 0 {
			errs = append(errs, fmt.Errorf("the reader in the user namespace ended badly (%v)", ws))
		}
	}
	return out, errors.Join(errs...)
}

// userNSJob is what the forked child works on; the parent builds it.
type userNSJob struct {
	nsfd  uintptr
	out   uintptr
	paths []*byte
	buf   []byte
}

// fork starts the child with every signal blocked (the parent's thread
// mask is restored at once); the child inherits the mask and so never
// runs a Go signal handler on the runtime's copied state.
func (j *userNSJob) fork() (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		return 0, err
	}
	pid, errno := j.forkChild()
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	if errno != 0 {
		return 0, errno
	}
	return int(pid), nil
}

// forkChild forks; in the child it does the job and exits, in the parent
// it returns the child's pid. The child's part may call nothing but raw
// system calls: no allocation, no stack growth, no scheduler, no locks
// (other threads' locks were copied in whatever state they were in).
//
//go:nosplit
//go:norace
func (j *userNSJob) forkChild() (uintptr, syscall.Errno) {
	// clone with only SIGCHLD: fork(2). All the other arguments are zero,
	// so their per-processor order does not matter.
	pid, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || pid != 0 {
		return pid, errno
	}
	// The child.
	syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0)
	syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0, 0)
	// Keep only the namespace and the pipe open.
	lo, hi := j.nsfd, j.out
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo > 0 {
		syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 0, lo-1, 0)
	}
	if hi > lo+1 {
		syscall.RawSyscall(unix.SYS_CLOSE_RANGE, lo+1, hi-1, 0)
	}
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, hi+1, uintptr(^uint32(0)), 0)

	buf := j.buf
	_, _, errno = syscall.RawSyscall(unix.SYS_SETNS, j.nsfd, unix.CLONE_NEWUSER, 0)
	if errno != 0 {
		putRecord(buf, 0xffffffff, uint32(errno))
		syscall.RawSyscall(unix.SYS_WRITE, j.out, uintptr(unsafe.Pointer(&buf[0])), userNSRecordSize)
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 3, 0, 0)
	}
	syscall.RawSyscall(unix.SYS_CLOSE, j.nsfd, 0, 0)
	for i := 0; i < len(j.paths); i++ {
		for k := 0; k < len(buf); k++ {
			buf[k] = 0
		}
		fd, _, errno := syscall.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(j.paths[i])), uintptr(unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK), 0, 0, 0)
		if errno != 0 {
			putRecord(buf, uint32(errno), 0)
		} else {
			n, _, errno := syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[8])), userNSValueMax)
			syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
			if errno != 0 {
				putRecord(buf, uint32(errno), 0)
			} else {
				putRecord(buf, 0, uint32(n))
			}
		}
		syscall.RawSyscall(unix.SYS_WRITE, j.out, uintptr(unsafe.Pointer(&buf[0])), userNSRecordSize)
	}
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	return 0, 0
}

// putRecord writes a record's header in the processor's byte order, by
// hand: the child may not call binary.NativeEndian (an interface call).
//
//go:nosplit
//go:norace
func putRecord(b []byte, status, n uint32) {
	if nativeLittle {
		b[0], b[1], b[2], b[3] = byte(status), byte(status>>8), byte(status>>16), byte(status>>24)
		b[4], b[5], b[6], b[7] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return
	}
	b[0], b[1], b[2], b[3] = byte(status>>24), byte(status>>16), byte(status>>8), byte(status)
	b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)

var nativeLittle = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
