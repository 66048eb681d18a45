//go:build lab

package kernel

// A user who owns a user namespace must never get hold of a process that
// enospc starts with root's kuid. enospc reads a child user namespace's
// own /proc/sys/user limits from inside it; a program executed there by
// root (nsenter ... grep, as enospc once did) is dumpable, its memory map
// belongs to the user's namespace and its credentials too, so the
// namespace's owner, who holds CAP_SYS_PTRACE over it, can PTRACE_SEIZE it
// and run code as root on the host. The test makes such a namespace as a
// dedicated uid, runs an attacker as that uid that tries to seize every new
// process the moment its pid appears, proves the attacker works on the old
// pattern (root's nsenter into the namespace), then runs check, explain,
// fix and serve, each of which reads the namespace, and asserts that the
// attacker saw enospc's readers and seized none.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

const attackerEnv = "ENOSPC_LAB_PTRACE_ATTACKER"

// attempt is one process the attacker tried to seize.
type attempt struct {
	PID    int    `json:"pid"`
	PPID   int    `json:"ppid"`
	Comm   string `json:"comm"`
	Seized bool   `json:"seized"`
	Errno  int    `json:"errno"`
}

func init() {
	if os.Getenv(attackerEnv) == "" {
		return
	}
	ptraceAttacker()
	os.Exit(0)
}

// ptraceAttacker tries PTRACE_SEIZE on each pid as soon as it exists: it
// spins on the next pids to be handed out (ESRCH costs a microsecond), so
// that even a process that lives a millisecond is tried. One JSON line per
// process tried; it ends when stdin closes (tracees are detached when a
// tracer exits).
func ptraceAttacker() {
	runtime.LockOSThread()
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	out := bufio.NewWriter(os.Stdout)
	emit := func(a attempt) {
		if a.Seized {
			// Proof enough; let go, so that its parent can reap it (a
			// traced process's exit is reported to its tracer first).
			unix.PtraceInterrupt(a.PID)
			var ws unix.WaitStatus
			unix.Wait4(a.PID, &ws, unix.WALL, nil)
			unix.PtraceDetach(a.PID)
		}
		b, _ := json.Marshal(a)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	self := os.Getpid()
	pidMax := readIntFile("/proc/sys/kernel/pid_max")
	// tried: when each pid was first tried (forgotten after a while: pids
	// are reused once the pid space wraps, which is fast at pid_max 32768).
	tried := map[int]time.Time{}
	retry := map[int]time.Time{}
	end := time.Now().Add(10 * time.Minute)
	for time.Now().Before(end) {
		select {
		case <-stop:
			out.Flush()
			return
		default:
		}
		// The pids around the last one handed out, which anyone may read.
		last := readIntFile("/proc/sys/kernel/ns_last_pid")
		for d := -16; d <= 48; d++ {
			p := last + d
			if p >= pidMax {
				p -= pidMax - 300 // pids wrap to RESERVED_PIDS
			}
			if p <= 0 || p == self {
				continue
			}
			if at, ok := tried[p]; ok && time.Since(at) < 10*time.Second {
				continue
			}
			err := unix.PtraceSeize(p)
			if err == unix.ESRCH {
				continue
			}
			tried[p] = time.Now()
			a := attempt{PID: p, Seized: err == nil}
			if e, ok := err.(syscall.Errno); ok {
				a.Errno = int(e)
			}
			a.Comm, a.PPID = procStatus(p)
			emit(a)
			if err != nil {
				// Refused now, but a process changes: a fork of a root
				// process is refused until it joins the namespace and
				// executes. Tried again while it lives (bounded).
				retry[p] = time.Now()
			}
		}
		for p, since := range retry {
			err := unix.PtraceSeize(p)
			if err != nil && err != unix.ESRCH && time.Since(since) < 5*time.Second {
				continue
			}
			delete(retry, p)
			if err == nil {
				a := attempt{PID: p, Seized: true}
				a.Comm, a.PPID = procStatus(p)
				emit(a)
			}
		}
		if len(tried) > 4096 {
			for p, at := range tried {
				if time.Since(at) > 10*time.Second {
					delete(tried, p)
				}
			}
		}
	}
	out.Flush()
}

func readIntFile(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// procStatus reads a process's comm and parent from /proc/PID/status,
// which anyone may read.
func procStatus(pid int) (string, int) {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	var comm string
	ppid := 0
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Name:\t"); ok {
			comm = v
		}
		if v, ok := strings.CutPrefix(line, "PPid:\t"); ok {
			ppid, _ = strconv.Atoi(v)
		}
	}
	return comm, ppid
}

// attacker is the running attacker and what it has tried so far.
type attacker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	tried []attempt
	done  chan struct{}
}

func startAttacker(t *testing.T, bin string, uid int) *attacker {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{attackerEnv + "=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)},
		Pdeathsig:  syscall.SIGKILL,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the attacker as uid %d: %v", uid, err)
	}
	a := &attacker{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var at attempt
			if json.Unmarshal(sc.Bytes(), &at) != nil {
				continue
			}
			a.mu.Lock()
			merged := false
			for i := range a.tried {
				if a.tried[i].PID == at.PID {
					a.tried[i].Seized = a.tried[i].Seized || at.Seized
					merged = true
				}
			}
			if !merged {
				a.tried = append(a.tried, at)
			}
			a.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	return a
}

// attempts returns what the attacker tried on processes whose parent is
// one of parents.
func (a *attacker) attempts(parents map[int]bool) []attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []attempt
	for _, at := range a.tried {
		if parents[at.PPID] || parents[at.PID] {
			out = append(out, at)
		}
	}
	return out
}

func (a *attacker) triedPID(pid int) (attempt, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, at := range a.tried {
		if at.PID == pid {
			return at, true
		}
	}
	return attempt{}, false
}

