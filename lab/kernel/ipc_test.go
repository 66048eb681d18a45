//go:build lab

package kernel

// System V IPC and POSIX message queues, per IPC namespace
// (limits/ipc.go). A helper starts as root in a new IPC namespace and a
// new mount namespace, lowers that namespace's own kernel.shmmni,
// kernel.sem, kernel.msgmni and fs.mqueue.queues_max (per IPC namespace:
// the host's stay as they are, which the test checks), mounts an mqueue
// filesystem in its private mount namespace, drops to a dedicated uid and
// creates segments, semaphore sets and queues until the kernel refuses
// with ENOSPC: some itself (it stays their creator), the rest with ipcmk,
// whose messages it captures. check must report each limit critical for
// "ipc ns <helper's namespace>", held by that uid (and for shared memory
// by the helper's pid), while the host's namespace stays ok; explain must
// put each limit first for the captured messages. Everything dies with
// the helper's namespaces.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// ipcHelperEnv selects the IPC helper when the test binary is re-executed;
// its value is the uid to drop to. ipcMqueueDirEnv is where it mounts its
// mqueue filesystem.
const (
	ipcHelperEnv    = "ENOSPC_LAB_IPC_HELPER"
	ipcMqueueDirEnv = "ENOSPC_LAB_IPC_MQUEUE_DIR"
)

// The limits the helper sets in its namespace: small, so that a few
// objects fill them.
const (
	ipcShmmni    = 8
	ipcSemmni    = 6
	ipcMsgmni    = 4
	ipcQueuesMax = 5
)

// ipcOutcome is one limit driven to its end.
type ipcOutcome struct {
	Own    int    `json:"own"`    // objects the helper created itself
	Tool   int    `json:"tool"`   // objects ipcmk created
	Ipcmk  string `json:"ipcmk"`  // ipcmk's stderr when it was refused
	Err    string `json:"err"`    // the syscall's error, as Go prints it
	Errno  int    `json:"errno"`  // its number
	Before string `json:"before"` // the namespace's sysctl before it was lowered
}

type ipcReport struct {
	Shm   ipcOutcome `json:"shm"`
	Sem   ipcOutcome `json:"sem"`
	Msg   ipcOutcome `json:"msg"`
	Mq    ipcOutcome `json:"mq"`
	Fatal string     `json:"fatal,omitempty"`
}

// init dispatches a re-executed IPC helper. The harness's init (an
// earlier file) has already returned: its variable is not set.
func init() {
	v := os.Getenv(ipcHelperEnv)
	if v == "" {
		return
	}
	rep := ipcHelper(v)
	b, _ := json.Marshal(rep)
	os.Stdout.Write(append(b, '\n'))
	if rep.Fatal != "" {
		os.Exit(1)
	}
	// Hold the namespace until the test closes stdin (its end of the pipe
	// closes when it dies too); bounded for an orphan.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	os.Exit(0)
}

