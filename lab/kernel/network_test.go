//go:build lab

package kernel

// Network limits in private network namespaces: the ephemeral ports of a
// namespace whose ip_local_port_range is 10 ports wide, used up by
// connections over its own loopback; and a bridge of a private namespace
// filled to the kernel's 1023 ports. Each helper runs as root of a user
// namespace of its own, mapped to a dedicated host uid, which owns its
// network (and mount) namespace: it can change that namespace's sysctls
// and links and nothing of the host's. Nothing leaves the namespaces'
// loopback, the host's sysctls are not touched (ip_local_port_range is per
// namespace: the test checks the host's is unchanged), and everything
// ends with the helper process, whose namespaces die with it.
//
// conntrack and the neighbour tables have no lab: nf_conntrack_max and
// gc_thresh3 are global, and so is the neighbour table itself.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// netHelperEnv selects a network helper mode when the test binary is
// re-executed in fresh namespaces.
const netHelperEnv = "ENOSPC_LAB_NET_HELPER"

const (
	// labPortRange is the helper namespace's ip_local_port_range: 10 ports.
	labPortLo, labPortHi = 40000, 40009
	// labListenPort is the helper's listener, outside the range.
	labListenPort = 39999
	// labBridge is the private namespace's bridge.
	labBridge = "enospclab0"
	// labBridgeTries bounds the ports the bridge helper tries to add.
	labBridgeTries = 1100
)

// netReport is what a network helper says about the limit it ran into.
type netReport struct {
	// Ports is how many connections it holds.
	Ports int `json:"ports"`
	// DialErr is Go's net.Dial error at the first refused connection;
	// BindErr that of a dial bound to port 0; NcErr what busybox nc
	// printed.
	DialErr   string `json:"dial_err"`
	DialErrno int    `json:"dial_errno"`
	BindErr   string `json:"bind_err"`
	BindErrno int    `json:"bind_errno"`
	NcErr     string `json:"nc_err"`
	// BridgeErr is what ip printed when the bridge refused a port;
	// BridgePorts the ports the bridge holds.
	BridgeErr   string `json:"bridge_err"`
	BridgePorts int    `json:"bridge_ports"`
	Fatal       string `json:"fatal,omitempty"`
}

// heldConns keeps the helper's connections reachable: a collected
// net.Conn is closed by its finalizer.
var heldConns []net.Conn

// init runs the network helper modes before TestMain, like the helpers of
// helpers_test.go.
func init() {
	mode := os.Getenv(netHelperEnv)
	if mode == "" {
		return
	}
	var rep netReport
	switch mode {
	case "ports":
		rep = netHelperPorts()
	case "bridge":
		rep = netHelperBridge()
	default:
		rep.Fatal = "unknown network helper mode " + mode
	}
	b, _ := json.Marshal(rep)
	os.Stdout.Write(append(b, '\n'))
	if rep.Fatal != "" {
		os.Exit(1)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
	}
	os.Exit(0)
}

// loopbackUp brings the namespace's lo up (SIOCSIFFLAGS |= IFF_UP).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

