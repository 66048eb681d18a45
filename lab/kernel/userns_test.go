//go:build lab

package kernel

// user.max_user_namespaces and user.max_net_namespaces, per user and per
// user namespace. The initial namespace's values are never touched: a
// dedicated uid makes a user namespace of its own (L1, owned by that uid,
// its root mapped to it), and as L1's root lowers L1's own
// /proc/sys/user/max_user_namespaces and max_net_namespaces (writable by a
// namespace's root, read by whoever is inside it). It then creates user
// and network namespaces, each held by a sleep, until the kernel refuses
// with ENOSPC at L1's level, and captures what real programs print:
// unshare -U, unshare -n, ip netns add, and Go's exec with clone flags
// (rootlesskit's "fork/exec /proc/self/exe"). check must see L1's level
// full from outside, through nsenter.

import (
	"bufio"
	"context"
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

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// The helper modes, registered before any init function runs (the
// harness's init dispatches a re-executed helper).
var _ = func() bool {
	helperModes["userns-outer"] = helperUsernsOuter
	helperModes["userns-inner"] = helperUsernsInner
	return true
}()

// usernsReport is what the inner helper found, carried in helperReport.Err
// as JSON.
type usernsReport struct {
	UserNS     uint64 `json:"userns"` // inode of L1
	PID        int    `json:"pid"`    // the inner helper, in L1
	MaxUser    int    `json:"max_user"`
	MaxNet     int    `json:"max_net"`
	UserPIDs   []int  `json:"user_pids"` // sleeps, each in a user namespace of its own
	NetPIDs    []int  `json:"net_pids"`  // sleeps, each in a network namespace of its own
	Unshare    string `json:"unshare"`   // unshare -U's stderr at the limit
	UnshareNet string `json:"unshare_net"`
	IPNetns    string `json:"ip_netns"`
	GoExec     string `json:"go_exec"` // exec.Cmd with CLONE_NEWUSER at the limit
	GoErrno    int    `json:"go_errno"`
	Runc       string `json:"runc"` // runc run of a rootless bundle at the limit
}

// helperUsernsOuter runs as the dedicated uid in the initial user
// namespace: it makes L1 by starting the inner helper in a new user
// namespace that maps its root to this uid, and relays the inner report.
// The inner helper shares its stdin, so both end when the test closes it.
func helperUsernsOuter() helperReport {
	self, err := os.Executable()
	if err != nil {
		return helperReport{Fatal: err.Error()}
	}
	uid, gid := os.Getuid(), os.Getgid()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=userns-inner")
	cmd.Dir = "/"
	cmd.Stdin = os.Stdin
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return helperReport{Fatal: err.Error()}
	}
	if err := cmd.Start(); err != nil {
		return helperReport{Fatal: fmt.Sprintf("LAB CANNOT RUN: uid %d cannot create a user namespace: %v", uid, err)}
	}
	line, readErr := bufio.NewReader(out).ReadString('\n')
	go io.Copy(io.Discard, out)
	var rep helperReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		if readErr != nil {
			err = fmt.Errorf("%w (reading: %v)", err, readErr)
		}
		return helperReport{Fatal: fmt.Sprintf("inner helper did not report: %q: %v", line, err)}
	}
	return rep
}

