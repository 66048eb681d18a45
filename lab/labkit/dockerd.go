//go:build lab

package labkit

// A private dockerd for the lab: its own data root, exec root, pid file,
// API socket, daemon config, cgroup parent and containerd (a private one,
// StartContainerd), so that it neither sees nor touches a docker the
// machine may run. With UsernsRemap, container root maps to a dedicated
// host uid range, the per-user key quota of the field reports.
//
// Traps it avoids, on Debian 12's docker.io 20.10 (the first two from
// moby's source, never tried here: each would touch the host):
//   - dockerd without --containerd uses the system containerd when one
//     answers on /run/containerd/containerd.sock; a private one is passed.
//   - it enables net.ipv4.ip_forward (a global sysctl) unless
//     --ip-forward=false; the cleanup checks the sysctl is unchanged (and
//     puts it back when it is not).
//   - it writes its trust key to /etc/docker/key.json unless the config
//     file names another path (deprecated-key-path: no flag sets it).
//   - it makes /run/docker/plugins whatever its exec root (the plugin
//     sockets' root is fixed, for the length limit of socket paths).
//   - its socket belongs to group docker when that group exists: -G root
//     keeps a private daemon private.
//   - --userns-remap wants a user and a group of that name in /etc/passwd
//     and /etc/group (a bare uid fails: "Uid N has no entry in
//     /etc/passwd"), and its ranges in /etc/subuid and /etc/subgid.
//   - /usr/local/bin/docker may be another client, earlier in PATH: the
//     Debian client is called by its path.

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
	Dir  string // everything below here is private to the test
	Sock string // the Engine API's unix socket
	// Root is --data-root; under UsernsRemap, the remapped root below it
	// where containers and their layers live. Exec is --exec-root.
	Root, Exec   string
	CgroupParent string // --cgroup-parent of the containers
	Containerd   *Containerd
	// RemapUID is the host uid of container root under UsernsRemap, 0
	// without.
	RemapUID  int
	remapUser string
	args      []string // dockerd's command line
	clientEnv []string
	ipForward string // net.ipv4.ip_forward before dockerd started
	logShown  bool   // the log's tail is in the test's output already
	daemon
}

const (
	dockerdBin = "/usr/sbin/dockerd"
	// dockerClient is Debian's client, of dockerd's version.
	dockerClient = "/usr/bin/docker"
	// The userns-remap range is UID(remapFirst) and the next remapSize-1
	// uids: the rest of the test process's block of 16, clear of the uids
	// the keyring tests take (UID(1), UID(2)). 12 ids map container uids
	// 0..11, enough for root and the gid 5 of /dev/pts.
	remapFirst = 4
	remapSize  = 12
	ipForward  = "/proc/sys/net/ipv4/ip_forward"
	// pluginExecRoot is dockerd 20.10's getPluginExecRoot on Linux.
	pluginExecRoot = "/run/docker/plugins"
)

// DockerdOptions shape a private dockerd.
type DockerdOptions struct {
	// UsernsRemap maps container root to a dedicated host uid range
	// (--userns-remap of a system user made for the test).
	UsernsRemap bool
}

// StartDockerd starts a dockerd on private directories and a private
// containerd, waits until it answers, and registers a cleanup that removes
// its containers, stops it, kills what it left, unmounts and removes its
// directories and cgroups, and checks that ip_forward is as it was.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	return StartDockerdWith(t, DockerdOptions{})
}

