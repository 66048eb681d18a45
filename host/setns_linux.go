package host

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsEnterable are the namespace kinds one thread of a running Go program
// can join with setns(2) and leave again, by their /proc/PID/ns names. A
// mount namespace cannot be joined by one thread while the others share
// its filesystem context, nor a user namespace by a multithreaded process.
var nsEnterable = map[int]string{
	unix.CLONE_NEWIPC:    "ipc",
	unix.CLONE_NEWNET:    "net",
	unix.CLONE_NEWUTS:    "uts",
	unix.CLONE_NEWCGROUP: "cgroup",
}

// ErrNamespaceGone is returned by ReadInNamespace when the process it was
// to join through has exited (or its pid was reused): the namespace may
// be gone with it, and is no fault of the host.
var ErrNamespaceGone = errors.New("the process to join the namespace through is gone")

// ReadInNamespace reads whole files (up to MaxPseudoFile bytes each) from
// inside another namespace of the running kernel: the namespace that the
// file nsPath (/proc/PID/ns/ipc) names, of kind nstype (unix.CLONE_NEWIPC,
// CLONE_NEWNET, CLONE_NEWUTS or CLONE_NEWCGROUP).
//
// Files whose content depends on the reader's namespace (/proc/sysvipc/*,
// the IPC sysctls under /proc/sys/kernel and /proc/sys/fs/mqueue, the
// net sysctls) show the namespace of the thread that reads them, and
// /proc/PID/root/proc/... is no way around that: the procfs there still
// answers for the reader. So they are read by InNamespace.
//
// The map holds the files that were read; the error is set when the
// namespace could not be joined (the map is then nil) or when some files
// could not be read (each such error names its file).
func (h *Host) ReadInNamespace(nsPath string, nstype int, wantIno uint64, paths ...string) (map[string][]byte, error) {
	var files map[string][]byte
	err := h.InNamespace(nsPath, nstype, wantIno, func() error {
		files = make(map[string][]byte, len(paths))
		var errs []error
		for _, p := range paths {
			b, err := ReadFile(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			files[p] = b
		}
		return errors.Join(errs...)
	})
	return files, err
}

// InNamespace runs fn on an OS thread that has joined the namespace that
// the file nsPath (/proc/PID/ns/net) names, of kind nstype
// (unix.CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWUTS or CLONE_NEWCGROUP): what
// fn reads of namespaced files, and the sockets it creates (a socket
// belongs to the network namespace it was created in, for good), are that
// namespace's. fn must not start goroutines that expect to be there too.
//
// One OS thread, locked to its goroutine, joins the namespace with
// setns(2), runs fn, and joins its own namespace again. If it cannot go
// back, the thread stays locked and exits with its goroutine, so that no
// other goroutine ever runs in the wrong namespace.
//
// wantIno, when not 0, is the inode the namespace must have: a pid taken
// from an earlier walk of /proc may have exited and been reused.
//
// It needs CAP_SYS_ADMIN (root) and the running kernel: a fixture tree has
// no namespaces to join. The error is the one that kept fn from running
// (wrapping ErrNamespaceGone when the process is gone), or fn's, joined
// with the failure to come back if there was one.
func (h *Host) InNamespace(nsPath string, nstype int, wantIno uint64, fn func() error) error {
	name, ok := nsEnterable[nstype]
	if !ok {
		return fmt.Errorf("namespace kind %#x cannot be joined by one thread", nstype)
	}
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ESRCH {
		return fmt.Errorf("open %s: %w (%w)", nsPath, err, ErrNamespaceGone)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return fmt.Errorf("stat %s: %w", nsPath, err)
	}
	if wantIno != 0 && st.Ino != wantIno {
		return fmt.Errorf("%s is namespace %d, not %d: %w", nsPath, st.Ino, wantIno, ErrNamespaceGone)
	}

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespace, to go back to. thread-self, not
		// self: another thread of this process could be elsewhere.
		self, err := unix.Open("/proc/thread-self/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's %s namespace: %w", name, err)
			return
		}
		defer unix.Close(self)
		if err := unix.Setns(target, nstype); err != nil {
			// Still in its own namespace: the thread can be reused.
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns to %s: %w", nsPath, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(self, nstype); err != nil {
			// The thread is stuck in the other namespace: it stays
			// locked, and the runtime ends it when this goroutine
			// returns. What fn did is still good.
			done <- errors.Join(fnErr, fmt.Errorf("return from %s: %w (the thread was discarded)", nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		done <- fnErr
	}()
	return <-done
}
