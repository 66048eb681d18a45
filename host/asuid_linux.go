package host

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// ReadFileAsUID reads path with the filesystem uid set to uid on the calling
// thread only. /proc/keys lists just the keys its opener may view, and root
// holds no "view" right on another user's keys, so the keys of uid N can be
// listed only by opening /proc/keys as N.
func ReadFileAsUID(path string, uid int) ([]byte, error) {
	var b []byte
	err := AsFSUID(uid, func() error {
		var err error
		b, err = ReadFile(path)
		return err
	})
	return b, err
}

// AsFSUID runs fn with the filesystem uid set to uid on the calling thread
// only: what fn opens, and the keys keyctl(2) lets it view, are those uid
// may. setfsuid(2) changes the one thread's filesystem credentials, not the
// process's, and is undone before the thread is given back to the Go
// scheduler. fn must not start goroutines that rely on those credentials.
func AsFSUID(uid int, fn func() error) error {
	runtime.LockOSThread()
	prev, _ := unix.SetfsuidRetUid(uid)
	// setfsuid returns the previous fsuid whether or not it succeeded; a
	// second call tells whether the first one took.
	if now, _ := unix.SetfsuidRetUid(uid); now != uid {
		unix.SetfsuidRetUid(prev)
		runtime.UnlockOSThread()
		return fmt.Errorf("setfsuid %d: not permitted", uid)
	}
	defer func() {
		unix.SetfsuidRetUid(prev)
		if now, _ := unix.SetfsuidRetUid(prev); now == prev {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and is destroyed when this
		// goroutine ends, taking the foreign credentials with it.
	}()
	return fn()
}
