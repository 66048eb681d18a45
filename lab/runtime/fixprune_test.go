//go:build lab

package runtime

// fix --apply --prune on a real dockerd: of two exited containers whose
// session keyrings are still held, the one whose keyring root owns (as
// runc makes it without a user namespace) is removed; the one whose
// "keyring" an unprivileged uid made under its name, to have a stranger's
// container deleted, is left, and the journal says why.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/fix"
	"github.com/enospc/enospc/lab/labkit"
)

// forgerUID is one of this worktree's dedicated lab uids.
const forgerUID = 261010

// holdSessionKeyring joins, on a thread of its own with real uid uid, a
// new session keyring named name, held until the test ends (the thread
// then exits, with its credentials).
func holdSessionKeyring(t *testing.T, uid int, name string) {
	t.Helper()
	errc, done := make(chan error), make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if uid != 0 {
			// Raw setresgid/setresuid change this thread only.
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
				errc <- fmt.Errorf("setresgid: %w", e)
				return
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
				errc <- fmt.Errorf("setresuid: %w", e)
				return
			}
		}
		_, err := unix.KeyctlJoinSessionKeyring(name)
		errc <- err
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		t.Fatalf("session keyring %s as uid %d: %v", name, uid, err)
	}
	t.Cleanup(func() { close(done) })
}

func TestFixPruneOnlyProvenKeyrings(t *testing.T) {
	d := labkit.StartDockerd(t)
	img := fmt.Sprintf("enospc-lab-busybox:%d", os.Getpid())
	d.ImportBusybox(t, img)
	ids := map[string]string{}
	for _, name := range []string{"genuine", "stranger"} {
		if out, err := d.Docker(90*time.Second, "run", "--network", "none", "--name", name, img, "true"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		ids[name] = d.Inspect(t, "{{.Id}}", name)
		if s := d.Inspect(t, "{{.State.Status}}", name); s != "exited" {
			t.Fatalf("container %s is %s, want exited", name, s)
		}
	}
	holdSessionKeyring(t, 0, "_ses."+ids["genuine"])
	holdSessionKeyring(t, forgerUID, "_ses."+ids["stranger"])

	state := filepath.Join(labkit.TempDir(t, "enospc-lab-prune-"), "state")
	stdout, stderr, code := labkit.RunFix(t, "--apply", "--yes", "--prune", "--only", "leak.keyrings", "--state-dir", state,
		"--docker-host", "unix://"+d.Sock, "--containerd-address", d.Containerd.Sock, "--crio-socket", "")
	t.Logf("enospc fix --apply --yes --prune --only leak.keyrings (exit %d):\n%s%s", code, stdout, stderr)
	if code != 0 {
		t.Fatalf("fix exit status %d", code)
	}
	if out, err := d.Docker(20*time.Second, "inspect", ids["genuine"]); err == nil {
		t.Errorf("the container whose keyring root holds is still there:\n%s", out)
	}
	if _, err := d.Docker(20*time.Second, "inspect", ids["stranger"]); err != nil {
		t.Errorf("the container whose keyring uid %d made was removed: %v", forgerUID, err)
	}
	j, err := fix.ReadJournal(filepath.Join(state, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fix.Entry{}
	for _, e := range j.Entries {
		got[e.Container] = e
	}
	if e := got[ids["genuine"]]; e.State != "removed" {
		t.Errorf("journal, genuine: %+v", e)
	}
	if e := got[ids["stranger"]]; e.State != "skipped" || !strings.Contains(e.Note, fmt.Sprint(forgerUID)) {
		t.Errorf("journal, stranger: %+v, want skipped naming uid %d", e, forgerUID)
	}
}