func ipcHelper(uidStr string) (rep ipcReport) {
	uid, err := strconv.Atoi(uidStr)
	if err != nil || uid <= 0 {
		rep.Fatal = "bad uid " + uidStr
		return rep
	}
	fatal := func(format string, a ...any) ipcReport {
		rep.Fatal = fmt.Sprintf(format, a...)
		return rep
	}
	// The mount namespace is new but its mounts are still shared with the
	// host's: make them private before mounting anything.
	if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fatal("make mounts private: %v", err)
	}
	dir := os.Getenv(ipcMqueueDirEnv)
	if err := unix.Mount("mqueue", dir, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fatal("mount mqueue on %s: %v", dir, err)
	}
	set := func(name, value string, before *string) error {
		path := sysctlPath(name)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		*before = strings.TrimSpace(string(b))
		return os.WriteFile(path, []byte(value), 0o644)
	}
	semctl := fmt.Sprintf("250 32000 32 %d", ipcSemmni)
	for _, s := range []struct {
		name, value string
		before      *string
	}{
		{"kernel.shmmni", strconv.Itoa(ipcShmmni), &rep.Shm.Before},
		{"kernel.sem", semctl, &rep.Sem.Before},
		{"kernel.msgmni", strconv.Itoa(ipcMsgmni), &rep.Msg.Before},
		{"fs.mqueue.queues_max", strconv.Itoa(ipcQueuesMax), &rep.Mq.Before},
	} {
		if err := set(s.name, s.value, s.before); err != nil {
			return fatal("set %s in the private namespace: %v", s.name, err)
		}
	}
	// Drop to the dedicated uid (every thread: Go's Setres*id do all):
	// root is not held to queues_max, and the holders must be that uid.
	if err := syscall.Setgroups(nil); err != nil {
		return fatal("setgroups: %v", err)
	}
	if err := syscall.Setresgid(uid, uid, uid); err != nil {
		return fatal("setresgid: %v", err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fatal("setresuid: %v", err)
	}
	if os.Geteuid() != uid {
		return fatal("still euid %d", os.Geteuid())
	}

	// ipcmk until it is refused, at most limit+2 times.
	ipcmk := func(o *ipcOutcome, limit int, args ...string) {
		for i := 0; i < limit+2; i++ {
			cmd := exec.Command("ipcmk", args...)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				o.Ipcmk = strings.TrimSpace(stderr.String())
				return
			}
			o.Tool++
		}
	}
	record := func(o *ipcOutcome, call string, err error) {
		o.Err = os.NewSyscallError(call, err).Error()
		o.Errno = int(errnoOf(err))
	}

	// Shared memory: three segments of the helper's own, ipcmk for the
	// rest, then shmget once more.
	for i := 0; i < 3; i++ {
		if _, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600); err != nil {
			return fatal("shmget %d: %v", i, err)
		}
		rep.Shm.Own++
	}
	ipcmk(&rep.Shm, ipcShmmni, "-M", "4096")
	if _, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600); err != nil {
		record(&rep.Shm, "shmget", err)
	}

	semget := func() error {
		_, _, e := unix.Syscall(unix.SYS_SEMGET, unix.IPC_PRIVATE, 1, unix.IPC_CREAT|0o600)
		if e != 0 {
			return e
		}
		return nil
	}
	for i := 0; i < 2; i++ {
		if err := semget(); err != nil {
			return fatal("semget %d: %v", i, err)
		}
		rep.Sem.Own++
	}
	ipcmk(&rep.Sem, ipcSemmni, "-S", "1")
	if err := semget(); err != nil {
		record(&rep.Sem, "semget", err)
	}

	msgget := func() error {
		_, _, e := unix.Syscall(unix.SYS_MSGGET, unix.IPC_PRIVATE, unix.IPC_CREAT|0o600, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	if err := msgget(); err != nil {
		return fatal("msgget: %v", err)
	}
	rep.Msg.Own++
	ipcmk(&rep.Msg, ipcMsgmni, "-Q")
	if err := msgget(); err != nil {
		record(&rep.Msg, "msgget", err)
	}

	// POSIX queues: mq_open(2) takes the name without glibc's leading
	// slash; one message of 8 bytes each keeps RLIMIT_MSGQUEUE out of it.
	attr := struct{ flags, maxmsg, msgsize, curmsgs, r0, r1, r2, r3 int64 }{maxmsg: 1, msgsize: 8}
	for i := 0; i < ipcQueuesMax+3; i++ {
		name, _ := unix.BytePtrFromString(fmt.Sprintf("enospc-lab-%d", i))
		fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(name)), unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
		if e != 0 {
			record(&rep.Mq, "mq_open", e)
			break
		}
		unix.Close(int(fd)) // the queue lives on until mq_unlink
		rep.Mq.Own++
	}
	return rep
}

// ipcHelperProc is the running IPC helper.
type ipcHelperProc struct {
	cmd    *exec.Cmd
	report ipcReport
}

