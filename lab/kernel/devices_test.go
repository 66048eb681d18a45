//go:build lab

package kernel

// The devices family (limits/devices.go), driven to exhaustion where the
// kernel lets it be isolated:
//
//   - ptys: a private devpts instance mounted with a small max= on a temp
//     directory (private propagation, unmounted at cleanup), filled by a
//     helper; script(1), Python's pty module and runc exec -t (into a
//     container whose own /dev/pts has max=1) give the real wordings.
//     kernel.pty.max is global and never touched.
//   - epoll: a dedicated uid registers fds in epoll instances up to the
//     host's real fs.epoll.max_user_watches, which the kernel counts per
//     real uid: the limit is global, the count is that uid's only (a few
//     million watches, about 200 MB of kernel memory for under a minute).
//     A Go program started as that uid then dies in its netpoll setup.
//   - fanotify: dedicated uids take unprivileged fanotify groups (FAN_REPORT_FID,
//     kernel 5.13 or later) up to fs.fanotify.max_user_groups, and marks on
//     a private tmpfs up to fs.fanotify.max_user_marks: the per-uid counters
//     of the initial user namespace, the very ones check reads. (A child
//     user namespace with a lowered /proc/sys/user/max_fanotify_groups
//     fails the same way, but check reads the initial namespace's limit.)
//
// aio has no lab: fs.aio-nr and fs.aio-max-nr are one counter and one limit
// for the whole host, with no per-user or per-namespace share, so filling
// them would make every other io_setup on the machine fail.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// The helper modes of this file. A package-level variable, not init: every
// variable is initialized before any init function runs, so the modes are
// in helperModes whatever the order of the files' init functions.
var _ = registerDevicesHelpers()

func registerDevicesHelpers() bool {
	helperModes["ptys"] = helperPtys
	helperModes["epoll-watches"] = helperEpollWatches
	helperModes["epoll-netpoll"] = helperEpollNetpoll
	helperModes["fanotify-groups"] = helperFanotifyGroups
	helperModes["fanotify-marks"] = helperFanotifyMarks
	return true
}

// heldFiles keeps a helper's *os.File values reachable: a collected File
// closes its fd.
var heldFiles []*os.File

// helperPtys opens ENOSPC_LAB_DIR/ptmx until the kernel refuses.
func helperPtys() helperReport {
	var rep helperReport
	ptmx := filepath.Join(os.Getenv("ENOSPC_LAB_DIR"), "ptmx")
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 4096)
	for i := 0; i < bound; i++ {
		f, err := os.OpenFile(ptmx, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			rep.Err, rep.Errno = err.Error(), int(errnoOf(err))
			return rep
		}
		heldFiles = append(heldFiles, f)
		rep.Count++
	}
	rep.Fatal = fmt.Sprintf("%s did not fail in %d opens", ptmx, bound)
	return rep
}

// helperEpollWatches registers ENOSPC_LAB_FILES eventfds in up to
// ENOSPC_LAB_INSTANCES epoll instances until epoll_ctl refuses.
func helperEpollWatches() helperReport {
	var rep helperReport
	nfds, ninst := helperEnvInt("ENOSPC_LAB_FILES", 0), helperEnvInt("ENOSPC_LAB_INSTANCES", 0)
	if nfds <= 0 || ninst <= 0 {
		rep.Fatal = "ENOSPC_LAB_FILES and ENOSPC_LAB_INSTANCES are required"
		return rep
	}
	// Set the Go runtime's own epoll instance up now: once the uid has no
	// watch left, the runtime cannot start it and dies.
	time.Sleep(time.Millisecond)
	fds := make([]int, 0, nfds)
	for i := 0; i < nfds; i++ {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			rep.Fatal = fmt.Sprintf("eventfd %d: %v", i, err)
			return rep
		}
		fds = append(fds, fd)
	}
	deadline := time.Now().Add(120 * time.Second)
	for e := 0; e < ninst; e++ {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			rep.Fatal = fmt.Sprintf("epoll_create1 (instance %d): %v", e+1, err)
			return rep
		}
		rep.Instances++
		for _, fd := range fds {
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
				rep.Err, rep.Errno = "epoll_ctl: "+err.Error(), int(errnoOf(err))
				return rep
			}
			rep.Count++
		}
		if time.Now().After(deadline) {
			rep.Fatal = fmt.Sprintf("gave up after 120s with %d watches", rep.Count)
			return rep
		}
	}
	rep.Fatal = fmt.Sprintf("epoll_ctl did not fail in %d watches over %d instances", rep.Count, rep.Instances)
	return rep
}

