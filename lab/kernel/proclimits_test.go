//go:build lab

package kernel

// The per-process limits (limits/proclimits.go), driven to exhaustion for
// real. Each is a limit of one process (or of one uid's processes, counted
// against one process's rlimit), so a helper that lowers its own rlimit and
// runs as a dedicated uid is isolated by construction: no sysctl and no
// other process is touched.
//
//   - nproc: the helper sets RLIMIT_NPROC (soft and hard) to a small number
//     for itself and starts sleep(1) children until fork fails with EAGAIN.
//     The kernel counts every task of the real uid against it, so the
//     uid's count is the helper's threads plus its children; a Go program
//     started as that uid with the same rlimit then dies creating its
//     first thread (runtime/cgo's wording: this binary links cgo). Root
//     and CAP_SYS_RESOURCE are exempt: the helper runs as a dedicated uid.
//   - files.process: the helper sets RLIMIT_NOFILE to a small number and
//     opens /dev/null until EMFILE.
//   - mapcount: vm.max_map_count (65530 by default) is one global sysctl
//     but a count per process: the helper mmaps small anonymous regions
//     with alternating protections (so that neighbours do not merge into
//     one mapping) until mmap fails with ENOMEM, then gives 16 back so that
//     its own Go runtime can go on mapping memory. The regions are never
//     writable, so they charge no memory; they are 64 KiB each so that the
//     helper's virtual size puts it among the few largest processes, the
//     only ones whose maps check reads.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
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

func plContainsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// The helper modes of this file, registered from a package-level variable
// so that they are in helperModes whatever the order of init functions.
var _ = registerProcLimitsHelpers()

func registerProcLimitsHelpers() bool {
	helperModes["proclimits-nproc"] = helperProcNproc
	helperModes["proclimits-threads"] = helperProcThreads
	helperModes["proclimits-nofile"] = helperProcNofile
	helperModes["proclimits-mapcount"] = helperProcMapcount
	return true
}

// The dedicated uids of this file's tests (labkit.UID(n)).
const (
	plNprocUIDSlot    = 31
	plNofileUIDSlot   = 32
	plMapcountUIDSlot = 33
)

// Values the tests give their helpers.
const (
	plNproc       = 24       // RLIMIT_NPROC of the nproc helper
	plNofile      = 64       // RLIMIT_NOFILE of the nofile helper
	plMapRegion   = 64 << 10 // bytes per mapping of the mapcount helper
	plMapHeadroom = 16       // mappings the mapcount helper gives back
	plWarmThreads = 6        // idle threads the nproc helper makes first
)

// What the helpers hold: reachable for their whole life (a collected
// *os.File closes its fd; a collected *exec.Cmd is harmless but keep it).
var (
	procLimitChildren []*exec.Cmd
	procLimitFiles    []*os.File
)

// helperProcNproc lowers its RLIMIT_NPROC to ENOSPC_LAB_LIMIT and starts
// `sleep 600` children until fork fails. The Go runtime must not need a
// new thread once the uid is at its limit (it would die), so the helper
// first makes a few threads that then idle in the runtime's pool. A
// goroutine reaps the children when the test kills them, so that none is
// left a zombie.
func helperProcNproc() helperReport {
	var rep helperReport
	limit := helperEnvInt("ENOSPC_LAB_LIMIT", plNproc)
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 200)
	var wg sync.WaitGroup
	for i := 0; i < plWarmThreads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(50 * time.Millisecond)
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	rl := unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &rl); err != nil {
		rep.Fatal = fmt.Sprintf("setrlimit(RLIMIT_NPROC, %d): %v", limit, err)
		return rep
	}
	for i := 0; i < bound; i++ {
		cmd := exec.Command("sleep", "600")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			rep.Err, rep.Errno = err.Error(), int(errnoOf(err))
			break
		}
		procLimitChildren = append(procLimitChildren, cmd)
		rep.Count++
	}
	if rep.Err == "" {
		rep.Fatal = fmt.Sprintf("fork did not fail in %d children with RLIMIT_NPROC %d", bound, limit)
		return rep
	}
	go func() {
		for {
			var ws syscall.WaitStatus
			_, err := syscall.Wait4(-1, &ws, 0, nil)
			if err != nil && err != syscall.EINTR {
				return // ECHILD: all reaped
			}
		}
	}()
	return rep
}

