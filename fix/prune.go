package fix

import (
	"context"
	"fmt"
	"strings"

	dockercontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// PruneActions are the opt-in removals of exited docker containers that
// leak.keyrings lists (fix --prune): a container whose keyring is still
// charged while it does not run.
func PruneActions(rep *check.Report) []Action {
	var out []Action
	for _, u := range rep.Findings {
		if u.Limit != "leak.keyrings" || u.Leaked == 0 {
			continue
		}
		n := 0
		for _, c := range u.Consumers {
			if c.Runtime == "docker" && (c.State == "exited" || c.State == "dead" || c.State == "created") {
				n++
			}
		}
		if n == 0 {
			continue
		}
		out = append(out, Action{Kind: "cleanup", Limit: "leak.keyrings", Scope: u.Scope,
			Why:  fmt.Sprintf("leak.keyrings %s: %d keyrings of containers that no longer run (%s)", u.Scope, u.Leaked, u.Reason),
			Risk: "the containers and their writable layers are deleted, as docker container prune does; each is inspected right before and a running one is left",
			Text: fmt.Sprintf("remove the %d exited docker containers that hold them (--prune)", n)})
	}
	return out
}

// pruneKeyrings runs leak.keyrings again and removes, through docker's
// API, each exited docker container it lists, inspected right before: one
// that runs again is left.
func pruneKeyrings(ctx context.Context, h *host.Host, copts check.Options, record func(Entry)) error {
	if copts.Runtimes == nil || copts.Runtimes.DockerHost == "" {
		return fmt.Errorf("--prune needs docker's API (--docker-host)")
	}
	copts.Only = []string{"leak.keyrings"}
	rep, err := check.Run(ctx, h, copts)
	if err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.WithHost(copts.Runtimes.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	seen := map[string]bool{}
	for _, u := range rep.Findings {
		for _, c := range u.Consumers {
			if c.Runtime != "docker" || c.Container == "" || seen[c.Container] || (c.State != "exited" && c.State != "dead" && c.State != "created") {
				continue
			}
			seen[c.Container] = true
			e := Entry{Kind: "cleanup", Limit: "leak.keyrings", Path: "docker container " + c.Container}
			cctx, cancel := context.WithTimeout(ctx, copts.Runtimes.Timeout)
			info, err := cli.ContainerInspect(cctx, c.Container)
			switch {
			case err != nil:
				e.State, e.Note = "skipped", err.Error()
			case info.State != nil && (info.State.Running || info.State.Paused || info.State.Restarting):
				e.State, e.Note = "skipped", "runs again: left"
			default:
				if err := cli.ContainerRemove(cctx, c.Container, dockercontainer.RemoveOptions{}); err != nil {
					e.State, e.Note = "failed", err.Error()
				} else {
					e.State, e.Note = "removed", strings.TrimPrefix(info.Name, "/")
				}
			}
			cancel()
			record(e)
		}
	}
	return nil
}
