package attrib

import (
	"context"
	"net"
	"net/http"
	"strings"

	dockertypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// listDocker lists every container, running or not, through the Docker
// Engine API on its unix socket, as the docker CLI does (API version
// negotiated with the daemon).
func listDocker(ctx context.Context, sock string) ([]*Container, []string, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if strings.Contains(sock, "://") {
		opts = append(opts, client.WithHost(sock))
	} else {
		// A socket under a host root mounted elsewhere: dial that path,
		// speak to it as the daemon's usual address.
		opts = append(opts, client.WithHost("unix://"+sock), client.WithHTTPClient(&http.Client{
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}},
		}))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, dockertypes.ListOptions{All: true})
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Container, 0, len(list))
	for _, s := range list {
		c := &Container{ID: strings.ToLower(s.ID), Image: s.Image, Runtime: "docker", State: string(s.State), Labels: s.Labels}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		switch c.State {
		case "running", "paused", "restarting":
			c.Live = true
		}
		c.podFromLabels()
		out = append(out, c)
	}
	return out, nil, nil
}