// helperEpollNetpoll is any Go program that waits on a timer: the runtime
// needs an epoll instance with one watch for it.
func helperEpollNetpoll() helperReport {
	time.Sleep(10 * time.Millisecond)
	return helperReport{Fatal: "the Go runtime set its netpoller up: the uid still had epoll watches"}
}

func fanotifyInit() (int, error) {
	return unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_CLOEXEC, unix.O_RDONLY)
}

// helperFanotifyGroups creates fanotify groups until the kernel refuses.
func helperFanotifyGroups() helperReport {
	var rep helperReport
	bound := helperEnvInt("ENOSPC_LAB_BOUND", 10000)
	for i := 0; i < bound; i++ {
		if _, err := fanotifyInit(); err != nil {
			rep.Err, rep.Errno = "fanotify_init: "+err.Error(), int(errnoOf(err))
			break
		}
		rep.Count++
	}
	rep.Instances = rep.Count
	if rep.Err == "" {
		rep.Fatal = fmt.Sprintf("fanotify_init did not fail in %d calls", bound)
	}
	return rep
}

// helperFanotifyMarks creates ENOSPC_LAB_INSTANCES groups, each marking
// the ENOSPC_LAB_FILES files f00000... of ENOSPC_LAB_DIR, until the kernel
// refuses a mark.
func helperFanotifyMarks() helperReport {
	dir := os.Getenv("ENOSPC_LAB_DIR")
	nfiles, ngroups := helperEnvInt("ENOSPC_LAB_FILES", 0), helperEnvInt("ENOSPC_LAB_INSTANCES", 0)
	var rep helperReport
	if dir == "" || nfiles <= 0 || ngroups <= 0 {
		rep.Fatal = "ENOSPC_LAB_DIR, ENOSPC_LAB_FILES and ENOSPC_LAB_INSTANCES are required"
		return rep
	}
	deadline := time.Now().Add(60 * time.Second)
	for g := 0; g < ngroups; g++ {
		fd, err := fanotifyInit()
		if err != nil {
			rep.Fatal = fmt.Sprintf("fanotify_init (group %d): %v", g+1, err)
			return rep
		}
		rep.Instances++
		for j := 0; j < nfiles; j++ {
			p := filepath.Join(dir, fmt.Sprintf("f%05d", j))
			if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_CLOSE_WRITE, unix.AT_FDCWD, p); err != nil {
				rep.Err, rep.Errno = "fanotify_mark "+p+": "+err.Error(), int(errnoOf(err))
				return rep
			}
			rep.Count++
		}
		if time.Now().After(deadline) {
			rep.Fatal = fmt.Sprintf("gave up after 60s with %d marks", rep.Count)
			return rep
		}
	}
	rep.Fatal = fmt.Sprintf("fanotify_mark did not fail in %d marks over %d groups", rep.Count, rep.Instances)
	return rep
}

