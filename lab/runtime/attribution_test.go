//go:build lab

package runtime

// Attribution on a real containerd: containers labelled as a CRI labels
// them hold inotify watches, and `check --by pod` names their pod; a
// container cgroup left behind after its container was removed is found
// by leak.cgroups, and a live container's is not.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

// buildWatcher builds lab/watcher static into the root filesystem dir.
func buildWatcher(t *testing.T, rootfs string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin", "watcher"), "github.com/enospc/enospc/lab/watcher")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("LAB CANNOT RUN: build the watcher: %v\n%s", err, out)
	}
}

// runCheckOn runs check against the private containerd only.
func runCheckOn(t *testing.T, c *labkit.Containerd, args ...string) *check.Report {
	t.Helper()
	rep, _ := labkit.RunCheck(t, append([]string{"--containerd-address", c.Sock, "--docker-host", "", "--crio-socket", "",
		"--fifo-dir", c.FifoDir, "--containerd-state", c.State}, args...)...)
	for _, s := range rep.Runtimes {
		if s.Runtime == "containerd" && !s.Reached {
			t.Fatalf("check did not reach the lab's containerd at %s: %+v", c.Sock, s)
		}
	}
	return rep
}

func TestAttributionCRIPodInotify(t *testing.T) {
	const (
		image   = "enospc.lab/busybox:lab"
		podName = "web-7d9f8b6c4-q2x9z"
		podNS   = "shop"
		podUID  = "5a1e0c3e-2b7d-4c4e-9a51-8f1d3c2b7e60"
		watches = 300
	)
	c := startContainerd(t)
	rootfs := filepath.Join(c.Dir, "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	buildWatcher(t, rootfs)
	c.ImportBusybox(t, image)

	// Two containers of one pod, labelled as containerd's CRI labels them,
	// and one container of no pod.
	labels := func(ctr string) []string {
		return []string{"--label", "io.kubernetes.pod.name=" + podName, "--label", "io.kubernetes.pod.namespace=" + podNS,
			"--label", "io.kubernetes.pod.uid=" + podUID, "--label", "io.kubernetes.container.name=" + ctr}
	}
	run := func(id string, extra []string, args ...string) {
		t.Helper()
		if err := c.RunDetachedWith(extra, image, id, args...); err != nil {
			t.Fatalf("ctr run %s: %v\n%s", id, err, c.Log())
		}
	}
	run("web-app", labels("app"), "watcher", "200", "/tmp/w")
	run("web-sidecar", labels("sidecar"), "watcher", "100", "/tmp/w")
	run("batch", nil, "watcher", "7", "/tmp/w")

	// Wait until the watches are in place: the census sees them.
	var rep *check.Report
	held := func(rep *check.Report) map[string]int64 {
		out := map[string]int64{}
		for _, f := range rep.Findings {
			if f.Limit != "inotify.watches" || f.Scope != "uid 0" {
				continue
			}
			for _, cs := range f.Consumers {
				if cs.Comm == "watcher" {
					out[cs.Container] += cs.Count
				}
			}
		}
		return out
	}
	if !labkit.WaitFor(30*time.Second, func() bool {
		rep = runCheckOn(t, c, "--by", "pod")
		h := held(rep)
		return h["web-app"] == 200 && h["web-sidecar"] == 100 && h["batch"] == 7
	}) {
		b, _ := json.MarshalIndent(rep.Findings, "", " ")
		t.Fatalf("the watchers' watches are not attributed to their containers after 30s: %v\n%s", held(rep), b)
	}

	// Every watcher consumer carries the container, runtime, state and,
	// for the pod's, the pod.
	w := labkit.Find(t, rep, "inotify.watches", labkit.ScopeIs("uid 0"))
	for _, cs := range w.Consumers {
		if cs.Comm != "watcher" {
			continue
		}
		if want := map[string]string{"web-app": "app", "web-sidecar": "sidecar"}[cs.Container]; cs.ContainerName != want {
			t.Errorf("watcher pid %d of %s: container name %q, want %q (the CRI's io.kubernetes.container.name)", cs.PID, cs.Container, cs.ContainerName, want)
		}
		if cs.Runtime != "containerd" || cs.State != "running" || cs.Image != image {
			t.Errorf("watcher pid %d: runtime %q state %q image %q, want containerd, running, %s", cs.PID, cs.Runtime, cs.State, cs.Image, image)
		}
		switch cs.Container {
		case "web-app", "web-sidecar":
			if cs.Pod != podName || cs.Namespace != podNS || cs.PodUID != podUID {
				t.Errorf("watcher pid %d of %s: pod %s/%s uid %s, want %s/%s uid %s", cs.PID, cs.Container, cs.Namespace, cs.Pod, cs.PodUID, podNS, podName, podUID)
			}
		case "batch":
			if cs.Pod != "" || cs.ContainerName != "" {
				t.Errorf("watcher of the unlabelled container says pod %q, name %q", cs.Pod, cs.ContainerName)
			}
		}
	}

	// --by pod: the pod holds exactly its two containers' watches.
	var pod *check.Group
	for i, g := range rep.Groups {
		if g.Key == podNS+"/"+podName {
			pod = &rep.Groups[i]
		}
		if strings.Contains(g.Key, "batch") {
			t.Errorf("a container of no pod is grouped as a pod: %+v", g)
		}
	}
	if pod == nil {
		t.Fatalf("--by pod has no group %s/%s: %+v", podNS, podName, rep.Groups)
	}
	var h *check.Holding
	for i := range pod.Holdings {
		if pod.Holdings[i].Limit == "inotify.watches" && pod.Holdings[i].Scope == "uid 0" {
			h = &pod.Holdings[i]
		}
	}
	if h == nil || h.Held != watches || h.Holders != 2 {
		t.Fatalf("pod %s holding of inotify.watches uid 0: %+v, want %d watches from 2 processes", podName, h, watches)
	}
	if out, err := exec.Command(labkit.Bin(), "check", "--containerd-address", c.Sock, "--docker-host", "", "--crio-socket", "",
		"--only", "inotify.watches", "--warn", "0.0001", "--by", "pod").CombinedOutput(); err == nil || len(out) > 0 {
		t.Logf("enospc check --by pod:\n%s", out)
	}
	t.Logf("pod %s/%s holds %d of uid 0's %d inotify watches (%.1f%%)", podNS, podName, h.Held, h.Used, 100*h.Share)
}

func TestLeakedContainerCgroup(t *testing.T) {
	const image = "enospc.lab/busybox:lab"
	c := startContainerd(t)
	c.ImportBusybox(t, image)
	for _, id := range []string{"kept", "removed"} {
		if err := c.RunDetached(image, id, "sleep", "3600"); err != nil {
			t.Fatalf("ctr run %s: %v\n%s", id, err, c.Log())
		}
	}
	// Where containerd put the container's cgroups: its default spec's
	// cgroupsPath /<namespace>/<id>, in every v1 hierarchy.
	var removedDirs []string
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hier {
		d := filepath.Join(h, c.NS, "removed")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			removedDirs = append(removedDirs, d)
		}
	}
	if len(removedDirs) == 0 {
		t.Fatalf("no cgroup of container \"removed\" under /sys/fs/cgroup/*/%s: containerd's cgroup layout differs from what the lab expects", c.NS)
	}
	t.Logf("container \"removed\" has %d cgroup directories, e.g. %s", len(removedDirs), removedDirs[0])

	// Nothing leaks while both run.
	rep := runCheckOn(t, c)
	if u := labkit.Find(t, rep, "leak.cgroups", labkit.ScopeIs("host")); u.Leaked != 0 {
		t.Fatalf("leak.cgroups with two live containers: %+v", u)
	}

	// The container ends and is removed, then its cgroups come back empty
	// as a runtime that crashed between the container's end and the
	// removal of its cgroups leaves them (containerd 1.6 with runc 1.1
	// removes them itself on this path, so the lab recreates what the
	// crash leaves: the same directories, empty).
	c.Ctr(30*time.Second, "task", "kill", "-s", "SIGKILL", "removed")
	if !labkit.WaitFor(30*time.Second, func() bool { _, err := c.Ctr(20*time.Second, "task", "delete", "removed"); return err == nil }) {
		t.Fatalf("ctr task delete removed: still running 30s after SIGKILL")
	}
	if _, err := c.Ctr(30*time.Second, "container", "delete", "removed"); err != nil {
		t.Fatalf("ctr container delete removed: %v", err)
	}
	left := 0
	for _, d := range removedDirs {
		if _, err := os.Stat(d); err == nil {
			left++
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("recreate %s: %v", d, err)
		}
	}
	t.Logf("containerd removed %d of the %d cgroup directories itself; all %d are back, empty", len(removedDirs)-left, len(removedDirs), len(removedDirs))

	rep = runCheckOn(t, c)
	u := labkit.Find(t, rep, "leak.cgroups", labkit.ScopeIs("host"))
	// One hierarchy is walked (memory): one directory per leaked container.
	if u.Leaked != 1 || u.Used != 1 {
		t.Fatalf("leak.cgroups: leaked %d containers, %d cgroups; want 1 container, 1 cgroup: %+v", u.Leaked, u.Used, u)
	}
	if u.Severity != limits.Warning {
		t.Errorf("leak.cgroups severity %s, want warning", u.Severity)
	}
	if len(u.Consumers) != 1 || u.Consumers[0].Container != "removed" || u.Consumers[0].State != "gone" ||
		u.Consumers[0].Name != filepath.Join("/sys/fs/cgroup/memory", c.NS, "removed") {
		t.Fatalf("leak.cgroups consumers: %+v, want the container \"removed\", gone, at /sys/fs/cgroup/memory/%s/removed", u.Consumers, c.NS)
	}
	for _, cs := range u.Consumers {
		if cs.Container == "kept" {
			t.Fatalf("the live container's cgroup is called leaked: %+v", cs)
		}
	}

	// A process in the leaked cgroup makes it not empty: not leaked.
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	procs := filepath.Join("/sys/fs/cgroup/memory", c.NS, "removed", "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
		t.Fatalf("move a process into %s: %v", procs, err)
	}
	rep = runCheckOn(t, c)
	if u := labkit.Find(t, rep, "leak.cgroups", labkit.ScopeIs("host")); u.Leaked != 0 {
		t.Fatalf("a container cgroup with a process in it is called leaked: %+v", u)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
}
