package cli

import (
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
)

// hostFlags are the flags check, fix and serve share: where containerd
// keeps its state and its clients' fifos, and where the container runtimes
// listen (defaults from DOCKER_HOST and CONTAINERD_ADDRESS).
type hostFlags struct {
	containerdState, fifoDir string
	runtimes                 attrib.Options
	noRuntimes               bool
	familyTimeout            time.Duration
}

func addHostFlags(f *pflag.FlagSet) *hostFlags {
	hf := &hostFlags{runtimes: attrib.Defaults}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		hf.runtimes.DockerHost = h
	}
	if a := os.Getenv("CONTAINERD_ADDRESS"); a != "" {
		hf.runtimes.ContainerdAddress = a
	}
	f.StringVar(&hf.containerdState, "containerd-state", "/run/containerd", "containerd's state directory (host path)")
	f.StringVar(&hf.fifoDir, "fifo-dir", "/run/containerd/fifo", "the fifo directory of containerd's clients (host path)")
	f.StringVar(&hf.runtimes.DockerHost, "docker-host", hf.runtimes.DockerHost, "Docker Engine API address (unix socket), for container names and states; \"\" skips docker (default from DOCKER_HOST)")
	f.StringVar(&hf.runtimes.ContainerdAddress, "containerd-address", hf.runtimes.ContainerdAddress, "containerd's socket; \"\" skips containerd (default from CONTAINERD_ADDRESS)")
	f.StringVar(&hf.runtimes.CRIOSocket, "crio-socket", hf.runtimes.CRIOSocket, "CRI-O's socket; \"\" skips CRI-O")
	f.DurationVar(&hf.runtimes.Timeout, "runtime-timeout", hf.runtimes.Timeout, "give up on a runtime that does not answer in this time; its containers are then named by id only")
	f.DurationVar(&hf.familyTimeout, "family-timeout", check.DefaultFamilyTimeout, "give up on one family of limits whose read blocks (a hung mount, a device) after this long: its limits are unknown, and it is not started again while that read is blocked")
	f.BoolVar(&hf.noRuntimes, "no-runtimes", false, "ask no container runtime: containers are named by the id in their cgroup path, and leaked cgroups and keyrings are not decided")
	return hf
}

// options are the check options the flags say.
func (hf *hostFlags) options() check.Options {
	o := check.Options{ContainerdState: hf.containerdState, FifoDir: hf.fifoDir, FamilyTimeout: hf.familyTimeout}
	if !hf.noRuntimes {
		rt := hf.runtimes
		o.Runtimes = &rt
	}
	return o
}