// helperProcThreads is any Go program: started with a small RLIMIT_NPROC
// as a uid at that limit, the runtime cannot create its threads and dies.
func helperProcThreads() helperReport {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(10 * time.Millisecond)
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	return helperReport{Fatal: "the Go runtime created its threads: the uid was not at its RLIMIT_NPROC"}
}

// helperProcNofile lowers its RLIMIT_NOFILE to ENOSPC_LAB_LIMIT and opens
// /dev/null until open fails.
func helperProcNofile() helperReport {
	var rep helperReport
	limit := helperEnvInt("ENOSPC_LAB_LIMIT", plNofile)
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 1000)
	rl := syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		rep.Fatal = fmt.Sprintf("setrlimit(RLIMIT_NOFILE, %d): %v", limit, err)
		return rep
	}
	for i := 0; i < bound; i++ {
		f, err := os.Open("/dev/null")
		if err != nil {
			rep.Err, rep.Errno = err.Error(), int(errnoOf(err))
			return rep
		}
		procLimitFiles = append(procLimitFiles, f)
		rep.Count++
	}
	rep.Fatal = fmt.Sprintf("open did not fail in %d files with RLIMIT_NOFILE %d", bound, limit)
	return rep
}

// helperProcMapcount maps ENOSPC_LAB_REGION-byte anonymous regions,
// read-only and inaccessible in turn, until mmap fails, then unmaps the
// last ENOSPC_LAB_HEADROOM of them: the Go runtime needs a mapping or two
// to keep running (a real process goes on after a failed mmap too). The
// mmap calls are raw, into a slice allocated up front: Go's syscall.Mmap
// keeps a map of its mappings, whose growth would need a mapping of the
// runtime's own at the worst moment.
func helperProcMapcount() helperReport {
	var rep helperReport
	size := uintptr(helperEnvInt("ENOSPC_LAB_REGION", plMapRegion))
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 0)
	headroom := helperEnvInt("ENOSPC_LAB_HEADROOM", plMapHeadroom)
	if bound <= 0 {
		rep.Fatal = "ENOSPC_LAB_BOUND is required"
		return rep
	}
	addrs := make([]uintptr, 0, bound)
	// At the limit the Go runtime itself cannot map a new span: nothing
	// may allocate between the refused mmap and the mappings given back.
	var failed syscall.Errno
	for i := 0; i < bound; i++ {
		prot := uintptr(syscall.PROT_READ)
		if i%2 == 1 {
			prot = syscall.PROT_NONE
		}
		a, _, e := syscall.Syscall6(syscall.SYS_MMAP, 0, size, prot, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS, ^uintptr(0), 0)
		if e != 0 {
			failed = e
			break
		}
		addrs = append(addrs, a)
	}
	if failed == 0 {
		rep.Fatal = fmt.Sprintf("mmap did not fail in %d mappings", bound)
		return rep
	}
	for i := 0; i < headroom && len(addrs) > 0; i++ {
		a := addrs[len(addrs)-1]
		if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, a, size, 0); e != 0 {
			rep.Fatal = fmt.Sprintf("munmap: %v", e)
			return rep
		}
		addrs = addrs[:len(addrs)-1]
	}
	rep.Err, rep.Errno = "mmap: "+failed.Error(), int(failed)
	rep.Count = len(addrs)
	return rep
}

// plUIDProcs lists the pids whose real uid is uid.
func plUIDProcs(uid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Uid:" {
				if f[1] == strconv.Itoa(uid) {
					if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
						out = append(out, pid)
					}
				}
				break
			}
		}
	}
	return out
}

