package quote

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestTerminal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/var/lib/docker", "/var/lib/docker"},
		{"keyring _ses.3f2a: 1", "keyring _ses.3f2a: 1"},
		{`printf '%s\n'`, `printf '%s\n'`},
		{"café über 日本", "café über 日本"},
		{"\x1b[2J\x1b[HALL LIMITS OK", `\x1b[2J\x1b[HALL LIMITS OK`},
		{"\x1b]0;owned\x07", `\x1b]0;owned\x07`},
		{"/mnt/a\nok       keys.count", `/mnt/a\nok       keys.count`},
		{"a\rb\tc\x00d\x7f", `a\rb\tc\x00d\x7f`},
		{"\u009b2J", `\u009b2J`},                   // C1 CSI, valid UTF-8
		{"\xc2\x9b", `\u009b`},                     // the same, as bytes
		{"\x9b2J", `\x9b2J`},                       // C1 CSI as a raw byte: not UTF-8
		{"evil\u202etxt.exe", `evil\u202etxt.exe`}, // right-to-left override
		{"a\u2066b\u2069c\u200bd\ufeffe", `a\u2066b\u2069c\u200bd\ufeffe`},
		{"line\u2028sep", `line\u2028sep`},
		{"no\u00a0break", `no\u00a0break`},
		{"\U000f0000", `\U000f0000`}, // private use
		{"\xff\xfe/mnt", `\xff\xfe/mnt`},
		{"\xe2\x80", `\xe2\x80`}, // a cut sequence
	}
	for _, tt := range tests {
		if got := Terminal(tt.in); got != tt.want {
			t.Errorf("Terminal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"/run", "/run"},
		{"/var/lib/docker", "/var/lib/docker"},
		{"/sys/fs/cgroup/kubepods.slice/pids.max", "/sys/fs/cgroup/kubepods.slice/pids.max"},
		{"user@host:/a,b=c%d+e", "user@host:/a,b=c%d+e"},
		{"/mnt/x;$(id)", `'/mnt/x;$(id)'`},
		{"/mnt/my disk", `'/mnt/my disk'`},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"/mnt/`id`", "'/mnt/`id`'"},
		{"*", "'*'"},
		{"~root", "'~root'"},
		{"a\nb", "'a\nb'"},
		{"[::1]:80", "'[::1]:80'"},
	}
	for _, tt := range tests {
		if got := Shell(tt.in); got != tt.want {
			t.Errorf("Shell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestShellRoundTrip runs the quoted words through sh.
func TestShellRoundTrip(t *testing.T) {
	for _, s := range []string{"/mnt/x;$(id)", "it's", "a\nb", "\x1b[2J", "$HOME", "`id`", "\\", "-n", "*", "\xff"} {
		shellRoundTrip(t, s)
	}
}

func shellRoundTrip(t *testing.T, s string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, "-c", "printf %s "+Shell(s))
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c 'printf %%s %s': %v: %s", Shell(s), err, stderr.String())
	}
	if string(out) != s {
		t.Fatalf("sh gave %q for %q (quoted %q)", out, s, Shell(s))
	}
}

func TestJSON(t *testing.T) {
	in := map[string]string{"k": "ok\u202eKO \u009b2J \U000f0000 café \x1b\n", "plain": "/var/lib/docker"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(b)
	want := `{"k":"ok\u202eKO \u009b2J \udb80\udc00 café \u001b\n","plain":"/var/lib/docker"}`
	if string(got) != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, in) {
		t.Errorf("JSON's output decodes to %q, %v; want %q", back, err, in)
	}
	if plain := []byte(`{"a":"b"}`); &JSON(plain)[0] != &plain[0] {
		t.Error("JSON copied text it had nothing to change in")
	}
}

func FuzzJSON(f *testing.F) {
	f.Add("ok\u202eKO\u009b\U000f0000")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		got := JSON(b)
		var back, orig string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("JSON(%s) = %s: %v", b, got, err)
		}
		json.Unmarshal(b, &orig)
		if back != orig {
			t.Fatalf("JSON(%s) decodes to %q, want %q", b, back, orig)
		}
		for _, r := range string(got) {
			if r < 0x20 || r >= 0x7f && !unicode.IsPrint(r) {
				t.Fatalf("JSON(%s) = %s: holds %U", b, got, r)
			}
		}
	})
}

func FuzzTerminal(f *testing.F) {
	for _, s := range []string{"/var/lib/docker", "\x1b[2J", "a\nb", "\u202e", "\xff", "日本\x9b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Terminal(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Terminal(%q) = %q: not UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) {
				t.Fatalf("Terminal(%q) = %q: holds %U", s, got, r)
			}
		}
		if plainASCII(s) && got != s {
			t.Fatalf("Terminal(%q) = %q: changed printable ASCII", s, got)
		}
	})
}

func FuzzShell(f *testing.F) {
	for _, s := range []string{"/run", "/mnt/x;$(id)", "it's", "a\nb", "\x1b", "'\"'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("no argument holds a NUL")
		}
		shellRoundTrip(t, s)
	})
}
