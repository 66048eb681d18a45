//go:build lab

package runtime

// A private containerd for the lab: its own root, state, sockets, plugin
// dir, namespace, runc root and fifo dir under one temp directory, so that
// it neither sees nor touches a containerd the machine may run.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

// containerd is one private containerd daemon and the ctr client flags to
// reach it.
type containerd struct {
	Dir      string // everything below here is private to the test
	Root     string
	State    string
	Sock     string
	FifoDir  string // the client fifo dir of this test's `ctr run`s
	RuncRoot string
	NS       string // containerd namespace of this test
	ctr      string
	cmd      *exec.Cmd
	done     chan struct{}
	ids      []string // every container id run, for the cleanup
}

// shimSocketDir is where containerd 1.6 puts the shims' sockets whatever
// its configured state: defaults.DefaultStateDir + "/s".
const shimSocketDir = "/run/containerd/s"

// startContainerd starts a containerd on private directories, waits for its
// socket, and registers a cleanup that deletes the test's containers, stops
// containerd and its shims, unmounts their rootfs and removes what they
// left outside the private directory.
func startContainerd(t testing.TB) *containerd {
	t.Helper()
	return startContainerdWith(t, containerdOptions{})
}

// containerdOptions shape a private containerd.
type containerdOptions struct {
	// CRI enables containerd's CRI plugin on the same socket, with this
	// sandbox (pause) image, the native snapshotter, the private runc
	// root, and CNI directories of its own (pods use the host network).
	CRI          bool
	SandboxImage string
}

