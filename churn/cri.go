package churn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// CRIOptions say which CRI server churn drives (containerd's CRI plugin,
// CRI-O).
type CRIOptions struct {
	// Endpoint is the CRI's unix socket.
	Endpoint string
	// CgroupParent is the pods' cgroup parent ("" /enospc-churn).
	CgroupParent string
	// LogDir holds the pods' log directories ("" a temporary directory).
	LogDir string
	// State and Root are the runtime's state and root directories, whose
	// files churn counts ("" containerd's, /run/containerd and
	// /var/lib/containerd).
	State, Root string
}

// criDriver drives a CRI server as kubelet calls it, one pod per cycle:
// run is RunPodSandbox, CreateContainer, StartContainer; kill is
// StopContainer with no grace; delete is RemoveContainer, StopPodSandbox,
// RemovePodSandbox. The pods use the node's network (no CNI). The CRI has
// no pause.
type criDriver struct {
	opts  CRIOptions
	image string
	args  []string
	run   string
	h     *host.Host
	conn  *grpc.ClientConn
	rt    cri.RuntimeServiceClient
	fp    *footprint

	mu   sync.Mutex
	pods map[string]*criPod
}

type criPod struct {
	sandbox, container string
	config             *cri.PodSandboxConfig
}

func newCRIDriver(h *host.Host, o Options) *criDriver {
	co := o.CRI
	co.Endpoint = strings.TrimPrefix(co.Endpoint, "unix://")
	if co.Endpoint == "" {
		co.Endpoint = "/run/containerd/containerd.sock"
	}
	if co.CgroupParent == "" {
		co.CgroupParent = "/enospc-churn"
	}
	if co.State == "" {
		co.State = "/run/containerd"
	}
	if co.Root == "" {
		co.Root = "/var/lib/containerd"
	}
	return &criDriver{opts: co, image: o.Image, args: o.Args, run: o.runID, h: h, pods: map[string]*criPod{}}
}

func (d *criDriver) connect() error {
	if d.conn != nil {
		return nil
	}
	conn, err := grpc.NewClient("unix://"+d.opts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI at %s: %w", d.opts.Endpoint, err)
	}
	d.conn, d.rt = conn, cri.NewRuntimeServiceClient(conn)
	return nil
}

func (d *criDriver) prepare(ctx context.Context) error {
	if err := d.connect(); err != nil {
		return err
	}
	if _, err := d.rt.Version(ctx, &cri.VersionRequest{}); err != nil {
		return fmt.Errorf("CRI at %s does not answer: %w", d.opts.Endpoint, err)
	}
	if d.image == "" {
		return errors.New("no image: the CRI needs one")
	}
	img := cri.NewImageServiceClient(d.conn)
	st, err := img.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: d.image}})
	if err != nil {
		return fmt.Errorf("image %s: %w", d.image, err)
	}
	if st.Image == nil {
		if _, err := img.PullImage(ctx, &cri.PullImageRequest{Image: &cri.ImageSpec{Image: d.image}}); err != nil {
			return fmt.Errorf("pull %s: %w", d.image, err)
		}
	}
	if d.opts.LogDir == "" {
		if d.opts.LogDir, err = os.MkdirTemp("", "enospc-churn-pods-"); err != nil {
			return err
		}
	}
	d.fp = &footprint{h: d.h, address: d.opts.Endpoint, dirs: []string{d.opts.State, d.opts.Root},
		shimsOf: func(p shimProc) bool { return p.arg("-namespace") == "k8s.io" }, cgroup: d.opts.CgroupParent}
	return nil
}

func (d *criDriver) checkOptions(*check.Options) {}

func (d *criDriver) pod(id string) *criPod {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pods[id]
	if p == nil {
		p = &criPod{config: &cri.PodSandboxConfig{
			Metadata:     &cri.PodSandboxMetadata{Name: id, Namespace: "enospc-churn", Uid: id},
			LogDirectory: filepath.Join(d.opts.LogDir, id),
			Labels:       map[string]string{LabelChurn: "true", LabelRun: d.run},
			Linux: &cri.LinuxPodSandboxConfig{
				CgroupParent: d.opts.CgroupParent + "/pod" + id,
				SecurityContext: &cri.LinuxSandboxSecurityContext{
					NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
				},
			},
		}}
		d.pods[id] = p
	}
	return p
}

func (d *criDriver) forget(id string) {
	d.mu.Lock()
	delete(d.pods, id)
	d.mu.Unlock()
}

