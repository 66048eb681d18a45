//go:build lab

package labkit

// A private dockerd, on the lines of lab/runtime's (dockerd_test.go, which
// lists the traps of Debian's docker.io it avoids: the system containerd,
// net.ipv4.ip_forward, /etc/docker/key.json, group docker): its own data
// root, exec root, pid file, socket, config, cgroup parent and containerd.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dockerd is one private dockerd.
type Dockerd struct {
	Dir          string
	Sock         string // the Engine API's unix socket
	Root, Exec   string // --data-root, --exec-root
	CgroupParent string
	Containerd   *Containerd
	clientEnv    []string
	cmd          *exec.Cmd
	done         chan struct{}
}

const (
	dockerdBin   = "/usr/sbin/dockerd"
	dockerClient = "/usr/bin/docker"
	ipForward    = "/proc/sys/net/ipv4/ip_forward"
)

// StartDockerd starts a dockerd on private directories and a private
// containerd, waits until it answers, and registers a cleanup that stops
// it, removes its containers' cgroups, and checks that ip_forward is as it
// was.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	for _, p := range []string{dockerdBin, dockerClient} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LAB CANNOT RUN %s: %s is not installed (apt-get install docker.io): %v", t.Name(), p, err)
		}
	}
	dir := TempDir(t, "enospc-lab-dockerd-")
	d := &Dockerd{Dir: dir, Sock: filepath.Join(dir, "docker.sock"), Root: filepath.Join(dir, "root"),
		Exec: filepath.Join(dir, "exec"), CgroupParent: fmt.Sprintf("/enospc-lab-dockerd-%d", os.Getpid()), done: make(chan struct{})}
	d.Containerd = StartContainerd(t, "moby")
	clientConfig := filepath.Join(dir, "client")
	if err := os.Mkdir(clientConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			d.clientEnv = append(d.clientEnv, kv)
		}
	}
	d.clientEnv = append(d.clientEnv, "DOCKER_CONFIG="+clientConfig)
	// dockerd makes the plugins' exec root whatever its flags.
	var hostDirs []string
	for _, p := range []string{"/run/docker", "/run/docker/plugins"} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			hostDirs = append(hostDirs, p)
		}
	}
	config, _ := json.Marshal(map[string]string{"deprecated-key-path": filepath.Join(dir, "key.json")})
	configPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		t.Fatal(err)
	}
	forward, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dockerdBin, "--config-file", configPath, "--data-root", d.Root, "--exec-root", d.Exec,
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+d.Sock, "-G", "root",
		"--containerd", d.Containerd.Sock,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
		"--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", d.CgroupParent, "--log-level", "warn")
	d.cmd.Env = d.clientEnv
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("LAB CANNOT RUN: start dockerd: %v", err)
	}
	go func() { d.cmd.Wait(); logf.Close(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
				<-d.done
			}
		}
		KillCgroups(t, d.CgroupParent)
		UnmountUnder(t, dir)
		RemoveCgroups(t, d.CgroupParent)
		for i := len(hostDirs) - 1; i >= 0; i-- {
			os.Remove(hostDirs[i])
		}
		if now, _ := os.ReadFile(ipForward); string(now) != string(forward) {
			t.Errorf("net.ipv4.ip_forward changed from %q to %q", forward, now)
		}
	})
	for begin := time.Now(); ; {
		select {
		case <-d.done:
			t.Fatalf("LAB CANNOT RUN: dockerd exited at start: %s\n%s", d.cmd.ProcessState, d.Log())
		default:
		}
		if _, err := d.Docker(10*time.Second, "version"); err == nil {
			return d
		}
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("LAB CANNOT RUN: dockerd did not answer on %s within 60s\n%s", d.Sock, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log is the end of dockerd's log.
func (d *Dockerd) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Docker runs Debian's docker client against this dockerd.
func (d *Dockerd) Docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerClient, append([]string{"-H", "unix://" + d.Sock}, args...)...)
	cmd.Env = d.clientEnv
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ImportBusybox makes image ref from a busybox-static root filesystem
// (`docker import` of its tar: there is no registry to pull from).
func (d *Dockerd) ImportBusybox(t testing.TB, ref string) {
	t.Helper()
	rootfs := filepath.Join(d.Dir, "rootfs")
	BusyboxRootfs(t, rootfs)
	tarPath := filepath.Join(d.Dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarTree(f, rootfs); err != nil {
		f.Close()
		t.Fatalf("busybox tar: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Docker(2*time.Minute, "import", "--change", "ENV PATH=/bin", tarPath, ref); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
}