// netHelperPorts runs in a fresh network namespace: it narrows the
// namespace's ephemeral range to 10 ports, listens on its loopback and
// connects to itself until connect fails, then tries a dial bound to port
// 0 and busybox nc, and holds the connections.
func netHelperPorts() (rep netReport) {
	if err := loopbackUp(); err != nil {
		rep.Fatal = err.Error()
		return
	}
	rng := fmt.Sprintf("%d %d", labPortLo, labPortHi)
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte(rng), 0o644); err != nil {
		rep.Fatal = "set ip_local_port_range in the private namespace: " + err.Error()
		return
	}
	addr := fmt.Sprintf("127.0.0.1:%d", labListenPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		rep.Fatal = "listen: " + err.Error()
		return
	}
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// Bounded: 10 ports, so the 11th fails; 100 at most.
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			rep.DialErr, rep.DialErrno = err.Error(), int(errnoOf(err))
			break
		}
		heldConns = append(heldConns, c)
		rep.Ports++
	}
	if rep.DialErr == "" {
		rep.Fatal = fmt.Sprintf("%d connections made with a range of 10 ports", rep.Ports)
		return
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
	if c, err := d.Dial("tcp", addr); err != nil {
		rep.BindErr, rep.BindErrno = err.Error(), int(errnoOf(err))
	} else {
		heldConns = append(heldConns, c)
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, _ := exec.CommandContext(ctx, bb, "nc", "127.0.0.1", strconv.Itoa(labListenPort)).CombinedOutput()
		cancel()
		rep.NcErr = strings.TrimSpace(string(out))
	}
	// Keep the accepted ends too.
	for {
		select {
		case c := <-accepted:
			heldConns = append(heldConns, c)
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	return rep
}

// netHelperBridge runs in fresh network and mount namespaces: it mounts a
// sysfs of its namespace on ENOSPC_LAB_NET_SYSDIR, creates a bridge and
// adds ifb ports to it with ip -batch until one is refused.
func netHelperBridge() (rep netReport) {
	sysDir := os.Getenv("ENOSPC_LAB_NET_SYSDIR")
	if sysDir == "" {
		rep.Fatal = "no ENOSPC_LAB_NET_SYSDIR"
		return
	}
	// Nothing mounted here reaches the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		rep.Fatal = "make / private: " + err.Error()
		return
	}
	if err := unix.Mount("sysfs", sysDir, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		rep.Fatal = "mount a sysfs of the private namespace: " + err.Error()
		return
	}
	var batch strings.Builder
	fmt.Fprintf(&batch, "link add %s type bridge\n", labBridge)
	for i := 0; i < labBridgeTries; i++ {
		fmt.Fprintf(&batch, "link add enospcp%d type ifb\nlink set enospcp%d master %s\n", i, i, labBridge)
	}
	f, err := os.CreateTemp("", "enospc-lab-bridge-*.batch")
	if err != nil {
		rep.Fatal = err.Error()
		return
	}
	defer os.Remove(f.Name())
	f.WriteString(batch.String())
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ip", "-batch", f.Name()).CombinedOutput()
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "RTNETLINK") {
			rep.BridgeErr = strings.TrimSpace(sc.Text())
			break
		}
	}
	if rep.BridgeErr == "" {
		rep.BridgeErr = strings.TrimSpace(string(out))
	}
	ports, err := os.ReadDir(filepath.Join(sysDir, "class", "net", labBridge, "brif"))
	if err != nil {
		rep.Fatal = "read the bridge's ports: " + err.Error()
		return
	}
	rep.BridgePorts = len(ports)
	return rep
}

