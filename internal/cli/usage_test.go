package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/logs"
)

// A usage error exits 3 (unknown: enospc did not look), as documented, not
// 1, which is a warning.
func TestUsageErrorsExit3(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"check", "--no-such-flag"},
		{"logs", "--since"},
		{"bogus"},
		{"check", "extra-argument"},
		{"explain"},
		{"explain", "one", "two"},
		{"check", "--statfs-timeout", "soon"},
		{"logs", "-o", "yaml", "-"},
		{"logs", "--since", "last tuesday", "-"},
	} {
		var stdout, stderr bytes.Buffer
		code := RunWith(context.Background(), args, &stdout, &stderr, Config{Stdin: strings.NewReader("")})
		if code != 3 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 3 and the reason", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := RunWith(context.Background(), []string{"--help"}, &stdout, &stderr, Config{}); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}

// explain - reads at most 1 MiB of stdin and says so when there was more.
func TestExplainStdinCut(t *testing.T) {
	msg := "mkdir /sys/fs/cgroup/memory/kubepods/pod1: no space left on device "
	for _, tc := range []struct {
		in   string
		note bool
	}{
		{msg, false},
		{msg + strings.Repeat("x", 2<<20), true},
	} {
		var stdout, stderr bytes.Buffer
		code := RunWith(context.Background(), []string{"explain", "--offline", "-o", "json", "-"}, &stdout, &stderr, Config{Stdin: strings.NewReader(tc.in)})
		var res struct{ Note string }
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || code != 0 {
			t.Fatalf("exit %d, %v: %s", code, err, stderr.String())
		}
		if got := strings.Contains(res.Note, "more than 1 MiB"); got != tc.note {
			t.Errorf("%d bytes: note %q", len(tc.in), res.Note)
		}
		stdout.Reset()
		RunWith(context.Background(), []string{"explain", "--offline", "-"}, &stdout, &stderr, Config{Stdin: strings.NewReader(tc.in)})
		if got := strings.Contains(stdout.String(), "more than 1 MiB"); got != tc.note {
			t.Errorf("%d bytes, table: %q", len(tc.in), stdout.String())
		}
	}
}

// logs on a .gz cut short names the file as truncated, in the table and
// in JSON, and still reports what it read before the cut.
func TestLogsTruncatedGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(logs.DenseLog(256 << 10))
	zw.Close()
	path := filepath.Join(t.TempDir(), "syslog.2.gz")
	if err := os.WriteFile(path, gz.Bytes()[:gz.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := RunWith(context.Background(), []string{"logs", path}, &stdout, &stderr, Config{})
	if code != 1 || !strings.Contains(stdout.String(), "note: "+path+": truncated") {
		t.Errorf("exit %d (want 1, errors found):\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	RunWith(context.Background(), []string{"logs", "-o", "json", path}, &stdout, &stderr, Config{})
	var rep logs.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Sources) != 1 || rep.Sources[0].Name != path || !strings.Contains(rep.Sources[0].Error, "truncated") || rep.Matched == 0 {
		t.Errorf("json: %+v", rep)
	}
}
