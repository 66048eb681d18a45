package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// A message worded like a hidden limit that names something outside the
// catalog is an answer: said in the table and the JSON, exit status 2; a
// hidden limit's message offline exits 0.
func TestExplainOutsideExitStatus(t *testing.T) {
	for _, tc := range []struct {
		msg, kind string
		code      int
	}{
		{"Error: error allocating lock for new container: no space left on device", "locks", 2},
		{"write /sys/fs/cgroup/cpuset/test/cgroup.procs: no space left on device", "cpuset", 2},
		{"http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 1s", "", 0},
	} {
		var stdout, stderr bytes.Buffer
		code := RunWith(context.Background(), []string{"explain", "--offline", "-o", "json", tc.msg}, &stdout, &stderr, Config{})
		var res struct {
			Outside *struct{ Kind string }
			Causes  []struct {
				Limit      string
				Confidence float64
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || code != tc.code {
			t.Fatalf("%q: exit %d (want %d), %v: %s%s", tc.msg, code, tc.code, err, stdout.String(), stderr.String())
		}
		if tc.kind == "" {
			if res.Outside != nil || len(res.Causes) == 0 {
				t.Errorf("%q: %+v", tc.msg, res)
			}
			continue
		}
		if res.Outside == nil || res.Outside.Kind != tc.kind {
			t.Errorf("%q: outside %+v, want %s", tc.msg, res.Outside, tc.kind)
		}
		for _, c := range res.Causes {
			if c.Confidence >= 0.5 {
				t.Errorf("%q: %s at %.2f", tc.msg, c.Limit, c.Confidence)
			}
		}
		stdout.Reset()
		if code := RunWith(context.Background(), []string{"explain", "--offline", tc.msg}, &stdout, &stderr, Config{}); code != 2 || !strings.Contains(stdout.String(), "outside the catalog") {
			t.Errorf("%q, table: exit %d: %s", tc.msg, code, stdout.String())
		}
	}
}
