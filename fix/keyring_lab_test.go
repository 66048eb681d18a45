//go:build lab

package fix

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// holdKeyring joins, on a thread of its own whose real uid is uid, a new
// session keyring named name, with perm; it is held until release is
// called, when the thread (and its credentials) dies.
func holdKeyring(t *testing.T, uid int, name string, perm uint32) (serial int, release func()) {
	t.Helper()
	type result struct {
		serial int
		err    error
	}
	got, done := make(chan result), make(chan struct{})
	go func() {
		// Never unlocked: the thread exits with the goroutine.
		runtime.LockOSThread()
		// Raw setresgid/setresuid change this thread only, not the
		// process (syscall.Setresuid would change every thread).
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			got <- result{err: fmt.Errorf("setresgid: %w", e)}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			got <- result{err: fmt.Errorf("setresuid: %w", e)}
			return
		}
		ring, err := unix.KeyctlJoinSessionKeyring(name)
		if err == nil && perm != 0 {
			err = unix.KeyctlSetperm(ring, perm)
		}
		got <- result{ring, err}
		<-done
	}()
	r := <-got
	if r.err != nil {
		close(done)
		t.Fatalf("keyring %q as uid %d: %v", name, uid, r.err)
	}
	return r.serial, func() { close(done) }
}

func randomID(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// On the live kernel: a session keyring is proven to be the uid's that
// owns it, not another's; a /proc/keys line forged in another key's
// description (naming the genuine keyring's serial, and uid 0) proves
// nothing.
func TestKernelKeyringOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: keyrings of other uids")
	}
	const owner, forger = 261001, 261002
	h := host.New("/proc", "/sys", "/")
	if !h.Live() {
		t.Skip("/proc is not this kernel's")
	}
	genuine, victim := randomID(t), randomID(t)
	serial, release := holdKeyring(t, owner, "_ses."+genuine, 0)
	defer release()
	forged := fmt.Sprintf("x\n%08x I--Q---     1 perm 3f010000     0     0 keyring   _ses.%s", serial, victim)
	// Viewable by all, so that root's /proc/keys lists it.
	_, releaseForged := holdKeyring(t, forger, forged, 0x3f3f3f3f)
	defer releaseForged()
	if b, _ := os.ReadFile("/proc/keys"); !contains(b, "_ses."+victim) {
		t.Fatalf("the forged line is not in root's /proc/keys: the test proves nothing")
	}
	check := kernelKeyring(h)
	for _, tc := range []struct {
		id  string
		uid int
		ok  bool
	}{
		{genuine, owner, true},
		{genuine, 0, false},
		{genuine, forger, false},
		{victim, 0, false},
		{victim, forger, false},
		{randomID(t), owner, false},
	} {
		err := check(tc.id, tc.uid)
		if (err == nil) != tc.ok {
			t.Errorf("keyring _ses.%s… of uid %d: %v, want proven %v", tc.id[:12], tc.uid, err, tc.ok)
		}
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
