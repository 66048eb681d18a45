package limits

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// The keys benchmark holds keys as dedicated uids, each in a helper: this
// test binary run again with keyHolderEnv set, which becomes the uid, joins
// a session keyring of its own, adds the keys and holds them until killed.
// The keys go with it: its session keyring is freed when it exits.
const (
	keyHolderEnv = "ENOSPC_TEST_KEYHOLDER"
	// benchKeyUID is the first of the uids the benchmark holds keys as
	// (263000-263099), used by nothing else on a lab host.
	benchKeyUID = 263000
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(keyHolderEnv); spec != "" {
		os.Exit(holdKeysAs(spec))
	}
	code := m.Run()
	if err := stopKeyHolders(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// holdKeysAs is the helper: spec is "uid:n"; it makes uid hold n keys, its
// session keyring and n-1 user keys, prints "holding" and waits.
func holdKeysAs(spec string) int {
	u, n, _ := strings.Cut(spec, ":")
	uid, err1 := strconv.Atoi(u)
	keys, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || keys < 1 {
		fmt.Fprintln(os.Stderr, "keyholder: want uid:n, have", spec)
		return 2
	}
	// A session keyring belongs to the credentials of one thread.
	runtime.LockOSThread()
	if err := unix.Setgroups(nil); err != nil {
		fmt.Fprintln(os.Stderr, "keyholder: setgroups:", err)
		return 1
	}
	if err := unix.Setresgid(uid, uid, uid); err != nil {
		fmt.Fprintln(os.Stderr, "keyholder: setresgid:", err)
		return 1
	}
	if err := unix.Setresuid(uid, uid, uid); err != nil {
		fmt.Fprintln(os.Stderr, "keyholder: setresuid:", err)
		return 1
	}
	ring, err := unix.KeyctlJoinSessionKeyring(fmt.Sprintf("enospc-bench-%d", uid))
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyholder: join session keyring:", err)
		return 1
	}
	for i := 1; i < keys; i++ {
		if _, err := unix.AddKey("user", "k"+strconv.Itoa(i), []byte{1}, ring); err != nil {
			fmt.Fprintf(os.Stderr, "keyholder: add_key %d: %v\n", i, err)
			return 1
		}
	}
	fmt.Println("holding")
	for {
		unix.Pause()
	}
}

// keyHolders are the helpers started by holdKeys, by uid; TestMain
// stops them after the benchmarks.
var keyHolders = map[int]*exec.Cmd{}

// holdKeys makes uids first, first+1, ... each hold n keys until the test
// binary ends; it skips without root. The holders are started once: the
// kernel frees a killed holder's keys some time after it exits, and a new
// holder of the same uid would find its quota still taken.
func holdKeys(b testing.TB, first, uids, n int) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root to hold keys as dedicated uids")
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for uid := first; uid < first+uids; uid++ {
		if keyHolders[uid] != nil {
			continue
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", keyHolderEnv, uid, n))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		keyHolders[uid] = cmd
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "holding\n" {
			b.Fatalf("keyholder of uid %d: %q", uid, line)
		}
	}
}

// stopKeyHolders kills the holders and waits until the kernel has freed
// their keys: nothing of the benchmark is left on the host.
func stopKeyHolders() error {
	if len(keyHolders) == 0 {
		return nil
	}
	for _, cmd := range keyHolders {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw, err := os.ReadFile("/proc/key-users")
		if err != nil {
			return err
		}
		users, _ := parseKeyUsers(strings.NewReader(string(raw)))
		left := 0
		for _, u := range users {
			if keyHolders[u.UID] != nil && u.Keys > 0 {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%d benchmark uids still hold keys 30s after their holders were killed", left)
		}
	}
}

// cpuTime is the user and system time of this process so far: on a shared
// machine, the time a benchmark spent on the CPU tells more than its
// wall-clock time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostKeys counts the keys of the host, as /proc/key-users does.
func hostKeys(b testing.TB) int64 {
	raw, err := os.ReadFile("/proc/key-users")
	if err != nil {
		b.Fatal(err)
	}
	users, err := parseKeyUsers(strings.NewReader(string(raw)))
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, u := range users {
		n += u.Keys
	}
	return n
}

// BenchmarkReadKeys reads the keyrings family on the running kernel as
// root with uids each holding 190 keys (95% of the default maxkeys), as
// on the bad night of issue 12: listed=all lists every uid's keys (as
// before keysWalkBudget), listed=budget as a check does. The kernel walks
// every key of the host on each reading of /proc/keys, other tenants' keys
// included: the host's key count is reported with the figures.
func BenchmarkReadKeys(b *testing.B) {
	for _, uids := range []int{10, 25, 50} {
		for _, listed := range []struct {
			name   string
			budget int64
		}{{"all", math.MaxInt64}, {"budget", keysWalkBudget}} {
			b.Run(fmt.Sprintf("uids=%d/listed=%s", uids, listed.name), func(b *testing.B) {
				holdKeys(b, benchKeyUID, uids, 190)
				h := host.New("/proc", "/sys", "/")
				if !h.Live() {
					b.Skip("not the running kernel's procfs")
				}
				keys := hostKeys(b)
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					env := &Env{Ctx: context.Background(), Host: h, Live: true, Root: true, Thresholds: DefaultThresholds}
					if rows := readKeysWithin(env, listed.budget); len(rows) < 2*uids {
						b.Fatalf("%d rows for %d uids", len(rows), uids)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(keys), "hostkeys")
			})
		}
	}
}

// TestReadKeysPerUID compares readKeys on the running kernel with the
// straightforward reading it replaces: /proc/keys read as each uid in turn,
// every line checked with keyctl as that uid, the uid's quota keys sorted
// by description. Every uid that readKeys lists must list the same keys.
func TestReadKeysPerUID(t *testing.T) {
	const uids = 4
	holdKeys(t, benchKeyUID+90, uids, 20)
	h := host.New("/proc", "/sys", "/")
	if !h.Live() {
		t.Skip("not the running kernel's procfs")
	}
	env := &Env{Ctx: context.Background(), Host: h, Live: true, Root: true, Thresholds: DefaultThresholds}
	rows := readKeysWithin(env, math.MaxInt64)
	for uid := benchKeyUID + 90; uid < benchKeyUID+90+uids; uid++ {
		var want []string
		b, err := host.ReadFileAsUID("/proc/keys", uid)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			l, ok := parseKeyLine(line)
			if !ok || l.UID != uid || !l.InQuota() {
				continue
			}
			var desc string
			err := host.AsFSUID(uid, func() error {
				var err error
				desc, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, int(l.serial))
				return err
			})
			if err != nil {
				t.Fatalf("describe %s as %d: %v", l.ID, uid, err)
			}
			f := strings.SplitN(desc, ";", 5)
			want = append(want, f[0]+" "+f[4])
		}
		sort.Strings(want)
		var got []string
		found := false
		for _, r := range rows {
			if r.Limit != "keys.count" || r.Scope != "uid "+strconv.Itoa(uid) {
				continue
			}
			found = true
			for _, c := range r.Consumers {
				got = append(got, c.Name)
			}
			if r.Reason != "" {
				t.Errorf("uid %d: reason %q", uid, r.Reason)
			}
		}
		if !found || len(want) != 20 || !slices.Equal(got, want) {
			t.Errorf("uid %d: readKeys lists\n%q\nreading as the uid lists\n%q (20 keys held)", uid, got, want)
		}
	}
}

