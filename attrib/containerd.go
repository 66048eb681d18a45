package attrib

import (
	"context"
	"strings"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	taskapi "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// listContainerd lists the containers and tasks of every containerd
// namespace through containerd's Go client: one call for the namespaces,
// then per namespace one for the containers and one for the tasks.
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
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, err := cli.ContainerService().List(nctx)
		if err != nil {
			return nil, nil, err
		}
		tasks, err := cli.TaskService().List(nctx, &tasksapi.ListTasksRequest{})
		if err != nil {
			return nil, nil, err
		}
		state := map[string]string{}
		for _, t := range tasks.Tasks {
			state[t.ID] = taskState(t.Status)
		}
		for _, c := range cs {
			k := &Container{ID: c.ID, Image: c.Image, Runtime: "containerd", Namespace: ns, Labels: c.Labels, State: "created"}
			if s, ok := state[c.ID]; ok {
				k.State = s
				k.Live = s != "exited"
			} else {
				// A container without a task has no process: as far as
				// its resources go, it is stopped.
				k.State = "stopped"
			}
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
	return strings.ToLower(s.String())
}
