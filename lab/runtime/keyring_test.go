//go:build lab

package runtime

// The Jenkins agent of the field report (shared/seeds/000): every runc
// container joins a new session keyring _ses.<container id>, charged to
// the host uid that the container's root maps to. With user namespaces
// all containers of a host share that uid, and the kernel's key quota
// (kernel.keys.maxkeys, default 200; kernel.keys.maxbytes, default 20000)
// runs out: the next container fails with
//
//	unable to join session keyring: unable to create session key: disk quota exceeded
//
// The tests start real runc containers, one after another, in a user
// namespace mapped to a dedicated host uid, until runc fails that way;
// then `enospc check` must report that uid's key quota critical (keys.count
// with short container ids, keys.bytes with long ones, as on the Jenkins
// agent) and list the containers' session keyrings as its holders.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
)

// keyringPhrase is what runc prints when the session keyring cannot be
// created (runc 1.x libcontainer/standard_init_linux.go and keys/keyctl.go).
const keyringPhrase = "unable to join session keyring: unable to create session key: disk quota exceeded"

func readSysctl(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestKeyringQuotaRunc: container ids as short as these, on the default
// quota, run out of keys (maxkeys, 200) first.
func TestKeyringQuotaRunc(t *testing.T) {
	prefix := fmt.Sprintf("ek%d-", os.Getpid())
	keyringQuota(t, labkit.UID(1), "keys.count", func(i int) string { return fmt.Sprintf("%s%03d", prefix, i) }, nil)
}

// TestKeyringBytesRunc: the Jenkins agent's case, the byte quota
// (maxbytes) first. A session keyring costs its description: with
// 120-character container ids that is 126 bytes, so on the default quota
// 158 containers exhaust maxbytes (20000) before 200 exhaust maxkeys,
// without touching a sysctl.
func TestKeyringBytesRunc(t *testing.T) {
	prefix := fmt.Sprintf("ekb%d-", os.Getpid())
	keyringQuota(t, labkit.UID(2), "keys.bytes", func(i int) string {
		id := fmt.Sprintf("%s%03d-", prefix, i)
		return id + strings.Repeat("k", 120-len(id))
	}, nil)
}

// keyringQuota starts runc containers whose root maps to host uid, named
// id(1), id(2), ... (all of one length), until runc fails on the key
// quota, then checks what `enospc check` says of that uid. want is the
// limit the case is about: the host's quota must make it the first to run
// out.
//
// then, when set, runs last with a function that starts container i.
func keyringQuota(t *testing.T, uid int, want string, id func(int) string, then func(t *testing.T, start func(i int) (string, error), failedAt int)) {
	const (
		maxContainers = 400
		startBudget   = 5 * time.Minute
		cleanBudget   = 3 * time.Minute
	)
	runc := labkit.RequireTool(t, "runc")
	labkit.RequireTool(t, "busybox")
	if out, err := labkit.Run(10*time.Second, runc, "--version"); err == nil {
		t.Logf("%s", strings.Split(out, "\n")[0])
	}

	maxKeys := readSysctl(t, "/proc/sys/kernel/keys/maxkeys")
	maxBytes := readSysctl(t, "/proc/sys/kernel/keys/maxbytes")
	if ku, ok := labkit.ReadKeyUser(t, uid); ok && ku.Keys > 0 {
		t.Fatalf("LAB CANNOT RUN: dedicated uid %d already owns %d keys (%d bytes): a previous run left containers behind", uid, ku.Keys, ku.Bytes)
	}

	pid := os.Getpid()
	// A keyring is charged the length of its description plus its NUL;
	// keyrings have no payload.
	perKey := int64(len("_ses."+id(1)) + 1)
	byCount, byBytes := maxKeys, maxBytes/perKey
	first := "keys.count"
	if byBytes < byCount {
		first = "keys.bytes"
	}
	if first != want {
		t.Fatalf("LAB CANNOT RUN %s on this host: with kernel.keys.maxkeys=%d and maxbytes=%d, %s runs out before %s (the lab never changes a global sysctl)", t.Name(), maxKeys, maxBytes, first, want)
	}
	if n := min(byCount, byBytes); n >= maxContainers {
		t.Fatalf("LAB CANNOT RUN %s on this host: the key quota allows %d containers, more than the lab's bound of %d", t.Name(), n, maxContainers)
	}
	t.Logf("uid %d: kernel.keys.maxkeys=%d maxbytes=%d; a session keyring costs %d bytes, so %s runs out first, after %d containers",
		uid, maxKeys, maxBytes, perKey, want, min(byCount, byBytes))

	dir := labkit.TempDir(t, "enospc-lab-keys-")
	rootfs := filepath.Join(dir, "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	runcRoot := filepath.Join(dir, "runc")
	if err := os.Mkdir(runcRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	cgroupParent := fmt.Sprintf("enospc-lab-keys-%d-%d", pid, uid)

	var created []string // every id runc was asked to run
	pidFiles := map[string]string{}
	t.Cleanup(func() {
		deadline := time.Now().Add(cleanBudget)
		// SIGKILL first: it is quick and needs no state; delete after.
		for _, c := range created {
			if b, err := os.ReadFile(pidFiles[c]); err == nil {
				if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		for _, c := range created {
			if time.Now().After(deadline) {
				t.Errorf("cleanup: runc delete gave up after %s; containers may be left in %s", cleanBudget, runcRoot)
				break
			}
			out, err := labkit.Run(20*time.Second, runc, "--root", runcRoot, "delete", "--force", c)
			if err != nil && !strings.Contains(out, "does not exist") && !strings.Contains(out, "not exist") {
				t.Errorf("cleanup: %v", err)
			}
		}
		if out, err := labkit.Run(20*time.Second, runc, "--root", runcRoot, "list", "-q"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("cleanup: runc list after delete: %q %v", out, err)
		}
		labkit.KillCgroups(t, cgroupParent)
		labkit.RemoveCgroups(t, cgroupParent)
	})

	var (
		failedAt  int
		failure   string
		failedErr error
		started   []string
	)
	begin := time.Now()
	startOne := func(i int) (string, error) {
		c := id(i)
		bundle := filepath.Join(dir, "bundles", c)
		writeBundle(t, bundle, bundleOptions{
			Rootfs: rootfs, HostUID: uid, MapSize: 1,
			CgroupPath: "/" + cgroupParent + "/" + c,
			Args:       []string{"sleep", "3600"},
		})
		pidFile := filepath.Join(bundle, "pid")
		created = append(created, c)
		pidFiles[c] = pidFile
		return labkit.RunDetached(60*time.Second, dir, runc, "--root", runcRoot, "run", "-d", "--pid-file", pidFile, "--bundle", bundle, c)
	}
	for i := 1; i <= maxContainers; i++ {
		if time.Since(begin) > startBudget {
			t.Fatalf("started %d containers in %s without runc failing; gave up (maxkeys %d, maxbytes %d)", len(started), startBudget, maxKeys, maxBytes)
		}
		c := id(i)
		out, err := startOne(i)
		if err != nil {
			failedAt, failure, failedErr = i, out, err
			break
		}
		started = append(started, c)
	}
	t.Logf("started %d containers in %s", len(started), time.Since(begin).Round(time.Millisecond))
	if failedAt == 0 {
		t.Fatalf("runc started %d containers for uid %d without failing (maxkeys %d, maxbytes %d)", maxContainers, uid, maxKeys, maxBytes)
	}
	t.Logf("container %d (%s) failed; runc printed:\n%s", failedAt, id(failedAt), strings.TrimSpace(failure))
	if !strings.Contains(failure, keyringPhrase) {
		t.Fatalf("runc failed for another reason than the key quota: want %q in its error, have: %v", keyringPhrase, failedErr)
	}
	if int64(len(started)) != min(byCount, byBytes) {
		t.Errorf("runc failed after %d containers; maxkeys %d and maxbytes %d allow %d", len(started), maxKeys, maxBytes, min(byCount, byBytes))
	}

	// The containers that started must be running still: their session
	// keyrings are what holds the quota.
	for _, c := range started {
		b, err := os.ReadFile(pidFiles[c])
		if err != nil {
			t.Fatalf("container %s: no pid file: %v", c, err)
		}
		p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if p <= 1 || syscall.Kill(p, 0) != nil {
			t.Fatalf("container %s (pid %q) is not running", c, bytes.TrimSpace(b))
		}
	}

	ku, ok := labkit.ReadKeyUser(t, uid)
	if !ok {
		t.Fatalf("/proc/key-users has no line for uid %d after %d containers", uid, len(started))
	}
	t.Logf("/proc/key-users uid %d: %d/%d keys, %d/%d bytes", uid, ku.Keys, ku.MaxKeys, ku.Bytes, ku.MaxBytes)
	// Which limit the kernel says is exhausted: no room for one more
	// session keyring.
	exhausted, other := "", ""
	switch {
	case ku.Keys >= ku.MaxKeys:
		exhausted, other = "keys.count", "keys.bytes"
	case ku.Bytes+perKey > ku.MaxBytes:
		exhausted, other = "keys.bytes", "keys.count"
	default:
		t.Fatalf("runc hit EDQUOT but /proc/key-users shows room for uid %d: %+v", uid, ku)
	}
	if exhausted != want {
		t.Errorf("predicted %s to run out first, the kernel says %s", want, exhausted)
	}

	rep, code := labkit.RunCheck(t)
	// What an operator sees, for the log and the README's example.
	table, _ := exec.Command(labkit.Bin(), "check", "--only", "keys.count,keys.bytes").CombinedOutput()
	t.Logf("enospc check --only keys.count,keys.bytes:\n%s", table)
	scope := "uid " + strconv.Itoa(uid)
	row := labkit.Find(t, rep, exhausted, labkit.ScopeIs(scope))
	t.Logf("enospc check: %s %q %s %d/%d %s, %d consumers (total %d), exit %d", row.Limit, row.Scope, row.Severity, row.Used, row.Max, row.Unit, len(row.Consumers), row.ConsumersTotal, code)
	if row.Severity.String() != "critical" {
		t.Errorf("%s %s: severity %s, want critical (%d/%d); reason %q", exhausted, scope, row.Severity, row.Used, row.Max, row.Reason)
	}
	if code != 2 {
		t.Errorf("enospc check exit status %d, want 2 (some critical)", code)
	}
	wantUsed, wantMax := ku.Keys, ku.MaxKeys
	if exhausted == "keys.bytes" {
		wantUsed, wantMax = ku.Bytes, ku.MaxBytes
	}
	if row.Used != wantUsed || row.Max != wantMax {
		t.Errorf("%s %s: used/max %d/%d, /proc/key-users says %d/%d", exhausted, scope, row.Used, row.Max, wantUsed, wantMax)
	}

	// Its holders: the session keyring of every started container, by
	// name, and nothing but keys of that uid.
	startedSet := map[string]bool{}
	for _, c := range started {
		startedSet[c] = true
	}
	listed := map[string]bool{}
	var strays []string
	for _, c := range row.Consumers {
		if c.UID == nil || *c.UID != uid {
			t.Errorf("consumer %q has uid %v, want %d", c.Name, c.UID, uid)
		}
		ses, ok := strings.CutPrefix(c.Name, "keyring _ses.")
		if !ok || !startedSet[ses] {
			strays = append(strays, c.Name)
			continue
		}
		if listed[ses] {
			t.Errorf("session keyring of %s listed twice", ses)
		}
		listed[ses] = true
	}
	if len(strays) > 0 {
		t.Logf("consumers that are not session keyrings of the started containers: %q", strays)
	}
	var missing []string
	for _, c := range started {
		if !listed[c] {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(listed) == 0 || len(missing) > 0 {
		t.Errorf("%s %s lists %d of the %d started containers' session keyrings; missing %d: %q", exhausted, scope, len(listed), len(started), len(missing), firstN(missing, 10))
	}
	if listed[id(failedAt)] {
		t.Errorf("the session keyring of the container that failed (%s) is listed", id(failedAt))
	}
	if total := max(row.ConsumersTotal, len(row.Consumers)); int64(total) != ku.Keys {
		t.Errorf("%s %s: %d keys listed in all, /proc/key-users counts %d", exhausted, scope, total, ku.Keys)
	}
	// The remedy names the containers' session keyrings.
	if len(row.Remedy) == 0 || !strings.Contains(strings.Join(row.Remedy, "\n"), "session keyrings") {
		t.Errorf("%s %s: remedy does not point at the session keyrings: %q", exhausted, scope, row.Remedy)
	}

	// The other key limit of that uid is not the one exhausted.
	o := labkit.Find(t, rep, other, labkit.ScopeIs(scope))
	oUsed, oMax := ku.Bytes, ku.MaxBytes
	if other == "keys.count" {
		oUsed, oMax = ku.Keys, ku.MaxKeys
	}
	if o.Used != oUsed || o.Max != oMax {
		t.Errorf("%s %s: used/max %d/%d, /proc/key-users says %d/%d", other, scope, o.Used, o.Max, oUsed, oMax)
	}
	if float64(oUsed) < 0.8*float64(oMax) && o.Severity.String() != "ok" {
		t.Errorf("%s %s: severity %s at %d/%d, want ok", other, scope, o.Severity, o.Used, o.Max)
	}
	if then != nil {
		then(t, startOne, failedAt)
	}
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestFixKeyringQuotaRunc: at the quota, `enospc fix --apply` raises the
// key sysctls and the container that failed starts; `fix --undo` puts the
// values back. The sysctls are global: the test restores them whatever
// happens.
func TestFixKeyringQuotaRunc(t *testing.T) {
	prefix := fmt.Sprintf("ef%d-", os.Getpid())
	const keysDir = "/proc/sys/kernel/keys/"
	orig := map[string]int64{}
	for _, n := range []string{"maxkeys", "maxbytes"} {
		orig[n] = readSysctl(t, keysDir+n)
	}
	t.Cleanup(func() {
		for n, v := range orig {
			if err := os.WriteFile(keysDir+n, []byte(strconv.FormatInt(v, 10)), 0o644); err != nil {
				t.Errorf("cleanup: restore kernel.keys.%s=%d: %v", n, v, err)
			}
		}
	})
	keyringQuota(t, labkit.UID(3), "keys.count", func(i int) string { return fmt.Sprintf("%s%03d", prefix, i) },
		func(t *testing.T, start func(int) (string, error), failedAt int) {
			state := t.TempDir()
			out, err := exec.Command(labkit.Bin(), "fix", "--apply", "--yes", "--only", "keys.count,keys.bytes", "--state-dir", state).CombinedOutput()
			t.Logf("enospc fix --apply:\n%s", out)
			if err != nil {
				t.Fatalf("fix --apply: %v", err)
			}
			if got := readSysctl(t, keysDir+"maxkeys"); got <= orig["maxkeys"] {
				t.Fatalf("fix --apply left kernel.keys.maxkeys at %d", got)
			}
			if out, err := start(failedAt + 500); err != nil {
				t.Fatalf("after fix --apply the next container still fails: %v\n%s", err, out)
			}
			t.Logf("after fix --apply the container that failed starts")
			out, err = exec.Command(labkit.Bin(), "fix", "--undo", "--state-dir", state).CombinedOutput()
			t.Logf("enospc fix --undo:\n%s", out)
			if err != nil {
				t.Fatalf("fix --undo: %v", err)
			}
			for n, v := range orig {
				if got := readSysctl(t, keysDir+n); got != v {
					t.Errorf("after fix --undo kernel.keys.%s is %d, was %d", n, got, v)
				}
			}
		})
}
