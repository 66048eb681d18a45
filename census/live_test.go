package census

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// TestTakeSeesOwnInotifyWatches walks the real /proc and finds this test
// process with the inotify instance and watches it just made.
func TestTakeSeesOwnInotifyWatches(t *testing.T) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	dir := t.TempDir()
	const watches = 5
	for i := 0; i < watches; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY); err != nil {
			t.Fatal(err)
		}
	}
	fifoDir := filepath.Join(dir, "fifo", "abc")
	if err := os.MkdirAll(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(fifoDir, "c1-stdout")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(fifo, os.O_RDWR, 0) // O_RDWR: no wait for a peer
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()

	c, err := Take(context.Background(), host.New("/proc", "/sys", "/"), Options{FifoDirs: []string{filepath.Join(dir, "fifo")}, Live: true})
	if err != nil {
		t.Fatal(err)
	}
	var me *Process
	for i := range c.Processes {
		if c.Processes[i].PID == os.Getpid() {
			me = &c.Processes[i]
		}
	}
	if me == nil {
		t.Fatalf("census of %d processes lacks this one (pid %d)", len(c.Processes), os.Getpid())
	}
	if me.InotifyInstances < 1 || me.InotifyWatches < watches {
		t.Errorf("instances %d watches %d, want >= 1 and >= %d", me.InotifyInstances, me.InotifyWatches, watches)
	}
	if me.UID != os.Getuid() || me.EUID != os.Geteuid() {
		t.Errorf("uid %d euid %d, want %d %d", me.UID, me.EUID, os.Getuid(), os.Geteuid())
	}
	if me.Threads < 1 || me.UserNS == 0 || me.MntNS == 0 || len(me.Cgroups) == 0 {
		t.Errorf("incomplete record: %+v", *me)
	}
	if len(me.Fifos) != 1 || me.Fifos[0] != fifo {
		t.Errorf("fifos = %v, want [%s]", me.Fifos, fifo)
	}
	if c.InitUserNS == 0 || c.Tasks < len(c.Processes) {
		t.Errorf("init user ns %d, tasks %d for %d processes", c.InitUserNS, c.Tasks, len(c.Processes))
	}
}

func TestTakeMissingProc(t *testing.T) {
	if _, err := Take(context.Background(), host.New(filepath.Join(t.TempDir(), "nope"), "/sys", "/"), Options{}); err == nil {
		t.Fatal("Take on a missing procfs succeeded")
	}
}

// TestUserNSOwnerNested starts a process two user namespaces deep: root
// creates the outer one (uids 0-65535 mapped to 300000 and up) and its uid
// 1000 (host uid 301000) the inner one. The initial namespace's counters
// charge the owner of the outer namespace, root, not host uid 301000.
func TestUserNSOwnerNested(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mapping a user namespace to other host uids needs root; CI runs as root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	cmd := exec.Command(unshare, "--user", "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 300000, Size: 65536}},
		Credential:  &syscall.Credential{Uid: 1000, Gid: 1000, NoSetGroups: true},
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nested process did not start (comm %q)", comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	uid, err := userNSOwner(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), initUserNSInode)
	if err != nil {
		t.Fatal(err)
	}
	if uid != 0 {
		t.Fatalf("charged uid %d, want 0, the creator of the top-level namespace (not 301000, the inner one's)", uid)
	}
}