// StartDockerdWith is StartDockerd shaped by opts. With UsernsRemap the
// cleanup also restores /etc/subuid and /etc/subgid and deletes the remap
// user, once the containerd and what ran as that user are gone.
func StartDockerdWith(t testing.TB, opts DockerdOptions) *Dockerd {
	t.Helper()
	for _, p := range []string{dockerdBin, dockerClient} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LAB CANNOT RUN %s: %s is not installed (apt-get install docker.io): %v", t.Name(), p, err)
		}
	}
	if out, err := Run(10*time.Second, dockerdBin, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(out))
	}
	dir := TempDir(t, "enospc-lab-dockerd-")
	d := &Dockerd{Dir: dir, Sock: filepath.Join(dir, "docker.sock"), Root: filepath.Join(dir, "root"),
		Exec: filepath.Join(dir, "exec"), CgroupParent: fmt.Sprintf("/enospc-lab-dockerd-%d", os.Getpid())}
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
	// Before the containerd: the user goes in the cleanup after it.
	if opts.UsernsRemap {
		d.addRemapUser(t)
	}
	d.Containerd = StartContainerd(t, "moby")
	// Host directories dockerd makes whatever its flags: removed at the
	// end when this test made them and they are empty.
	var hostDirs []string
	for _, p := range []string{filepath.Dir(pluginExecRoot), pluginExecRoot} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			hostDirs = append(hostDirs, p)
		}
	}
	config, _ := json.Marshal(map[string]string{"deprecated-key-path": filepath.Join(dir, "key.json")})
	configPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		t.Fatal(err)
	}
	d.args = []string{"--config-file", configPath, "--data-root", d.Root, "--exec-root", d.Exec,
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://" + d.Sock, "-G", "root",
		"--containerd", d.Containerd.Sock,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",
		"--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", d.CgroupParent, "--log-level", "warn"}
	if opts.UsernsRemap {
		d.args = append(d.args, "--userns-remap", d.remapUser)
	}
	forward, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	d.ipForward = string(forward)
	d.daemon = startDaemon(t, "dockerd", filepath.Join(dir, "dockerd.log"), d.clientEnv, dockerdBin, d.args...)
	t.Cleanup(func() {
		d.cleanup(t)
		removeHostDirs(t, hostDirs)
	})
	begin := time.Now()
	for {
		select {
		case <-d.done:
			t.Fatalf("LAB CANNOT RUN: dockerd exited at start: %s\ndockerd %s\n%s", d.cmd.ProcessState, strings.Join(d.args, " "), d.Log())
		default:
		}
		if _, err := d.Docker(10*time.Second, "version"); err == nil {
			break
		}
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("LAB CANNOT RUN: dockerd did not answer on %s within 60s\ndockerd %s\n%s", d.Sock, strings.Join(d.args, " "), d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, err := d.Docker(20*time.Second, "info", "-f", "{{.DockerRootDir}} {{.Driver}} {{.CgroupDriver}} {{json .SecurityOptions}}")
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: docker info: %v\n%s", err, d.Log())
	}
	t.Logf("dockerd up in %s: %s", time.Since(begin).Round(time.Millisecond), strings.TrimSpace(info))
	if opts.UsernsRemap {
		want := filepath.Join(d.Root, fmt.Sprintf("%d.%d", d.RemapUID, d.RemapUID))
		if root, _, _ := strings.Cut(strings.TrimSpace(info), " "); root != want {
			t.Fatalf("LAB CANNOT RUN: dockerd with --userns-remap %s uses root %s, want %s (remap range not taken?)\n%s", d.remapUser, root, want, d.Log())
		}
		d.Root = want
	}
	return d
}

