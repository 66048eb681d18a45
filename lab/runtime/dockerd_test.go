//go:build lab

package runtime

// A private dockerd for the lab: its own data root, exec root, pid file,
// API socket, daemon config, cgroup parent and containerd (the private one
// of containerd_test.go), so that it neither sees nor touches a docker the
// machine may run. With UsernsRemap, container root maps to a dedicated
// host uid range, the per-user key quota of the field reports.
//
// Traps it avoids, on Debian 12's docker.io 20.10 (the first two from
// moby's source, never tried here: each would touch the host):
//   - dockerd without --containerd uses the system containerd when one
//     answers on /run/containerd/containerd.sock; a private one is passed.
//   - it enables net.ipv4.ip_forward (a global sysctl) unless
//     --ip-forward=false; the cleanup checks the sysctl is unchanged.
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/lab/labkit"
)

const (
	dockerdPath = "/usr/sbin/dockerd"
	// dockerClient is Debian's client, of dockerd's version.
	dockerClient = "/usr/bin/docker"
	// The userns-remap range is labkit.UID(remapFirst) and the next
	// remapSize-1 uids: the rest of the test process's block of 16, clear
	// of the uids the keyring tests take (labkit.UID(1), UID(2)). 12 ids
	// map container uids 0..11, enough for root and the gid 5 of /dev/pts.
	remapFirst = 4
	remapSize  = 12
	ipForward  = "/proc/sys/net/ipv4/ip_forward"
	// pluginExecRoot is dockerd 20.10's getPluginExecRoot on Linux.
	pluginExecRoot = "/run/docker/plugins"
)

// dockerdOptions shape one private dockerd.
type dockerdOptions struct {
	UsernsRemap  bool   // map container root to a dedicated host uid range
	CgroupParent string // absolute cgroup of the containers; default /enospc-lab-dockerd-<pid>
}

// dockerd is one private docker daemon and the client flags to reach it.
type dockerd struct {
	Dir          string // everything below here is private to the test
	Host         string // unix://<Dir>/docker.sock
	Root         string // --data-root
	Exec         string // --exec-root
	CgroupParent string // --cgroup-parent
	RemapUID     int    // host uid of container root: 0 without userns-remap
	RemapUser    string // the user named in --userns-remap, "" without
	Containerd   *containerd
	Args         []string // dockerd's command line
	logPath      string
	clientEnv    []string
	cmd          *exec.Cmd
	done         chan struct{}
	ipForward    string // net.ipv4.ip_forward before dockerd started
	logShown     bool   // the log tail is in the test's output already
}

