package churn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/enospc/enospc/host"
)

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(strings.NewReader("Name:\tcontainerd\nVmRSS:\t   45036 kB\nThreads:\t12\n"))
	if err != nil || st.threads != 12 || st.rssBytes != 45036*1024 {
		t.Errorf("%+v %v", st, err)
	}
	if _, err := parseStatus(strings.NewReader("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Error("a status without VmRSS (a kernel thread) was accepted")
	}
}

func TestOpenFilesLimit(t *testing.T) {
	b := []byte("Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1048576              1048576              files     \n")
	if n := openFilesLimit(b); n != 1048576 {
		t.Errorf("%d", n)
	}
	if n := openFilesLimit([]byte("Max open files            unlimited            unlimited            files\n")); n != 0 {
		t.Errorf("unlimited: %d", n)
	}
}

func TestUnixSocketInodes(t *testing.T) {
	in := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 /run/containerd/containerd.sock
0000000000000000: 00000003 00000000 00000000 0001 03 31338 /run/containerd/containerd.sock
0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/containerd/containerd.sock.ttrpc
`
	got := unixSocketInodes(strings.NewReader(in), "/run/containerd/containerd.sock")
	if len(got) != 1 || !got["31337"] {
		t.Errorf("%v, want the listening socket 31337 only", got)
	}
}

// The daemon found by its socket is this process; its footprint is read.
func TestSocketOwner(t *testing.T) {
	h := hostNow()
	dir := t.TempDir()
	sock := filepath.Join(dir, "d.sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	pid, err := socketOwner(h, sock)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("owner %d %v, want %d", pid, err, os.Getpid())
	}
	os.MkdirAll(filepath.Join(dir, "state", "a", "b"), 0o755)
	fp := &footprint{h: h, address: sock, dirs: []string{filepath.Join(dir, "state"), filepath.Join(dir, "none")}}
	got := map[string]Reading{}
	for _, r := range fp.read(context.Background()) {
		got[r.Limit+" "+r.Scope] = r
	}
	if r := got[FootFiles+" "+filepath.Join(dir, "state")]; r.Value != 2 || r.Err != nil {
		t.Errorf("files %+v, want 2", r)
	}
	if r := got[FootFiles+" "+filepath.Join(dir, "none")]; r.Value != 0 || r.Err != nil {
		t.Errorf("files of a missing dir %+v, want 0", r)
	}
	if r := got[FootThreads+" daemon on "+sock]; r.Value < 1 || r.Err != nil {
		t.Errorf("threads %+v", r)
	}
	if r := got[FootFDs+" daemon on "+sock]; r.Value < 3 || r.Max == 0 {
		t.Errorf("fds %+v", r)
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add("Threads:\t3\nVmRSS:\t10 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStatus(strings.NewReader(s))
		if err == nil && (st.threads < 0 || st.rssBytes < 0) {
			t.Fatalf("%+v", st)
		}
	})
}

func FuzzUnixSocketInodes(f *testing.F) {
	f.Add("0: 00000002 00000000 00010000 0001 01 31337 /s\n", "/s")
	f.Fuzz(func(t *testing.T, s, path string) {
		for ino := range unixSocketInodes(strings.NewReader(s), path) {
			if ino == "" {
				t.Fatal("empty inode")
			}
		}
	})
}

func hostNow() *host.Host { return host.New("/proc", "/sys", "/") }
