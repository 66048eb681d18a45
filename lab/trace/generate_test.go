//go:build lab

package trace

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/lab/labkit"
)

// The committed BPF objects and their Go files are what `go generate
// ./trace` makes from bpf/trace.c: regenerated here with the directive of
// trace/gen.go into a temporary directory, they must be byte for byte the
// same. The lab runs it because it has clang (scripts/test installs
// clang, llvm and libbpf-dev); without them it fails saying so.
func TestGeneratedObjectsAreCurrent(t *testing.T) {
	labkit.RequireTool(t, "clang")
	labkit.RequireTool(t, "llvm-strip")
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Fatalf("LAB CANNOT RUN %s: libbpf-dev is not installed (/usr/include/bpf/bpf_helpers.h: %v)", t.Name(), err)
	}
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/enospc/enospc/trace").Output()
	if err != nil {
		t.Fatalf("find the trace package: %v", err)
	}
	pkg := strings.TrimSpace(string(out))
	gen, err := os.ReadFile(filepath.Join(pkg, "gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	var directive []string
	for _, line := range strings.Split(string(gen), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			directive = strings.Fields(rest)
		}
	}
	if directive == nil {
		t.Fatalf("no bpf2go directive in %s/gen.go", pkg)
	}
	tmp := t.TempDir()
	args := append([]string{"tool", "bpf2go", "-output-dir", tmp}, directive...)
	cmd := exec.Command("go", args...)
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "GOPACKAGE=trace", "GOFILE=gen.go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	made, _ := filepath.Glob(filepath.Join(tmp, "tracer_*"))
	if len(made) != 4 {
		t.Fatalf("bpf2go made %v, want the .go and .o of amd64 and arm64", made)
	}
	for _, m := range made {
		name := filepath.Base(m)
		fresh, _ := os.ReadFile(m)
		committed, err := os.ReadFile(filepath.Join(pkg, name))
		if err != nil {
			t.Errorf("%s is not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("trace/%s differs from what go generate makes now from bpf/trace.c (%d bytes committed, %d made): run go generate ./trace and commit", name, len(committed), len(fresh))
		}
	}
}
