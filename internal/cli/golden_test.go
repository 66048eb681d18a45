package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/hosts")

// fixtureClock is the time every golden report carries.
var fixtureClock = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// fixtureHost serves a fixture tree: statfs numbers from its statfs.json
// (a path that is no mount point gets the numbers of the mount it is on; an
// entry with "hang" never answers, like a dead NFS server), disk quotas by
// mount point from its quota.json (none when it has none: quotactl never
// runs on a fixture) and the fixed clock.
func fixtureHost(t *testing.T, dir string) func(*host.Host) {
	b, err := os.ReadFile(filepath.Join(dir, "statfs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table map[string]struct {
		BlockSize   int64  `json:"bsize"`
		Blocks      uint64 `json:"blocks"`
		BlocksFree  uint64 `json:"bfree"`
		BlocksAvail uint64 `json:"bavail"`
		Files       uint64 `json:"files"`
		FilesFree   uint64 `json:"ffree"`
		Hang        bool   `json:"hang"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	quotas := map[string][]host.Quota{}
	if b, err := os.ReadFile(filepath.Join(dir, "quota.json")); err == nil {
		if err := json.Unmarshal(b, &quotas); err != nil {
			t.Fatalf("quota.json: %v", err)
		}
	}
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	root, err := filepath.Abs(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	return func(h *host.Host) {
		h.Now = func() time.Time { return fixtureClock }
		h.StatfsTimeout = 200 * time.Millisecond
		h.QuotaFunc = func(mountpoint string) ([]host.Quota, error) {
			if q, ok := quotas[mountpoint]; ok {
				return q, nil
			}
			return nil, fmt.Errorf("%s has no quotas in the fixture", mountpoint)
		}
		h.StatfsFunc = func(path string) (host.Statfs, error) {
			abs, _ := filepath.Abs(path)
			rel := "/" + strings.TrimPrefix(strings.TrimPrefix(abs, root), "/")
			for p := rel; ; p = filepath.Dir(p) {
				if st, ok := table[p]; ok {
					if st.Hang {
						<-hung
						return host.Statfs{}, fmt.Errorf("fixture server gone")
					}
					return host.Statfs{BlockSize: st.BlockSize, Blocks: st.Blocks, BlocksFree: st.BlocksFree,
						BlocksAvail: st.BlocksAvail, Files: st.Files, FilesFree: st.FilesFree}, nil
				}
				if p == "/" {
					return host.Statfs{}, fmt.Errorf("%s is not in the fixture", path)
				}
			}
		}
	}
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
	inv := attrib.NewInventory()
	if b, err := os.ReadFile(filepath.Join(dir, "inventory.json")); err == nil {
		if err := json.Unmarshal(b, inv); err != nil {
			t.Fatalf("inventory.json: %v", err)
		}
	}
	return func(o *check.Options) { o.Inventory = inv }
}

// prepareFixture makes the fixture's empty /dev/mqueue and backdates its
// fifo directories: git checks them
// out with the current time, and enospc leaves young directories alone.
func prepareFixture(t *testing.T, dir string) {
	// git keeps no empty directory: the mqueue filesystem every fixture
	// host mounts at /dev/mqueue holds no queue.
	if err := os.MkdirAll(filepath.Join(dir, "root", "dev", "mqueue"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "root", "run", "containerd", "fifo")
	entries, err := os.ReadDir(fifo)
	if err != nil {
		return
	}
	old := fixtureClock.Add(-time.Hour)
	for _, e := range entries {
		if err := os.Chtimes(filepath.Join(fifo, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
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
