package limits

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// lines is the number of lines a parser can see in s: newlines, plus a
// last line without one.
func lines(s string) int {
	n := strings.Count(s, "\n")
	if len(s) > 0 && s[len(s)-1] != '\n' {
		n++
	}
	return n
}

// formatKeyUser writes u as the kernel does (proc_key_users_show).
func formatKeyUser(u KeyUser) string {
	return fmt.Sprintf("%5d: %5d %d/%d %d/%d %d/%d\n", u.UID, u.Usage, u.Keys, u.Instant, u.QuotaKeys, u.MaxKeys, u.QuotaBytes, u.MaxBytes)
}

// scannedLines are the lines bufio.ScanLines yields, before it drops a
// trailing \r.
func scannedLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func FuzzParseKeyUsers(f *testing.F) {
	f.Add(keyUsersHost)
	f.Add(keyUsersJenkins)
	f.Add("    0:     9 8/8 3/1000000 40/25000000\n 1000:    12 11/11 11/200\n")
	f.Add(" 1000:    12 11 11/200 1203/20000 \n\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseKeyUsers(strings.NewReader(in))
		if len(got) > lines(in) {
			t.Fatalf("%d users from %d lines", len(got), lines(in))
		}
		if err == nil {
			// Every line parsed or was blank.
			blank := 0
			for _, l := range scannedLines(in) {
				if strings.TrimSpace(l) == "" {
					blank++
				}
			}
			if len(got)+blank != lines(in) {
				t.Errorf("%d users and %d blank lines from %d lines, no error", len(got), blank, lines(in))
			}
		}
		// What the kernel would print for the users parses back to them.
		var w strings.Builder
		for _, u := range got {
			w.WriteString(formatKeyUser(u))
		}
		again, err := parseKeyUsers(strings.NewReader(w.String()))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip: %v\n%+v\n%+v", err, got, again)
		}
	})
}

func FuzzParseKeyUserLine(f *testing.F) {
	for _, l := range scannedLines(keyUsersHost + keyUsersJenkins) {
		f.Add(l)
	}
	f.Add(" 1000:    12 11 11/200 1203/20000")
	f.Add("root:    12 11/11 11/200 1203/20000")
	f.Fuzz(func(t *testing.T, line string) {
		u, err := parseKeyUserLine(line)
		if err != nil {
			if u != (KeyUser{}) {
				t.Errorf("%+v with error %v", u, err)
			}
			return
		}
		again, err := parseKeyUserLine(strings.TrimSuffix(formatKeyUser(u), "\n"))
		if err != nil || again != u {
			t.Errorf("round trip of %+v: %+v, %v", u, again, err)
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add(keysHost)
	f.Add("162eb8ae\tI--Q---\t1\tperm\t3f010000\t0\t0\tuser\tk: 7\n")
	f.Add("162eb8ae I--Q---     1 perm 3f010000     0     0 user      k:\n")
	f.Add("162eb8ae I--Q---     1 perm 3f010000  root     0 user      k: 7\n")
	f.Add("a b c d e 1 2 t \v x\n")
	f.Fuzz(func(t *testing.T, in string) {
		got := parseKeys(strings.NewReader(in))
		if len(got) > lines(in) {
			t.Fatalf("%d keys from %d lines", len(got), lines(in))
		}
		for _, k := range got {
			if k.ID == "" || k.Type == "" || strings.ContainsAny(k.ID+k.Flags+k.Type, " \t\n") {
				t.Errorf("bad fields %+v", k)
			}
			if strings.Contains(k.Description, "\n") || !strings.Contains(in, k.Description) {
				t.Errorf("description %q is not part of one input line", k.Description)
			}
		}
	})
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add(mountinfoHost)
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`)
	f.Add(`35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup  rw,memory`)
	f.Add(`611 29 0:4 net:[4026532281] /run/netns/cni-1c2d rw shared:245 - nsfs nsfs rw`)
	f.Add("3341 3321 0:970 / /tmp/mt2/My\u00a0Disk rw,relatime - tmpfs nbsp rw")
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime - ext3`)
	f.Add("1 2 3 4 5 6 -  \n - - - - - - - -")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := parseMountInfo(strings.NewReader(in))
		if err != nil {
			t.Fatal(err) // fuzz inputs stay under the scanner's 1 MiB line
		}
		if len(ms) > lines(in) {
			t.Fatalf("%d mounts from %d lines", len(ms), lines(in))
		}
		ok := 0
		for _, line := range scannedLines(in) {
			m, good := parseMountInfoLine(line)
			if !good {
				continue
			}
			ok++
			if m.MountPoint == "" || m.Root == "" || m.FSType == "" || m.Device == "" || m.Options == "" {
				t.Errorf("line %q: empty field in %+v", line, m)
			}
			if strings.ContainsAny(m.FSType+m.Device+m.Options, " ") {
				t.Errorf("line %q: space in a field: %+v", line, m)
			}
			if !strings.Contains(line, " - "+m.FSType+" ") {
				t.Errorf("line %q: fstype %q not right after the separator", line, m.FSType)
			}
		}
		if !strings.Contains(in, "\r") && ok != len(ms) {
			t.Errorf("%d lines parse alone, %d in the table", ok, len(ms))
		}
	})
}

