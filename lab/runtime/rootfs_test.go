//go:build lab

package runtime

// Helpers of the runtime lab: a busybox root filesystem made from the
// host's busybox-static, an OCI runtime bundle for runc, an OCI image
// layout tar for `ctr images import`, and bounded command runs. There is
// no image registry and no network on the lab machines: everything is built
// here.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/enospc/enospc/lab/labkit"
)

// busyboxPath is busybox-static as Debian installs it.
const busyboxPath = "/bin/busybox"

// applets are the busybox applets linked into the root filesystem.
var applets = []string{"sh", "sleep", "cat", "ls", "true", "false", "echo", "id", "ps", "mkdir", "rm", "ln", "env", "grep", "inotifyd", "seq"}

// labDir makes a private directory for one test, removed when the test
// ends. It is mode 0755 so that a container's unprivileged host uid can
// reach the root filesystem inside it.
func labDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	return dir
}

// busyboxRootfs fills dir with a minimal root filesystem: /bin/busybox, its
// applets as symlinks, and the directories runc mounts on. Everything is
// readable and executable by every uid.
func busyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	labkit.RequireTool(t, "busybox")
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	src, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: read %s (apt-get install busybox-static): %v", busyboxPath, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), src, 0o755); err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatalf("rootfs: %v", err)
		}
	}
}

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

// OCI image layout, written by hand: the few fields containerd reads.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
}

type ociPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

const (
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// ociImageTar writes to out an OCI image layout tar (oci-layout,
// index.json, blobs/sha256/...) of one linux image whose single gzip
// layer is rootfs, with cmd as its default command. The index names it
// name (io.containerd.image.name) and tag (org.opencontainers.image.ref.name),
// so that `ctr images import` stores it as name.
func ociImageTar(t testing.TB, rootfs, name, tag, out string, cmd []string) {
	t.Helper()
	arch := goarchToOCI()

	// The layer: the root filesystem as a tar, gzip'd. diff_id is the
	// digest of the uncompressed tar, the layer digest that of the gzip.
	var layerTar bytes.Buffer
	if err := tarTree(&layerTar, rootfs); err != nil {
		t.Fatalf("image layer: %v", err)
	}
	diffID := sha256.Sum256(layerTar.Bytes())
	var layerGz bytes.Buffer
	zw := gzip.NewWriter(&layerGz)
	if _, err := zw.Write(layerTar.Bytes()); err != nil {
		t.Fatalf("image layer: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("image layer: %v", err)
	}

	config := map[string]any{
		"created":      "2024-01-01T00:00:00Z",
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": cmd, "WorkingDir": "/"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		"history":      []map[string]any{{"created": "2024-01-01T00:00:00Z", "created_by": "enospc lab: busybox-static rootfs"}},
	}
	configJSON, _ := json.Marshal(config)

	blobs := map[string][]byte{}
	put := func(mt string, b []byte) ociDescriptor {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return ociDescriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	}
	configDesc := put(mtConfig, configJSON)
	layerDesc := put(mtLayerGz, layerGz.Bytes())
	manifest := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        configDesc,
		"layers":        []ociDescriptor{layerDesc},
	}
	manifestJSON, _ := json.Marshal(manifest)
	manDesc := put(mtManifest, manifestJSON)
	manDesc.Platform = &ociPlatform{Architecture: arch, OS: "linux"}
	manDesc.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tag,
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtIndex,
		"manifests":     []ociDescriptor{manDesc},
	}
	indexJSON, _ := json.Marshal(index)

	f, err := os.Create(out)
	if err != nil {
		t.Fatalf("image tar: %v", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(1704067200, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("image tar: %v", err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatalf("image tar: %v", err)
		}
	}
	addDir := func(name string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1704067200, 0)}); err != nil {
			t.Fatalf("image tar: %v", err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", indexJSON)
	addDir("blobs/")
	addDir("blobs/sha256/")
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("image tar: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("image tar: %v", err)
	}
}

// tarTree writes the tree under root as a tar with paths relative to it,
// owned by uid 0, keeping modes and symlinks.
func tarTree(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = time.Unix(1704067200, 0)
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// goarchToOCI is the OCI architecture of this machine: OCI uses GOARCH's
// names.
func goarchToOCI() string { return goruntime.GOARCH }

// run runs a command with a time bound and returns its combined output.
// stdin is /dev/null.
func run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %s: %s", name, strings.Join(args, " "), timeout, out)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// runDetached runs a command whose children may outlive it (runc run -d,
// ctr run -d): its stdio are files, not pipes, so that waiting for it does
// not wait for the container that inherited them. It returns what the
// command wrote to stdout and stderr.
func runDetached(timeout time.Duration, logDir, name string, args ...string) (string, error) {
	log, err := os.CreateTemp(logDir, "out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return "", err
	}
	defer null.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, log, log
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	out, _ := os.ReadFile(log.Name())
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %s: timed out after %s: %s", name, strings.Join(args, " "), timeout, out)
	}
	if runErr != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), runErr, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			t.Errorf("cleanup: umount %s: %v", mp, err)
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// killCgroups SIGKILLs every process left in the cgroup directory rel
// (and below it) of any mounted hierarchy: the containers of the test,
// when their runtime could not stop them. It waits, bounded, until they
// are gone.
func killCgroups(t testing.TB, rel string) {
	t.Helper()
	procs := func() []int {
		roots, _ := filepath.Glob("/sys/fs/cgroup/*")
		roots = append(roots, "/sys/fs/cgroup")
		seen := map[int]bool{}
		var pids []int
		for _, root := range roots {
			filepath.WalkDir(filepath.Join(root, rel), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					var pid int
					if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && !seen[pid] {
						seen[pid] = true
						pids = append(pids, pid)
					}
				}
				return nil
			})
		}
		return pids
	}
	for end := time.Now().Add(15 * time.Second); ; {
		pids := procs()
		if len(pids) == 0 {
			return
		}
		if time.Now().After(end) {
			t.Errorf("cleanup: processes %v stay in cgroup %s", pids, rel)
			return
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeCgroups removes the cgroup directory rel (and what is left below
// it) from every mounted hierarchy, deepest first. Cgroup directories are
// removed with rmdir; a populated one stays and is reported.
func removeCgroups(t testing.TB, rel string) {
	t.Helper()
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		top := filepath.Join(root, rel)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Errorf("cleanup: rmdir cgroup %s: %v", d, err)
			}
		}
	}
}
