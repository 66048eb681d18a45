package limits

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

func hexID(c byte) string { return strings.Repeat(string(c), 64) }

// keyEnv is a fixture host whose uid 1001 holds one session keyring per
// id, with a census and an inventory.
func keyEnv(t *testing.T, ids []string, procs []census.Process, inv *attrib.Inventory) *Env {
	t.Helper()
	dir := t.TempDir()
	var keys strings.Builder
	for i, id := range ids {
		fmt.Fprintf(&keys, "%08x I--Q---     1 perm 3f010000  1001  1001 keyring   _ses.%s: 1\n", 0x100+i, id)
	}
	n := len(ids)
	files := map[string]string{
		"key-users": fmt.Sprintf(" 1001:   %d %d/%d %d/200 %d/20000\n", n, n, n, n, n*70),
		"keys":      keys.String(),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &census.Census{Processes: procs}
	return &Env{Ctx: context.Background(), Host: host.New(dir, dir, dir), Census: c, Thresholds: DefaultThresholds,
		Attribution: func() *Attributor { return NewAttributor(c, inv) }}
}

func proc(pid int, cgroup string) census.Process {
	return census.Process{PID: pid, Comm: "sleep", Cgroups: []census.CgroupMembership{
		{Hierarchy: 4, Controllers: []string{"memory"}, Path: cgroup}, {Hierarchy: 0, Path: cgroup}}}
}

func reached(runtimes ...string) *attrib.Inventory {
	inv := attrib.NewInventory()
	for _, r := range runtimes {
		inv.Sources = append(inv.Sources, attrib.Source{Runtime: r, Reached: true})
	}
	return inv
}

func findRow(rows []Finding, limit string) (Finding, bool) {
	for _, u := range rows {
		if u.Limit == limit {
			return u, true
		}
	}
	return Finding{}, false
}

func TestLeakedKeyrings(t *testing.T) {
	running, exited, gone, orphanRunning := hexID('a'), hexID('b'), hexID('c'), hexID('d')
	inv := reached("docker")
	inv.Containers[running] = &attrib.Container{ID: running, Name: "web", Runtime: "docker", State: "running", Live: true}
	inv.Containers[exited] = &attrib.Container{ID: exited, Name: "build-1", Runtime: "docker", State: "exited"}
	// orphanRunning: no runtime lists it, but a process is in its cgroup.
	env := keyEnv(t, []string{running, exited, gone, orphanRunning},
		[]census.Process{proc(10, "/docker/"+running), proc(11, "/docker/"+orphanRunning)}, inv)
	u, ok := findRow(readKeys(env), "leak.keyrings")
	if !ok {
		t.Fatal("no leak.keyrings row")
	}
	if u.Used != 2 || u.Leaked != 2 || u.floor != Warning {
		t.Fatalf("leak.keyrings used %d leaked %d floor %v, want 2 (the exited and the gone): %+v", u.Used, u.Leaked, u.floor, u)
	}
	states := map[string]string{}
	for _, c := range u.Consumers {
		states[c.Container] = c.State
	}
	if states[exited] != "exited" || states[gone] != "gone" || len(states) != 2 {
		t.Fatalf("leaked keyrings: %v", states)
	}
	if !strings.Contains(u.Reason, "1 of exited containers") || !strings.Contains(u.Reason, "1 of containers no runtime lists") {
		t.Errorf("reason: %s", u.Reason)
	}

	// A container that started after the census: its processes are found
	// by the last look at /proc, and it is not called gone.
	late := hexID('9')
	env = keyEnv(t, []string{late}, nil, reached("docker"))
	pd := filepath.Join(env.Host.Proc, "4242")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "cgroup"), []byte("0::/docker/"+late+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, _ = findRow(readKeys(env), "leak.keyrings"); u.Used != 0 {
		t.Fatalf("a container that started after the census is called gone: %+v", u)
	}

	// With no runtime answering, a keyring of no known container cannot be
	// called gone: nothing is leaked, and the row says why.
	env = keyEnv(t, []string{gone}, nil, attrib.NewInventory())
	u, _ = findRow(readKeys(env), "leak.keyrings")
	if u.Used != 0 || !strings.Contains(u.Reason, "state is unknown") {
		t.Fatalf("without runtimes: %+v", u)
	}
}

func TestAttributorGuessAndPods(t *testing.T) {
	podUID := "0f4c3b1e-9a2d-4f6b-8e3c-5d7a1b2c9e40"
	cri := hexID('e')
	c := &census.Census{Processes: []census.Process{
		proc(1, "/system.slice/kubelet.service"),
		proc(2, "/ci-ns/job-7"), // plain containerd shape, namespace ci-ns
		proc(3, "/other/thing"), // same shape, not a containerd namespace
		proc(4, "/kubepods/burstable/pod"+podUID+"/"+cri),
	}}
	inv := reached("containerd")
	inv.ContainerdNamespaces["ci-ns"] = true
	inv.Containers["job-7"] = &attrib.Container{ID: "job-7", Runtime: "containerd", Namespace: "ci-ns", State: "running", Live: true, Image: "busybox"}
	inv.Containers[cri] = &attrib.Container{ID: cri, Name: "app", Runtime: "containerd", Namespace: "k8s.io", State: "running", Live: true,
		PodName: "web-1", PodNamespace: "shop", PodUID: podUID}
	a := NewAttributor(c, inv)
	got := map[int]Consumer{}
	for pid := 1; pid <= 4; pid++ {
		k := Consumer{PID: pid}
		a.Consumer(&k)
		got[pid] = k
	}
	if k := got[1]; k.Container != "" || k.Unit != "kubelet.service" {
		t.Errorf("kubelet: %+v", k)
	}
	if k := got[2]; k.Container != "job-7" || k.Image != "busybox" || k.State != "running" {
		t.Errorf("containerd container in a listed namespace: %+v", k)
	}
	if k := got[3]; k.Container != "" {
		t.Errorf("a path of the containerd shape in no containerd namespace was called a container: %+v", k)
	}
	if k := got[4]; k.Container != cri || k.ContainerName != "app" || k.Pod != "web-1" || k.Namespace != "shop" || k.QoS != "burstable" || k.PodUID != podUID {
		t.Errorf("kubepods container: %+v", k)
	}
	if !a.HasProcesses(cri) || a.HasProcesses(hexID('f')) {
		t.Error("HasProcesses")
	}
}
