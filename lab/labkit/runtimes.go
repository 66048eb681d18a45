//go:build lab

package labkit

// Runtimes for the lab: a private containerd (its own root, state,
// sockets, plugin dir, namespace, runc root and fifo dir under one temp
// directory, so that it neither sees nor touches a containerd the machine
// may run), a busybox root filesystem from the host's busybox-static, an
// OCI image layout tar of it for containerd's import, and bounded command
// runs. There is no image registry and no network on the lab machines:
// everything is built here.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerd is one private containerd daemon.
type Containerd struct {
	Dir      string // everything below here is private to the test
	Root     string
	State    string
	Sock     string
	FifoDir  string // the client fifo dir of RunDetached's containers
	RuncRoot string
	// NS is the test's containerd namespace (ContainerdOptions.Namespace):
	// Ctr and the helpers below work in it. Without one, Ctr names none
	// (ctr's default applies) and RunDetached refuses to run.
	NS  string
	ctr string
	ids []string // every container RunDetached started, for the cleanup
	daemon
}

// shimSocketDir is where containerd 1.6 puts the shims' sockets whatever
// its configured state: defaults.DefaultStateDir + "/s".
const shimSocketDir = "/run/containerd/s"

// TempDir makes a directory (mode 0755) removed, with what is mounted
// below it, when the test ends.
func TempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() {
		UnmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	return dir
}

// StartContainerd starts a containerd on private directories (the native
// snapshotter, no CRI), waits until it answers, and registers a cleanup
// that stops it, kills any shim of its socket, SIGKILLs what is left in
// the cgroups of the containerd namespaces in nss and removes them, and
// unmounts what is mounted below its directory.
func StartContainerd(t testing.TB, nss ...string) *Containerd {
	t.Helper()
	return StartContainerdWith(t, ContainerdOptions{}, nss...)
}

// ContainerdOptions shape a private containerd.
type ContainerdOptions struct {
	// Namespace is the test's containerd namespace (Containerd.NS); runc
	// puts its containers' cgroups below /<Namespace>. The cleanup first
	// deletes its tasks, containers and images and the namespace itself,
	// then treats its cgroups as those of nss, and removes the sockets
	// the killed shims of RunDetached's containers left on the host.
	Namespace string
	// CRI enables containerd's CRI plugin on the same socket, with this
	// sandbox (pause) image, the native snapshotter, the private runc
	// root, and CNI directories of its own (pods use the node's network).
	CRI          bool
	SandboxImage string
	// LogLevel is containerd's --log-level: warn when empty.
	LogLevel string
}

