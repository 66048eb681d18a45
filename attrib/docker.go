package attrib

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	dockertypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// dockerClient dials the Docker Engine API at sock: a unix socket path as
// seen from here (a host root mounted elsewhere is dialed at that path and
// spoken to as the daemon's usual address), or an address with a scheme.
func dockerClient(sock string) (*client.Client, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if strings.Contains(sock, "://") {
		opts = append(opts, client.WithHost(sock))
	} else {
		opts = append(opts, client.WithHost("unix://"+sock), client.WithHTTPClient(&http.Client{
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}},
		}))
	}
	return client.NewClientWithOpts(opts...)
}

// DockerSocket is the path Collect dials for docker under opts: the unix
// socket of DockerHost through SocketPath. ok is false when DockerHost is
// empty or not a unix socket.
func DockerSocket(opts Options) (sock string, ok bool) {
	rest, isUnix := strings.CutPrefix(opts.DockerHost, "unix://")
	if opts.DockerHost == "" || (!isUnix && strings.Contains(opts.DockerHost, "://")) {
		return "", false
	}
	if opts.SocketPath != nil {
		rest = opts.SocketPath(rest)
	}
	return rest, true
}

// listDocker lists every container, running or not, through the Docker
// Engine API on its unix socket, as the docker CLI does (API version
// negotiated with the daemon).
func listDocker(ctx context.Context, sock string) ([]*Container, []string, error) {
	cli, err := dockerClient(sock)
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

// Docker is a connection to one docker daemon, for the removals of fix
// --prune: the daemon asked is the one the inventory listed.
type Docker struct {
	cli *client.Client
}

// DialDocker connects to the docker daemon at the unix socket the
// inventory asks under opts (DockerSocket). Other addresses are refused:
// only a local daemon's containers can hold this kernel's keyrings.
func DialDocker(opts Options) (*Docker, error) {
	sock, ok := DockerSocket(opts)
	if !ok {
		return nil, fmt.Errorf("docker host %q: want a unix socket", opts.DockerHost)
	}
	cli, err := dockerClient(sock)
	if err != nil {
		return nil, err
	}
	return &Docker{cli: cli}, nil
}

// Close closes the connection.
func (d *Docker) Close() error { return d.cli.Close() }

// DockerContainer is what the daemon says of one container.
type DockerContainer struct {
	ID   string
	Name string
	// Live: running, paused or restarting.
	Live bool
	// User is Config.User as given ("", "1000", "1000:1000", "app").
	User string
	// HostUserns: the container was created with --userns=host, outside
	// the daemon's remapping.
	HostUserns bool
}

// Inspect asks the daemon for the container id (docker inspect).
func (d *Docker) Inspect(ctx context.Context, id string) (DockerContainer, error) {
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return DockerContainer{}, err
	}
	c := DockerContainer{ID: strings.ToLower(info.ID), Name: strings.TrimPrefix(info.Name, "/")}
	if info.State != nil {
		c.Live = info.State.Running || info.State.Paused || info.State.Restarting
	}
	if info.Config != nil {
		c.User = info.Config.User
	}
	if info.HostConfig != nil {
		c.HostUserns = info.HostConfig.UsernsMode.IsHost()
	}
	return c, nil
}

// Remove removes a stopped container (docker rm, without --force).
func (d *Docker) Remove(ctx context.Context, id string) error {
	return d.cli.ContainerRemove(ctx, id, dockertypes.RemoveOptions{})
}

// DockerUserns is how the daemon maps its containers' uids to the host's.
type DockerUserns struct {
	// Remap: the daemon runs with userns-remap; container root is then
	// host uid RootUID (from the daemon's root dir, <data-root>/<uid>.<gid>).
	Remap   bool
	RootUID int
	// Rootless: the daemon itself runs in a user namespace.
	Rootless bool
}

// Userns asks the daemon (docker info) for its user namespace setup.
func (d *Docker) Userns(ctx context.Context) (DockerUserns, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return DockerUserns{}, err
	}
	var u DockerUserns
	for _, o := range info.SecurityOptions {
		for _, kv := range strings.Split(o, ",") {
			switch kv {
			case "name=userns":
				u.Remap = true
			case "name=rootless":
				u.Rootless = true
			}
		}
	}
	if u.Remap {
		// With userns-remap the daemon keeps its data in a directory
		// named by the host uid and gid of container root.
		uid, _, ok := strings.Cut(path.Base(info.DockerRootDir), ".")
		n, err := strconv.Atoi(uid)
		if !ok || err != nil || n <= 0 {
			return u, fmt.Errorf("userns-remap, but the root dir %q names no uid.gid", info.DockerRootDir)
		}
		u.RootUID = n
	}
	return u, nil
}