// helperUsernsInner runs as root of L1 (the dedicated uid outside).
func helperUsernsInner() helperReport {
	maxUser := helperEnvInt("ENOSPC_LAB_MAX_USERNS", 3)
	maxNet := helperEnvInt("ENOSPC_LAB_MAX_NETNS", 4)
	r := usernsReport{PID: os.Getpid(), MaxUser: maxUser, MaxNet: maxNet}
	fatal := func(format string, a ...any) helperReport {
		return helperReport{Fatal: fmt.Sprintf(format, a...)}
	}
	link, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return fatal("read my user namespace: %v", err)
	}
	fmt.Sscanf(link, "user:[%d]", &r.UserNS)
	// L1's own limits: writable by its root, invisible from outside.
	for name, v := range map[string]int{"max_user_namespaces": maxUser, "max_net_namespaces": maxNet} {
		p := "/proc/sys/user/" + name
		if err := os.WriteFile(p, []byte(strconv.Itoa(v)), 0o644); err != nil {
			return fatal("LAB CANNOT RUN: the root of a user namespace cannot lower its own %s: %v", p, err)
		}
		if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) != strconv.Itoa(v) {
			return fatal("%s reads %q after writing %d", p, b, v)
		}
	}
	hold := func(flags uintptr) (int, error) {
		c := exec.Command("sleep", "600")
		c.Dir = "/"
		c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			return 0, err
		}
		go c.Wait()
		return c.Process.Pid, nil
	}
	// Up to the limit, and one more that must fail (bounded).
	for i := 0; i < maxUser; i++ {
		pid, err := hold(syscall.CLONE_NEWUSER)
		if err != nil {
			return fatal("user namespace %d of %d: %v", i+1, maxUser, err)
		}
		r.UserPIDs = append(r.UserPIDs, pid)
	}
	for i := 0; i < maxNet; i++ {
		pid, err := hold(syscall.CLONE_NEWNET)
		if err != nil {
			return fatal("network namespace %d of %d: %v", i+1, maxNet, err)
		}
		r.NetPIDs = append(r.NetPIDs, pid)
	}
	// What real programs print at the limit.
	run := func(name string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, name, args...)
		c.Dir = "/"
		c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		out, err := c.CombinedOutput()
		s := strings.TrimSpace(string(out))
		if err == nil {
			s = "SUCCEEDED: " + s
		}
		return s
	}
	r.Unshare = run("unshare", "-U", "true")
	r.UnshareNet = run("unshare", "-n", "true")
	r.IPNetns = run("unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /run && ip netns add enospc-lab")
	if bundle := os.Getenv("ENOSPC_LAB_RUNC_BUNDLE"); bundle != "" {
		r.Runc = run(os.Getenv("ENOSPC_LAB_RUNC"), "--root", bundle+"/state", "run", "--bundle", bundle, "enospc-lab-userns")
	}
	c := exec.Command("/proc/self/exe")
	c.Env = []string{helperEnv + "=never-runs"}
	c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		r.GoExec, r.GoErrno = err.Error(), int(errnoOf(err))
	} else {
		c.Process.Kill()
		c.Wait()
		r.GoExec = "SUCCEEDED"
	}
	b, _ := json.Marshal(r)
	return helperReport{Count: len(r.UserPIDs), Instances: len(r.NetPIDs), Err: string(b), Errno: r.GoErrno}
}