func startContainerdWith(t testing.TB, opts containerdOptions) *containerd {
	t.Helper()
	bin := labkit.RequireTool(t, "containerd")
	ctrBin := labkit.RequireTool(t, "ctr")
	labkit.RequireTool(t, "containerd-shim-runc-v2")
	labkit.RequireTool(t, "runc")
	if out, err := labkit.Run(10*time.Second, bin, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(out))
	}

	// containerd 1.6 creates these on the host whatever its config says;
	// the cleanup removes those that did not exist before, when empty.
	var hostDirsCreated []string
	for _, d := range []string{"/run/containerd", shimSocketDir} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			hostDirsCreated = append(hostDirsCreated, d)
		}
	}

	dir := labkit.TempDir(t, "enospc-lab-ctd-")
	c := &containerd{
		Dir:      dir,
		Root:     filepath.Join(dir, "root"),
		State:    filepath.Join(dir, "state"),
		Sock:     filepath.Join(dir, "ctd.sock"),
		FifoDir:  filepath.Join(dir, "fifo"),
		RuncRoot: filepath.Join(dir, "runc"),
		NS:       fmt.Sprintf("enospc-lab-%d", os.Getpid()),
		ctr:      ctrBin,
		done:     make(chan struct{}),
	}
	disabled := `  "io.containerd.grpc.v1.cri",
`
	cri := ""
	if opts.CRI {
		disabled = ""
		cri = fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (this machine's root lacks it) the pause
  # container's oom_score_adj of -998 is refused: keep to ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, opts.SandboxImage, c.RuncRoot, filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "conf"))
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
`+disabled+`  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`+cri, c.Root, c.State, c.Sock, c.Sock+".ttrpc", filepath.Join(dir, "opt"))
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config", confPath, "--log-level", "info")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start containerd: %v", err)
	}
	go func() {
		c.cmd.Wait()
		logf.Close()
		close(c.done)
	}()

	t.Cleanup(func() {
		c.cleanup(t)
		for i := len(hostDirsCreated) - 1; i >= 0; i-- {
			// Only when empty: something else may have started using it.
			if err := os.Remove(hostDirsCreated[i]); err != nil && !os.IsNotExist(err) {
				t.Logf("cleanup: left %s: %v", hostDirsCreated[i], err)
			}
		}
	})

	// Wait for the socket and for the daemon to answer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.done:
			t.Fatalf("containerd exited at start: %s\n%s", c.cmd.ProcessState, c.log())
		default:
		}
		if _, err := os.Stat(c.Sock); err == nil {
			if _, err := c.Ctr(10*time.Second, "version"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 30s\n%s", c.Sock, c.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

func (c *containerd) log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Ctr runs ctr against this containerd in the test's namespace.
func (c *containerd) Ctr(timeout time.Duration, args ...string) (string, error) {
	return labkit.Run(timeout, c.ctr, append([]string{"-a", c.Sock, "-n", c.NS}, args...)...)
}

// CtrDetached runs a ctr command that leaves a task running (ctr run -d):
// its stdio are files, so that the shim's inherited descriptors do not hold
// the call.
func (c *containerd) CtrDetached(timeout time.Duration, args ...string) (string, error) {
	return runDetached(timeout, c.Dir, c.ctr, append([]string{"-a", c.Sock, "-n", c.NS}, args...)...)
}

// RunDetached starts a container of image running args with its fifos in
// c.FifoDir, on the native snapshotter and the private runc root.
func (c *containerd) RunDetached(image, id string, args ...string) error {
	c.ids = append(c.ids, id)
	a := []string{"run", "-d", "--snapshotter", "native", "--fifo-dir", c.FifoDir, "--runc-root", c.RuncRoot, image, id}
	_, err := c.CtrDetached(60*time.Second, append(a, args...)...)
	return err
}

// ImportBusybox imports busybox-static as image (an OCI layout tar) into
// the test's namespace, on the native snapshotter. A root filesystem the
// test already made in c.Dir/rootfs (with tools of its own) is used as is.
func (c *containerd) ImportBusybox(t testing.TB, image string) {
	t.Helper()
	rootfs := filepath.Join(c.Dir, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
		labkit.BusyboxRootfs(t, rootfs)
	}
	tarPath := filepath.Join(c.Dir, "busybox-oci.tar")
	labkit.OCIImageTar(t, rootfs, image, tarPath, []string{"sh"})
	if out, err := c.Ctr(2*time.Minute, "images", "import", "--snapshotter", "native", tarPath); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, c.log())
	} else {
		t.Logf("ctr images import: %s", strings.TrimSpace(out))
	}
	if out, _ := c.Ctr(20*time.Second, "images", "ls", "-q"); !strings.Contains(out, image) {
		t.Fatalf("image %s not in the store after import: %q", image, out)
	}
}

// Tasks lists the test namespace's tasks: id -> status.
func (c *containerd) Tasks(t testing.TB) map[string]string {
	t.Helper()
	out, err := c.Ctr(20*time.Second, "task", "ls")
	if err != nil {
		t.Fatalf("ctr task ls: %v", err)
	}
	tasks := map[string]string{}
	for i, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue
		}
		tasks[f[0]] = f[2]
	}
	return tasks
}

// Containers lists the test namespace's containers.
func (c *containerd) Containers(t testing.TB) []string {
	t.Helper()
	out, err := c.Ctr(20*time.Second, "container", "ls", "-q")
	if err != nil {
		t.Fatalf("ctr container ls: %v", err)
	}
	return strings.Fields(out)
}

// cleanup deletes the namespace's tasks, containers and images, stops
// containerd, kills any shim it left, unmounts what is mounted below the
// private directory and removes the namespace's cgroups. Bounded: about
// two minutes at worst.
func (c *containerd) cleanup(t testing.TB) {
	deadline := time.Now().Add(90 * time.Second)
	alive := func() bool {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	if alive() {
		if out, err := c.Ctr(20*time.Second, "task", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if time.Now().After(deadline) {
					break
				}
				c.Ctr(20*time.Second, "task", "kill", "-s", "SIGKILL", id)
				// Wait for the kill to land: delete refuses a running task.
				for i := 0; i < 50; i++ {
					if _, err := c.Ctr(20*time.Second, "task", "delete", id); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		if out, err := c.Ctr(20*time.Second, "container", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if time.Now().After(deadline) {
					break
				}
				if _, err := c.Ctr(20*time.Second, "container", "delete", id); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
		}
		if out, err := c.Ctr(20*time.Second, "images", "ls", "-q"); err == nil {
			for _, ref := range strings.Fields(out) {
				c.Ctr(20*time.Second, "images", "rm", ref)
			}
		}
		c.Ctr(20*time.Second, "namespaces", "rm", c.NS)
		// Stop the daemon: SIGTERM, then SIGKILL.
		syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				t.Errorf("cleanup: containerd pid %d does not die", c.cmd.Process.Pid)
			}
		}
	}
	// Shims outlive containerd. Ours are those started with our socket
	// as their -address; kill them, and their containers with them.
	for _, pid := range labkit.PidsWithArg(c.Sock) {
		t.Logf("cleanup: killing leftover shim pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Containers whose shim was killed here, or that no runtime stopped.
	labkit.KillCgroups(t, c.NS)
	labkit.UnmountUnder(t, c.Dir)
	labkit.RemoveCgroups(t, c.NS)
	// A shim that was killed leaves its socket in the host's shim socket
	// dir. Its name is containerd 1.6's shim.SocketAddress:
	// sha256(<grpc address>/<namespace>/<id>).
	for _, id := range c.ids {
		sum := sha256.Sum256([]byte(filepath.Join(c.Sock, c.NS, id)))
		p := filepath.Join(shimSocketDir, hex.EncodeToString(sum[:]))
		if err := os.Remove(p); err == nil {
			t.Logf("cleanup: removed the dead shim socket of %s: %s", id, p)
		}
	}
}

// ShimPID returns the pid of the runc v2 shim of container id, 0 when none
// runs.
func (c *containerd) ShimPID(id string) int {
	for _, pid := range labkit.PidsWithArg(c.Sock) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id {
				return pid
			}
		}
	}
	return 0
}