// devicesExplainFirst runs `enospc explain -o json --offline msg` and
// fails the test unless want is the first cause.
func devicesExplainFirst(t *testing.T, msg, want string) {
	t.Helper()
	cmd := exec.Command(labkit.Bin(), "explain", "-o", "json", "--offline", msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("enospc explain: %v", err)
		}
	}
	var res struct {
		Causes []struct {
			Limit      string  `json:"limit"`
			Confidence float64 `json:"confidence"`
		} `json:"causes"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("enospc explain %q: not JSON: %v\n%s\n%s", msg, err, stdout.String(), stderr.String())
	}
	if len(res.Causes) == 0 || res.Causes[0].Limit != want {
		t.Errorf("enospc explain %q: causes %+v, want %s first", msg, res.Causes, want)
		return
	}
	t.Logf("explain %q: %s first (%.2f)", msg, want, res.Causes[0].Confidence)
}

// mountDevpts mounts a new devpts instance with max=n on a fresh directory
// under /tmp, in the host mount namespace (check reads pid 1's mount table)
// with private propagation, and unmounts and removes it at cleanup.
func mountDevpts(t *testing.T, n int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "enospc-lab-devpts-")
	if err != nil {
		t.Fatalf("mount point: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil && err != unix.EINVAL {
			if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
				t.Errorf("CLEANUP FAILED: unmount %s: %v / %v", dir, err, err2)
			}
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("CLEANUP FAILED: remove mount point %s: %v", dir, err)
		}
	})
	opts := fmt.Sprintf("newinstance,max=%d,ptmxmode=0666,mode=0620", n)
	if err := unix.Mount("enospc-lab-devpts", dir, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, opts); err != nil {
		t.Fatalf("LAB CANNOT RUN: mount devpts -o %s on %s: %v", opts, dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make %s private: %v", dir, err)
	}
	return dir
}

// inFullDevpts runs a shell command in a private mount namespace whose
// /dev/pts and /dev/ptmx are the full instance dir, and returns what it
// printed.
func inFullDevpts(t *testing.T, dir, command string) string {
	t.Helper()
	script := fmt.Sprintf("mount --bind %s /dev/pts && mount --bind %s/ptmx /dev/ptmx && %s", dir, dir, command)
	out, _ := devicesRun(t, 20*time.Second, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	return out
}

// devicesRun runs a command as root with a bounded time and returns its
// combined output. The output goes to a file, not a pipe: a detached
// container keeps runc's stdio open after runc exits.
func devicesRun(t *testing.T, d time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	f, err := os.CreateTemp("", "enospc-lab-out-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "TERM=dumb", "HOME=/root"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("%s killed after %s", name, d)
	}
	out, _ := os.ReadFile(f.Name())
	return string(out), err
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// lastLineWith returns the last line of out holding from and want,
// trimmed, with terminal escapes and what precedes from removed (the
// error line of a traceback or a log line).
func lastLineWith(out, from, want string) string {
	lines := strings.Split(ansiEscape.ReplaceAllString(out, ""), "\n")
	for k := len(lines) - 1; k >= 0; k-- {
		if i := strings.Index(lines[k], from); i >= 0 && strings.Contains(lines[k][i:], want) {
			return strings.TrimSpace(lines[k][i:])
		}
	}
	return ""
}

func TestPtysDevptsMax(t *testing.T) {
	const n = 8
	scriptBin := labkit.RequireTool(t, "script")
	labkit.RequireTool(t, "unshare")
	dir := mountDevpts(t, n)
	uid := labkit.UID(21)
	bin := helperBinary(t)

	h := startHelper(t, bin, "ptys", uid, "ENOSPC_LAB_DIR="+dir)
	t.Logf("uid %d pid %d: %d ptys of %s, then: %s (%s)", uid, h.PID(), h.Report.Count, dir, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.ENOSPC {
		t.Fatalf("opening %s/ptmx failed with %s, want ENOSPC: %s", dir, statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if h.Report.Count != n {
		t.Errorf("the helper got %d ptys before ENOSPC, want max=%d", h.Report.Count, n)
	}
	msgs := []string{h.Report.Err}

	// Real programs, in a mount namespace whose /dev/pts is the full
	// instance.
	out := inFullDevpts(t, dir, scriptBin+" -qec true /dev/null")
	t.Logf("script printed: %q", strings.TrimSpace(out))
	if m := lastLineWith(out, "script:", "No space left on device"); m == "" {
		t.Errorf("script did not report ENOSPC from the full devpts: %q", out)
	} else {
		msgs = append(msgs, m)
	}
	if py, err := exec.LookPath("python3"); err == nil {
		out := inFullDevpts(t, dir, py+" -c 'import pty; pty.fork()'")
		t.Logf("python3 printed: %q", strings.TrimSpace(out))
		if m := lastLineWith(out, "OSError", "pty"); m == "" {
			t.Errorf("python3's pty.fork did not report running out of ptys: %q", out)
		} else {
			msgs = append(msgs, m)
		}
	} else {
		t.Logf("python3 is not installed: its wording is not captured")
	}
	if m := runcExecPtmx(t); m != "" {
		msgs = append(msgs, m)
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "ptys", labkit.ScopeIs("devpts "+dir))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != n || u.Max != n {
		t.Errorf("ptys devpts %s: %s %d/%d, want critical %d/%d", dir, u.Severity, u.Used, u.Max, n, n)
	}
	if !strings.Contains(strings.Join(u.Remedy, "\n"), "remount,max=") {
		t.Errorf("ptys devpts %s: remedy %q does not remount with a larger max=", dir, u.Remedy)
	}
	host := labkit.Find(t, rep, "ptys", labkit.ScopeIs("host (kernel.pty.max)"))
	t.Logf("check, host row: %s", describe(host))
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
	for _, m := range msgs {
		devicesExplainFirst(t, m, "ptys")
	}
}

// runcExecPtmx runs a busybox container whose /dev/pts is mounted with
// max=1, holds its one pty with a first runc exec -t, and returns what a
// second runc exec -t says. runc itself opens /dev/ptmx inside the
// container's devpts instance.
func runcExecPtmx(t *testing.T) string {
	t.Helper()
	runc := labkit.RequireTool(t, "runc")
	busybox := labkit.RequireTool(t, "busybox")
	scriptBin := labkit.RequireTool(t, "script")
	base, err := os.MkdirTemp("", "enospc-lab-runc-pty-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	bundle, state := filepath.Join(base, "bundle"), filepath.Join(base, "state")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "sleep", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := devicesRun(t, 20*time.Second, runc, "spec", "--bundle", bundle); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/sleep", "120"}
	found := false
	for _, m := range cfg["mounts"].([]any) {
		mm := m.(map[string]any)
		if mm["destination"] == "/dev/pts" {
			mm["options"] = append(mm["options"].([]any), "max=1")
			found = true
		}
	}
	if !found {
		t.Fatalf("runc spec has no /dev/pts mount")
	}
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("enospc-lab-pty-%d", os.Getpid())
	t.Cleanup(func() {
		devicesRun(t, 20*time.Second, runc, "--root", state, "kill", id, "KILL")
		if out, err := devicesRun(t, 20*time.Second, runc, "--root", state, "delete", "--force", id); err != nil && !strings.Contains(out, "does not exist") {
			t.Errorf("CLEANUP FAILED: runc delete %s: %v: %s", id, err, out)
		}
	})
	if out, err := devicesRun(t, 30*time.Second, runc, "--root", state, "run", "--detach", "--bundle", bundle, id); err != nil {
		t.Fatalf("runc run: %v: %s", err, out)
	}
	out, err := devicesRun(t, 10*time.Second, runc, "--root", state, "state", id)
	var st struct {
		Pid int `json:"pid"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Pid <= 0 {
		t.Fatalf("runc state %s: %v: %s", id, err, out)
	}
	// The first exec -t takes the container's only pty and keeps it;
	// script gives runc the terminal it wants on its side.
	holder := exec.Command(scriptBin, "-qec", fmt.Sprintf("%s --root %s exec -t %s /bin/sleep 60", runc, state, id), "/dev/null")
	holder.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=dumb"}
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatalf("runc exec -t (holder): %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
		holder.Wait()
	})
	pty0 := fmt.Sprintf("/proc/%d/root/dev/pts/0", st.Pid)
	if !labkit.WaitFor(15*time.Second, func() bool { _, err := os.Stat(pty0); return err == nil }) {
		t.Fatalf("the first runc exec -t did not take the container's pty (%s)", pty0)
	}
	out, _ = devicesRun(t, 20*time.Second, scriptBin, "-qec", fmt.Sprintf("%s --root %s exec -t %s /bin/true", runc, state, id), "/dev/null")
	t.Logf("runc exec -t into a container with a full /dev/pts printed: %q", strings.TrimSpace(out))
	m := lastLineWith(out, "exec failed", "/dev/ptmx")
	if m == "" {
		t.Errorf("runc exec -t did not report its failed /dev/ptmx: %q", out)
	}
	return m
}

