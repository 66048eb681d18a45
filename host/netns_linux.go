package host

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ReadInNetNS reads files (sysctls under /proc/sys/net) as a task of the
// network namespace at nsPath (a /proc/PID/ns/net link) sees them. The
// per-namespace sysctls of net.* show the namespace of the task that opens
// them, not that of a path, so the reading thread enters the namespace with
// setns(CLONE_NEWNET) for the reads and returns to its own afterwards.
//
// The work runs on a goroutine of its own, locked to its OS thread: only
// that thread changes namespace. If the thread cannot return to its
// namespace it is never unlocked, so the Go runtime ends it with the
// goroutine instead of running other code in a foreign namespace.
//
// The map holds the files that could be read, keyed by the path given; the
// error joins why the others could not, or says why the namespace could not
// be entered. Entering needs CAP_SYS_ADMIN (root) on the live host.
func ReadInNetNS(nsPath string, paths ...string) (map[string][]byte, error) {
	return ReadInNetNSOf(nsPath, 0, paths...)
}

// ReadInNetNSOf is ReadInNetNS that first checks that nsPath is the
// namespace with inode ino (0: any), so that a pid reused since the census
// does not send the reads to another namespace.
func ReadInNetNSOf(nsPath string, ino uint64, paths ...string) (map[string][]byte, error) {
	type result struct {
		files map[string][]byte
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		files, err := readInNetNS(nsPath, ino, paths)
		ch <- result{files, err}
	}()
	r := <-ch
	return r.files, r.err
}

func readInNetNS(nsPath string, ino uint64, paths []string) (map[string][]byte, error) {
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: nsPath, Err: err}
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: nsPath, Err: err}
	}
	if ino != 0 && st.Ino != ino {
		return nil, fmt.Errorf("%s is net ns %d now, not %d (the process is gone)", nsPath, st.Ino, ino)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(target, &sfs); err != nil || sfs.Type != unix.NSFS_MAGIC {
		return nil, fmt.Errorf("%s is not a namespace file", nsPath)
	}

	runtime.LockOSThread()
	// The thread's own namespace, to return to.
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open this thread's net ns: %w", err)
	}
	defer unix.Close(self)
	var selfSt unix.Stat_t
	if err := unix.Fstat(self, &selfSt); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("stat this thread's net ns: %w", err)
	}
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		// Nothing changed: the thread is still in its own namespace.
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter net ns %s: %w", nsPath, err)
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
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked: it ends with this goroutine.
		return nil, fmt.Errorf("return from net ns %s: %w", nsPath, err)
	}
	var back unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &back); err != nil || back.Ino != selfSt.Ino {
		return nil, fmt.Errorf("return from net ns %s: the thread is not back in its namespace", nsPath)
	}
	runtime.UnlockOSThread()
	return files, errors.Join(errs...)
}
