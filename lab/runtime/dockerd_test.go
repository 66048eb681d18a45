//go:build lab

package runtime

// What a docker container with userns-remap charges to the remapped host
// uid's key quota, on labkit's private dockerd.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/lab/labkit"
)

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
	d := labkit.StartDockerdWith(t, labkit.DockerdOptions{UsernsRemap: true})
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
			t.Fatalf("%v\n%s", err, d.Log())
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
		ku, _ := labkit.ReadKeyUser(t, uid)
		return ses, other, ku.Keys
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
