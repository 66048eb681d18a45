//go:build lab

package kernel

// Filesystem inodes: a private tmpfs with a fixed nr_inodes runs out of
// inodes while its blocks are nearly all free, the /run failure of
// containerd#2421 in small.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

func TestTmpfsInodes(t *testing.T) {
	const nrInodes = 200
	const source = "enospc-lab-inodes"
	dir := labkit.MountTmpfs(t, source, fmt.Sprintf("size=64m,nr_inodes=%d,mode=0755", nrInodes))

	// Create empty files until the kernel refuses (bounded).
	var created int
	var lastErr error
	for i := 0; i < 10*nrInodes; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			lastErr = err
			break
		}
		f.Close()
		created++
	}
	if lastErr == nil {
		t.Fatalf("created %d files on a tmpfs with nr_inodes=%d and never hit a limit", created, nrInodes)
	}
	t.Logf("created %d files, then: %v (%s)", created, lastErr, statusOf(errnoOf(lastErr)))
	if !errors.Is(lastErr, syscall.ENOSPC) {
		t.Fatalf("file creation failed with %v, want ENOSPC", lastErr)
	}
	// What a real program prints.
	out, err := exec.Command("touch", filepath.Join(dir, "one-more")).CombinedOutput()
	t.Logf("touch printed: %q (%v)", strings.TrimSpace(string(out)), err)
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Errorf("touch on the full tmpfs: %v %q, want No space left on device", err, out)
	}

	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("statfs: files %d free %d, blocks %d free %d", st.Files, st.Ffree, st.Blocks, st.Bfree)

	rep, code := labkit.RunCheck(t)
	// The scope is "MOUNTPOINT (FSTYPE SOURCE)".
	scope := fmt.Sprintf("%s (tmpfs %s)", dir, source)
	u := labkit.Find(t, rep, "inodes", func(s string) bool { return strings.HasPrefix(s, dir+" ") })
	t.Logf("check: %s", describe(u))
	if u.Scope != scope {
		t.Errorf("inodes scope %q, want %q", u.Scope, scope)
	}
	if u.Severity != limits.Critical {
		t.Errorf("inodes %s is %s, want critical", dir, u.Severity)
	}
	if u.Max != nrInodes || u.Used != nrInodes {
		t.Errorf("inodes %s: used %d max %d, want %d of %d (the root directory and %d files)", dir, u.Used, u.Max, nrInodes, nrInodes, created)
	}
	if len(u.Remedy) == 0 || !strings.Contains(strings.Join(u.Remedy, "\n"), dir) {
		t.Errorf("inodes %s: remedy does not name the mount point: %q", dir, u.Remedy)
	}
	d := labkit.Find(t, rep, "disk", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(d))
	if d.Severity != limits.OK {
		t.Errorf("disk %s is %s, want ok: its blocks are free (%d of %d used)", dir, d.Severity, d.Used, d.Max)
	}
	if d.Max != 64<<20 {
		t.Errorf("disk %s max %d, want 64MiB", dir, d.Max)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}
}
