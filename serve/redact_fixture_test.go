package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/check"
)

// On every fixture host's report, no holder's process name and no name a
// user gave an object is left in the redacted report, wherever the limits
// wrote it.
func TestRedactFixtures(t *testing.T) {
	goldens, _ := filepath.Glob("../testdata/hosts/*/check.json.golden")
	if len(goldens) == 0 {
		t.Fatal("no fixture reports")
	}
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		// The golden starts with the exit status line.
		if i := strings.IndexByte(string(b), '{'); i > 0 {
			b = b[i:]
		}
		var rep check.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		// A process name as the limits write it, "pid N (comm)"; a
		// user's name for an object wherever it is, unless it is also
		// a row's scope (a network namespace names its holder).
		secrets, scopes := map[string]bool{}, map[string]bool{}
		for _, f := range rep.Findings {
			scopes[f.Scope] = true
		}
		for _, f := range rep.Findings {
			for _, c := range f.Consumers {
				if c.Comm != "" {
					secrets["("+c.Comm+")"] = true
				}
				if c.UID != nil && c.Name != "" && !scopes[c.Name] {
					secrets[c.Name] = true
				}
			}
		}
		out, _ := json.Marshal(redact(&rep))
		for s := range secrets {
			if strings.Contains(string(out), s) {
				i := strings.Index(string(out), s)
				t.Errorf("%s: %s left in the redacted report: …%s…", filepath.Base(filepath.Dir(g)), s, out[max(0, i-120):min(len(out), i+60)])
			}
		}
	}
}