// StartContainerdWith is StartContainerd shaped by opts.
func StartContainerdWith(t testing.TB, opts ContainerdOptions, nss ...string) *Containerd {
	t.Helper()
	bin := RequireTool(t, "containerd")
	ctr := RequireTool(t, "ctr")
	RequireTool(t, "containerd-shim-runc-v2")
	RequireTool(t, "runc")
	if out, err := Run(10*time.Second, bin, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(out))
	}
	if opts.Namespace != "" {
		nss = append([]string{opts.Namespace}, nss...)
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	// containerd 1.6 makes these on the host whatever its config says;
	// removed at the end when this test made them and they are empty.
	var hostDirs []string
	for _, d := range []string{filepath.Dir(shimSocketDir), shimSocketDir} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			hostDirs = append(hostDirs, d)
		}
	}
	dir := TempDir(t, "enospc-lab-ctd-")
	c := &Containerd{
		Dir: dir, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Sock: filepath.Join(dir, "ctd.sock"), FifoDir: filepath.Join(dir, "fifo"), RuncRoot: filepath.Join(dir, "runc"),
		NS: opts.Namespace, ctr: ctr,
	}
	disabled, cri := `"io.containerd.grpc.v1.cri", `, ""
	if opts.CRI {
		disabled = ""
		cri = fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  enable_selinux = false
  # Without CAP_SYS_RESOURCE the pause container's oom_score_adj of -998
  # is refused: keep to ours.
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
disabled_plugins = [`+disabled+`"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
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
	conf := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c.daemon = startDaemon(t, "containerd", filepath.Join(dir, "containerd.log"), nil, bin, "--config", conf, "--log-level", opts.LogLevel)
	t.Cleanup(func() {
		c.cleanup(t, nss)
		removeHostDirs(t, hostDirs)
	})
	for end := time.Now().Add(30 * time.Second); ; {
		select {
		case <-c.done:
			t.Fatalf("containerd exited at start: %s\n%s", c.cmd.ProcessState, c.Log())
		default:
		}
		if _, err := os.Stat(c.Sock); err == nil {
			if _, err := c.Ctr(10*time.Second, "version"); err == nil {
				return c
			}
		}
		if time.Now().After(end) {
			t.Fatalf("containerd did not answer on %s within 30s\n%s", c.Sock, c.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeHostDirs removes the host directories a daemon made outside its
// private one, deepest last in dirs, when they are empty: something else
// may have started using them.
func removeHostDirs(t testing.TB, dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			t.Logf("cleanup: left %s: %v", dirs[i], err)
		}
	}
}

// PID is the daemon's pid.
func (c *Containerd) PID() int { return c.cmd.Process.Pid }

// cleanup deletes NS's tasks, containers and images, stops containerd,
// kills any shim it left, the processes left in the cgroups of nss and
// what is mounted below the private directory, removes those cgroups and
// the dead shim sockets of RunDetached's containers. Bounded: about two
// minutes at worst.
func (c *Containerd) cleanup(t testing.TB, nss []string) {
	if c.NS != "" && !c.exited() {
		c.deleteNS(t, time.Now().Add(90*time.Second))
	}
	c.stop(t, 15*time.Second)
	// Shims outlive containerd. Ours are those started with our socket
	// as their -address; kill them, and their containers with them.
	for _, pid := range PidsWithArg(c.Sock) {
		t.Logf("cleanup: killing leftover shim pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Containers whose shim was killed here, or that no runtime stopped.
	for _, ns := range nss {
		KillCgroups(t, ns)
	}
	UnmountUnder(t, c.Dir)
	for _, ns := range nss {
		RemoveCgroups(t, ns)
	}
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

// deleteNS deletes NS's tasks (SIGKILL first), containers and images,
// then the namespace, until deadline.
func (c *Containerd) deleteNS(t testing.TB, deadline time.Time) {
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
}

// daemon is a daemon the test started, in a process group of its own,
// its output in a log file.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when it has exited
	logPath string
}

// startDaemon starts the daemon name, bin with args and env (the test's
// when nil), its stdout and stderr to logPath.
func startDaemon(t testing.TB, name, logPath string, env []string, bin string, args ...string) daemon {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := daemon{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), logPath: logPath}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("LAB CANNOT RUN: start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.done) }()
	return p
}

func (p daemon) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop stops the daemon unless it has exited: SIGTERM, SIGKILL after
// grace, and an error when it is still there 10 s later.
func (p daemon) stop(t testing.TB, grace time.Duration) {
	if p.exited() {
		return
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		t.Logf("cleanup: %s pid %d ignores SIGTERM for %s; SIGKILL", p.name, p.cmd.Process.Pid, grace)
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("cleanup: %s pid %d does not die", p.name, p.cmd.Process.Pid)
		}
	}
}

// logTail is the end of the daemon's log.
func (p daemon) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Log is the end of the daemon's log.
func (c *Containerd) Log() string { return c.logTail() }

// Ctr runs ctr against this containerd, in NS.
func (c *Containerd) Ctr(timeout time.Duration, args ...string) (string, error) {
	return c.CtrIn(c.NS, timeout, args...)
}

// CtrIn runs ctr against this containerd in namespace ns (none named
// when "").
func (c *Containerd) CtrIn(ns string, timeout time.Duration, args ...string) (string, error) {
	return Run(timeout, c.ctr, c.ctrArgs(ns, args)...)
}

func (c *Containerd) ctrArgs(ns string, args []string) []string {
	a := []string{"-a", c.Sock}
	if ns != "" {
		a = append(a, "-n", ns)
	}
	return append(a, args...)
}

// RunDetached starts container id of image running args in NS (ctr run
// -d), with its fifos in FifoDir, on the native snapshotter and the
// private runc root.
func (c *Containerd) RunDetached(image, id string, args ...string) error {
	return c.RunDetachedWith(nil, image, id, args...)
}

// RunDetachedWith is RunDetached with more flags of ctr run (labels).
// ctr's stdio are files (RunDetached), so that the shim's inherited
// descriptors do not hold the call.
func (c *Containerd) RunDetachedWith(flags []string, image, id string, args ...string) error {
	if c.NS == "" {
		return fmt.Errorf("ctr run %s: the containerd has no namespace of the test's own (ContainerdOptions.Namespace), whose cgroups the cleanup reaps", id)
	}
	c.ids = append(c.ids, id)
	a := append([]string{"run", "-d", "--snapshotter", "native", "--fifo-dir", c.FifoDir, "--runc-root", c.RuncRoot}, flags...)
	a = append(append(a, image, id), args...)
	_, err := RunDetached(60*time.Second, c.Dir, c.ctr, c.ctrArgs(c.NS, a)...)
	return err
}

// ImportBusybox imports busybox-static as image (an OCI layout tar) into
// NS, on the native snapshotter. A root filesystem the test already made
// in Dir/rootfs (with tools of its own) is used as is.
func (c *Containerd) ImportBusybox(t testing.TB, image string) {
	t.Helper()
	rootfs := filepath.Join(c.Dir, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
		BusyboxRootfs(t, rootfs)
	}
	tarPath := filepath.Join(c.Dir, "busybox-oci.tar")
	OCIImageTar(t, rootfs, image, tarPath, []string{"sh"})
	if out, err := c.Ctr(2*time.Minute, "images", "import", "--snapshotter", "native", tarPath); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, c.Log())
	} else {
		t.Logf("ctr images import: %s", strings.TrimSpace(out))
	}
	if out, _ := c.Ctr(20*time.Second, "images", "ls", "-q"); !strings.Contains(out, image) {
		t.Fatalf("image %s not in the store after import: %q", image, out)
	}
}

// Tasks lists NS's tasks: id -> status.
func (c *Containerd) Tasks(t testing.TB) map[string]string {
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

// ShimPID returns the pid of the runc v2 shim of container id, 0 when none
// runs.
func (c *Containerd) ShimPID(id string) int {
	pids := pidsWhere(func(args []string) bool {
		if !slices.Contains(args, c.Sock) {
			return false
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-id" && args[i+1] == id {
				return true
			}
		}
		return false
	})
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

// BusyboxApplets are linked into BusyboxRootfs.
var BusyboxApplets = []string{"sh", "sleep", "cat", "ls", "true", "false", "echo", "id", "ps", "mkdir", "rm", "ln", "env", "grep", "inotifyd", "seq", "touch", "mktemp"}

// BusyboxRootfs fills dir with /bin/busybox from busybox-static, its
// applets as symlinks, and the directories runc mounts on.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	RequireTool(t, "busybox")
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	src, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: read /bin/busybox (apt-get install busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), src, 0o755); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	for _, a := range BusyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
	for name, body := range map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
}

// OCIImageTar writes to out an OCI image layout tar of one linux image
// whose single gzip layer is rootfs and whose command is cmd, named name
// (io.containerd.image.name) for containerd's import.
func OCIImageTar(t testing.TB, rootfs, name, out string, cmd []string) {
	t.Helper()
	var layer bytes.Buffer
	if err := TarTree(&layer, rootfs); err != nil {
		t.Fatalf("image layer: %v", err)
	}
	diffID := sha256.Sum256(layer.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatalf("image layer: %v", err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    map[string]string `json:"platform,omitempty"`
	}
	blobs := map[string][]byte{}
	put := func(mt string, b []byte) desc {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return desc{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": cmd, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": put("application/vnd.oci.image.config.v1+json", config),
		"layers": []desc{put("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes())},
	})
	md := put("application/vnd.oci.image.manifest.v1+json", manifest)
	md.Platform = map[string]string{"architecture": goruntime.GOARCH, "os": "linux"}
	md.Annotations = map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "lab"}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []desc{md}})

	f, err := os.Create(out)
	if err != nil {
		t.Fatalf("image tar: %v", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(1704067200, 0)}); err != nil {
			t.Fatalf("image tar: %v", err)
		}
		tw.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	ds := make([]string, 0, len(blobs))
	for d := range blobs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("image tar: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("image tar: %v", err)
	}
}

// TarTree writes the tree under root as a tar, owned by uid 0.
func TarTree(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = time.Unix(1704067200, 0)
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Run runs a command with a time bound and returns its combined output.
func Run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %s: %s", name, strings.Join(args, " "), timeout, out)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// RunDetached runs a command whose children may outlive it (runc run -d,
// ctr run -d) with a time bound: its stdio are files in logDir, not pipes,
// so that waiting for it does not wait for the container that inherited
// them. It returns what the command wrote to stdout and stderr.
func RunDetached(timeout time.Duration, logDir, name string, args ...string) (string, error) {
	log, err := os.CreateTemp(logDir, "out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return "", err
	}
	defer null.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, log, log
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	out, _ := os.ReadFile(log.Name())
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %s: %s", name, strings.Join(args, " "), timeout, out)
	}
	if runErr != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), runErr, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PidsWithArg lists the processes one of whose arguments is arg exactly.
func PidsWithArg(arg string) []int {
	return pidsWhere(func(args []string) bool { return slices.Contains(args, arg) })
}

// pidsMentioning lists the processes one of whose arguments contains s.
func pidsMentioning(s string) []int {
	return pidsWhere(func(args []string) bool {
		return slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, s) })
	})
}

// pidsWhere lists the processes, other than this one, whose command line
// matches.
func pidsWhere(match func(args []string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if match(strings.Split(string(b), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// UnmountUnder detaches every mount below dir, deepest first.
func UnmountUnder(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			t.Errorf("cleanup: umount %s: %v", mp, err)
		}
	}
}

func cgroupRoots() []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	return append(roots, "/sys/fs/cgroup")
}

// KillCgroups SIGKILLs every process left in the cgroup directory rel of
// any hierarchy, and waits (15 s at most) until they are gone.
func KillCgroups(t testing.TB, rel string) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); ; {
		var pids []int
		for _, root := range cgroupRoots() {
			filepath.WalkDir(filepath.Join(root, rel), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						pids = append(pids, pid)
					}
				}
				return nil
			})
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Errorf("cleanup: processes %v stay in cgroup %s", pids, rel)
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RemoveCgroups removes the cgroup directory rel and what is below it
// from every hierarchy, deepest first.
func RemoveCgroups(t testing.TB, rel string) {
	t.Helper()
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, rel)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Errorf("cleanup: rmdir cgroup %s: %v", d, err)
			}
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
