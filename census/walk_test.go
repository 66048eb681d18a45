package census

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// An fdinfo with every kind of line the walker counts.
const fdinfoMixed = "pos:\t0\nflags:\t02000000\n" +
	"tfd:        5 events:       19 data:                5  pos:0 ino:1038 sdev:e\n" +
	"fanotify flags:10 event-flags:0\n" +
	"fanotify ino:3c4a3 sdev:fe00000 mflags:0 mask:1 ignored_mask:0\n" +
	"fanotify mnt_id:17 mflags:0 mask:1 ignored_mask:0\n" +
	"fanotify fsid:1 mflags:0 mask:1 ignored_mask:0\n" +
	fdinfoInotify +
	"inotify wd:3 ino:1 sdev:fe00000 mask:100" // no newline at the end

// TestLineCounterPieces feeds fdinfo in pieces of every size: a prefix or
// a newline cut between two reads must count the same as the whole.
func TestLineCounterPieces(t *testing.T) {
	for _, prefixes := range [][]string{inotifyPrefixes, epollPrefixes, fanotifyPrefixes} {
		want := 0
		for _, l := range strings.Split(fdinfoMixed, "\n") {
			for _, p := range prefixes {
				if strings.HasPrefix(l, p) {
					want++
					break
				}
			}
		}
		for size := 1; size <= len(fdinfoMixed); size++ {
			c := lineCounter{prefixes: prefixes}
			for b := []byte(fdinfoMixed); len(b) > 0; {
				n := min(size, len(b))
				c.write(b[:n])
				b = b[n:]
			}
			if got := c.count(); got != want {
				t.Fatalf("%q in pieces of %d: %d, want %d", prefixes, size, got, want)
			}
		}
	}
}

// TestTakeFixture walks a /proc made of files: an inotify fdinfo larger
// than any pseudo-file is counted whole, streamed through the walker's
// fixed buffer; one that cannot be read marks the counts as a lower bound
// with the reason; a fifo is not waited on.
func TestTakeFixture(t *testing.T) {
	proc := t.TempDir()
	pid := filepath.Join(proc, "42")
	for _, d := range []string{"ns", "fd", "fdinfo"} {
		if err := os.MkdirAll(filepath.Join(pid, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(pid, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(pid, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("status", "Name:\ttail\nUid:\t264000\t264001\t264000\t264000\nThreads:\t1\nVmSize:\t 8400 kB\n")
	write("cgroup", "4:memory:/a\n0::/a\n")
	link("user:[4026531837]", "ns/user")
	link("net:[4026532000]", "ns/net")
	link("anon_inode:inotify", "fd/3") // the big one, fdinfo/3 a pipe
	link("anon_inode:[eventpoll]", "fd/4")
	write("fdinfo/4", fdinfoMixed)
	link("anon_inode:inotify", "fd/5") // fdinfo/5 unreadable: a directory
	if err := os.Mkdir(filepath.Join(pid, "fdinfo", "5"), 0o755); err != nil {
		t.Fatal(err)
	}
	link("/dev/null", "fd/7")
	// 700,000 watches: an fdinfo of 78 MB, over host.MaxPseudoFile, in
	// memory (a memfd behind its /proc/self/fd link), not on a disk.
	const watches = 700_000
	line := "inotify wd:1 ino:3c4a3 sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a3c4030000000000\n"
	if watches*len(line) <= host.MaxPseudoFile {
		t.Fatalf("fixture fdinfo of %d bytes is not over %d", watches*len(line), host.MaxPseudoFile)
	}
	mfd, err := unix.MemfdCreate("fdinfo", unix.MFD_CLOEXEC)
	if err != nil {
		t.Skipf("memfd: %v", err)
	}
	big := os.NewFile(uintptr(mfd), "fdinfo")
	defer big.Close()
	if _, err := big.WriteString("pos:\t0\nflags:\t00\n"); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat(line, 1000))
	for i := 0; i < watches/1000; i++ {
		if _, err := big.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	chunk = nil
	link(fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), mfd), "fdinfo/3")
	// A fifo where a pseudo-file should be reads as empty, at once.
	if err := unix.Mkfifo(filepath.Join(pid, "fdinfo", "6"), 0o600); err != nil {
		t.Fatal(err)
	}
	link("anon_inode:[fanotify]", "fd/6")

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := Take(context.Background(), host.New(proc, "/sys", "/"), Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Processes) != 1 {
		t.Fatalf("%d processes, want 1", len(c.Processes))
	}
	p := c.Processes[0]
	if p.PID != 42 || p.Comm != "tail" || p.UID != 264000 || p.EUID != 264001 || p.VmSizeKB != 8400 {
		t.Errorf("identity: %+v", p)
	}
	if p.NS[NSUser] != 4026531837 || p.NS[NSNet] != 4026532000 || p.UserNS != 4026531837 || p.MntNS != 0 {
		t.Errorf("namespaces %v, user %d mnt %d", p.NS, p.UserNS, p.MntNS)
	}
	if len(p.Cgroups) != 2 || p.Cgroups[0].Path != "/a" {
		t.Errorf("cgroups %+v", p.Cgroups)
	}
	if p.FDs != 5 || p.InotifyInstances != 2 || p.EpollInstances != 1 || p.FanotifyGroups != 1 || p.FanotifyMarks != 0 {
		t.Errorf("fds %d, inotify instances %d, epoll instances %d, fanotify groups %d marks %d; want 5, 2, 1, 1, 0",
			p.FDs, p.InotifyInstances, p.EpollInstances, p.FanotifyGroups, p.FanotifyMarks)
	}
	if p.InotifyWatches != watches {
		t.Errorf("inotify watches %d, want %d", p.InotifyWatches, watches)
	}
	if p.EpollWatches != 1 {
		t.Errorf("epoll watches %d, want 1", p.EpollWatches)
	}
	if p.FDErr == nil || !strings.Contains(p.FDErr.Error(), "fdinfo/5") || c.FDUnreadable != 1 {
		t.Errorf("unreadable fdinfo: FDErr %v, FDUnreadable %d", p.FDErr, c.FDUnreadable)
	}
	// Streaming, not reading whole: far less allocated than the fdinfo.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("the walk allocated %d bytes for a %d-byte fdinfo", alloc, watches*len(line))
	}
}

// BenchmarkWalkSelf is the walk of one process, this one, with an inotify
// instance of 20 watches: the per-process cost of the census.
func BenchmarkWalkSelf(b *testing.B) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		b.Skip(err)
	}
	defer unix.Close(fd)
	dir := b.TempDir()
	for i := 0; i < 20; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY); err != nil {
			b.Fatal(err)
		}
	}
	procfd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(procfd)
	w := newWalker()
	var p Process
	for b.Loop() {
		if !w.process(procfd, os.Getpid(), &p, Options{}) || p.InotifyWatches < 20 {
			b.Fatalf("walk of self: %+v", p)
		}
	}
}