func TestUserNamespaces(t *testing.T) {
	initUser := readInt(t, sysctlPath("user.max_user_namespaces"))
	initNet := readInt(t, sysctlPath("user.max_net_namespaces"))
	if initUser < 16 || initNet < 16 {
		t.Fatalf("LAB CANNOT RUN: the initial namespace allows %d user and %d net namespaces per user; the lab never raises them", initUser, initNet)
	}
	t.Cleanup(func() {
		if v := readInt(t, sysctlPath("user.max_user_namespaces")); v != initUser {
			t.Errorf("the initial user.max_user_namespaces changed: %d, was %d", v, initUser)
		}
		if v := readInt(t, sysctlPath("user.max_net_namespaces")); v != initNet {
			t.Errorf("the initial user.max_net_namespaces changed: %d, was %d", v, initNet)
		}
	})
	const maxUser, maxNet = 3, 4
	uid := labkit.UID(11)
	bin := helperBinary(t)
	runc := labkit.RequireTool(t, "runc")
	bundle := runcBundle(t, runc, labkit.RequireTool(t, "busybox"), uid)
	t.Cleanup(func() { killUID(t, uid) })
	h := startHelper(t, bin, "userns-outer", uid, "ENOSPC_LAB_MAX_USERNS="+strconv.Itoa(maxUser), "ENOSPC_LAB_MAX_NETNS="+strconv.Itoa(maxNet),
		"ENOSPC_LAB_RUNC="+runc, "ENOSPC_LAB_RUNC_BUNDLE="+bundle)
	var r usernsReport
	if err := json.Unmarshal([]byte(h.Report.Err), &r); err != nil {
		t.Fatalf("helper report %q: %v", h.Report.Err, err)
	}
	t.Logf("uid %d made user ns %d (inner helper pid %d), lowered its max_user_namespaces to %d and max_net_namespaces to %d, and holds %d user namespaces (pids %v) and %d net namespaces (pids %v)",
		uid, r.UserNS, r.PID, r.MaxUser, r.MaxNet, len(r.UserPIDs), r.UserPIDs, len(r.NetPIDs), r.NetPIDs)
	t.Logf("unshare -U printed: %q", r.Unshare)
	t.Logf("unshare -n printed: %q", r.UnshareNet)
	t.Logf("ip netns add printed: %q", r.IPNetns)
	t.Logf("Go exec with CLONE_NEWUSER: %q (%s)", r.GoExec, statusOf(syscall.Errno(r.GoErrno)))
	t.Logf("runc run of a rootless bundle printed:\n%s", r.Runc)

	if want := "unshare: unshare failed: No space left on device"; r.Unshare != want {
		t.Errorf("unshare -U at the limit printed %q, want %q", r.Unshare, want)
	}
	if want := "unshare: unshare failed: No space left on device"; r.UnshareNet != want {
		t.Errorf("unshare -n at the limit printed %q, want %q", r.UnshareNet, want)
	}
	ipMsg := `Failed to create a new network namespace "enospc-lab": No space left on device`
	if !strings.Contains(r.IPNetns, ipMsg) {
		t.Errorf("ip netns add at the limit printed %q, want %q", r.IPNetns, ipMsg)
	}
	if syscall.Errno(r.GoErrno) != syscall.ENOSPC || r.GoExec != "fork/exec /proc/self/exe: no space left on device" {
		t.Errorf("Go's exec with CLONE_NEWUSER at the limit: %q (%s), want ENOSPC", r.GoExec, statusOf(syscall.Errno(r.GoErrno)))
	}
	var runcMsg string
	for _, line := range strings.Split(r.Runc, "\n") {
		if strings.Contains(line, "failed to unshare user namespace: No space left on device") {
			runcMsg = line
		}
	}
	if runcMsg == "" {
		t.Errorf("runc run at the limit did not report ENOSPC from unsharing the user namespace:\n%s", r.Runc)
	}

	rep, code := labkit.RunCheck(t)
	level := fmt.Sprintf("uid %d in user ns %d", uid, r.UserNS)
	u := labkit.Find(t, rep, "userns", labkit.ScopeIs(level))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical || u.Used != maxUser || u.Max != maxUser {
		t.Errorf("userns %s: %s %d/%d, want critical %d/%d", level, u.Severity, u.Used, u.Max, maxUser, maxUser)
	}
	for _, pid := range r.UserPIDs {
		if !hasConsumer(u, pid, "sleep") {
			t.Errorf("userns %s does not list the sleep (pid %d) that holds a user namespace: %+v", level, pid, u.Consumers)
		}
	}
	if !strings.Contains(u.Reason, strconv.Itoa(r.PID)) || len(u.Remedy) == 0 || !strings.Contains(strings.Join(u.Remedy, "\n"), fmt.Sprintf("nsenter --user=/proc/%d/ns/user", r.PID)) {
		t.Errorf("userns %s: the reason or remedy does not name a process in the namespace (pid %d): %q %q", level, r.PID, u.Reason, u.Remedy)
	}
	n := labkit.Find(t, rep, "namespaces", labkit.ScopeIs("net ns of "+level))
	t.Logf("check: %s", describe(n))
	if n.Severity != limits.Critical || n.Used != maxNet || n.Max != maxNet {
		t.Errorf("namespaces net ns of %s: %s %d/%d, want critical %d/%d", level, n.Severity, n.Used, n.Max, maxNet, maxNet)
	}
	for _, pid := range r.NetPIDs {
		if !hasConsumer(n, pid, "sleep") {
			t.Errorf("net ns of %s does not list the sleep (pid %d) that holds a network namespace: %+v", level, pid, n.Consumers)
		}
	}
	// The initial namespace's level charges the same namespaces, and L1
	// itself, to L1's owner: far from its limit.
	top := fmt.Sprintf("uid %d (initial user ns)", uid)
	iu := labkit.Find(t, rep, "userns", labkit.ScopeIs(top))
	if iu.Severity != limits.OK || iu.Used != maxUser+1 || iu.Max != initUser {
		t.Errorf("userns %s: %s %d/%d, want ok %d/%d (L1 and its %d children)", top, iu.Severity, iu.Used, iu.Max, maxUser+1, initUser, maxUser)
	}
	if !hasConsumer(iu, r.PID, helperName) {
		t.Errorf("userns %s does not list the inner helper (pid %d), the process in L1: %+v", top, r.PID, iu.Consumers)
	}
	in := labkit.Find(t, rep, "namespaces", labkit.ScopeIs("net ns of "+top))
	if in.Severity != limits.OK || in.Used != maxNet || in.Max != initNet {
		t.Errorf("namespaces net ns of %s: %s %d/%d, want ok %d/%d", top, in.Severity, in.Used, in.Max, maxNet, initNet)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}

	// explain on the captured texts: offline from the words alone, and on
	// this host, where the child level confirms it.
	for _, c := range []struct{ msg, want string }{
		{r.Unshare, "userns"},
		{r.GoExec, "userns"},
		{runcMsg, "userns"},
		{ipMsg, "namespaces"},
	} {
		for _, offline := range []bool{true, false} {
			args := []string{"explain", "-o", "json"}
			if offline {
				args = append(args, "--offline")
			}
			out, _ := exec.Command(labkit.Bin(), append(args, c.msg)...).Output()
			var ex struct {
				Causes []struct {
					Limit      string  `json:"limit"`
					Confidence float64 `json:"confidence"`
					Confirmed  bool    `json:"confirmed"`
				} `json:"causes"`
			}
			if err := json.Unmarshal(out, &ex); err != nil || len(ex.Causes) == 0 {
				t.Errorf("explain %v %q: %v\n%s", args[1:], c.msg, err, out)
				continue
			}
			t.Logf("explain offline=%v %q: %+v", offline, c.msg, ex.Causes[0])
			if ex.Causes[0].Limit != c.want || (!offline && !ex.Causes[0].Confirmed) {
				t.Errorf("explain offline=%v %q: top cause %+v, want %s (confirmed on this host)\n%s", offline, c.msg, ex.Causes[0], c.want, out)
			}
		}
	}
}

// runcBundle makes a rootless OCI bundle (runc spec --rootless) of
// busybox true, owned by uid, with room for runc's state; removed at the end.
func runcBundle(t *testing.T, runc, busybox string, uid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "enospc-lab-userns-bundle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command(runc, "spec", "--rootless", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	b, err := os.ReadFile(dir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	p := spec["process"].(map[string]any)
	p["args"], p["terminal"] = []string{"/bin/busybox", "true"}, false
	if b, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/config.json", string(b))
	if err := os.MkdirAll(dir+"/rootfs/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/rootfs/bin/busybox", bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, dir + "/config.json", dir + "/rootfs", dir + "/rootfs/bin", dir + "/rootfs/bin/busybox"} {
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// killUID kills, by pid, every process left running as uid (the helpers
// and their sleeps: the uid is this test's alone), bounded in time.
func killUID(t *testing.T, uid int) {
	t.Helper()
	ok := labkit.WaitFor(10*time.Second, func() bool {
		left := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var st syscall.Stat_t
			if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != uid {
				continue
			}
			left++
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return left == 0
	})
	if !ok {
		t.Errorf("CLEANUP FAILED: processes of uid %d are still running", uid)
	}
}