// TestReadKeysSkipped checks the rows of the uids readKeys does not list:
// with no budget, the 3 fullest uids are listed, and every other uid's
// count and bytes rows say why its keys are not, its leak.keyrings unknown.
func TestReadKeysSkipped(t *testing.T) {
	holdKeys(t, benchKeyUID+90, 4, 20)
	h := host.New("/proc", "/sys", "/")
	if !h.Live() {
		t.Skip("not the running kernel's procfs")
	}
	env := &Env{Ctx: context.Background(), Host: h, Live: true, Root: true, Thresholds: DefaultThresholds}
	listed, skipped := 0, map[string]bool{}
	rows := readKeysWithin(env, 0)
	for _, r := range rows {
		if r.Limit != "keys.count" || r.Scope == "uid 0" || r.Used == 0 {
			continue
		}
		if strings.HasPrefix(r.Reason, "keys not listed: each uid's keys are listed by reading /proc/keys as that uid") {
			skipped[r.Scope] = true
		} else {
			listed++
		}
	}
	if listed != keysListedMin || len(skipped) < 4-keysListedMin {
		t.Errorf("%d uids listed, %d not; want %d listed, at least %d not", listed, len(skipped), keysListedMin, 4-keysListedMin)
	}
	for _, r := range rows {
		if r.Limit == "leak.keyrings" && skipped[r.Scope] {
			if r.Severity != Unknown || !strings.HasPrefix(r.Reason, "session keyrings not listed: ") {
				t.Errorf("leak.keyrings %s: %s %q, want unknown: not listed", r.Scope, r.Severity, r.Reason)
			}
			delete(skipped, r.Scope)
		}
	}
	if len(skipped) > 0 {
		t.Errorf("no unknown leak.keyrings row for %v", skipped)
	}
}