// plKillUID kills, by pid, every process of the dedicated uid but keep, and
// waits (bounded) until only keep is left. Zombies count until reaped: the
// nproc helper reaps its own children, init reaps the orphans.
func plKillUID(t *testing.T, uid, keep int) {
	t.Helper()
	left := func() []int {
		var l []int
		for _, pid := range plUIDProcs(uid) {
			if pid != keep {
				l = append(l, pid)
			}
		}
		return l
	}
	ok := labkit.WaitFor(15*time.Second, func() bool {
		l := left()
		for _, pid := range l {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(l) == 0
	})
	if !ok {
		t.Errorf("CLEANUP FAILED: processes of uid %d left: %v", uid, left())
	}
}

// plStatus returns one field of /proc/PID/status, "" when unreadable.
func plStatus(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// plCause is one cause of `enospc explain -o json`.
type plCause struct {
	Limit      string  `json:"limit"`
	Confidence float64 `json:"confidence"`
	Confirmed  bool    `json:"confirmed"`
}

// plExplain runs `enospc explain -o json [--offline] msg` and returns its
// causes, most likely first.
func plExplain(t *testing.T, msg string, offline bool) []plCause {
	t.Helper()
	args := []string{"explain", "-o", "json"}
	if offline {
		args = append(args, "--offline")
	}
	cmd := exec.Command(labkit.Bin(), append(args, msg)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("enospc explain: %v", err)
		}
	}
	var res struct {
		Causes []plCause `json:"causes"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("enospc %s %q: not JSON: %v\n%s\n%s", strings.Join(args, " "), msg, err, stdout.String(), stderr.String())
	}
	how := "live"
	if offline {
		how = "offline"
	}
	var s []string
	for _, c := range res.Causes {
		s = append(s, fmt.Sprintf("%s %.2f confirmed=%v", c.Limit, c.Confidence, c.Confirmed))
	}
	t.Logf("explain (%s) %q: %s", how, msg, strings.Join(s, "; "))
	return res.Causes
}

// plCauseOf returns the cause of limit, nil when it is not a candidate.
func plCauseOf(cs []plCause, limit string) *plCause {
	for i := range cs {
		if cs[i].Limit == limit {
			return &cs[i]
		}
	}
	return nil
}

func TestNprocLimit(t *testing.T) {
	uid := labkit.UID(plNprocUIDSlot)
	if l := plUIDProcs(uid); len(l) > 0 {
		t.Fatalf("LAB CANNOT RUN: uid %d is not dedicated: it runs %v", uid, l)
	}
	bin := helperBinary(t)
	t.Cleanup(func() { plKillUID(t, uid, 0) }) // last: orphans, if any
	h := startHelper(t, bin, "proclimits-nproc", uid, "ENOSPC_LAB_LIMIT="+strconv.Itoa(plNproc))
	t.Cleanup(func() { plKillUID(t, uid, h.PID()) }) // first: the children, reaped by the helper
	threads, _ := strconv.Atoi(plStatus(h.PID(), "Threads"))
	t.Logf("uid %d pid %d (RLIMIT_NPROC %d): %d threads, %d sleep children, then: %s (%s)", uid, h.PID(), plNproc,
		threads, h.Report.Count, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.EAGAIN {
		t.Fatalf("fork failed with %s, want EAGAIN: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if n := len(plUIDProcs(uid)) - 1 + threads; n != plNproc {
		t.Errorf("uid %d has %d tasks after EAGAIN, want RLIMIT_NPROC = %d", uid, n, plNproc)
	}
	msgs := []string{h.Report.Err}

	// A Go program started as that uid with the same rlimit: the runtime
	// cannot create its threads. prlimit lowers its own limit, then execs.
	if prlimit, err := exec.LookPath("prlimit"); err == nil {
		cmd := exec.Command(prlimit, fmt.Sprintf("--nproc=%d", plNproc), "--", bin)
		cmd.Env = []string{helperEnv + "=proclimits-threads", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2"}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}, Pdeathsig: syscall.SIGKILL}
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a Go program as uid %d: %v", uid, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		// A cgo binary (this one) dies in runtime/cgo's pthread_create,
		// a pure Go one in newosproc ("failed to create new OS thread").
		var lines []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if plContainsAny(l, "pthread_create failed", "failed to create new OS thread", "may need to increase max user processes", "fatal error: newosproc") {
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		goMsg := strings.Join(lines, "\n")
		t.Logf("a Go program as uid %d printed: %q", uid, goMsg)
		if goMsg == "" {
			t.Errorf("a Go program as uid %d did not fail to create a thread: %.400q", uid, stderr.String())
		} else {
			msgs = append(msgs, goMsg)
			if cs := plExplain(t, goMsg, true); strings.Contains(goMsg, "max user processes") && (len(cs) == 0 || cs[0].Limit != "nproc") {
				t.Errorf("explain --offline %q: want nproc first (the message names max user processes)", goMsg)
			} else if plCauseOf(cs, "nproc") == nil {
				t.Errorf("explain --offline %q: nproc is not among the candidates", goMsg)
			}
		}
	} else {
		t.Logf("prlimit is not installed: the Go runtime's wording is not captured")
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "nproc", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Max != plNproc || u.Used < plNproc {
		t.Errorf("nproc uid %d: %s %d/%d, want critical %d/%d", uid, u.Severity, u.Used, u.Max, plNproc, plNproc)
	}
	if !hasConsumer(u, h.PID(), helperName) {
		t.Errorf("nproc uid %d: holders %+v do not list the helper (pid %d, %s)", uid, u.Consumers, h.PID(), helperName)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}

	// Offline, the fork wording is the pids cgroup's as much as the uid's:
	// nproc must be a candidate; live, the host confirms it.
	if plCauseOf(plExplain(t, msgs[0], true), "nproc") == nil {
		t.Errorf("explain --offline %q: nproc is not among the candidates", msgs[0])
	}
	for _, m := range msgs {
		if c := plCauseOf(plExplain(t, m, false), "nproc"); c == nil || !c.Confirmed {
			t.Errorf("explain %q on this host: nproc not confirmed (%+v)", m, c)
		}
	}
}

func TestNofileLimit(t *testing.T) {
	uid := labkit.UID(plNofileUIDSlot)
	if l := plUIDProcs(uid); len(l) > 0 {
		t.Fatalf("LAB CANNOT RUN: uid %d is not dedicated: it runs %v", uid, l)
	}
	bin := helperBinary(t)
	t.Cleanup(func() { plKillUID(t, uid, 0) })
	h := startHelper(t, bin, "proclimits-nofile", uid, "ENOSPC_LAB_LIMIT="+strconv.Itoa(plNofile))
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.PID()))
	t.Logf("uid %d pid %d (RLIMIT_NOFILE %d): %d opens of /dev/null (%d fds in all), then: %s (%s)", uid, h.PID(), plNofile,
		h.Report.Count, len(fds), h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.EMFILE {
		t.Fatalf("open failed with %s, want EMFILE: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	// Every fd below the limit is taken. An fd numbered above it, opened
	// before the limit was lowered (one inherited from whatever started
	// go test), stays open and counts too: check reports what is open.
	low, high := 0, []string{}
	for _, fd := range fds {
		if n, err := strconv.Atoi(fd.Name()); err == nil && n < plNofile {
			low++
		} else {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", h.PID(), fd.Name()))
			high = append(high, fd.Name()+" -> "+l)
		}
	}
	if len(high) > 0 {
		t.Logf("fds above the limit, open before it was lowered: %s", strings.Join(high, ", "))
	}
	if low != plNofile {
		t.Errorf("the helper holds %d fds below %d after EMFILE, want all of them", low, plNofile)
	}

	rep, code := labkit.RunCheck(t)
	scope := fmt.Sprintf("pid %d (%s)", h.PID(), helperName)
	u := labkit.Find(t, rep, "files.process", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != int64(len(fds)) || u.Max != plNofile {
		t.Errorf("files.process %s: %s %d/%d, want critical %d/%d", scope, u.Severity, u.Used, u.Max, len(fds), plNofile)
	}
	if !hasConsumer(u, h.PID(), helperName) {
		t.Errorf("files.process %s: holders %+v do not list the helper", scope, u.Consumers)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}

	if plCauseOf(plExplain(t, h.Report.Err, true), "files.process") == nil {
		t.Errorf("explain --offline %q: files.process is not among the candidates", h.Report.Err)
	}
	if c := plCauseOf(plExplain(t, h.Report.Err, false), "files.process"); c == nil || !c.Confirmed {
		t.Errorf("explain %q on this host: files.process not confirmed (%+v)", h.Report.Err, c)
	}
}

func TestMapcountLimit(t *testing.T) {
	maxMaps := int(readInt(t, sysctlPath("vm.max_map_count")))
	if maxMaps > 1<<20 {
		t.Fatalf("LAB CANNOT RUN: vm.max_map_count is %d: %d GiB of mappings to fill it", maxMaps, maxMaps*plMapRegion>>30)
	}
	uid := labkit.UID(plMapcountUIDSlot)
	if l := plUIDProcs(uid); len(l) > 0 {
		t.Fatalf("LAB CANNOT RUN: uid %d is not dedicated: it runs %v", uid, l)
	}
	bin := helperBinary(t)
	t.Cleanup(func() { plKillUID(t, uid, 0) })
	start := time.Now()
	h := startHelper(t, bin, "proclimits-mapcount", uid,
		"ENOSPC_LAB_BOUND="+strconv.Itoa(maxMaps+10000), "ENOSPC_LAB_REGION="+strconv.Itoa(plMapRegion), "ENOSPC_LAB_HEADROOM="+strconv.Itoa(plMapHeadroom))
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", h.PID()))
	if err != nil {
		t.Fatalf("read the helper's maps: %v", err)
	}
	lines := bytes.Count(maps, []byte{'\n'})
	vmSize := plStatus(h.PID(), "VmSize")
	t.Logf("uid %d pid %d (vm.max_map_count %d): %d mappings of %d KiB in %s, then: %s (%s); %d given back, maps has %d lines, VmSize %s",
		uid, h.PID(), maxMaps, h.Report.Count+plMapHeadroom, plMapRegion>>10, time.Since(start).Round(time.Millisecond),
		h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)), plMapHeadroom, lines, vmSize)
	if syscall.Errno(h.Report.Errno) != syscall.ENOMEM {
		t.Fatalf("mmap failed with %s, want ENOMEM: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if lines < maxMaps-2*plMapHeadroom {
		t.Errorf("the helper has %d mappings after ENOMEM, want about vm.max_map_count = %d", lines, maxMaps)
	}

	// check reads maps for the processes with the largest VmSize only.
	rank := plVmSizeRank(h.PID())
	t.Logf("the helper's VmSize ranks: %s", strings.Join(rank, ", "))
	inTop := false
	for _, r := range rank[:min(len(rank), 5)] {
		if strings.HasPrefix(r, fmt.Sprintf("pid %d ", h.PID())) {
			inTop = true
		}
	}
	if !inTop {
		t.Fatalf("the helper (pid %d, VmSize %s) is not among the 5 largest processes, the only ones check reads maps for: %s",
			h.PID(), vmSize, strings.Join(rank[:min(len(rank), 6)], ", "))
	}

	rep, code := labkit.RunCheck(t)
	scope := fmt.Sprintf("pid %d (%s)", h.PID(), helperName)
	u := labkit.Find(t, rep, "mapcount", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Max != int64(maxMaps) || u.Used < int64(maxMaps-2*plMapHeadroom) {
		t.Errorf("mapcount %s: %s %d/%d, want critical about %d/%d", scope, u.Severity, u.Used, u.Max, maxMaps, maxMaps)
	}
	if !hasConsumer(u, h.PID(), helperName) {
		t.Errorf("mapcount %s: holders %+v do not list the helper", scope, u.Consumers)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
	// The bare ENOMEM names no limit: what explain makes of it is logged,
	// not asserted.
	plExplain(t, h.Report.Err, true)
}

// plVmSizeRank lists the processes by VmSize, largest first, as
// "pid N (comm) K kB"; pid's own entry is always included.
func plVmSizeRank(pid int) []string {
	type p struct {
		pid  int
		comm string
		kb   int64
	}
	var ps []p
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		n, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(plStatus(n, "VmSize"), " kB"), 10, 64)
		if err != nil {
			continue
		}
		ps = append(ps, p{n, plStatus(n, "Name"), kb})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].kb > ps[j].kb })
	var out []string
	for i, x := range ps {
		if i < 6 || x.pid == pid {
			out = append(out, fmt.Sprintf("pid %d (%s) %d kB", x.pid, x.comm, x.kb))
		}
	}
	return out
}
