//go:build lab

package runtime

// The CRI, as a kubelet drives it: containerd's CRI plugin on a private
// containerd runs a pod (host network, so no CNI) under a kubepods cgroup
// parent as kubelet's cgroupfs driver lays it out, with a container whose
// labels are the kubelet's. enospc's CRI client (the one it uses for
// CRI-O) lists it with its pod, and `check` names the pod, its QoS class
// and the container of the watches it holds, from the cgroup path and
// from containerd's own view.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
)

func TestCRIPodAttribution(t *testing.T) {
	const (
		image   = "enospc.lab/busybox:lab"
		pause   = "enospc.lab/pause:lab"
		podName = "api-6c9d7f5b8-zt4kq"
		podNS   = "payments"
		podUID  = "0f4c3b1e-9a2d-4f6b-8e3c-5d7a1b2c9e40"
		watches = 120
	)
	opts := labContainerd
	opts.CRI, opts.SandboxImage = true, pause
	c := labkit.StartContainerdWith(t, opts)
	rootfs := filepath.Join(c.Dir, "rootfs")
	labkit.BusyboxRootfs(t, rootfs)
	buildWatcher(t, rootfs)
	// The CRI's images live in containerd's "k8s.io" namespace.
	for _, img := range []struct {
		ref string
		cmd []string
	}{{image, []string{"sh"}}, {pause, []string{"sleep", "3600"}}} {
		tarPath := filepath.Join(c.Dir, filepath.Base(img.ref)+".tar")
		labkit.OCIImageTar(t, rootfs, img.ref, tarPath, img.cmd)
		if out, err := c.CtrIn("k8s.io", 2*time.Minute, "images", "import", "--snapshotter", "native", tarPath); err != nil {
			t.Fatalf("ctr -n k8s.io images import %s: %v %s\n%s", img.ref, err, out, c.Log())
		}
	}
	t.Cleanup(func() {
		out, _ := c.CtrIn("k8s.io", 30*time.Second, "images", "ls", "-q")
		for _, ref := range strings.Fields(out) {
			c.CtrIn("k8s.io", 30*time.Second, "images", "rm", ref)
		}
	})

	conn, err := grpc.NewClient("unix://"+c.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := cri.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rt.Version(ctx, &cri.VersionRequest{}); err != nil {
		t.Fatalf("LAB CANNOT RUN: containerd's CRI does not answer: %v\n%s", err, c.Log())
	}

	// The pod, as kubelet creates it: its cgroup parent is kubelet's
	// cgroupfs layout for a besteffort pod, under the test's own root.
	cgroupParent := fmt.Sprintf("/%s/kubepods/besteffort/pod%s", c.NS, podUID)
	logDir := filepath.Join(c.Dir, "pods")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sandboxConfig := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: podName, Namespace: podNS, Uid: podUID},
		LogDirectory: logDir,
		Labels:       map[string]string{attrib.LabelPodName: podName, attrib.LabelPodNamespace: podNS, attrib.LabelPodUID: podUID},
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
			},
		},
	}
	sb, err := rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: sandboxConfig})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, c.Log())
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		rt.StopPodSandbox(cctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		if _, err := rt.RemovePodSandbox(cctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("cleanup: RemovePodSandbox: %v", err)
		}
	})
	ctrResp, err := rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: sb.PodSandboxId,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: "api"},
			Image:    &cri.ImageSpec{Image: image},
			Command:  []string{"watcher", fmt.Sprint(watches), "/tmp/w"},
			LogPath:  "api.log",
			// The labels kubelet puts on every container.
			Labels: map[string]string{attrib.LabelPodName: podName, attrib.LabelPodNamespace: podNS,
				attrib.LabelPodUID: podUID, attrib.LabelContainerName: "api"},
		},
		SandboxConfig: sandboxConfig,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\n%s", err, c.Log())
	}
	if _, err := rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: ctrResp.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v\n%s", err, c.Log())
	}
	id := ctrResp.ContainerId
	t.Logf("pod %s/%s sandbox %s, container api %s, cgroup parent %s", podNS, podName, sb.PodSandboxId[:12], id[:12], cgroupParent)

	// enospc's CRI client, the one that lists CRI-O's containers.
	cs, _, err := attrib.ListCRI(ctx, c.Sock, "cri-o")
	if err != nil {
		t.Fatalf("ListCRI: %v", err)
	}
	var listed *attrib.Container
	for _, k := range cs {
		if k.ID == id {
			listed = k
		}
	}
	if listed == nil || listed.Name != "api" || listed.PodName != podName || listed.PodNamespace != podNS || listed.PodUID != podUID || !listed.Live || listed.State != "running" {
		t.Fatalf("ListCRI over the real CRI: %+v, want container api of %s/%s running", listed, podNS, podName)
	}

	// check, asking containerd: the watcher's watches carry the container,
	// the pod and its QoS class (from the kubepods path).
	var row *limits.Consumer
	if !labkit.WaitFor(30*time.Second, func() bool {
		rep, _ := labkit.RunCheck(t, "--containerd-address", c.Sock, "--docker-host", "", "--crio-socket", "", "--only", "inotify.watches")
		for _, f := range rep.Findings {
			for _, k := range f.Consumers {
				if k.Comm == "watcher" && k.Container == id && k.Count == watches {
					row = &k
				}
			}
		}
		return row != nil
	}) {
		t.Fatalf("no inotify.watches consumer of container %s holding %d watches after 30s", id, watches)
	}
	if row.ContainerName != "api" || row.Pod != podName || row.Namespace != podNS || row.PodUID != podUID ||
		row.QoS != "besteffort" || row.Runtime != "containerd" || row.State != "running" || row.Image != image {
		t.Fatalf("the watcher's consumer row: %+v", *row)
	}
	t.Logf("watcher pid %d: container %s %s (%s, %s, %s), pod %s/%s (%s)", row.PID, row.Container[:12], row.ContainerName,
		row.Image, row.Runtime, row.State, row.Namespace, row.Pod, row.QoS)
}