// escapeMount escapes a path as the kernel's mangle() does for mountinfo.
func escapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzUnescapeOctal(f *testing.F) {
	f.Add("/tmp/mtest/a b")
	f.Add("tab\tsrc")
	f.Add(`a\b`)
	f.Add("\\040 \\\n")
	f.Add(`a\400\04\9`)
	f.Add("-")
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeOctal(s); len(got) > len(s) {
			t.Errorf("unescapeOctal(%q) = %q, longer", s, got)
		}
		if !strings.Contains(s, `\`) && unescapeOctal(s) != s {
			t.Errorf("unescapeOctal(%q) changed a string without escapes", s)
		}
		// What the kernel escapes comes back whole, and a line with s in
		// the mount point and as the source (mount -t tmpfs - /mnt/-: a
		// source may be "-") parses to it.
		esc := escapeMount(s)
		if got := unescapeOctal(esc); got != s {
			t.Errorf("unescapeOctal(escape(%q)) = %q", s, got)
		}
		if s == "" {
			return
		}
		m, ok := parseMountInfoLine("70 27 0:50 / /mnt/" + esc + " rw shared:1 - tmpfs " + esc + " rw")
		if !ok || m.MountPoint != "/mnt/"+s || m.Source != s {
			t.Errorf("mount point and source %q: %+v, %v", s, m, ok)
		}
	})
}

func FuzzParseFileNr(f *testing.F) {
	f.Add("423\t0\t2466170\n")
	f.Add("9344 0 9223372036854775807")
	f.Add("423\t0\n")
	f.Add("423\t0\t9223372036854775808\n")
	f.Fuzz(func(t *testing.T, in string) {
		nr, err := parseFileNr(strings.NewReader(in))
		if err != nil {
			if nr != (FileNr{}) {
				t.Errorf("%+v with error %v", nr, err)
			}
			return
		}
		again, err := parseFileNr(strings.NewReader(fmt.Sprintf("%d\t%d\t%d\n", nr.Allocated, nr.Free, nr.Max)))
		if err != nil || again != nr {
			t.Errorf("round trip of %+v: %+v, %v", nr, again, err)
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add("nr_descendants 0\nnr_subsys_perf_event 1\nnr_dying_descendants 0\n")
	f.Add("max 17\n")
	f.Add("  low 0\nhigh  3  ")
	f.Add("a 1 2\nnr_descendants\t5\n")
	f.Fuzz(func(t *testing.T, in string) {
		got := parseFlatKeyed([]byte(in))
		if len(got) > lines(in) {
			t.Fatalf("%d keys from %d lines", len(got), lines(in))
		}
		for k := range got {
			if strings.ContainsAny(k, " \n") {
				t.Errorf("key %q holds a separator", k)
			}
		}
		// Keys as cgroup files hold them (printable, no spaces) come back
		// from the kernel's "%s %llu\n".
		var w strings.Builder
		want := map[string]int64{}
		for k, v := range got {
			if k == "" || strings.TrimSpace(k) != k {
				continue
			}
			want[k] = v
			fmt.Fprintf(&w, "%s %d\n", k, v)
		}
		if again := parseFlatKeyed([]byte(w.String())); !reflect.DeepEqual(again, want) {
			t.Errorf("round trip:\n%v\n%v", want, again)
		}
	})
}

func FuzzReadCgroupInt(f *testing.F) {
	f.Add("max\n")
	f.Add("5\n")
	f.Add("")
	f.Add(" -1 ")
	f.Add("unlimited\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(dir, "cgroup.max.descendants")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := readCgroupInt(p)
		s := strings.TrimSpace(content)
		want, wantErr := strconv.ParseInt(s, 10, 64)
		if s == "max" {
			want, wantErr = -1, nil
		}
		if (err != nil) != (wantErr != nil) || (err == nil && v != want) {
			t.Errorf("readCgroupInt(%q) = %d, %v; want %d, %v", content, v, err, want, wantErr)
		}
	})
}

func FuzzOldKmemKernel(f *testing.F) {
	f.Add("3.10.0-1160.el7.x86_64")
	f.Add("4.4.0-116-generic")
	f.Add("6.18.44-fc-v669")
	f.Add("4.")
	f.Fuzz(func(t *testing.T, release string) {
		old := oldKmemKernel(release)
		// Only the leading major.minor decides: text after the minor's
		// digits is the distribution's.
		for _, suffix := range []string{"-generic", ".0-1160.el7.x86_64", "+"} {
			if strings.Contains(release, ".") && release[len(release)-1] >= '0' && release[len(release)-1] <= '9' &&
				oldKmemKernel(release+suffix) != old {
				t.Errorf("oldKmemKernel(%q) = %v, with %q %v", release, old, suffix, !old)
			}
		}
		if old && !strings.Contains(release, ".") {
			t.Errorf("oldKmemKernel(%q) without major.minor", release)
		}
	})
}

// FuzzOldKmemKernelVersions checks the 4.3 boundary on well-formed releases.
func FuzzOldKmemKernelVersions(f *testing.F) {
	f.Add(uint16(3), uint16(10))
	f.Add(uint16(4), uint16(2))
	f.Add(uint16(4), uint16(3))
	f.Fuzz(func(t *testing.T, major, minor uint16) {
		release := fmt.Sprintf("%d.%d.0-generic", major, minor)
		want := major < 4 || (major == 4 && minor < 3)
		if got := oldKmemKernel(release); got != want {
			t.Errorf("oldKmemKernel(%q) = %v, want %v", release, got, want)
		}
	})
}

func FuzzFifoTaskID(f *testing.F) {
	f.Add("test.32583-stderr")
	f.Add("-stdin")
	f.Add("a-stdout-stderr")
	f.Fuzz(func(t *testing.T, name string) {
		b := fifoTaskID([]byte(name))
		if b == nil {
			return
		}
		id := string(b)
		if id == "" {
			t.Errorf("fifoTaskID(%q) is empty, not nil", name)
		}
		if name != id+"-stdin" && name != id+"-stdout" && name != id+"-stderr" {
			t.Errorf("fifoTaskID(%q) = %q", name, id)
		}
	})
}