func (d *criDriver) step(ctx context.Context, id, step string) error {
	p := d.pod(id)
	switch step {
	case StepRun:
		if p.sandbox == "" {
			r, err := d.rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: p.config})
			if err != nil {
				return err
			}
			p.sandbox = r.PodSandboxId
		}
		if p.container == "" {
			r, err := d.rt.CreateContainer(ctx, &cri.CreateContainerRequest{
				PodSandboxId: p.sandbox,
				Config: &cri.ContainerConfig{
					Metadata: &cri.ContainerMetadata{Name: "churn"},
					Image:    &cri.ImageSpec{Image: d.image},
					Command:  d.args,
					LogPath:  "churn.log",
					Labels:   map[string]string{LabelChurn: "true", LabelRun: d.run},
				},
				SandboxConfig: p.config,
			})
			if err != nil {
				return err
			}
			p.container = r.ContainerId
		}
		_, err := d.rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: p.container})
		return err
	case StepKill:
		_, err := d.rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: p.container, Timeout: 0})
		return err
	case StepDelete:
		if p.container != "" {
			if _, err := d.rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: p.container}); err != nil {
				return err
			}
			p.container = ""
		}
		if _, err := d.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.sandbox}); err != nil {
			return err
		}
		if _, err := d.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.sandbox}); err != nil {
			return err
		}
		d.removePodCgroups(id)
		d.forget(id)
		return nil
	}
	return fmt.Errorf("step %q: the CRI has no such step", step)
}

// remove takes away the pod of cycle id, with its containers.
func (d *criDriver) remove(ctx context.Context, id string) error {
	d.mu.Lock()
	p := d.pods[id]
	d.mu.Unlock()
	if p == nil || p.sandbox == "" {
		return nil
	}
	err := d.removePod(ctx, p.sandbox)
	d.removePodCgroups(id)
	return err
}

// removePodCgroups removes the pod's cgroup, as kubelet's pod cgroup
// manager does once the pod is gone: the runtime removes its containers'
// cgroups, not the pod's, which runc made as their parent. rmdir removes
// an empty cgroup only.
func (d *criDriver) removePodCgroups(id string) {
	for _, root := range cgroupRoots(d.h) {
		os.Remove(filepath.Join(root, d.opts.CgroupParent, "pod"+id))
	}
}

// cgroupRoots are the mounted cgroup hierarchies under sysfs.
func cgroupRoots(h *host.Host) []string {
	roots, _ := filepath.Glob(h.SysPath("fs", "cgroup", "*"))
	return append(roots, h.SysPath("fs", "cgroup"))
}

func (d *criDriver) removePod(ctx context.Context, sandbox string) error {
	if _, err := d.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sandbox}); err != nil {
		return fmt.Errorf("stop pod %s: %w", sandbox, err)
	}
	if _, err := d.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sandbox}); err != nil {
		return fmt.Errorf("remove pod %s: %w", sandbox, err)
	}
	return nil
}

// cleanup removes every pod labelled as churn's, with its containers.
func (d *criDriver) cleanup(ctx context.Context) error {
	if err := d.connect(); err != nil {
		return err
	}
	r, err := d.rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{LabelSelector: map[string]string{LabelChurn: "true"}}})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var errs []error
	for _, sb := range r.Items {
		if sb.Labels[LabelChurn] != "true" {
			continue
		}
		if err := d.removePod(ctx, sb.Id); err != nil {
			errs = append(errs, err)
		}
		if sb.Metadata != nil && strings.HasPrefix(sb.Metadata.Uid, IDPrefix) {
			d.removePodCgroups(sb.Metadata.Uid)
		}
	}
	// The pods' parent, when churn's runs left it empty.
	for _, root := range cgroupRoots(d.h) {
		if d.opts.CgroupParent != "/" {
			os.Remove(filepath.Join(root, d.opts.CgroupParent))
		}
	}
	if strings.HasPrefix(filepath.Base(d.opts.LogDir), "enospc-churn-pods-") {
		os.RemoveAll(d.opts.LogDir)
	}
	return errors.Join(errs...)
}

func (d *criDriver) leftovers() int         { return 0 }
func (d *criDriver) removeLeftovers() error { return nil }

func (d *criDriver) footprint(ctx context.Context) []Reading {
	if d.fp == nil {
		return nil
	}
	return d.fp.read(ctx)
}

func (d *criDriver) close() {
	if d.conn != nil {
		d.conn.Close()
	}
}
