package attrib

import (
	"context"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	taskapi "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// listContainerd lists the containers of every containerd namespace
// through containerd's Go client: one call for the namespaces, one per
// namespace for its containers. Their states are settled later, by
// SettleStates: containerd answers a task list by asking every task's
// shim, which on a host of 200 containers costs more than the whole rest
// of a check, while the census already knows which containers have
// processes.
func listContainerd(ctx context.Context, sock string) ([]*Container, []string, error) {
	cli, err := containerd.New(sock)
	if err != nil {
		return nil, nil, err
	}
	defer cli.Close()
	nss, err := cli.NamespaceService().List(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []*Container
	for _, ns := range nss {
		cs, err := cli.ContainerService().List(namespaces.WithNamespace(ctx, ns))
		if err != nil {
			return nil, nil, err
		}
		for _, c := range cs {
			k := &Container{ID: c.ID, Image: c.Image, Runtime: "containerd", Namespace: ns, Labels: c.Labels}
			if ns == "moby" {
				// docker's containers, seen from below when docker
				// itself could not be asked.
				k.Runtime = "docker"
			}
			k.podFromLabels()
			out = append(out, k)
		}
	}
	return out, nss, nil
}

// taskAnswer is what containerd said of one container's task.
type taskAnswer struct {
	state string
	live  bool
}

// settleContainerd asks containerd for the task of each container in
// todo, with a bounded number of calls in flight. The answers come back in
// todo's order; a call that failed leaves its state empty.
func settleContainerd(ctx context.Context, sock string, todo []*Container) ([]taskAnswer, error) {
	cli, err := containerd.New(sock)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	out := make([]taskAnswer, len(todo))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := cli.TaskService().Get(namespaces.WithNamespace(ctx, c.Namespace), &tasksapi.GetRequest{ContainerID: c.ID})
			switch {
			case errdefs.IsNotFound(errgrpc.ToNative(err)):
				// No task: created and never started, or its task
				// deleted. Nothing runs.
				out[i] = taskAnswer{state: "stopped"}
			case err != nil:
				// Left empty: unknown, never taken for stopped.
			default:
				st := taskState(resp.Process.Status)
				out[i] = taskAnswer{state: st, live: st != "exited" && st != "unknown"}
			}
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

func taskState(s taskapi.Status) string {
	switch s {
	case taskapi.Status_RUNNING:
		return "running"
	case taskapi.Status_CREATED:
		// runc's init is waiting to exec the process: it holds the
		// container's namespaces, cgroup and session keyring.
		return "created"
	case taskapi.Status_STOPPED:
		return "exited"
	case taskapi.Status_PAUSED:
		return "paused"
	case taskapi.Status_PAUSING:
		return "pausing"
	}
	return "unknown"
}
