package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/enospc/enospc/internal/fixture"
)

// The attacks of a user who shares the host with enospc: key descriptions
// and mount points are theirs to choose.
const (
	// Clears the screen, homes the cursor, prints a verdict and sets the
	// window title.
	hostileClear = "\x1b[2J\x1b[HALL LIMITS OK\x1b]0;all ok\x07"
	// Right-to-left override: shows "keyring _ses.txt.exe"-like lies.
	hostileBidi = "0ok\u202eKO\u2066x\u2069\u200b"
	// C1 CSI (as UTF-8 and as a raw byte) and a byte that is no UTF-8.
	hostileC1 = "0c1\u009b2J\x9b2J\xff\xfe"
	// A mount point whose newline (\012 in mountinfo) forges a table row.
	forgedRow = "/mnt/a\nok        disk                x"
	// A mount point that runs a command where pasted unquoted.
	hostileMount = "/mnt/x;$(id)"
)

// hostileHost copies the Jenkins fixture host and gives uid 1001 keys
// with hostile descriptions, the host hostile mount points (full, so that
// their rows show holders and remedies) and a hostile host name.
func hostileHost(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "hostile")
	if out, err := exec.Command("cp", "-a", "../../testdata/hosts/jenkins-keyring", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	appendFile := func(name, text string) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	// Their descriptions sort before "_ses.": they are the holders listed.
	appendFile("proc/keys",
		"0a000001 I--Q---     1 perm 3f010000  1001  1001 user      "+hostileClear+": 5\n"+
			"0a000002 I--Q---     1 perm 3f010000  1001  1001 user      "+hostileBidi+": 5\n"+
			"0a000003 I--Q---     1 perm 3f010000  1001  1001 keyring   "+hostileC1+": 1\n")
	appendFile("proc/1/mountinfo",
		"900 24 0:90 / /mnt/a\\012ok\\040\\040\\040\\040\\040\\040\\040\\040disk\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040\\040x rw - tmpfs tmpfs rw\n"+
			"901 24 0:91 / /mnt/x;$(id) rw - tmpfs tmpfs rw\n"+
			"902 24 0:92 / /mnt/\\033[2J rw - tmpfs evil\\033]0;t\\007 rw\n"+
			"903 24 0:93 / /mnt/\xff\xfe rw - tmpfs tmpfs rw\n")
	if err := os.WriteFile(filepath.Join(dir, "proc/sys/kernel/hostname"), []byte("node\x1b]0;pwned\x07\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "statfs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var statfs map[string]fixture.Statfs
	if err := json.Unmarshal(b, &statfs); err != nil {
		t.Fatal(err)
	}
	full := fixture.Statfs{BlockSize: 4096, Blocks: 1000, Files: 1000}
	// JSON cannot carry /mnt/\xff\xfe: that one is not full.
	for _, mp := range []string{forgedRow, hostileMount, "/mnt/\x1b[2J"} {
		statfs[mp] = full
	}
	if b, err = json.Marshal(statfs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "statfs.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertInert fails when out holds anything a terminal would act on: a
// control character but the line ends, a byte that is not UTF-8, a C1
// control, a format or bidi character.
func assertInert(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: not valid UTF-8:\n%q", what, out)
	}
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if r < 0x20 || r == 0x7f || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			line := out[strings.LastIndexByte(out[:i], '\n')+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			t.Errorf("%s: raw %U in line %q", what, r, line)
		}
	}
}

func TestHostileText(t *testing.T) {
	dir := hostileHost(t)
	cfg := Config{HostHook: fixtureHost(t, dir), CheckHook: fixtureInventory(t, dir)}
	hostArgs := []string{"--proc", filepath.Join(dir, "proc"), "--sys", filepath.Join(dir, "sys"), "--root", filepath.Join(dir, "root")}
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		RunWith(context.Background(), append(append([]string{}, hostArgs...), args...), &stdout, &stderr, cfg)
		return stdout.String() + stderr.String()
	}

	table := run("check", "--all")
	assertInert(t, "check", table)
	for _, want := range []string{
		`enospc check  host node\x1b]0;pwned\x07  kernel`,
		`\x1b[2J\x1b[HALL LIMITS OK\x1b]0;all ok\x07`,
		`0ok\u202eKO\u2066x\u2069\u200b`,
		`0c1\u009b2J\x9b2J\xff\xfe`,
		`/mnt/\xff\xfe (tmpfs tmpfs)`,
		`du -xh --max-depth=2 '/mnt/a\nok        disk                x'`,
		`du -xh --max-depth=2 '/mnt/x;$(id)' | sort -h | tail`,
		`mount -o remount,nr_inodes=N '/mnt/x;$(id)'`,
		`du -xh --max-depth=2 '/mnt/\x1b[2J' | sort -h | tail`,
	} {
		if !strings.Contains(table, want) {
			t.Errorf("check: no %s in\n%s", want, table)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "ok        disk                /") && !strings.Contains(line, "(") {
			t.Errorf("check: a forged row: %q", line)
		}
	}
	if strings.Contains(table, "max-depth=2 /mnt/x;$(id)") {
		t.Error("check: the mount point is unquoted in a command")
	}

	grouped := run("check", "--by", "container")
	assertInert(t, "check --by container", grouped)

	npd := run("check", "-o", "npd")
	assertInert(t, "check -o npd", npd)
	if n := strings.Count(npd, "\n"); n != 1 {
		t.Errorf("check -o npd: %d lines, want 1:\n%s", n, npd)
	}

	// JSON is data: the host's text as it is, escaped the JSON way.
	js := run("check", "-o", "json")
	assertInert(t, "check -o json", js)
	var rep struct {
		Host     string `json:"host"`
		Findings []struct {
			Scope     string   `json:"scope"`
			Remedy    []string `json:"remedy"`
			Consumers []struct {
				Name string `json:"name"`
			} `json:"consumers"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("check -o json: %v", err)
	}
	var names, remedies []string
	for _, f := range rep.Findings {
		remedies = append(remedies, f.Remedy...)
		for _, c := range f.Consumers {
			names = append(names, c.Name)
		}
	}
	if !strings.Contains(strings.Join(names, "\n"), "user "+hostileClear) {
		t.Errorf("check -o json: the key description is not kept as it is: %q", names)
	}
	if !strings.Contains(strings.Join(remedies, "\n"), `du -xh --max-depth=2 '/mnt/x;$(id)'`) {
		t.Errorf("check -o json: no quoted du in %q", remedies)
	}

	for _, args := range [][]string{
		{"fix"},
		{"explain", "create session key: disk quota exceeded"},
		{"explain", "mkdir /mnt/x: no space left on device"},
	} {
		assertInert(t, strings.Join(args, " "), run(args...))
	}
}

// TestHostileLogs feeds logs a log whose lines and file name carry escape
// sequences.
func TestHostileLogs(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "kubelet\x1b[2J.log")
	line := "Nov 22 07:00:00 node kubelet[1]: \x1b]0;owned\x07\x1b[2JError: failed to create fsnotify watcher: too many open files \u202e\xff\n"
	if err := os.WriteFile(name, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "unreadable\x1b[31m.log"), nil, 0o000); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	RunWith(context.Background(), []string{"logs", dir, filepath.Join(dir, "missing\x1b[5m")}, &stdout, &stderr, Config{})
	out := stdout.String() + stderr.String()
	assertInert(t, "logs", out)
	if !strings.Contains(out, `\x1b]0;owned\x07\x1b[2JError`) {
		t.Errorf("logs: the example line is not shown escaped:\n%s", out)
	}
	if !strings.Contains(out, `missing\x1b[5m`) {
		t.Errorf("logs: the missing file's name is not shown escaped:\n%s", out)
	}
}
