//go:build lab

package kernel

// A read that never returns must not wedge enospc. Each case mounts a
// FUSE filesystem whose server never answers (the /dev/fuse fd is held
// open and never read: every request on it waits forever) in a private
// mount namespace, and runs enospc there: statfs of the mount point, a
// --sys or --proc root on it, and SIGTERM while a family is blocked. The
// mount goes with the namespace when the test's process exits.

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// hungFuseScript mounts a FUSE filesystem nobody serves on $1, then
// executes the rest of its arguments in the same mount namespace.
const hungFuseScript = `set -e
exec 3<>/dev/fuse
mkdir -p "$1"
mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0,allow_other enospc-lab-hung "$1"
shift
exec "$@"`

// inHungFuse returns a command running enospc with args in a private
// mount namespace where mnt is a FUSE mount that never answers. With
// ownPID, also in a new pid namespace with its own procfs, where enospc
// is pid 1: the mount table it checks (/proc/1/mountinfo) is then the
// private one, which holds the hung mount.
func inHungFuse(t *testing.T, mnt string, ownPID bool, args ...string) *exec.Cmd {
	t.Helper()
	unshare := labkit.RequireTool(t, "unshare")
	labkit.RequireTool(t, "mount")
	flags := []string{"-m", "--propagation", "private"}
	if ownPID {
		flags = append(flags, "-p", "-f", "--kill-child", "--mount-proc")
	}
	full := append(append(flags, "sh", "-c", hungFuseScript, "sh", mnt, labkit.Bin()), args...)
	return exec.Command(unshare, full...)
}

func runHung(t *testing.T, cmd *exec.Cmd) (string, string, int, time.Duration) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("enospc %v did not end in 60s: wedged\nstderr:\n%s", cmd.Args, stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return stdout.String(), stderr.String(), code, time.Since(start)
}