// startDockerd starts a dockerd on private directories and a private
// containerd, waits until it answers, and registers a cleanup that removes
// its containers, stops it, kills what it left, unmounts and removes its
// directories and cgroups, and with UsernsRemap restores /etc/subuid and
// /etc/subgid and deletes the remap user.
func startDockerd(t *testing.T, opts dockerdOptions) *dockerd {
	t.Helper()
	for _, p := range []string{dockerdPath, dockerClient} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LAB CANNOT RUN %s: %s is not installed (apt-get install docker.io): %v", t.Name(), p, err)
		}
	}
	labkit.RequireTool(t, "runc")
	if out, err := run(10*time.Second, dockerdPath, "--version"); err == nil {
		t.Logf("%s", strings.TrimSpace(out))
	}

	dir := labDir(t, "enospc-lab-dockerd-")
	d := &dockerd{
		Dir:          dir,
		Host:         "unix://" + filepath.Join(dir, "docker.sock"),
		Root:         filepath.Join(dir, "root"),
		Exec:         filepath.Join(dir, "exec"),
		CgroupParent: opts.CgroupParent,
		logPath:      filepath.Join(dir, "dockerd.log"),
		done:         make(chan struct{}),
	}
	if d.CgroupParent == "" {
		d.CgroupParent = fmt.Sprintf("/enospc-lab-dockerd-%d", os.Getpid())
	}
	if !strings.HasPrefix(d.CgroupParent, "/") {
		t.Fatalf("dockerdOptions.CgroupParent %q: want an absolute cgroup path", d.CgroupParent)
	}
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

	if opts.UsernsRemap {
		d.addRemapUser(t)
	}
	d.Containerd = startContainerd(t)

	// Host directories dockerd makes whatever its flags: the cleanup
	// removes those that did not exist before, when empty.
	var hostDirsCreated []string
	for _, p := range []string{filepath.Dir(pluginExecRoot), pluginExecRoot} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			hostDirsCreated = append(hostDirsCreated, p)
		}
	}

	config, _ := json.Marshal(map[string]string{"deprecated-key-path": filepath.Join(dir, "key.json")})
	configPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Args = []string{
		"--config-file", configPath,
		"--data-root", d.Root,
		"--exec-root", d.Exec,
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", d.Host, "-G", "root",
		"--containerd", d.Containerd.Sock,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--bridge=none", "--userland-proxy=false",
		"--storage-driver", "vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", d.CgroupParent,
		"--log-level", "warn",
	}
	if opts.UsernsRemap {
		d.Args = append(d.Args, "--userns-remap", d.RemapUser)
	}

	b, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	d.ipForward = string(b)
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dockerdPath, d.Args...)
	d.cmd.Env = d.clientEnv
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("LAB CANNOT RUN: start dockerd: %v", err)
	}
	go func() {
		d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.cleanup(t)
		for i := len(hostDirsCreated) - 1; i >= 0; i-- {
			// Only when empty: another dockerd may have started using it.
			if err := os.Remove(hostDirsCreated[i]); err != nil && !os.IsNotExist(err) {
				t.Logf("cleanup: left %s: %v", hostDirsCreated[i], err)
			}
		}
	})

	begin := time.Now()
	for {
		select {
		case <-d.done:
			t.Fatalf("LAB CANNOT RUN: dockerd exited at start: %s\ndockerd %s\n%s", d.cmd.ProcessState, strings.Join(d.Args, " "), d.logTail())
		default:
		}
		if _, err := d.Docker(10*time.Second, "version"); err == nil {
			break
		}
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("LAB CANNOT RUN: dockerd did not answer on %s within 60s\ndockerd %s\n%s", d.Host, strings.Join(d.Args, " "), d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, err := d.Docker(20*time.Second, "info", "-f", "{{.DockerRootDir}} {{.Driver}} {{.CgroupDriver}} {{json .SecurityOptions}}")
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: docker info: %v\n%s", err, d.logTail())
	}
	t.Logf("dockerd up in %s: %s", time.Since(begin).Round(time.Millisecond), strings.TrimSpace(info))
	if opts.UsernsRemap {
		want := filepath.Join(d.Root, fmt.Sprintf("%d.%d", d.RemapUID, d.RemapUID))
		if root := strings.Fields(info)[0]; root != want {
			t.Fatalf("LAB CANNOT RUN: dockerd with --userns-remap %s uses root %s, want %s (remap range not taken?)\n%s", d.RemapUser, root, want, d.logTail())
		}
	}
	return d
}

// Docker runs the Debian docker client against this dockerd and returns
// its combined output.
// runID is the container id docker run -d printed: its 64-hex line (a
// warning of the CLI on stderr, such as a cancelled context of its own,
// may come before or after it).
func runID(out string) string {
	id := ""
	for _, f := range strings.Fields(out) {
		if len(f) == 64 && strings.Trim(f, "0123456789abcdef") == "" {
			id = f
		}
	}
	return id
}

func (d *dockerd) Docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerClient, append([]string{"-H", d.Host}, args...)...)
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

// ImportBusybox makes image ref from a busybox-static root filesystem
// (`docker import` of its tar: there is no registry to pull from).
func (d *dockerd) ImportBusybox(t *testing.T, ref string) {
	t.Helper()
	work, err := os.MkdirTemp(d.Dir, "import-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	rootfs := filepath.Join(work, "rootfs")
	busyboxRootfs(t, rootfs)
	tarPath := filepath.Join(work, "rootfs.tar")
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
		t.Fatalf("%v\n%s", err, d.logTail())
	}
}

