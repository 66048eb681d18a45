//go:build lab

package kernel

// Disk quotas: a loop-mounted ext4 image with the quota feature, a
// dedicated uid given a block and an inode hard limit with quotactl
// (Q_SETQUOTA, no quota tools needed), then dd and touch as that uid until
// the kernel says EDQUOT. check must report quota and quota.inodes critical
// for "uid N on <mount point>", and explain must rank quota first for the
// captured text.
//
// ext4 keeps its quota files in hidden inodes in the v2 format, which the
// kernel must be built with (CONFIG_QFMT_V2); without it ext4 refuses the
// mount ("The kernel was not built with CONFIG_QUOTA and CONFIG_QFMT_V2")
// and no filesystem of that kernel can enforce a quota unless XFS or tmpfs
// quotas are built in: the test then says LAB CANNOT RUN.
// TestQuotaAccountingOff runs everywhere: a filesystem mounted with
// usrquota whose accounting is off (ext4 without the quota feature, no
// quotaon) can refuse nothing, and check must read it without a row, an
// unknown row or a hang.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
)

// quotactl subcommands and if_dqblk validity flags (linux/quota.h).
const (
	labQGetQuota    = 0x800007
	labQSetQuota    = 0x800008
	labQIFBLimits   = 1
	labQIFILimits   = 4
	labUsrQuota     = 0
	labQuotaImageMB = 64
)

// labDqblk is struct if_dqblk (limits in 1 KiB blocks).
type labDqblk struct {
	BHardLimit, BSoftLimit, CurSpace  uint64
	IHardLimit, ISoftLimit, CurInodes uint64
	BTime, ITime                      uint64
	Valid                             uint32
	_                                 uint32
}

func labQuotactl(fd, cmd, kind int, id int, d *labDqblk) error {
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), uintptr(uint32(cmd<<8|kind)), uintptr(id), uintptr(unsafe.Pointer(d)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// kernelConfig returns the value of CONFIG_name from /proc/config.gz ("y",
// "m", or "" when not set), and whether the config could be read.
func kernelConfig(name string) (string, bool) {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return "", false
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", false
	}
	b, err := io.ReadAll(io.LimitReader(zr, 16<<20))
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CONFIG_"+name+"="); ok {
			return v, true
		}
	}
	return "", true
}

// quotaImage makes an ext4 image of labQuotaImageMB in a fresh directory
// every uid can traverse, attaches it to a loop device and mounts it with
// opts; everything is undone when the test ends. mkfsArgs go to mkfs.ext4.
// It returns the mount point and the mount error (the caller decides
// whether a refused mount means the lab cannot run).
func quotaImage(t *testing.T, opts string, mkfsArgs ...string) (string, error) {
	t.Helper()
	mkfs := labkit.RequireTool(t, "mkfs.ext4")
	losetup := labkit.RequireTool(t, "losetup")
	dir, err := os.MkdirTemp("", "enospc-lab-quota-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("CLEANUP FAILED: remove %s: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", dir, err)
	}
	img := filepath.Join(dir, "ext4.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	if err := f.Truncate(labQuotaImageMB << 20); err != nil {
		f.Close()
		t.Fatalf("size image: %v", err)
	}
	f.Close()
	if out, err := exec.Command(mkfs, append(append([]string{"-q", "-F"}, mkfsArgs...), img)...).CombinedOutput(); err != nil {
		t.Fatalf("LAB CANNOT RUN: mkfs.ext4 %s: %v\n%s", strings.Join(mkfsArgs, " "), err, out)
	}
	out, err := exec.Command(losetup, "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("LAB CANNOT RUN: losetup --find --show %s: %v\n%s", img, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		ok := labkit.WaitFor(10*time.Second, func() bool { return exec.Command(losetup, "-d", dev).Run() == nil })
		if !ok {
			out, err := exec.Command(losetup, "-d", dev).CombinedOutput()
			t.Errorf("CLEANUP FAILED: losetup -d %s: %v %s", dev, err, out)
		}
	})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatalf("mount point: %v", err)
	}
	if err := unix.Mount(dev, mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return mnt, fmt.Errorf("mount %s on %s -o %s: %w", dev, mnt, opts, err)
	}
	t.Cleanup(func() {
		ok := labkit.WaitFor(10*time.Second, func() bool {
			err := unix.Unmount(mnt, 0)
			return err == nil || err == unix.EINVAL
		})
		if !ok {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
				t.Errorf("CLEANUP FAILED: unmount %s: %v", mnt, err)
			}
		}
	})
	// The mount is in the host's namespace, where check reads pid 1's
	// mount table, but propagates nowhere.
	if err := unix.Mount("", mnt, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make %s private: %v", mnt, err)
	}
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatalf("chmod %s: %v", mnt, err)
	}
	return mnt, nil
}

// quotaLine returns the line of out that holds want.
func quotaLine(out, want string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, want) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// explainOffline runs enospc explain -o json --offline on msg and returns
// the limits of its causes, most likely first.
func explainOffline(t *testing.T, msg string) []string {
	t.Helper()
	cmd := exec.Command(labkit.Bin(), "explain", "-o", "json", "--offline", msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("enospc explain: %v", err)
		}
	}
	var res struct {
		Causes []struct {
			Limit      string  `json:"limit"`
			Confidence float64 `json:"confidence"`
		} `json:"causes"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("enospc explain: output is not JSON: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var out []string
	for _, c := range res.Causes {
		out = append(out, c.Limit)
	}
	t.Logf("explain --offline %q: %s", msg, stdout.String())
	return out
}

func TestQuotaAccountingOff(t *testing.T) {
	mnt, err := quotaImage(t, "usrquota,grpquota")
	if err != nil {
		t.Fatalf("LAB CANNOT RUN %s: %v", t.Name(), err)
	}
	mi, err := os.ReadFile("/proc/1/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	line := quotaLine(string(mi), " "+mnt+" ")
	t.Logf("mountinfo: %s", line)
	if !strings.Contains(line, "usrquota") {
		t.Fatalf("LAB CANNOT RUN %s: the mount's options do not show usrquota: %q", t.Name(), line)
	}
	// The kernel's answer: accounting is off.
	fd, err := unix.Open(mnt, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var d labDqblk
	qerr := labQuotactl(fd, labQGetQuota, labUsrQuota, 0, &d)
	unix.Close(fd)
	t.Logf("quotactl_fd Q_GETQUOTA uid 0 on %s: %v", mnt, qerr)
	if !errors.Is(qerr, syscall.ESRCH) {
		t.Fatalf("LAB CANNOT RUN %s: quotactl says %v, want ESRCH (accounting off); this kernel has quotas on for a filesystem mounted without the quota feature", t.Name(), qerr)
	}

	start := time.Now()
	rep, _ := labkit.RunCheck(t)
	t.Logf("check took %s", time.Since(start))
	for _, f := range rep.Findings {
		if (f.Limit == "quota" || f.Limit == "quota.inodes") && strings.HasSuffix(f.Scope, " on "+mnt) {
			t.Errorf("%s %q %s (%s): a filesystem whose quota accounting is off can refuse nothing and must give no row", f.Limit, f.Scope, f.Severity, f.Reason)
		}
	}
}
