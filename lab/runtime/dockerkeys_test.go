//go:build lab

package runtime

// The seed's Jenkins agent on a real dockerd: userns-remap to a dedicated
// uid, containers started until the uid's key quota refuses the next one
// with the real "disk quota exceeded"; check names every keyring's
// container, and leak.keyrings counts exactly what a prune frees.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// roomForContainers is how many keys the filler leaves the remapped uid:
// the containers that fit before the quota stops the next.
const roomForContainers = 8

// holdKeys runs lab/keyholder as uid holding n keys (and its session
// keyring) until the test ends.
func holdKeys(t *testing.T, dir string, uid, n int) {
	t.Helper()
	bin := filepath.Join(dir, "keyholder")
	build := exec.Command("go", "build", "-o", bin, "github.com/enospc/enospc/lab/keyholder")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("LAB CANNOT RUN: build the keyholder: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, fmt.Sprint(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start keyholder as uid %d: %v", uid, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	cnt, _ := out.Read(buf)
	if !strings.HasPrefix(string(buf[:cnt]), "holding") {
		t.Fatalf("keyholder as uid %d did not take its keys: %q", uid, buf[:cnt])
	}
}

// dockerCheck runs check against the private dockerd (and its containerd).
func dockerCheck(t *testing.T, d *labkit.Dockerd) *check.Report {
	t.Helper()
	rep, _ := labkit.RunCheck(t, "--docker-host", "unix://"+d.Sock, "--containerd-address", d.Containerd.Sock, "--crio-socket", "",
		"--only", "keys.count,keys.bytes,leak.keyrings,leak.cgroups")
	for _, s := range rep.Runtimes {
		if !s.Reached && !s.Absent {
			t.Fatalf("check did not reach %s at %s: %s", s.Runtime, s.Endpoint, s.Error)
		}
	}
	return rep
}

func TestDockerKeyringQuota(t *testing.T) {
	d := labkit.StartDockerdWith(t, labkit.DockerdOptions{UsernsRemap: true})
	uid := d.RemapUID
	img := fmt.Sprintf("enospc-lab-busybox:%d", os.Getpid())
	d.ImportBusybox(t, img)

	maxKeys := readSysctl(t, "/proc/sys/kernel/keys/maxkeys")
	if before, ok := labkit.ReadKeyUser(t, uid); ok && before.Keys != 0 {
		t.Fatalf("uid %d already holds %d keys: not a dedicated uid", uid, before.Keys)
	}
	// The filler's session keyring is one key, its keys the rest.
	holdKeys(t, d.Dir, uid, int(maxKeys)-roomForContainers-1)
	if ku, _ := labkit.ReadKeyUser(t, uid); ku.Keys != maxKeys-roomForContainers {
		t.Fatalf("uid %d holds %d keys after the filler, want %d", uid, ku.Keys, maxKeys-roomForContainers)
	}

	// Containers until the quota refuses one.
	ids := map[string]string{} // name -> id
	var names []string
	var refusal string
	for i := 1; i <= roomForContainers+1; i++ {
		name := fmt.Sprintf("jenkins-build-%d", i)
		out, err := d.Docker(90*time.Second, "run", "-d", "--network", "none", "--name", name, img, "sleep", "3600")
		if err != nil {
			refusal = out
			break
		}
		ids[name] = runID(out)
		names = append(names, name)
	}
	if refusal == "" {
		t.Fatalf("%d containers started with room for %d keys: the quota did not stop them", len(names), roomForContainers)
	}
	if len(names) != roomForContainers {
		t.Fatalf("the quota stopped container %d, want %d: %s", len(names)+1, roomForContainers+1, refusal)
	}
	if !strings.Contains(refusal, "disk quota exceeded") || !strings.Contains(refusal, "session key") {
		t.Fatalf("the refusal is not the keyring quota's: %s", refusal)
	}
	t.Logf("container %d refused, as docker prints it:\n%s", len(names)+1, strings.TrimSpace(refusal))

	// explain on the very text: the key quota, confirmed on this host.
	out, _ := exec.Command(labkit.Bin(), "explain", "-o", "json", refusal).Output()
	var ex struct {
		Causes []struct {
			Limit     string `json:"limit"`
			Confirmed bool   `json:"confirmed"`
		} `json:"causes"`
	}
	if err := json.Unmarshal(out, &ex); err != nil || len(ex.Causes) == 0 {
		t.Fatalf("explain on docker's refusal: %v\n%s", err, out)
	}
	if ex.Causes[0].Limit != "keys.count" || !ex.Causes[0].Confirmed {
		t.Fatalf("explain on docker's refusal: top cause %+v, want keys.count confirmed\n%s", ex.Causes[0], out)
	}

	// fix --apply raises the key quota and the refused container starts;
	// fix --undo puts the sysctls back (global: restored by the test too).
	const keysDir = "/proc/sys/kernel/keys/"
	orig := map[string]int64{"maxkeys": readSysctl(t, keysDir+"maxkeys"), "maxbytes": readSysctl(t, keysDir+"maxbytes")}
	t.Cleanup(func() {
		for n, v := range orig {
			if err := os.WriteFile(keysDir+n, []byte(fmt.Sprint(v)), 0o644); err != nil {
				t.Errorf("cleanup: restore kernel.keys.%s=%d: %v", n, v, err)
			}
		}
	})
	state := t.TempDir()
	fixOut, err := exec.Command(labkit.Bin(), "fix", "--apply", "--yes", "--only", "keys.count,keys.bytes", "--state-dir", state,
		"--docker-host", "unix://"+d.Sock, "--containerd-address", d.Containerd.Sock, "--crio-socket", "").CombinedOutput()
	t.Logf("enospc fix --apply:\n%s", fixOut)
	if err != nil {
		t.Fatalf("fix --apply: %v", err)
	}
	if out, err := d.Docker(90*time.Second, "run", "-d", "--network", "none", "--name", "jenkins-build-fixed", img, "sleep", "3600"); err != nil {
		t.Fatalf("after fix --apply the refused container still cannot start: %v %s", err, out)
	}
	if out, err := d.Docker(60*time.Second, "rm", "-f", "jenkins-build-fixed"); err != nil {
		t.Fatalf("docker rm: %v %s", err, out)
	}
	undoOut, err := exec.Command(labkit.Bin(), "fix", "--undo", "--state-dir", state).CombinedOutput()
	t.Logf("enospc fix --undo:\n%s", undoOut)
	if err != nil {
		t.Fatalf("fix --undo: %v", err)
	}
	for n, v := range orig {
		if got := readSysctl(t, keysDir+n); got != v {
			t.Fatalf("after fix --undo kernel.keys.%s is %d, was %d", n, got, v)
		}
	}

	// check: critical keys.count on the remapped uid, every session
	// keyring attributed to its container by name, running.
	rep := dockerCheck(t, d)
	scope := fmt.Sprintf("uid %d", uid)
	kc := labkit.Find(t, rep, "keys.count", labkit.ScopeIs(scope))
	if kc.Severity != limits.Critical || kc.Used != maxKeys {
		t.Fatalf("keys.count %s: %s %d/%d, want critical %d/%d", scope, kc.Severity, kc.Used, kc.Max, maxKeys, maxKeys)
	}
	byID := map[string]limits.Consumer{}
	for _, c := range kc.Consumers {
		if c.Container != "" {
			byID[c.Container] = c
		}
	}
	for _, name := range names {
		c, ok := byID[ids[name]]
		if !ok {
			t.Fatalf("keys.count lists no keyring of container %s (%s): %+v", name, ids[name], kc.Consumers)
		}
		if c.ContainerName != name || c.Runtime != "docker" || c.State != "running" || c.Image != img {
			t.Errorf("keyring of %s: name %q runtime %q state %q image %q", name, c.ContainerName, c.Runtime, c.State, c.Image)
		}
	}
	if out, err := exec.Command(labkit.Bin(), "check", "--docker-host", "unix://"+d.Sock, "--containerd-address", d.Containerd.Sock,
		"--crio-socket", "", "--only", "keys.count,keys.bytes,leak.keyrings").CombinedOutput(); err == nil || len(out) > 0 {
		t.Logf("enospc check at the quota:\n%s", out)
	}
	if lk := labkit.Find(t, rep, "leak.keyrings", labkit.ScopeIs(scope)); lk.Used != 0 {
		t.Fatalf("leak.keyrings with every container running: %+v", lk)
	}

	// Stop three. The kernel frees a session keyring with the container's
	// last process: the stopped hold nothing, and leak.keyrings must say
	// so, however many exited containers docker lists.
	stopped := names[:3]
	for _, name := range stopped {
		if out, err := d.Docker(60*time.Second, "stop", "-t", "1", name); err != nil {
			t.Fatalf("docker stop %s: %v %s", name, err, out)
		}
	}
	var lk limits.Finding
	if !labkit.WaitFor(10*time.Second, func() bool {
		rep = dockerCheck(t, d)
		kc = labkit.Find(t, rep, "keys.count", labkit.ScopeIs(scope))
		return kc.Used == maxKeys-int64(len(stopped))
	}) {
		t.Fatalf("keys.count %s is %d 10s after stopping %d containers, want %d", scope, kc.Used, len(stopped), maxKeys-int64(len(stopped)))
	}
	for _, c := range kc.Consumers {
		if c.Container != "" && c.State != "running" {
			t.Errorf("a keyring attributed to a container that is %s: %+v", c.State, c)
		}
	}
	lk = labkit.Find(t, rep, "leak.keyrings", labkit.ScopeIs(scope))
	held, _ := labkit.ReadKeyUser(t, uid)
	if out, err := d.Docker(60*time.Second, "container", "prune", "-f"); err != nil {
		t.Fatalf("docker container prune: %v %s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	after, _ := labkit.ReadKeyUser(t, uid)
	freed := held.Keys - after.Keys
	if lk.Used != freed {
		t.Fatalf("leak.keyrings said a prune frees %d keys; the prune freed %d", lk.Used, freed)
	}
	t.Logf("after stopping %d containers: keys.count %d/%d, leak.keyrings %d, docker container prune freed %d keys",
		len(stopped), kc.Used, kc.Max, lk.Used, freed)

	// Stopping is what made room: the next container starts now.
	if out, err := d.Docker(90*time.Second, "run", "-d", "--network", "none", "--name", "jenkins-build-after", img, "sleep", "3600"); err != nil {
		t.Fatalf("a container still cannot start after %d stopped: %v %s", len(stopped), err, out)
	}
}
