//go:build lab

package runtime

// enospc trace against a real containerd: a container labelled as a CRI
// labels it fails a syscall with EMFILE, and the line the tracer prints
// names its container, its name and its pod; --pod keeps that pod's
// failures and drops another container's.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/trace"
)

func TestTraceCRIPod(t *testing.T) {
	const (
		image   = "enospc.lab/busybox:lab"
		podName = "cart-5f7d9c8b6-x4k2p"
		podNS   = "shop"
		podUID  = "7b2e4c1a-3d5f-4a6b-9c8d-1e2f3a4b5c6d"
	)
	c := startContainerd(t)
	c.ImportBusybox(t, image)

	cmd := exec.Command(labkit.Bin(), "trace", "-o", "json", "--interval", "300ms", "--duration", "60s",
		"--containerd-address", c.Sock, "--docker-host", "", "--crio-socket", "",
		"--containerd-state", c.State, "--fifo-dir", c.FifoDir, "--pod", podNS+"/"+podName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	errs := bufio.NewReader(pr)
	line, err := errs.ReadString('\n')
	if err != nil || !strings.Contains(line, "attached at") {
		t.Fatalf("enospc trace did not attach: %q %v", line, err)
	}
	go func() {
		for {
			l, err := errs.ReadString('\n')
			stderr.WriteString(l)
			if err != nil {
				return
			}
		}
	}()

	// cat opens a file past RLIMIT_NOFILE 3 (stdin, stdout, stderr) every
	// 0.3 s, in a container of the pod and in one of no pod.
	loop := []string{"sh", "-c", "ulimit -n 3; while :; do cat /etc/passwd; sleep 0.3; done"}
	labels := []string{"--label", "io.kubernetes.pod.name=" + podName, "--label", "io.kubernetes.pod.namespace=" + podNS,
		"--label", "io.kubernetes.pod.uid=" + podUID, "--label", "io.kubernetes.container.name=cart"}
	for _, ctr := range []struct {
		id     string
		labels []string
	}{{"cart", labels}, {"batch", nil}} {
		if err := c.RunDetachedWith(ctr.labels, image, ctr.id, loop...); err != nil {
			t.Fatalf("ctr run %s: %v\n%s", ctr.id, err, c.Log())
		}
	}
	time.Sleep(4 * time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("enospc trace did not stop in 20s after SIGINT")
	}
	t.Logf("trace: %s", strings.TrimSpace(stderr.String()))

	var named int
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var f trace.Failure
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("not a failure line: %v: %q", err, l)
		}
		if f.Container != "cart" {
			t.Errorf("--pod %s/%s printed a failure of container %q: %s", podNS, podName, f.Container, l)
			continue
		}
		if f.Pod != podName || f.Namespace != podNS || f.PodUID != podUID || f.ContainerName != "cart" || f.Runtime != "containerd" {
			t.Errorf("failure of container cart: pod %s/%s uid %s name %q runtime %q, want %s/%s %s cart containerd", f.Namespace, f.Pod, f.PodUID, f.ContainerName, f.Runtime, podNS, podName, podUID)
		}
		if f.Errno == "EMFILE" && f.Comm == "cat" && f.Limit == "files.process" && f.Max != nil && *f.Max == 3 {
			named++
		}
	}
	if named == 0 {
		t.Fatalf("no EMFILE of cat in container cart named files.process with max 3; the tracer printed:\n%s", stdout.String())
	}
	t.Logf("%d failures of cat in pod %s/%s named", named, podNS, podName)
}
