package host

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// ReadFileAsUID reads path with the filesystem uid set to uid on the calling
// thread only. /proc/keys lists just the keys its opener may view, and root
// holds no "view" right on another user's keys, so the keys of uid N can be
// listed only by opening /proc/keys as N. setfsuid(2) changes the one
// thread's filesystem credentials, not the process's, and is undone before
// the thread is given back to the Go scheduler.
func ReadFileAsUID(path string, uid int) ([]byte, error) {
	runtime.LockOSThread()
	prev, _ := unix.SetfsuidRetUid(uid)
	// setfsuid returns the previous fsuid whether or not it succeeded; a
	// second call tells whether the first one took.
	if now, _ := unix.SetfsuidRetUid(uid); now != uid {
		unix.SetfsuidRetUid(prev)
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setfsuid %d: not permitted", uid)
	}
	b, err := ReadFile(path)
	unix.SetfsuidRetUid(prev)
	if now, _ := unix.SetfsuidRetUid(prev); now == prev {
		runtime.UnlockOSThread()
	}
	// Otherwise the thread stays locked and is destroyed when this
	// goroutine ends, taking the foreign credentials with it.
	return b, err
}