// startNetHelper runs a network helper mode in a new user namespace whose
// root is the dedicated host uid, and in the new namespaces of cloneflags
// that this user namespace owns, so that the helper may set its network
// namespace's sysctls and links and nothing of the host's. It waits
// (bounded) for the report and registers the helper's end: stdin closed,
// then killed, then reaped. Its namespaces, and everything in them, go
// with it.
func startNetHelper(t *testing.T, mode string, uid int, cloneflags uintptr, env ...string) (*exec.Cmd, netReport) {
	t.Helper()
	cmd := exec.Command(helperBinary(t))
	cmd.Env = append([]string{netHelperEnv + "=" + mode, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=2", "LC_ALL=C"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | cloneflags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		// Root of the new user namespace: uid and gid are the host's uid.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
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
		t.Fatalf("LAB CANNOT RUN %s: start a helper in new namespaces (%#x): %v", t.Name(), cloneflags, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		// The process group: the helper and anything it started.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		io.Copy(io.Discard, stdout)
	}()
	var rep netReport
	select {
	case s := <-line:
		if err := json.Unmarshal([]byte(s), &rep); err != nil {
			t.Fatalf("network helper %s (pid %d) did not report: %q: %v; stderr:\n%s", mode, cmd.Process.Pid, s, err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("network helper %s (pid %d) did not report in 90s; stderr:\n%s", mode, cmd.Process.Pid, stderr.String())
	}
	if rep.Fatal != "" {
		t.Fatalf("network helper %s failed: %s; stderr:\n%s", mode, rep.Fatal, stderr.String())
	}
	return cmd, rep
}

// netNSInode is the inode of a process's network namespace.
func netNSInode(t *testing.T, pid int) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
		t.Fatalf("stat the net ns of pid %d: %v", pid, err)
	}
	return st.Ino
}

// explainTop runs enospc explain -o json on msg and returns its causes.
func explainTop(t *testing.T, msg string, offline bool) []struct {
	Limit      string  `json:"limit"`
	Confidence float64 `json:"confidence"`
	Confirmed  bool    `json:"confirmed"`
} {
	t.Helper()
	args := []string{"explain", "-o", "json"}
	if offline {
		args = append(args, "--offline")
	}
	out, _ := exec.Command(labkit.Bin(), append(args, msg)...).Output()
	var ex struct {
		Causes []struct {
			Limit      string  `json:"limit"`
			Confidence float64 `json:"confidence"`
			Confirmed  bool    `json:"confirmed"`
		} `json:"causes"`
	}
	if err := json.Unmarshal(out, &ex); err != nil {
		t.Fatalf("explain %q: %v\n%s", msg, err, out)
	}
	return ex.Causes
}

func TestEphemeralPorts(t *testing.T) {
	const rangePath = "/proc/sys/net/ipv4/ip_local_port_range"
	hostBefore, err := os.ReadFile(rangePath)
	if err != nil {
		t.Fatalf("LAB CANNOT RUN %s: read the host's ip_local_port_range: %v", t.Name(), err)
	}
	cmd, rep := startNetHelper(t, "ports", labkit.UID(0), syscall.CLONE_NEWNET)
	pid := cmd.Process.Pid
	t.Logf("the helper (pid %d) made %d connections, then:\n  net.Dial: %q (%s)\n  bound dial: %q (%s)\n  busybox nc: %q",
		pid, rep.Ports, rep.DialErr, statusOf(syscall.Errno(rep.DialErrno)), rep.BindErr, statusOf(syscall.Errno(rep.BindErrno)), rep.NcErr)

	// The host's range is the host's: the helper changed its own
	// namespace's only.
	hostAfter, err := os.ReadFile(rangePath)
	if err != nil || string(hostAfter) != string(hostBefore) {
		t.Fatalf("the host's ip_local_port_range changed: %q, was %q (%v)", hostAfter, hostBefore, err)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid)); err == nil {
		t.Logf("the helper's /proc/%d/net/tcp has %d lines", pid, strings.Count(string(b), "\n"))
	}

	width := labPortHi - labPortLo + 1
	if rep.Ports != width {
		t.Errorf("%d connections before the refusal, want %d (the range)", rep.Ports, width)
	}
	if syscall.Errno(rep.DialErrno) != syscall.EADDRNOTAVAIL || !strings.Contains(rep.DialErr, "connect: cannot assign requested address") {
		t.Errorf("connect failed with %q (%s), want EADDRNOTAVAIL", rep.DialErr, statusOf(syscall.Errno(rep.DialErrno)))
	}
	if syscall.Errno(rep.BindErrno) != syscall.EADDRINUSE || !strings.Contains(rep.BindErr, "bind: address already in use") {
		t.Errorf("the bound dial failed with %q (%s), want EADDRINUSE", rep.BindErr, statusOf(syscall.Errno(rep.BindErrno)))
	}
	if !strings.Contains(rep.NcErr, "Cannot assign requested address") {
		t.Errorf("busybox nc printed %q, want EADDRNOTAVAIL", rep.NcErr)
	}

	ino := netNSInode(t, pid)
	if ino == netNSInode(t, os.Getpid()) {
		t.Fatalf("the helper is in the test's own network namespace %d", ino)
	}
	scope := fmt.Sprintf("net ns %d", ino)
	res, code := labkit.RunCheck(t)
	u := labkit.Find(t, res, "ports", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("ports %s is %s, want critical", scope, u.Severity)
	}
	if u.Used != int64(width) || u.Max != int64(width) {
		t.Errorf("ports %s: used %d max %d, want %d of %d", scope, u.Used, u.Max, width, width)
	}
	dest := fmt.Sprintf("to 127.0.0.1:%d", labListenPort)
	if len(u.Consumers) == 0 || u.Consumers[0].Name != dest || u.Consumers[0].Count != int64(width) {
		t.Errorf("ports %s: consumers %+v, want %q first with %d", scope, u.Consumers, dest, width)
	} else if u.Consumers[0].PID != pid || u.Consumers[0].Comm != helperName {
		t.Errorf("ports %s: the destination's holder is pid %d (%s), want the helper %d (%s)", scope, u.Consumers[0].PID, u.Consumers[0].Comm, pid, helperName)
	}
	if !strings.Contains(u.Reason, "127.0.0.1:39999") {
		t.Errorf("ports %s: reason %q does not name the destination", scope, u.Reason)
	}
	host := labkit.Find(t, res, "ports", func(s string) bool { return strings.HasSuffix(s, "(host)") })
	t.Logf("host: %s", describe(host))
	if host.Max == int64(width) {
		t.Errorf("the host's ports row has the helper's range: %s", describe(host))
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}

	for _, msg := range []string{rep.DialErr, rep.BindErr, rep.NcErr} {
		for _, offline := range []bool{true, false} {
			causes := explainTop(t, msg, offline)
			if len(causes) == 0 {
				t.Errorf("explain offline=%v %q: no cause", offline, msg)
				continue
			}
			t.Logf("explain offline=%v %q: %+v", offline, msg, causes[0])
			if causes[0].Limit != "ports" || (!offline && !causes[0].Confirmed) {
				t.Errorf("explain offline=%v %q: top cause %+v, want ports (confirmed on this host)", offline, msg, causes[0])
			}
		}
	}
}

func TestBridgePorts(t *testing.T) {
	labkit.RequireTool(t, "ip")
	// An empty directory of the host on which the helper, in its own
	// mount namespace, mounts the sysfs of its network namespace; check
	// reads it through /proc/PID/root.
	sysDir, err := os.MkdirTemp("", "enospc-lab-sys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sysDir) })
	cmd, rep := startNetHelper(t, "bridge", labkit.UID(1), syscall.CLONE_NEWNET|syscall.CLONE_NEWNS, "ENOSPC_LAB_NET_SYSDIR="+sysDir)
	pid := cmd.Process.Pid
	t.Logf("the helper (pid %d) enslaved %d ports to %s, then ip printed %q", pid, rep.BridgePorts, labBridge, rep.BridgeErr)
	if rep.BridgeErr != "RTNETLINK answers: Exchange full" {
		t.Errorf("ip printed %q, want EXFULL", rep.BridgeErr)
	}
	if rep.BridgePorts != 1023 {
		t.Errorf("the bridge holds %d ports at the refusal, want 1023", rep.BridgePorts)
	}
	if entries, _ := os.ReadDir(sysDir); len(entries) != 0 {
		t.Fatalf("the helper's sysfs mount reached the host's mount namespace at %s", sysDir)
	}

	sys := fmt.Sprintf("/proc/%d/root%s", pid, sysDir)
	res, _ := labkit.RunCheck(t, "--sys", sys, "--only", "bridge.ports")
	u := labkit.Find(t, res, "bridge.ports", labkit.ScopeIs("bridge "+labBridge))
	t.Logf("check --sys %s: %s", sys, describe(u))
	if u.Severity != limits.Critical || u.Used != int64(rep.BridgePorts) || u.Max != 1023 {
		t.Errorf("bridge.ports %s: %s %d/%d, want critical %d/1023", labBridge, u.Severity, u.Used, u.Max, rep.BridgePorts)
	}
	if u.ConsumersTotal != rep.BridgePorts || len(u.Consumers) == 0 || !strings.HasPrefix(u.Consumers[0].Name, "enospcp") {
		t.Errorf("bridge.ports %s: consumers %d of %d, %+v", labBridge, len(u.Consumers), u.ConsumersTotal, u.Consumers)
	}
	causes := explainTop(t, rep.BridgeErr, true)
	if len(causes) == 0 || causes[0].Limit != "bridge.ports" {
		t.Errorf("explain --offline %q: %+v, want bridge.ports first", rep.BridgeErr, causes)
	} else {
		t.Logf("explain --offline %q: %+v", rep.BridgeErr, causes[0])
	}
}
