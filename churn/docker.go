package churn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
)

// DockerOptions say which dockerd churn drives.
type DockerOptions struct {
	// Host is the Engine API's unix socket, a path or unix://path.
	Host string
	// Root and Exec are dockerd's --data-root and --exec-root, whose
	// files churn counts ("" /var/lib/docker, /run/docker).
	Root, Exec string
	// CgroupParent is dockerd's --cgroup-parent with the cgroupfs driver
	// ("" /docker), under which its containers' memory cgroups are
	// counted.
	CgroupParent string
}

// dockerDriver drives dockerd through the Docker Engine API as the docker
// CLI does: `docker run -d` (create, start), `docker pause`, `docker
// unpause`, `docker kill`, `docker rm` (refused while the kill has not
// landed, and retried). Its containers carry churn's labels and have no
// network.
type dockerDriver struct {
	opts  DockerOptions
	image string
	args  []string
	run   string
	h     *host.Host
	cli   *client.Client
	fp    *footprint
}

func newDockerDriver(h *host.Host, o Options) *dockerDriver {
	do := o.Docker
	do.Host = strings.TrimPrefix(do.Host, "unix://")
	if do.Host == "" {
		do.Host = "/var/run/docker.sock"
	}
	if do.Root == "" {
		do.Root = "/var/lib/docker"
	}
	if do.Exec == "" {
		do.Exec = "/run/docker"
	}
	if do.CgroupParent == "" {
		do.CgroupParent = "/docker"
	}
	return &dockerDriver{opts: do, image: o.Image, args: o.Args, run: o.runID, h: h}
}

func (d *dockerDriver) connect() error {
	if d.cli != nil {
		return nil
	}
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+d.opts.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker at %s: %w", d.opts.Host, err)
	}
	d.cli = cli
	return nil
}

func (d *dockerDriver) prepare(ctx context.Context) error {
	if err := d.connect(); err != nil {
		return err
	}
	if _, err := d.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker at %s does not answer: %w", d.opts.Host, err)
	}
	if d.image == "" {
		return errors.New("no image: docker needs one it holds")
	}
	if _, err := d.cli.ImageInspect(ctx, d.image); err != nil {
		return fmt.Errorf("image %s: %w", d.image, err)
	}
	// Shims of docker's containers serve containerd's namespace moby,
	// whatever containerd dockerd uses.
	d.fp = &footprint{h: d.h, address: d.opts.Host, dirs: []string{d.opts.Root, d.opts.Exec},
		shimsOf: func(p shimProc) bool { return p.arg("-namespace") == "moby" }, cgroup: d.opts.CgroupParent}
	return nil
}

func (d *dockerDriver) checkOptions(*check.Options) {}

func (d *dockerDriver) step(ctx context.Context, id, step string) error {
	switch step {
	case StepRun:
		st, err := d.cli.ContainerInspect(ctx, id)
		if errdefs.IsNotFound(err) {
			_, err = d.cli.ContainerCreate(ctx, &container.Config{
				Image:  d.image,
				Cmd:    d.args,
				Labels: map[string]string{LabelChurn: "true", LabelRun: d.run},
			}, &container.HostConfig{NetworkMode: "none"}, nil, nil, id)
			if err != nil {
				return err
			}
		} else if err != nil {
			return err
		} else if st.State != nil && st.State.Running {
			return nil
		}
		return d.cli.ContainerStart(ctx, id, container.StartOptions{})
	case StepPause:
		return d.cli.ContainerPause(ctx, id)
	case StepResume:
		return d.cli.ContainerUnpause(ctx, id)
	case StepKill:
		return d.cli.ContainerKill(ctx, id, "KILL")
	case StepDelete:
		return d.cli.ContainerRemove(ctx, id, container.RemoveOptions{})
	}
	return fmt.Errorf("step %q: docker has no such step", step)
}

// remove force-removes one of churn's containers, checked by its label.
func (d *dockerDriver) remove(ctx context.Context, id string) error {
	st, err := d.cli.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Config == nil || st.Config.Labels[LabelChurn] != "true" {
		return fmt.Errorf("container %s is not churn's: left alone", id)
	}
	if st.State != nil && st.State.Paused {
		d.cli.ContainerUnpause(ctx, id)
	}
	end := time.Now().Add(30 * time.Second)
	for {
		err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup removes every container labelled as churn's.
func (d *dockerDriver) cleanup(ctx context.Context) error {
	if err := d.connect(); err != nil {
		return err
	}
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelChurn+"=true"))})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := d.remove(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *dockerDriver) leftovers() int         { return 0 }
func (d *dockerDriver) removeLeftovers() error { return nil }

func (d *dockerDriver) footprint(ctx context.Context) []Reading {
	if d.fp == nil {
		return nil
	}
	return d.fp.read(ctx)
}

func (d *dockerDriver) close() {
	if d.cli != nil {
		d.cli.Close()
	}
}