// cleanup removes the containers, stops dockerd (SIGTERM, then SIGKILL),
// kills the processes it left, unmounts what is mounted below the private
// directory, removes the container cgroups and checks ip_forward. The
// private containerd and its shims go in containerd's own cleanup, which
// runs after this one.
func (d *Dockerd) cleanup(t testing.TB) {
	if !d.exited() {
		if out, err := d.Docker(30*time.Second, "ps", "-aq", "--no-trunc"); err != nil {
			t.Logf("cleanup: %v", err)
		} else if ids := strings.Fields(out); len(ids) > 0 {
			if _, err := d.Docker(2*time.Minute, append([]string{"rm", "-f"}, ids...)...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	d.stop(t, 20*time.Second)
	// runc and docker-init run with paths below the exec root in their
	// arguments; anything still running that names the private directory
	// is a leftover.
	for _, pid := range pidsMentioning(d.Dir + "/") {
		t.Logf("cleanup: killing leftover pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	KillCgroups(t, d.CgroupParent)
	UnmountUnder(t, d.Dir)
	RemoveCgroups(t, d.CgroupParent)
	if b, err := os.ReadFile(ipForward); err != nil {
		t.Errorf("cleanup: %v", err)
	} else if string(b) != d.ipForward {
		t.Errorf("cleanup: dockerd changed net.ipv4.ip_forward from %q to %q; restoring", strings.TrimSpace(d.ipForward), strings.TrimSpace(string(b)))
		os.WriteFile(ipForward, []byte(d.ipForward), 0o644)
	}
	if t.Failed() && !d.logShown {
		t.Logf("dockerd %s\n%s", strings.Join(d.args, " "), d.Log())
	}
}

// addRemapUser makes the user that --userns-remap names: a system user
// and group (useradd gives system users no subordinate ids of its own),
// and one line in /etc/subuid and /etc/subgid mapping it to the dedicated
// range. The cleanup takes the lines out, deletes the user, checks that
// both files are byte for byte what they were, and puts back the backups
// (/etc/passwd- ...) that useradd and userdel rewrote, when the account
// files themselves are back to what they were.
func (d *Dockerd) addRemapUser(t testing.TB) {
	t.Helper()
	useradd := RequireTool(t, "useradd")
	userdel := RequireTool(t, "userdel")
	first := UID(remapFirst)
	name := fmt.Sprintf("enospc-dk%d", os.Getpid())
	if ku, ok := ReadKeyUser(t, first); ok && ku.Keys > 0 {
		t.Fatalf("LAB CANNOT RUN: dedicated uid %d already owns %d keys: a previous run left containers behind", first, ku.Keys)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatalf("LAB CANNOT RUN: user %s exists: a previous run left it (userdel %s)", name, name)
	}
	subFiles := []string{"/etc/subuid", "/etc/subgid"}
	accounts := []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"}
	saved := map[string][]byte{} // nil when the file does not exist
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
	line := fmt.Sprintf("%s:%d:%d\n", name, first, remapSize)
	added := false
	t.Cleanup(func() {
		// Only our line goes: a line another program added meanwhile stays.
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
				b, _ := os.ReadFile(f)
				t.Errorf("cleanup: %s is not what it was before the test:\nbefore:\n%s\nafter:\n%s", f, saved[f], b)
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
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment", "enospc lab dockerd userns-remap", name); err != nil {
		t.Fatalf("LAB CANNOT RUN: %v", err)
	}
	added = true
	for _, f := range subFiles {
		if !same(f) {
			t.Fatalf("LAB CANNOT RUN: useradd --system changed %s (subordinate ids for a system user?)", f)
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

// Log is the end of dockerd's log, headed as such. Once a test has shown
// it, the cleanup of a failed test does not show it again.
func (d *Dockerd) Log() string {
	d.logShown = true
	return "dockerd log (tail):\n" + d.logTail()
}

// Docker runs Debian's docker client against this dockerd and returns its
// combined output.
func (d *Dockerd) Docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerClient, append([]string{"-H", "unix://" + d.Sock}, args...)...)
	cmd.Env = d.clientEnv
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("docker %s: timed out after %s: %s", strings.Join(args, " "), timeout, out)
	}
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Inspect returns `docker inspect -f format` of one object.
func (d *Dockerd) Inspect(t testing.TB, format, object string) string {
	t.Helper()
	out, err := d.Docker(20*time.Second, "inspect", "-f", format, object)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// ImportBusybox makes image ref from a busybox-static root filesystem
// (`docker import` of its tar: there is no registry to pull from). The
// root filesystem and its tar go once imported.
func (d *Dockerd) ImportBusybox(t testing.TB, ref string) {
	t.Helper()
	work, err := os.MkdirTemp(d.Dir, "import-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	BusyboxRootfs(t, rootfs)
	tarPath := filepath.Join(work, "rootfs.tar")
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