func TestNamespaceOwnerCannotPtraceEnospc(t *testing.T) {
	const maxUser, maxNet = 3, 4
	uid := labkit.UID(12)
	bin := helperBinary(t)
	t.Cleanup(func() { killUID(t, uid) })
	h := startHelper(t, bin, "userns-outer", uid, "ENOSPC_LAB_MAX_USERNS="+strconv.Itoa(maxUser), "ENOSPC_LAB_MAX_NETNS="+strconv.Itoa(maxNet))
	var r usernsReport
	if err := json.Unmarshal([]byte(h.Report.Err), &r); err != nil {
		t.Fatalf("helper report %q: %v", h.Report.Err, err)
	}
	t.Logf("uid %d owns user ns %d (a process in it: pid %d), with its max_net_namespaces lowered to %d and full", uid, r.UserNS, r.PID, maxNet)
	att := startAttacker(t, bin, uid)
	time.Sleep(200 * time.Millisecond)

	// The control: root executing a program inside the namespace, as
	// `nsenter --preserve-credentials` does, is taken by the owner. If
	// this fails, the attacker proves nothing below.
	nsenter := labkit.RequireTool(t, "nsenter")
	ctl := exec.Command(nsenter, "--user=/proc/"+strconv.Itoa(r.PID)+"/ns/user", "--preserve-credentials", "--", "sleep", "2")
	if err := ctl.Start(); err != nil {
		t.Fatalf("control: %v", err)
	}
	ctl.Wait()
	if at, ok := att.triedPID(ctl.Process.Pid); !ok || !at.Seized {
		t.Fatalf("the attacker did not seize root's nsenter into its namespace (pid %d; tried: %v %+v): it cannot show that enospc is safe", ctl.Process.Pid, ok, at)
	}
	t.Logf("control: uid %d seized root's `nsenter --user --preserve-credentials -- sleep` (pid %d) in its namespace", uid, ctl.Process.Pid)

	enospcPIDs := map[int]bool{}
	var mu sync.Mutex
	run := func(args ...string) (string, int) {
		cmd := exec.Command(labkit.Bin(), args...)
		var stdout strings.Builder
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatalf("enospc %v: %v", args, err)
		}
		mu.Lock()
		enospcPIDs[cmd.Process.Pid] = true
		mu.Unlock()
		cmd.Wait()
		return stdout.String(), cmd.ProcessState.ExitCode()
	}
	readers := func() []attempt {
		mu.Lock()
		defer mu.Unlock()
		return att.attempts(enospcPIDs)
	}
	level := fmt.Sprintf("uid %d in user ns %d", uid, r.UserNS)

	// check, until the attacker has tried several of its readers (each
	// check forks one for the namespace; bounded).
	checks := 0
	for checks < 60 && countChildren(readers(), enospcPIDs) < 5 {
		out, _ := run("check", "-o", "json", "--only", "userns,namespaces")
		checks++
		if checks == 1 {
			var rep struct{ Findings []limits.Finding }
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("check output: %v\n%s", err, out)
			}
			found := false
			for _, f := range rep.Findings {
				if f.Limit == "namespaces" && f.Scope == "net ns of "+level {
					found = true
					if f.Max != maxNet || f.Severity != limits.Critical {
						t.Errorf("check read the namespace's own limit as %d (%s), want %d critical: the reader inside did not work", f.Max, f.Severity, maxNet)
					}
				}
			}
			if !found {
				t.Errorf("check has no row for net ns of %s:\n%s", level, out)
			}
		}
	}
	t.Logf("%d checks; the attacker tried %d of their readers", checks, countChildren(readers(), enospcPIDs))

	// explain on this host, fix's plan, and serve: each reads the
	// namespace through the same reader.
	run("explain", "unshare: unshare failed: No space left on device")
	run("fix", "--only", "userns,namespaces")
	serveOnce(t, &mu, enospcPIDs)

	time.Sleep(300 * time.Millisecond)
	tried := readers()
	n := countChildren(tried, enospcPIDs)
	for _, at := range tried {
		if at.Seized {
			t.Errorf("the namespace's owner seized pid %d (%s, parent %d), started by enospc", at.PID, at.Comm, at.PPID)
		}
	}
	if n == 0 {
		t.Fatalf("the attacker never tried a process that enospc started (%d enospc runs): the test proves nothing; tried: %+v", len(enospcPIDs), tried)
	}
	if t.Failed() {
		return
	}
	t.Logf("the attacker tried %d processes started by enospc and seized none (errno of the first: %v)", n, syscall.Errno(firstErrno(tried, enospcPIDs)))
}

// countChildren counts the attempts on processes that enospc forked.
func countChildren(tried []attempt, parents map[int]bool) int {
	n := 0
	for _, at := range tried {
		if parents[at.PPID] && !parents[at.PID] {
			n++
		}
	}
	return n
}

func firstErrno(tried []attempt, parents map[int]bool) int {
	for _, at := range tried {
		if parents[at.PPID] && !parents[at.PID] {
			return at.Errno
		}
	}
	return 0
}

// serveOnce starts enospc serve on a loopback port, waits (bounded) for
// one snapshot through the API, and stops it.
func serveOnce(t *testing.T, mu *sync.Mutex, pids map[int]bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, labkit.Bin(), "serve", "--listen", addr, "--history-dir", "")
	if err := cmd.Start(); err != nil {
		t.Fatalf("enospc serve: %v", err)
	}
	mu.Lock()
	pids[cmd.Process.Pid] = true
	mu.Unlock()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	ok := labkit.WaitFor(45*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/api/v1/check")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ok {
		t.Errorf("enospc serve on %s gave no snapshot in 45s", addr)
	}
}
