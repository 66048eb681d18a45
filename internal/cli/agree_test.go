package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckAndFixAgree runs check and fix on every fixture host: each
// sysctl fix plans to raise is raised to the very value check's advice
// names for the same row, so that an operator who copies the advice and
// one who runs fix --apply end up with the same host.
func TestCheckAndFixAgree(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/hosts/*/proc")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixture hosts found: %v", err)
	}
	setting := regexp.MustCompile(`([a-z0-9_]+(?:\.[a-z0-9_-]+)+)=([0-9]+)`)
	planned := 0
	for _, procDir := range dirs {
		dir := filepath.Dir(procDir)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			prepareFixture(t, dir)
			cfg := Config{HostHook: fixtureHost(t, dir), CheckHook: fixtureInventory(t, dir)}
			hostArgs := []string{"--proc", filepath.Join(dir, "proc"), "--sys", filepath.Join(dir, "sys"), "--root", filepath.Join(dir, "root")}
			run := func(args ...string) []byte {
				var stdout, stderr bytes.Buffer
				RunWith(context.Background(), append(append([]string{}, hostArgs...), args...), &stdout, &stderr, cfg)
				return stdout.Bytes()
			}
			var rep struct {
				Findings []struct {
					Limit, Scope string
					Remedy       []string
				}
			}
			if err := json.Unmarshal(run("check", "-o", "json"), &rep); err != nil {
				t.Fatalf("check -o json: %v", err)
			}
			advised := map[string]string{} // limit scope sysctl -> value
			for _, f := range rep.Findings {
				for _, r := range f.Remedy {
					if !strings.Contains(r, "sysctl -w") {
						continue
					}
					for _, m := range setting.FindAllStringSubmatch(r[strings.Index(r, "sysctl -w"):], -1) {
						advised[f.Limit+" "+f.Scope+" "+m[1]] = m[2]
					}
				}
			}
			var plan struct {
				Actions []struct {
					Kind, Sysctl, Limit, Scope string
					To                         int64
				}
			}
			if err := json.Unmarshal(run("fix", "-o", "json"), &plan); err != nil {
				t.Fatalf("fix -o json: %v", err)
			}
			for _, a := range plan.Actions {
				if a.Kind != "sysctl" {
					continue
				}
				planned++
				key := a.Limit + " " + a.Scope + " " + a.Sysctl
				if want, ok := advised[key]; !ok || want != fmt.Sprint(a.To) {
					t.Errorf("fix raises %s to %d for %s %s; check advises %q", a.Sysctl, a.To, a.Limit, a.Scope, want)
				}
			}
		})
	}
	t.Logf("%d planned sysctls compared with the advice", planned)
	if planned == 0 {
		t.Error("no fixture host made fix plan a sysctl: the test compared nothing")
	}
}
