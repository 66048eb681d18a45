package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/hosts")

// fixtureClock is the time every golden report carries.
var fixtureClock = fixture.Clock

// fixtureHost serves a fixture tree (fixture.Host.Hook): statfs numbers
// from its statfs.json, disk quotas from its quota.json, the fixed clock.
func fixtureHost(t *testing.T, dir string) func(*host.Host) {
	f, err := fixture.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	return f.Hook(hung)
}

// groupedBy names the fixture hosts whose holdings are also grouped, and
// by what; groupedOnly narrows the JSON of the grouping to the limits that
// matter to them.
var (
	groupedBy   = map[string]string{"jenkins-keyring": "container", "inotify-exhausted": "pod"}
	groupedOnly = "keys.count,leak.keyrings,inotify.watches,inotify.instances,leak.cgroups"
)

// fixtureInventory serves the host's inventory.json as what its container
// runtimes list; a host without one has no runtime.
func fixtureInventory(t *testing.T, dir string) func(*check.Options) {
	f, err := fixture.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *check.Options) { o.Inventory = f.Inventory }
}

// prepareFixture makes what git cannot keep (fixture.Prepare).
func prepareFixture(t *testing.T, dir string) {
	if err := fixture.Prepare(dir); err != nil {
		t.Fatal(err)
	}
}

func TestCheckGolden(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/hosts/*/proc")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixture hosts found: %v", err)
	}
	for _, procDir := range dirs {
		dir := filepath.Dir(procDir)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			prepareFixture(t, dir)
			cfg := Config{HostHook: fixtureHost(t, dir), CheckHook: fixtureInventory(t, dir)}
			runs := map[string][]string{"json": {"-o", "json"}, "table": {"-o", "table"}}
			if by, ok := groupedBy[name]; ok {
				runs["by-"+by] = []string{"-o", "table", "--by", by}
				runs["by-"+by+".json"] = []string{"-o", "json", "--by", by, "--only", groupedOnly}
			}
			for format, extra := range runs {
				args := append([]string{"--proc", filepath.Join(dir, "proc"), "--sys", filepath.Join(dir, "sys"), "--root", filepath.Join(dir, "root"), "check"}, extra...)
				var stdout, stderr bytes.Buffer
				code := RunWith(context.Background(), args, &stdout, &stderr, cfg)
				if stderr.Len() > 0 {
					t.Errorf("stderr: %s", stderr.String())
				}
				got := fmt.Sprintf("exit %d\n%s", code, stdout.String())
				golden := filepath.Join(dir, "check."+format+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
				}
				if got != string(want) {
					t.Errorf("check -o %s differs from %s (go test ./internal/cli -update rewrites it):\n%s", format, golden, lineDiff(string(want), got))
				}
			}
		})
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, a, c)
			shown++
		}
	}
	return b.String()
}

// TestExplainLogsGolden runs explain on the Jenkins fixture host (live
// and offline) and logs on the node-1 fixture logs; go test
// ./internal/cli -update rewrites the goldens.
func TestExplainLogsGolden(t *testing.T) {
	hostDir := "../../testdata/hosts/jenkins-keyring"
	seed := `OCI runtime create failed: container_linux.go:345: starting container process caused "process_linux.go:424: container init caused \"join session keyring: create session key: disk quota exceeded\"": unknown`
	hostArgs := []string{"--proc", hostDir + "/proc", "--sys", hostDir + "/sys", "--root", hostDir + "/root"}
	logDir := "../../testdata/logs/node-1"
	runs := []struct {
		golden string
		args   []string
		cfg    Config
	}{
		{hostDir + "/explain.table.golden", append(append([]string{}, hostArgs...), "explain", seed), Config{HostHook: fixtureHost(t, hostDir), CheckHook: fixtureInventory(t, hostDir)}},
		{hostDir + "/explain.json.golden", append(append([]string{}, hostArgs...), "explain", "-o", "json", seed), Config{HostHook: fixtureHost(t, hostDir), CheckHook: fixtureInventory(t, hostDir)}},
		{hostDir + "/explain.offline.golden", append(append([]string{}, hostArgs...), "explain", "--offline", seed), Config{HostHook: fixtureHost(t, hostDir)}},
		{hostDir + "/fix.table.golden", append(append([]string{}, hostArgs...), "fix"), Config{HostHook: fixtureHost(t, hostDir), CheckHook: fixtureInventory(t, hostDir)}},
		{hostDir + "/fix.kubernetes.golden", append(append([]string{}, hostArgs...), "fix", "--kubernetes"), Config{HostHook: fixtureHost(t, hostDir), CheckHook: fixtureInventory(t, hostDir)}},
		{logDir + "/logs.table.golden", []string{"logs", logDir + "/var"}, Config{HostHook: func(h *host.Host) { h.Now = func() time.Time { return fixtureClock } }}},
		{logDir + "/logs.json.golden", []string{"logs", "-o", "json", logDir + "/var"}, Config{HostHook: func(h *host.Host) { h.Now = func() time.Time { return fixtureClock } }}},
		{logDir + "/logs.since.golden", []string{"logs", "--since", "2h", logDir + "/var"}, Config{HostHook: func(h *host.Host) { h.Now = func() time.Time { return fixtureClock } }}},
	}
	for _, r := range runs {
		t.Run(filepath.Base(r.golden), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := RunWith(context.Background(), r.args, &stdout, &stderr, r.cfg)
			got := fmt.Sprintf("exit %d\n%s%s", code, stdout.String(), stderr.String())
			if *update {
				if err := os.WriteFile(r.golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(r.golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("differs from %s (go test ./internal/cli -update rewrites it):\n%s", r.golden, lineDiff(string(want), got))
			}
		})
	}
}
