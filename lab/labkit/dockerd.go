//go:build lab

package labkit

// A private dockerd, on the lines of lab/runtime's (dockerd_test.go, which
// lists the traps of Debian's docker.io it avoids: the system containerd,
// net.ipv4.ip_forward, /etc/docker/key.json, group docker): its own data
// root, exec root, pid file, socket, config, cgroup parent and containerd.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
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
	// RemapUID is the host uid of container root under UsernsRemap.
	RemapUID  int
	remapUser string
	clientEnv []string
	cmd       *exec.Cmd
	done      chan struct{}
}

const (
	dockerdBin   = "/usr/sbin/dockerd"
	dockerClient = "/usr/bin/docker"
	ipForward    = "/proc/sys/net/ipv4/ip_forward"
)

// DockerdOptions shape a private dockerd.
type DockerdOptions struct {
	// UsernsRemap maps container root to a dedicated host uid range
	// (--userns-remap of a system user made for the test).
	UsernsRemap bool
}

// StartDockerd starts a dockerd on private directories and a private
// containerd, waits until it answers, and registers a cleanup that stops
// it, removes its containers' cgroups, and checks that ip_forward is as it
// was.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	return StartDockerdWith(t, DockerdOptions{})
}

// StartDockerdWith is StartDockerd shaped by opts.
func StartDockerdWith(t testing.TB, opts DockerdOptions) *Dockerd {
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
	if opts.UsernsRemap {
		d.addRemapUser(t)
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
	args := []string{"--config-file", configPath, "--data-root", d.Root, "--exec-root", d.Exec,
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://" + d.Sock, "-G", "root",
		"--containerd", d.Containerd.Sock,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
		"--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", d.CgroupParent, "--log-level", "warn"}
	if opts.UsernsRemap {
		args = append(args, "--userns-remap", d.remapUser)
	}
	d.cmd = exec.Command(dockerdBin, args...)
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
			break
		}
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("LAB CANNOT RUN: dockerd did not answer on %s within 60s\n%s", d.Sock, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if opts.UsernsRemap {
		want := filepath.Join(d.Root, fmt.Sprintf("%d.%d", d.RemapUID, d.RemapUID))
		if root, err := d.Docker(20*time.Second, "info", "-f", "{{.DockerRootDir}}"); err != nil || strings.TrimSpace(root) != want {
			t.Fatalf("LAB CANNOT RUN: dockerd with --userns-remap %s uses root %q (%v), want %s\n%s", d.remapUser, root, err, want, d.Log())
		}
		// Containers and their layers live under the remapped root.
		d.Root = want
	}
	return d
}

// addRemapUser makes the user that --userns-remap names: a system user
// and group, and one line in /etc/subuid and /etc/subgid mapping it to 12
// dedicated uids (UID(4) on). The cleanup takes the lines out, deletes
// the user, checks both files are byte for byte what they were, and puts
// back the backups (/etc/passwd- ...) useradd and userdel rewrote when
// the account files themselves are back to what they were (as
// lab/runtime's dockerd does).
func (d *Dockerd) addRemapUser(t testing.TB) {
	t.Helper()
	useradd := RequireTool(t, "useradd")
	userdel := RequireTool(t, "userdel")
	first := UID(4)
	name := fmt.Sprintf("enospc-ck%d", os.Getpid())
	if _, err := user.Lookup(name); err == nil {
		t.Fatalf("LAB CANNOT RUN: user %s exists: a previous run left it (userdel %s)", name, name)
	}
	subFiles := []string{"/etc/subuid", "/etc/subgid"}
	accounts := []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"}
	saved := map[string][]byte{}
	for _, f := range append(append([]string{}, subFiles...), accounts...) {
		for _, p := range []string{f, f + "-"} {
			b, err := os.ReadFile(p)
			if err != nil && !os.IsNotExist(err) {
				t.Fatalf("LAB CANNOT RUN: %v", err)
			}
			saved[p] = b
		}
	}
	same := func(p string) bool {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return saved[p] == nil
		}
		return err == nil && saved[p] != nil && bytes.Equal(b, saved[p])
	}
	line := fmt.Sprintf("%s:%d:12\n", name, first)
	added := false
	t.Cleanup(func() {
		for _, f := range subFiles {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if nb := bytes.Replace(b, []byte(line), nil, 1); !bytes.Equal(nb, b) {
				if saved[f] == nil && len(nb) == 0 {
					err = os.Remove(f)
				} else {
					err = os.WriteFile(f, nb, 0o644)
				}
				if err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if !added {
			return
		}
		if _, err := Run(30*time.Second, userdel, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, err := user.LookupGroup(name); err == nil {
			if _, err := Run(30*time.Second, "groupdel", name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		for _, f := range subFiles {
			if !same(f) {
				t.Errorf("cleanup: %s is not what it was before the test", f)
			}
		}
		for _, f := range accounts {
			if !same(f) {
				t.Logf("cleanup: %s changed during the test: its backup %s- stays as userdel left it", f, f)
				continue
			}
			var err error
			switch b := saved[f+"-"]; {
			case same(f + "-"):
			case b == nil:
				err = os.Remove(f + "-")
			default:
				err = os.WriteFile(f+"-", b, 0o600)
			}
			if err != nil {
				t.Errorf("cleanup: restore %s-: %v", f, err)
			}
		}
	})
	if _, err := Run(30*time.Second, useradd, "--system", "--no-create-home", "--no-log-init", "--user-group",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment", "enospc lab churn userns-remap", name); err != nil {
		t.Fatalf("LAB CANNOT RUN: %v", err)
	}
	added = true
	for _, f := range subFiles {
		if !same(f) {
			t.Fatalf("LAB CANNOT RUN: useradd --system changed %s", f)
		}
		b := saved[f]
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("LAB CANNOT RUN: %s does not end with a newline", f)
		}
		if err := os.WriteFile(f, append(b, line...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.remapUser, d.RemapUID = name, first
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
	if err := TarTree(f, rootfs); err != nil {
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