func TestHungFuseMount(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "hung")

	t.Run("statfs", func(t *testing.T) {
		out, errOut, code, took := runHung(t, inHungFuse(t, mnt, true, "check", "-o", "json", "--all", "--only", "disk,inodes", "--statfs-timeout", "1s", "--timeout", "20s"))
		var rep check.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("exit %d after %s: %v\n%s\n%s", code, took, err, out, errOut)
		}
		t.Logf("check with a hung FUSE mount: exit %d in %s", code, took.Round(time.Millisecond))
		var hung, root *limits.Finding
		for i, f := range rep.Findings {
			if f.Limit == "disk" && strings.HasPrefix(f.Scope, mnt+" ") {
				hung = &rep.Findings[i]
			}
			if f.Limit == "disk" && strings.HasPrefix(f.Scope, "/ ") {
				root = &rep.Findings[i]
			}
		}
		if hung == nil || hung.Severity != limits.Unknown || !strings.Contains(hung.Reason, "timed out") {
			t.Errorf("the hung mount's disk row: %+v, want unknown, timed out", hung)
		} else {
			t.Logf("disk %s: %s: %s", hung.Scope, hung.Severity, hung.Reason)
		}
		if root == nil || root.Severity == limits.Unknown {
			t.Errorf("the root filesystem's disk row: %+v, want read", root)
		}
		if took > 15*time.Second {
			t.Errorf("check took %s with --statfs-timeout 1s", took)
		}
	})

	t.Run("serve", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cmd := inHungFuse(t, mnt, true, "serve", "--listen", addr, "--interval", "1s", "--timeout", "20s", "--history-dir", "")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var servePID int
		defer func() {
			if servePID != 0 {
				syscall.Kill(servePID, syscall.SIGKILL)
			}
			cmd.Process.Kill()
			cmd.Wait()
		}()
		// serve is the child of unshare's fork: find its pid for its
		// thread count.
		labkit.WaitFor(10*time.Second, func() bool {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
			servePID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return servePID != 0
		})
		threads := func() int {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(servePID) + "/status")
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "Threads:\t"); ok {
					n, _ := strconv.Atoi(v)
					return n
				}
			}
			return 0
		}
		reason := func() string {
			resp, err := http.Get("http://" + addr + "/api/v1/check")
			if err != nil {
				return ""
			}
			defer resp.Body.Close()
			var rep check.Report
			if json.NewDecoder(resp.Body).Decode(&rep) != nil {
				return ""
			}
			for _, f := range rep.Findings {
				if f.Limit == "disk" && strings.HasPrefix(f.Scope, mnt+" ") {
					return f.Reason
				}
			}
			return ""
		}
		if !labkit.WaitFor(30*time.Second, func() bool { return strings.Contains(reason(), "timed out") }) {
			t.Fatalf("serve never reported the hung mount as timed out; stderr:\n%s", stderr.String())
		}
		first := threads()
		// A dozen more checks: the hung statfs is not asked again, so no
		// thread more is blocked in it.
		time.Sleep(12 * time.Second)
		r, last := reason(), threads()
		t.Logf("serve (pid %d) after ~12 more checks: %d threads (%d after the first); the row says %q", servePID, last, first, r)
		if !strings.Contains(r, "not asked again") {
			t.Errorf("the hung mount's row in a later snapshot: %q, want not asked again", r)
		}
		if last > first+2 {
			t.Errorf("serve's threads grew from %d to %d over a dozen checks of a hung mount", first, last)
		}
	})

	t.Run("sys on the mount", func(t *testing.T) {
		out, errOut, code, took := runHung(t, inHungFuse(t, mnt, false, "check", "-o", "json", "--all", "--sys", mnt, "--family-timeout", "2s", "--timeout", "30s", "--no-runtimes"))
		var rep check.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("exit %d after %s: %v\n%s\n%s", code, took, err, out, errOut)
		}
		abandoned, read := map[string]bool{}, map[string]bool{}
		for _, f := range rep.Findings {
			if f.Severity == limits.Unknown && strings.Contains(f.Reason, "abandoned") {
				abandoned[f.Limit] = true
			} else if f.Severity != limits.Unknown {
				read[f.Limit] = true
			}
		}
		t.Logf("--sys on a hung mount: exit %d in %s; abandoned %v; read %d limits", code, took.Round(time.Millisecond), keys(abandoned), len(read))
		if len(abandoned) == 0 {
			t.Errorf("no family was abandoned with --sys on a mount that never answers:\n%s", out)
		}
		if !read["keys.count"] || !read["pids"] {
			t.Errorf("families that do not read /sys were not read: %v", keys(read))
		}
		if code != 2 && code != 3 && code != 1 && code != 0 {
			t.Errorf("exit %d", code)
		}
		if took > 20*time.Second {
			t.Errorf("check took %s with --family-timeout 2s", took)
		}
	})

	t.Run("proc on the mount", func(t *testing.T) {
		_, errOut, code, took := runHung(t, inHungFuse(t, mnt, false, "check", "--proc", mnt, "--timeout", "3s"))
		t.Logf("--proc on a hung mount: exit %d in %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(errOut))
		if code != 3 || !strings.Contains(errOut, "procfs") {
			t.Errorf("exit %d, stderr %q: want 3 naming procfs", code, errOut)
		}
		if took > 10*time.Second {
			t.Errorf("check took %s with --timeout 3s", took)
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		cmd := inHungFuse(t, mnt, false, "check", "--sys", mnt, "--family-timeout", "1h", "--timeout", "1h", "--no-runtimes")
		time.AfterFunc(2*time.Second, func() { cmd.Process.Signal(syscall.SIGTERM) })
		_, errOut, code, took := runHung(t, cmd)
		t.Logf("SIGTERM while a family is blocked: exit %d in %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(errOut))
		if code != 3 {
			t.Errorf("exit %d after SIGTERM, want 3", code)
		}
		if took > 6*time.Second {
			t.Errorf("enospc took %s to end after SIGTERM at 2s", took)
		}
	})
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