// Inspect returns `docker inspect -f format` of one object.
func (d *dockerd) Inspect(t testing.TB, format, object string) string {
	t.Helper()
	out, err := d.Docker(20*time.Second, "inspect", "-f", format, object)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (d *dockerd) logTail() string {
	d.logShown = true
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "dockerd log (tail):\n" + string(b)
}

func (d *dockerd) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// cleanup removes the containers, stops dockerd (SIGTERM, then SIGKILL),
// kills the processes it left, unmounts what is mounted below the private
// directory and removes the container cgroups. The private containerd and
// its shims go in containerd's own cleanup, which runs after this one.
func (d *dockerd) cleanup(t *testing.T) {
	if d.alive() {
		if out, err := d.Docker(30*time.Second, "ps", "-aq", "--no-trunc"); err != nil {
			t.Logf("cleanup: %v", err)
		} else if ids := strings.Fields(out); len(ids) > 0 {
			if _, err := d.Docker(2*time.Minute, append([]string{"rm", "-f"}, ids...)...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			t.Logf("cleanup: dockerd pid %d ignores SIGTERM for 20s; SIGKILL", d.cmd.Process.Pid)
			syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-d.done:
			case <-time.After(10 * time.Second):
				t.Errorf("cleanup: dockerd pid %d does not die", d.cmd.Process.Pid)
			}
		}
	}
	// runc and docker-init run with paths below the exec root in their
	// arguments; anything still running that names the private directory
	// is a leftover.
	for _, pid := range pidsMentioning(d.Dir + "/") {
		t.Logf("cleanup: killing leftover pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	killCgroups(t, d.CgroupParent)
	unmountUnder(t, d.Dir)
	removeCgroups(t, d.CgroupParent)
	if b, err := os.ReadFile(ipForward); err == nil && string(b) != d.ipForward {
		t.Errorf("cleanup: dockerd changed net.ipv4.ip_forward from %q to %q; restoring", strings.TrimSpace(d.ipForward), strings.TrimSpace(string(b)))
		os.WriteFile(ipForward, []byte(d.ipForward), 0o644)
	}
	if t.Failed() && !d.logShown {
		t.Logf("dockerd %s\n%s", strings.Join(d.Args, " "), d.logTail())
	}
}

// pidsMentioning lists the processes, other than this one, one of whose
// command-line arguments contains s.
func pidsMentioning(s string) []int {
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
		if bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// addRemapUser makes the user that --userns-remap names: a system user
// and group (useradd gives system users no subordinate ids of its own),
// and one line in /etc/subuid and /etc/subgid mapping it to the dedicated
// range. The cleanup takes the lines out, deletes the user, checks that
// both files are byte for byte what they were, and puts back the backups
// (/etc/passwd- ...) that useradd and userdel rewrote, when the account
// files themselves are back to what they were.
func (d *dockerd) addRemapUser(t *testing.T) {
	t.Helper()
	useradd := labkit.RequireTool(t, "useradd")
	userdel := labkit.RequireTool(t, "userdel")
	first := labkit.UID(remapFirst)
	name := fmt.Sprintf("enospc-dk%d", os.Getpid())
	if ku, ok := readKeyUser(t, first); ok && ku.keys > 0 {
		t.Fatalf("LAB CANNOT RUN: dedicated uid %d already owns %d keys: a previous run left containers behind", first, ku.keys)
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
		if _, err := run(30*time.Second, userdel, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, err := user.LookupGroup(name); err == nil {
			if _, err := run(30*time.Second, "groupdel", name); err != nil {
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

	if _, err := run(30*time.Second, useradd, "--system", "--no-create-home", "--no-log-init", "--user-group",
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
	d.RemapUser, d.RemapUID = name, first
}

// procKey is one line of /proc/keys.
type procKey struct {
	Serial string
	Usage  int
	UID    int
	Type   string
	Desc   string
}

// keysOfUID lists uid's keys: /proc/keys shows root only the keys it may
// view, so it is read as uid.
func keysOfUID(t testing.TB, uid int) []procKey {
	t.Helper()
	b, err := host.ReadFileAsUID("/proc/keys", uid)
	if err != nil {
		t.Fatalf("read /proc/keys as uid %d: %v", uid, err)
	}
	var keys []procKey
	for _, line := range strings.Split(string(b), "\n") {
		// serial flags usage timeout perm uid gid type description: summary
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		k := procKey{Serial: f[0], Type: f[7], Desc: strings.TrimSuffix(f[8], ":")}
		k.Usage, _ = strconv.Atoi(f[2])
		if k.UID, err = strconv.Atoi(f[5]); err != nil || k.UID != uid {
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

var sessionKeyringRE = regexp.MustCompile(`^_ses\.([0-9a-f]{64})$`)

// TestDockerdKeyringFacts finds out what a docker container with
// userns-remap charges to the remapped host uid's key quota, and when the
// charge goes: each running container holds one session keyring
// _ses.<container id>; the keyring goes with the container's processes,
// when the container stops, not when it is removed.
func TestDockerdKeyringFacts(t *testing.T) {
	const n = 5
	d := startDockerd(t, dockerdOptions{UsernsRemap: true})
	uid := d.RemapUID
	img := fmt.Sprintf("enospc-lab-busybox:%d", os.Getpid())
	d.ImportBusybox(t, img)

	ids := map[string]string{} // name -> full container id
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("kf-%d", i)
		begin := time.Now()
		out, err := d.Docker(90*time.Second, "run", "-d", "--network", "none", "--name", name, img, "sleep", "3600")
		if err != nil {
			t.Fatalf("%v\n%s", err, d.logTail())
		}
		id := runID(out)
		if got := d.Inspect(t, "{{.Id}}", name); got != id {
			t.Fatalf("docker run printed %q, no id or another one than docker inspect's %q", out, got)
		}
		t.Logf("docker run %s: %s in %s", name, id, time.Since(begin).Round(time.Millisecond))
		ids[name] = id
		names = append(names, name)
	}

	// keyringsNow maps container id -> number of _ses.<id> keyrings of uid,
	// and returns uid's other keys and its /proc/key-users count.
	keyringsNow := func() (map[string]int, []procKey, int64) {
		ses := map[string]int{}
		var other []procKey
		for _, k := range keysOfUID(t, uid) {
			if m := sessionKeyringRE.FindStringSubmatch(k.Desc); k.Type == "keyring" && m != nil {
				ses[m[1]]++
			} else {
				other = append(other, k)
			}
		}
		ku, _ := readKeyUser(t, uid)
		return ses, other, ku.keys
	}

	ses, other, count := keyringsNow()
	t.Logf("uid %d with %d containers running: %d _ses keyrings, other keys %+v, /proc/key-users counts %d", uid, n, len(ses), other, count)
	for _, name := range names {
		if c := ses[ids[name]]; c != 1 {
			t.Errorf("container %s (%s): %d session keyrings _ses.<id> of uid %d, want 1", name, ids[name], c, uid)
		}
	}
	if len(ses) != n {
		t.Errorf("uid %d has session keyrings of %d containers, want %d: %v", uid, len(ses), n, ses)
	}
	if len(other) > 0 || count != n {
		t.Errorf("uid %d: /proc/key-users counts %d keys, /proc/keys read as that uid shows %d besides the session keyrings; want %d keys, the containers' session keyrings alone", uid, count, len(other), n)
	}

	// Where docker puts a container's processes.
	pid := d.Inspect(t, "{{.State.Pid}}", names[0])
	cg, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/proc/%s/cgroup of %s:\n%s", pid, names[0], cg)
	wantCgroup := d.CgroupParent + "/" + ids[names[0]]
	if !regexp.MustCompile(`(?m)^\d+:memory:` + regexp.QuoteMeta(wantCgroup) + `$`).Match(cg) {
		t.Errorf("container %s is not in memory cgroup %s", names[0], wantCgroup)
	}
	if status, err := os.ReadFile(filepath.Join("/proc", pid, "status")); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") && strings.Fields(l)[1] != strconv.Itoa(uid) {
				t.Errorf("container %s pid %s runs as host uid %s, want %d", names[0], pid, strings.Fields(l)[1], uid)
			}
		}
	}

	// Stop two: busybox sleep as pid 1 ignores SIGTERM, so -t 1 has
	// docker kill it after a second rather than ten.
	stopped := names[:2]
	begin := time.Now()
	if _, err := d.Docker(60*time.Second, append([]string{"stop", "-t", "1"}, stopped...)...); err != nil {
		t.Fatal(err)
	}
	t.Logf("docker stop %v: %s", stopped, time.Since(begin).Round(time.Millisecond))
	report := func(when string) (map[string]int, int64) {
		ses, other, count := keyringsNow()
		var state []string
		for _, name := range names {
			state = append(state, fmt.Sprintf("%s=%s/keyring:%d", name, d.Inspect(t, "{{.State.Status}}", name), ses[ids[name]]))
		}
		t.Logf("%s: /proc/key-users uid %d: %d keys; %d _ses keyrings, %d other keys; %s", when, uid, count, len(ses), len(other), strings.Join(state, " "))
		return ses, count
	}
	report("right after docker stop")
	time.Sleep(2 * time.Second)
	ses, count = report("2s after docker stop")
	for _, name := range stopped {
		if ses[ids[name]] != 0 {
			t.Errorf("stopped container %s still has its session keyring 2s after docker stop", name)
		}
	}
	for _, name := range names[2:] {
		if ses[ids[name]] != 1 {
			t.Errorf("running container %s lost its session keyring", name)
		}
	}
	if count != n-int64(len(stopped)) {
		t.Errorf("/proc/key-users counts %d keys for uid %d with %d containers running, want %d", count, uid, n-len(stopped), n-len(stopped))
	}

	// Remove one of the stopped: nothing left to free.
	if _, err := d.Docker(60*time.Second, "rm", stopped[0]); err != nil {
		t.Fatal(err)
	}
	names = names[1:]
	report("right after docker rm " + stopped[0])
	time.Sleep(2 * time.Second)
	ses, count = report("2s after docker rm " + stopped[0])
	if ses[ids[stopped[0]]] != 0 || count != n-int64(len(stopped)) {
		t.Errorf("after docker rm %s: its keyrings %d, uid %d counts %d keys, want 0 and %d", stopped[0], ses[ids[stopped[0]]], uid, count, n-len(stopped))
	}
}
