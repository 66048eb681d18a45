package attrib

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listCRIO lists CRI-O's containers through the CRI on its socket, as
// crictl does: ListContainers for the containers, their state, image and
// Kubernetes labels.
func listCRIO(ctx context.Context, sock string) ([]*Container, []string, error) {
	return ListCRI(ctx, sock, "cri-o")
}

// ListCRI lists the containers of the CRI server on sock (CRI-O, or
// containerd's CRI plugin), naming them runtime.
func ListCRI(ctx context.Context, sock, runtime string) ([]*Container, []string, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	resp, err := cri.NewRuntimeServiceClient(conn).ListContainers(ctx, &cri.ListContainersRequest{})
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Container, 0, len(resp.Containers))
	for _, k := range resp.Containers {
		c := &Container{ID: strings.ToLower(k.Id), Runtime: runtime, Labels: k.Labels}
		if k.Metadata != nil {
			c.Name = k.Metadata.Name
		}
		if k.Image != nil {
			c.Image = k.Image.Image
		}
		if c.Image == "" || strings.HasPrefix(c.Image, "sha256:") {
			if k.ImageRef != "" {
				c.Image = k.ImageRef
			}
		}
		switch k.State {
		case cri.ContainerState_CONTAINER_RUNNING:
			c.State, c.Live = "running", true
		case cri.ContainerState_CONTAINER_CREATED:
			// Created by the CRI means runc's init is there, waiting.
			c.State, c.Live = "created", true
		case cri.ContainerState_CONTAINER_EXITED:
			c.State = "exited"
		default:
			c.State = "unknown"
		}
		c.podFromLabels()
		out = append(out, c)
	}
	// The pods' sandboxes (infra containers) are not containers to the
	// CRI, but have cgroups and keyrings of their own.
	pods, err := cri.NewRuntimeServiceClient(conn).ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range pods.Items {
		c := &Container{ID: strings.ToLower(p.Id), Runtime: runtime, Labels: p.Labels, State: "notready"}
		if p.State == cri.PodSandboxState_SANDBOX_READY {
			c.State, c.Live = "ready", true
		}
		if p.Metadata != nil {
			c.Name = "sandbox of " + p.Metadata.Name
			c.PodName, c.PodNamespace, c.PodUID = p.Metadata.Name, p.Metadata.Namespace, p.Metadata.Uid
		}
		out = append(out, c)
	}
	return out, nil, nil
}
