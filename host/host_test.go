package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStatfsTimesOutOnHungFilesystem(t *testing.T) {
	h := New("/proc", "/sys", "/")
	release := make(chan struct{})
	defer close(release)
	h.StatfsFunc = func(string) (Statfs, error) {
		<-release // a dead NFS server: the call never returns
		return Statfs{}, nil
	}
	h.StatfsTimeout = 50 * time.Millisecond
	start := time.Now()
	_, err := h.Statfs(context.Background(), "/mnt/nfs")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("statfs returned after %s, want about 50ms", d)
	}
}

func TestStatfsRealRoot(t *testing.T) {
	h := New("/proc", "/sys", "/")
	st, err := h.Statfs(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if st.Blocks == 0 || st.BlockSize == 0 || st.BlocksFree > st.Blocks {
		t.Fatalf("implausible statfs of /: %+v", st)
	}
}

func TestSysctlInt(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, "sys", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kernel/keys/maxbytes", "20000\n")
	write("kernel/pid_max", "lots\n")
	h := New(dir, "/sys", "/")
	if v, err := h.SysctlInt("kernel.keys.maxbytes"); err != nil || v != 20000 {
		t.Fatalf("maxbytes = %d, %v; want 20000", v, err)
	}
	if _, err := h.SysctlInt("kernel.pid_max"); err == nil || !strings.Contains(err.Error(), "kernel.pid_max") {
		t.Fatalf("malformed sysctl: err = %v, want one naming the sysctl", err)
	}
	if _, err := h.SysctlInt("fs.mount-max"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing sysctl: err = %v, want not-exist", err)
	}
}

func TestReadFileIgnoresStatSizeAndBounds(t *testing.T) {
	// /proc files stat as 0 bytes and still have content.
	b, err := ReadFile("/proc/self/status")
	if err != nil || !strings.Contains(string(b), "Name:") {
		t.Fatalf("read /proc/self/status: %v, %q", err, b)
	}
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxPseudoFile + 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: err = %v, want a size error", err)
	}
}

func TestLiveHost(t *testing.T) {
	if !New("/proc", "/sys", "/").Live() {
		t.Fatal("/proc is not seen as the live procfs")
	}
	if New(t.TempDir(), "/sys", "/").Live() {
		t.Fatal("a plain directory is seen as the live procfs")
	}
}

// TestReadFileAsUID checks that the foreign filesystem uid is in force
// during the read (root's file becomes unreadable: setfsuid drops the
// filesystem capabilities) and gone afterwards.
func TestReadFileAsUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setfsuid to another uid needs root; the lab and CI run as root")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(dir, "root-only")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "uid-4242")
	if err := os.WriteFile(mine, []byte("owned"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mine, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFileAsUID(secret, 4242); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("root-only file as uid 4242: err = %v, want permission denied", err)
	}
	if b, err := ReadFileAsUID(mine, 4242); err != nil || string(b) != "owned" {
		t.Fatalf("uid 4242's file as uid 4242: %q, %v", b, err)
	}
	for i := 0; i < 20; i++ { // whichever thread runs us, root is root again
		if _, err := ReadFile(secret); err != nil {
			t.Fatalf("after ReadFileAsUID, root cannot read its file: %v", err)
		}
	}
}
