package limits

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/enospc/enospc/attrib"
)

// mayNameContainer only lets the walk drop paths that are no container's:
// every path attrib.ParseCgroupPath gives an id must pass it, and those
// leak.cgroups then parses only if containerd lists them must be guesses.
// Paths are made of the components of every shape the parser knows.
func TestMayNameContainerKeepsEveryContainer(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	uid := "2f7d5a8e-51f7-4c5d-9b5e-8d5b1f9c1a2b"
	comps := []string{
		"docker", id, strings.ToUpper(id), "docker-" + id + ".scope", "cri-containerd-" + id + ".scope",
		"crio-" + id, "crio-conmon-" + id + ".scope", "libpod-" + id + ".scope", "nerdctl-" + id + ".scope",
		"kubepods", "burstable", "besteffort", "pod" + uid, "kubepods.slice",
		"kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice",
		"kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice:cri-containerd:" + id,
		"lxc", "lxc.payload", "lxc.payload.web1", "lxc.monitor.web1", "web1",
		"default", "k8s.io", "moby", "system.slice", "containerd.service", "user.slice", "cg00042", id[:63],
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	found := 0
	for range 200000 {
		parts := make([]string, 1+rnd.IntN(5))
		for i := range parts {
			parts[i] = comps[rnd.IntN(len(comps))]
		}
		p := "/" + strings.Join(parts, "/")
		r := attrib.ParseCgroupPath(p)
		if r.ID == "" {
			continue
		}
		found++
		if !mayNameContainer([]byte(p)) {
			t.Fatalf("%s names a container, and the walk would drop it", p)
		}
		// leak.cgroups skips a plain path unless containerd lists it:
		// only a guess, which confirm drops the same way, may be such.
		if _, _, ok := plainOnly([]byte(p)); ok && !r.Guess {
			t.Fatalf("%s names a container for sure (%+v), and leak.cgroups would skip it", p, r)
		}
	}
	if found == 0 {
		t.Fatal("no path named a container")
	}
	// The bad night's cgroups are one level deeper than containerd's
	// "/<namespace>/<id>": none is kept.
	for _, p := range []string{"/", "/cg00042", "/machine/enospc-badnight/cg00042", "/system.slice/containerd.service/x", "/a/b/" + id[:63]} {
		if mayNameContainer([]byte(p)) {
			t.Errorf("%s kept", p)
		}
	}
}

// The walk lists every directory once, parents first, with its path and
// depth, and none of the files.
func TestWalkCgroupFDs(t *testing.T) {
	root := t.TempDir()
	want := []string{"/", "/a", "/a/b", "/a/b/c", "/d"}
	for _, d := range want[1:] {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "cgroup.procs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := walkCgroupFDs(context.TODO(), root, func(_ cgroupAt, rel []byte, depth int) bool {
		if n := strings.Count(string(rel), "/"); (rel[0] == '/' && len(rel) == 1 && depth != 0) || (len(rel) > 1 && n != depth) {
			t.Errorf("%s at depth %d", rel, depth)
		}
		got = append(got, string(rel))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("walked %q, want %q", got, want)
	}
	if !cgroupEmpty(filepath.Join(root, "a")) {
		t.Error("a is empty")
	}
	if err := os.WriteFile(filepath.Join(root, "a/b/c/cgroup.procs"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cgroupEmpty(filepath.Join(root, "a")) {
		t.Error("a holds process 42 below it")
	}
	if cgroupEmpty(filepath.Join(root, "gone")) {
		t.Error("a cgroup that is gone is not an empty one")
	}
}