func TestEpollWatches(t *testing.T) {
	limit := readInt(t, sysctlPath("fs.epoll.max_user_watches"))
	// Each watch costs about 200 bytes of kernel memory: a bound keeps a
	// huge machine from spending gigabytes on it.
	if limit > 20_000_000 {
		t.Fatalf("LAB CANNOT RUN: fs.epoll.max_user_watches is %d; filling it would take %d MB of kernel memory", limit, limit*200>>20)
	}
	side := int64(math.Ceil(math.Sqrt(float64(limit)))) + 1
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if need := uint64(2*side + 256); rl.Max < need {
		// The helper inherits the hard limit and raises its soft one to
		// it; root may raise this process's hard limit (restored).
		old := rl
		rl.Max = need
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatalf("LAB CANNOT RUN: %d fds needed, RLIMIT_NOFILE hard limit %d: %v", need, old.Max, err)
		}
		t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	uid := labkit.UID(22)
	bin := helperBinary(t)
	start := time.Now()
	h := startHelper(t, bin, "epoll-watches", uid,
		"ENOSPC_LAB_FILES="+strconv.FormatInt(side, 10), "ENOSPC_LAB_INSTANCES="+strconv.FormatInt(side, 10))
	t.Logf("uid %d pid %d: %d epoll watches over %d instances in %s, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Instances,
		time.Since(start).Round(time.Millisecond), h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.ENOSPC {
		t.Fatalf("epoll_ctl failed with %s, want ENOSPC: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	// The Go runtime's own netpoller holds a watch or two of the uid's.
	if int64(h.Report.Count) > limit || int64(h.Report.Count) < limit-8 {
		t.Errorf("the helper got %d watches before ENOSPC, want about max_user_watches = %d (is uid %d really unused?)", h.Report.Count, limit, uid)
	}
	msgs := []string{h.Report.Err}

	// What a real program says as that uid: a Go program dies setting its
	// netpoller up.
	cmd := exec.Command(bin)
	cmd.Env = []string{helperEnv + "=epoll-netpoll", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2"}
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
	goOut := stderr.String()
	var goLines []string
	for _, l := range strings.Split(goOut, "\n") {
		if strings.Contains(l, "epollctl") {
			goLines = append(goLines, strings.TrimSpace(l))
		}
	}
	t.Logf("a Go program as uid %d printed: %q", uid, strings.Join(goLines, "\n"))
	if len(goLines) == 0 {
		t.Errorf("a Go program as uid %d did not die in epoll_ctl: %.300q", uid, goOut)
	} else {
		msgs = append(msgs, strings.Join(goLines, "\n"))
	}

	// The census reads the fdinfo of every epoll instance: here millions
	// of watch lines (about 100 bytes each, formatted by the kernel), which
	// takes seconds, and more on a machine busy with other work: the
	// default --timeout of 30 s is not this test's subject.
	start = time.Now()
	rep, code := labkit.RunCheck(t, "--timeout", "120s")
	t.Logf("check took %s", time.Since(start).Round(time.Millisecond))
	u := labkit.Find(t, rep, "epoll", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != limit || u.Max != limit {
		t.Errorf("epoll uid %d: %s %d/%d, want critical %d/%d", uid, u.Severity, u.Used, u.Max, limit, limit)
	}
	if len(u.Consumers) == 0 || u.Consumers[0].PID != h.PID() || u.Consumers[0].Count != u.Used {
		t.Errorf("epoll uid %d: holders %+v, want the helper (pid %d) with all %d", uid, u.Consumers, h.PID(), u.Used)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
	for _, m := range msgs {
		devicesExplainFirst(t, m, "epoll")
	}
}

// fanotifyLimit reads a fanotify sysctl, which kernels before 5.13 lack.
func fanotifyLimit(t *testing.T, name string) int64 {
	t.Helper()
	if _, err := os.Stat(sysctlPath(name)); err != nil {
		t.Fatalf("LAB CANNOT RUN: %s: %v (kernel before 5.13: no per-user fanotify limits nor unprivileged fanotify)", name, err)
	}
	return readInt(t, sysctlPath(name))
}

func TestFanotifyGroups(t *testing.T) {
	maxGroups := fanotifyLimit(t, "fs.fanotify.max_user_groups")
	if maxGroups > 10000 {
		t.Fatalf("LAB CANNOT RUN: fs.fanotify.max_user_groups is %d, more fds than the lab takes", maxGroups)
	}
	uid := labkit.UID(23)
	bin := helperBinary(t)
	h := startHelper(t, bin, "fanotify-groups", uid, "ENOSPC_LAB_BOUND="+strconv.FormatInt(maxGroups+16, 10))
	t.Logf("uid %d pid %d: %d fanotify groups, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.EMFILE {
		t.Fatalf("fanotify_init failed with %s, want EMFILE: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if int64(h.Report.Count) != maxGroups {
		t.Errorf("the helper got %d groups before EMFILE, want max_user_groups = %d (is uid %d really unused?)", h.Report.Count, maxGroups, uid)
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "fanotify.groups", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != maxGroups || u.Max != maxGroups {
		t.Errorf("fanotify.groups uid %d: %s %d/%d, want critical %d/%d", uid, u.Severity, u.Used, u.Max, maxGroups, maxGroups)
	}
	if !hasConsumer(u, h.PID(), helperName) || u.Consumers[0].PID != h.PID() {
		t.Errorf("fanotify.groups uid %d: holders %+v, want the helper (pid %d) first", uid, u.Consumers, h.PID())
	}
	if m := labkit.Find(t, rep, "fanotify.marks", labkit.ScopeIs("uid "+strconv.Itoa(uid))); m.Used != 0 || m.Severity != limits.OK {
		t.Errorf("fanotify.marks uid %d: %s %d/%d, want ok 0", uid, m.Severity, m.Used, m.Max)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
	devicesExplainFirst(t, h.Report.Err, "fanotify.groups")
}

func TestFanotifyMarks(t *testing.T) {
	maxMarks := fanotifyLimit(t, "fs.fanotify.max_user_marks")
	maxGroups := fanotifyLimit(t, "fs.fanotify.max_user_groups")
	// Marks are per (group, inode): spread them over groups, each marking
	// every file, keeping the groups row below its warning threshold.
	ngroups := min(int64(100), maxGroups*3/4)
	if ngroups < 1 {
		t.Fatalf("LAB CANNOT RUN: fs.fanotify.max_user_groups is %d", maxGroups)
	}
	nfiles := maxMarks/ngroups + 16
	if nfiles > 200_000 {
		t.Fatalf("LAB CANNOT RUN: %d marks over %d groups needs %d files", maxMarks, ngroups, nfiles)
	}
	dir := labkit.MountTmpfs(t, "enospc-lab-fanotify", fmt.Sprintf("size=16m,nr_inodes=%d,mode=0755", nfiles+100))
	for j := int64(0); j < nfiles; j++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%05d", j)), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("create marked file %d: %v", j, err)
		}
		f.Close()
	}
	uid := labkit.UID(24)
	bin := helperBinary(t)
	h := startHelper(t, bin, "fanotify-marks", uid, "ENOSPC_LAB_DIR="+dir,
		"ENOSPC_LAB_FILES="+strconv.FormatInt(nfiles, 10), "ENOSPC_LAB_INSTANCES="+strconv.FormatInt(ngroups, 10))
	t.Logf("uid %d pid %d: %d fanotify marks over %d groups, then: %s (%s)", uid, h.PID(), h.Report.Count, h.Report.Instances, h.Report.Err, statusOf(syscall.Errno(h.Report.Errno)))
	if syscall.Errno(h.Report.Errno) != syscall.ENOSPC {
		t.Fatalf("fanotify_mark failed with %s, want ENOSPC: %s", statusOf(syscall.Errno(h.Report.Errno)), h.Report.Err)
	}
	if int64(h.Report.Count) != maxMarks {
		t.Errorf("the helper got %d marks before ENOSPC, want max_user_marks = %d (is uid %d really unused?)", h.Report.Count, maxMarks, uid)
	}

	rep, code := labkit.RunCheck(t)
	u := labkit.Find(t, rep, "fanotify.marks", labkit.ScopeIs("uid "+strconv.Itoa(uid)))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != maxMarks || u.Max != maxMarks {
		t.Errorf("fanotify.marks uid %d: %s %d/%d, want critical %d/%d", uid, u.Severity, u.Used, u.Max, maxMarks, maxMarks)
	}
	if len(u.Consumers) == 0 || u.Consumers[0].PID != h.PID() || u.Consumers[0].Count != maxMarks {
		t.Errorf("fanotify.marks uid %d: holders %+v, want the helper (pid %d) with %d", uid, u.Consumers, h.PID(), maxMarks)
	}
	if g := labkit.Find(t, rep, "fanotify.groups", labkit.ScopeIs("uid "+strconv.Itoa(uid))); g.Used != int64(h.Report.Instances) || g.Severity != limits.OK {
		t.Errorf("fanotify.groups uid %d: %s %d/%d, want ok %d", uid, g.Severity, g.Used, g.Max, h.Report.Instances)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
	devicesExplainFirst(t, h.Report.Err, "fanotify.marks")
}
