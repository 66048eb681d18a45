package census

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// lines is the number of lines a parser can see in b: newlines, plus a
// last line without one.
func lines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(statusCat))
	f.Add([]byte("Name:\tcat\nUid:\t100123\t100124\t100124\t100124\nThreads:\t1\n"))
	f.Add([]byte("Name:\tkworker/1:1-cgroup_pidlist_destroy\nThreads:\t1"))
	f.Add([]byte("Uid:\t1000\nThreads:\tmany\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parseStatus(b, nil)
		if !bytes.Contains(b, []byte("Name:")) && p.Comm != "" {
			t.Errorf("Comm %q without a Name line", p.Comm)
		}
		if !bytes.Contains(b, []byte("Threads:")) && p.Threads != 0 {
			t.Errorf("Threads %d without a Threads line", p.Threads)
		}
		if strings.Contains(p.Comm, "\n") {
			t.Errorf("Comm %q spans lines", p.Comm)
		}
	})
}

// FuzzParseStatusRoundTrip writes a status file in the kernel's format and
// reads it back.
func FuzzParseStatusRoundTrip(f *testing.F) {
	f.Add("cat", 0, 0, 1)
	f.Add("kworker/1:1-events", 100123, 100124, 4213)
	f.Add("my cat", -1, 65534, 0)
	f.Fuzz(func(t *testing.T, comm string, uid, euid, threads int) {
		if strings.ContainsAny(comm, "\n") || strings.TrimSpace(comm) != comm {
			return
		}
		in := fmt.Sprintf("Name:\t%s\nUmask:\t0022\nUid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\nThreads:\t%d\n", comm, uid, euid, euid, euid, threads)
		want := Process{Comm: comm, UID: uid, EUID: euid, Threads: threads}
		if got := parseStatus([]byte(in), nil); !reflect.DeepEqual(got, want) {
			t.Errorf("parseStatus(%q) = %+v, want %+v", in, got, want)
		}
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte(cgroupV1Host))
	f.Add([]byte(cgroupDocker))
	f.Add([]byte("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-b98d.scope"))
	f.Add([]byte("4:memory\nx:memory:/a\n0::/a:b:c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// bufio drops a \r before \n, so a path ending in \r does not
		// survive the round trip; the kernel does not escape it either.
		if bytes.Contains(b, []byte("\r")) {
			return
		}
		got := parseCgroup(b)
		if len(got) > lines(b) {
			t.Fatalf("%d memberships from %d lines", len(got), lines(b))
		}
		// Writing the memberships back and parsing them again gives the
		// same memberships.
		var w strings.Builder
		for _, m := range got {
			if strings.Contains(m.Path, "\n") {
				t.Fatalf("path %q spans lines", m.Path)
			}
			fmt.Fprintf(&w, "%d:%s:%s\n", m.Hierarchy, strings.Join(m.Controllers, ","), m.Path)
		}
		again := parseCgroup([]byte(w.String()))
		if len(got) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(got, again) {
			t.Errorf("round trip:\n%+v\n%+v", got, again)
		}
	})
}

func FuzzCountInotifyWatches(f *testing.F) {
	f.Add([]byte(fdinfoInotify))
	f.Add([]byte("pos:\t0\ninotify wd:1 ino:3c4a3 sdev:fe00000 mask:100"))
	f.Add([]byte("inotify wd:\n\ninotify wd:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := countInotifyWatches(b)
		if n > lines(b) {
			t.Fatalf("%d watches from %d lines", n, lines(b))
		}
		want := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "inotify wd:") {
				want++
			}
		}
		if n != want {
			t.Errorf("countInotifyWatches = %d, want %d", n, want)
		}
	})
}

func FuzzParseNSLink(f *testing.F) {
	f.Add("user:[4026531837]")
	f.Add("mnt:[4026531832]")
	f.Add("user:[18446744073709551616]")
	f.Add("]")
	f.Add("[")
	f.Add("[]")
	f.Fuzz(func(t *testing.T, s string) {
		ino, err := parseNSLink(s)
		if err != nil {
			if ino != 0 {
				t.Errorf("parseNSLink(%q) = %d with error %v; want 0", s, ino, err)
			}
			return
		}
		i := strings.IndexByte(s, '[')
		if i < 0 || !strings.HasSuffix(s, "]") {
			t.Fatalf("parseNSLink(%q) = %d from a link without [N]", s, ino)
		}
		if digits := s[i+1 : len(s)-1]; strings.TrimLeft(digits, "0123456789") != "" || digits == "" {
			t.Errorf("parseNSLink(%q) = %d from non-digits %q", s, ino, digits)
		}
		// The kernel's own form parses back to the same inode.
		if again, err := parseNSLink(fmt.Sprintf("user:[%d]", ino)); err != nil || again != ino {
			t.Errorf("round trip of %d: %d, %v", ino, again, err)
		}
	})
}
