//go:build lab

package runtime

// The runtime lab's OCI runtime bundle for runc (labkit makes the root
// filesystems, images and daemons).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// bundleOptions shape one runc bundle's config.json.
type bundleOptions struct {
	Rootfs     string   // absolute path of the root filesystem
	HostUID    int      // host uid that container uid 0 maps to (gid alike)
	MapSize    uint32   // 1 or 65536
	CgroupPath string   // linux.cgroupsPath
	Args       []string // the container's process
}

// runcSpec is the config of a detached container without a terminal that
// runs opts.Args as uid 0 of a new user namespace mapped to opts.HostUID,
// with new pid, ipc, uts, mount and (empty) network namespaces. It is the
// `runc spec` default less what a one-uid mapping cannot have (devpts with
// gid=5, the cgroup mount).
func runcSpec(opts bundleOptions) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: "1.0.2-dev",
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     opts.Args,
			Env:      []string{"PATH=/bin", "HOME=/root"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: opts.Rootfs, Readonly: true},
		Hostname: "enospc-lab",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=1024k"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1024k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1024k"}},
		},
		Linux: &specs.Linux{
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(opts.HostUID), Size: opts.MapSize}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(opts.HostUID), Size: opts.MapSize}},
			CgroupsPath: opts.CgroupPath,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace},
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// writeBundle writes dir/config.json for runc.
func writeBundle(t testing.TB, dir string, opts bundleOptions) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	b, err := json.MarshalIndent(runcSpec(opts), "", "\t")
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatalf("bundle: %v", err)
	}
}
