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
// answers for the reader. So one OS thread, locked to its goroutine, joins
// the namespace with setns(2), reads, and joins its own namespace again.
// If it cannot go back, the thread stays locked and exits with its
// goroutine, so that no other goroutine ever runs in the wrong namespace.
//
// wantIno, when not 0, is the inode the namespace must have: a pid taken
// from an earlier walk of /proc may have exited and been reused.
//
// It needs CAP_SYS_ADMIN (root) and the running kernel: a fixture tree has
// no namespaces to join. The map holds the files that were read; the error
// is set when the namespace could not be joined (the map is then nil) or
// when some files could not be read (each such error names its file).
func (h *Host) ReadInNamespace(nsPath string, nstype int, wantIno uint64, paths ...string) (map[string][]byte, error) {
	name, ok := nsEnterable[nstype]
	if !ok {
		return nil, fmt.Errorf("namespace kind %#x cannot be joined by one thread", nstype)
	}
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ESRCH {
		return nil, fmt.Errorf("open %s: %w (%w)", nsPath, err, ErrNamespaceGone)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", nsPath, err)
	}
	if wantIno != 0 && st.Ino != wantIno {
		return nil, fmt.Errorf("%s is namespace %d, not %d: %w", nsPath, st.Ino, wantIno, ErrNamespaceGone)
	}

	type result struct {
		files map[string][]byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's own namespace, to go back to. thread-self, not
		// self: another thread of this process could be elsewhere.
		self, err := unix.Open("/proc/thread-self/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open this thread's %s namespace: %w", name, err)}
			return
		}
		defer unix.Close(self)
		if err := unix.Setns(target, nstype); err != nil {
			// Still in its own namespace: the thread can be reused.
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns to %s: %w", nsPath, err)}
			return
		}
		files := make(map[string][]byte, len(paths))
		var errs []error
		for _, p := range paths {
			b, err := ReadFile(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			files[p] = b
		}
		if err := unix.Setns(self, nstype); err != nil {
			// The thread is stuck in the other namespace: it stays
			// locked, and the runtime ends it when this goroutine
			// returns. What it read is still good.
			errs = append(errs, fmt.Errorf("return from %s: %w (the thread was discarded)", nsPath, err))
			done <- result{files: files, err: errors.Join(errs...)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{files: files, err: errors.Join(errs...)}
	}()
	r := <-done
	return r.files, r.err
}