// startIPCHelper starts the helper in new IPC and mount namespaces and
// waits (bounded) for its report; it is stopped and reaped at cleanup,
// and its namespaces, objects and mount die with it.
func startIPCHelper(t *testing.T, uid int, mqDir string) *ipcHelperProc {
	t.Helper()
	cmd := exec.Command(helperBinary(t))
	cmd.Env = []string{ipcHelperEnv + "=" + strconv.Itoa(uid), ipcMqueueDirEnv + "=" + mqDir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWIPC | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("LAB CANNOT RUN %s: start the IPC helper in new IPC and mount namespaces: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		stdin.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	h := &ipcHelperProc{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		if err := json.Unmarshal([]byte(s), &h.report); err != nil {
			t.Fatalf("IPC helper (pid %d) did not report: %q: %v; stderr:\n%s", cmd.Process.Pid, s, err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("IPC helper (pid %d) did not report in 60s; stderr:\n%s", cmd.Process.Pid, stderr.String())
	}
	if h.report.Fatal != "" {
		t.Fatalf("LAB CANNOT RUN %s: IPC helper: %s; stderr:\n%s", t.Name(), h.report.Fatal, stderr.String())
	}
	return h
}

// nsInodeOf reads /proc/PID/ns/KIND.
func nsInodeOf(t *testing.T, pid int, kind string) uint64 {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		t.Fatalf("read the %s namespace of pid %d: %v", kind, pid, err)
	}
	i, j := strings.IndexByte(link, '['), strings.IndexByte(link, ']')
	v, err := strconv.ParseUint(link[i+1:j], 10, 64)
	if i < 0 || j < i || err != nil {
		t.Fatalf("namespace link %q", link)
	}
	return v
}

// ipcHostSysctls are the initial namespace's IPC limits, which the test
// must leave as they are.
var ipcHostSysctls = []string{"kernel.shmmni", "kernel.shmall", "kernel.sem", "kernel.msgmni", "fs.mqueue.queues_max"}

func readHostIPCSysctls(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range ipcHostSysctls {
		b, err := os.ReadFile(sysctlPath(name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		out[name] = strings.TrimSpace(string(b))
	}
	return out
}

func TestIPCNamespaceLimits(t *testing.T) {
	labkit.RequireTool(t, "ipcmk")
	uid := labkit.UID(13)
	hostBefore := readHostIPCSysctls(t)
	// The initial IPC namespace has a fixed inode (PROC_IPC_INIT_INO);
	// pid 1 may not let even root read its links.
	hostNS := uint64(0xEFFFFFFF)
	if link, err := os.Readlink("/proc/1/ns/ipc"); err == nil && link != fmt.Sprintf("ipc:[%d]", hostNS) {
		t.Fatalf("LAB CANNOT RUN %s: pid 1 is in IPC namespace %s, not the initial one", t.Name(), link)
	}
	if self := nsInodeOf(t, os.Getpid(), "ipc"); self != hostNS {
		t.Fatalf("LAB CANNOT RUN %s: the test runs in IPC namespace %d, not the host's %d", t.Name(), self, hostNS)
	}
	mqDir, err := os.MkdirTemp("", "enospc-lab-mqueue-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(mqDir) })

	h := startIPCHelper(t, uid, mqDir)
	pid := h.cmd.Process.Pid
	ns := nsInodeOf(t, pid, "ipc")
	if ns == hostNS {
		t.Fatalf("the helper shares the host's IPC namespace %d", ns)
	}
	rep := h.report
	t.Logf("helper pid %d, uid %d, ipc ns %d; its defaults before lowering: shmmni %s, sem %q, msgmni %s, queues_max %s",
		pid, uid, ns, rep.Shm.Before, rep.Sem.Before, rep.Msg.Before, rep.Mq.Before)
	for _, o := range []struct {
		name string
		o    ipcOutcome
	}{{"shm", rep.Shm}, {"sem", rep.Sem}, {"msg", rep.Msg}, {"mqueue", rep.Mq}} {
		t.Logf("%s: %d own + %d by ipcmk; ipcmk said %q; the syscall: %q (%s)", o.name, o.o.Own, o.o.Tool, o.o.Ipcmk, o.o.Err, statusOf(syscall.Errno(o.o.Errno)))
		if syscall.Errno(o.o.Errno) != syscall.ENOSPC {
			t.Errorf("%s: the last call failed with %s, want ENOSPC", o.name, statusOf(syscall.Errno(o.o.Errno)))
		}
	}

	// The host's limits are untouched: they are per namespace.
	if after := readHostIPCSysctls(t); fmt.Sprint(after) != fmt.Sprint(hostBefore) {
		t.Errorf("the host's IPC sysctls changed: before %v, after %v", hostBefore, after)
	}

	report, code := labkit.RunCheck(t, "--only", "ipc.shm,ipc.sem,ipc.msg,mqueue", "--no-runtimes")
	if code != 2 {
		t.Errorf("check exit %d, want 2 (critical)", code)
	}
	scope := "ipc ns " + strconv.FormatUint(ns, 10)
	hostScope := "ipc ns " + strconv.FormatUint(hostNS, 10) + " (host)"
	want := []struct {
		id   string
		max  int64
		unit string
	}{
		{"ipc.shm", ipcShmmni, "segments"},
		{"ipc.sem", ipcSemmni, "sets"},
		{"ipc.msg", ipcMsgmni, "queues"},
		{"mqueue", ipcQueuesMax, "queues"},
	}
	for _, w := range want {
		u := labkit.Find(t, report, w.id, labkit.ScopeIs(scope))
		t.Logf("%s: %s", w.id, describe(u))
		if u.Severity != limits.Critical || u.Used != w.max || u.Max != w.max || u.Unit != w.unit {
			t.Errorf("%s %s: %s %d/%d %s, want critical %d/%d %s", w.id, scope, u.Severity, u.Used, u.Max, u.Unit, w.max, w.max, w.unit)
		}
		if !holdsUID(u, uid) {
			t.Errorf("%s: no holder of uid %d: %s", w.id, uid, describe(u))
		}
		if len(u.Remedy) == 0 || !strings.Contains(strings.Join(u.Remedy, "\n"), "nsenter -t ") {
			t.Errorf("%s: the remedy does not say how to act in the namespace: %q", w.id, u.Remedy)
		}
		if w.id == "mqueue" {
			continue
		}
		hu := labkit.Find(t, report, w.id, labkit.ScopeIs(hostScope))
		if hu.Severity != limits.OK {
			t.Errorf("%s %s: %s, want ok (the host's namespace is not the exhausted one): %s", w.id, hostScope, hu.Severity, describe(hu))
		}
	}
	// The host has no mqueue mount on this machine, and then no mqueue
	// row; where it has one, the row must not be critical.
	for _, f := range report.Findings {
		if f.Limit == "mqueue" && f.Scope == hostScope && (f.Severity == limits.Critical || f.Severity == limits.Warning) {
			t.Errorf("mqueue %s: %s: %s", hostScope, f.Severity, describe(f))
		}
	}
	// Shared memory names its creators: the helper, alive, and the ipcmk
	// runs, gone.
	shm := labkit.Find(t, report, "ipc.shm", labkit.ScopeIs(scope))
	if !hasConsumer(shm, pid, helperName) {
		t.Errorf("ipc.shm: the helper (pid %d, %s) is not named as a creator: %s", pid, helperName, describe(shm))
	}
	gone := false
	for _, c := range shm.Consumers {
		gone = gone || (c.PID == 0 && strings.Contains(c.Name, "which have exited") && c.Count == int64(rep.Shm.Tool))
	}
	if !gone {
		t.Errorf("ipc.shm: the %d segments of the exited ipcmk runs are not one holder: %s", rep.Shm.Tool, describe(shm))
	}

	// explain puts the limit first for every captured message.
	for _, m := range []struct{ id, msg string }{
		{"ipc.shm", rep.Shm.Ipcmk}, {"ipc.shm", rep.Shm.Err},
		{"ipc.sem", rep.Sem.Ipcmk}, {"ipc.sem", rep.Sem.Err},
		{"ipc.msg", rep.Msg.Ipcmk}, {"ipc.msg", rep.Msg.Err},
		{"mqueue", rep.Mq.Err},
	} {
		if m.msg == "" {
			t.Errorf("%s: no message captured", m.id)
			continue
		}
		out, err := exec.Command(labkit.Bin(), "explain", "-o", "json", "--offline", m.msg).Output()
		if err != nil {
			t.Errorf("explain %q: %v", m.msg, err)
			continue
		}
		var res struct {
			Causes []struct {
				Limit string `json:"limit"`
			} `json:"causes"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res.Causes) == 0 || res.Causes[0].Limit != m.id {
			t.Errorf("explain %q: first cause is not %s: %s", m.msg, m.id, out)
		}
	}
}

// holdsUID reports whether a row lists a holder of uid.
func holdsUID(u limits.Finding, uid int) bool {
	for _, c := range u.Consumers {
		if c.UID != nil && *c.UID == uid {
			return true
		}
	}
	return false
}
