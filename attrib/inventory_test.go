package attrib

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A runtime that is not there, refuses, or accepts and never answers
// becomes a Source with its error within the timeout; check goes on.
func TestCollectDegradesWithinTimeout(t *testing.T) {
	dir := t.TempDir()
	// refused: a socket file nobody listens on any more.
	refused := filepath.Join(dir, "refused.sock")
	l, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	// hung: accepts connections and never says a word.
	hung := filepath.Join(dir, "hung.sock")
	hl, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	var conns []net.Conn
	go func() {
		for {
			c, err := hl.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	missing := filepath.Join(dir, "missing.sock")

	for _, tc := range []struct {
		name, sock string
		absent     bool
	}{{"missing", missing, true}, {"refused", refused, false}, {"hung", hung, false}} {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 300 * time.Millisecond
			start := time.Now()
			inv := Collect(context.Background(), Options{DockerHost: "unix://" + tc.sock, ContainerdAddress: tc.sock, CRIOSocket: tc.sock, Timeout: timeout})
			took := time.Since(start)
			if took > 5*timeout {
				t.Errorf("Collect took %s with a %s timeout", took, timeout)
			}
			if len(inv.Sources) != 3 {
				t.Fatalf("sources: %+v", inv.Sources)
			}
			for _, s := range inv.Sources {
				if s.Reached || s.Error == "" || s.Absent != tc.absent {
					t.Errorf("%s on a %s socket: %+v", s.Runtime, tc.name, s)
				}
			}
			notes := inv.Notes()
			if tc.absent && len(notes) != 0 {
				t.Errorf("an absent runtime is not a fault, yet notes: %v", notes)
			}
			if !tc.absent && (len(notes) != 3 || !strings.Contains(notes[0], "named by id only")) {
				t.Errorf("notes: %v", notes)
			}
			if inv.AnyReached() {
				t.Error("AnyReached with no runtime answering")
			}
		})
	}
}

func TestLookupAndMerge(t *testing.T) {
	inv := NewInventory()
	id := strings.Repeat("ab", 32)
	other := "ab" + strings.Repeat("cd", 31)
	// containerd's view of a docker container first, then docker's: the
	// name and image the user gave win, containerd's namespace stays.
	inv.add(&Container{ID: id, Runtime: "docker", Namespace: "moby", State: "running", Live: true, source: "containerd"})
	inv.add(&Container{ID: id, Runtime: "docker", Name: "web", Image: "nginx:1.25", State: "running", Live: true, source: "docker"})
	inv.add(&Container{ID: id, Runtime: "docker", Namespace: "moby", State: "running", source: "containerd"})
	inv.add(&Container{ID: other, Runtime: "docker", Name: "db", source: "docker"})
	c, ok := inv.Lookup(id)
	if !ok || c.Name != "web" || c.Image != "nginx:1.25" || c.Namespace != "moby" || c.Runtime != "docker" {
		t.Fatalf("merged container: %+v", c)
	}
	if c, ok := inv.Lookup(id[:12]); !ok || c.Name != "web" {
		t.Errorf("short id lookup: %+v %v", c, ok)
	}
	if _, ok := inv.Lookup("ab"); ok {
		t.Error("a 2-character prefix must not match")
	}
	if _, ok := inv.Lookup(id[:2] + strings.Repeat("0", 10)); ok {
		t.Error("an unknown prefix matched")
	}
	// "abab..." and "abcd..." share "ab" only: 12 characters tell them apart.
	if c, ok := inv.Lookup(other[:12]); !ok || c.Name != "db" {
		t.Errorf("lookup of the other: %+v %v", c, ok)
	}
	var nilInv *Inventory
	if _, ok := nilInv.Lookup(id); ok || nilInv.AnyReached() || nilInv.Notes() != nil {
		t.Error("a nil inventory knows something")
	}
}

func TestPodFromLabels(t *testing.T) {
	c := &Container{Labels: map[string]string{LabelPodName: "web-1", LabelPodNamespace: "shop", LabelPodUID: "u-1", LabelContainerName: "app"}}
	c.podFromLabels()
	if c.PodName != "web-1" || c.PodNamespace != "shop" || c.PodUID != "u-1" || c.Name != "app" {
		t.Fatalf("%+v", c)
	}
	d := &Container{Name: "given", Labels: map[string]string{LabelContainerName: "app"}}
	d.podFromLabels()
	if d.Name != "given" {
		t.Errorf("the runtime's own name was replaced: %q", d.Name)
	}
}
