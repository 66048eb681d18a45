//go:build lab && labquota

package kernel

import (
	"fmt"
	"github.com/enospc/enospc/lab/labkit"
	"github.com/enospc/enospc/limits"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The quota lab needs a kernel that enforces quotas on some filesystem:
// CONFIG_QFMT_V2 (ext4's quota feature), CONFIG_XFS_QUOTA or
// CONFIG_TMPFS_QUOTA. This project's lab machine (kernel 6.18 without
// them, and no loadable modules) has none: the test runs under
// `go test -tags lab,labquota ./lab/kernel` on a kernel that has one. Here,
// quota is covered by the fixture host home-quota and by
// TestQuotaAccountingOff, which runs everywhere.

func TestQuotaUserExceeded(t *testing.T) {
	const blockLimitKiB = 1024 // 1 MiB
	const inodeLimit = 16
	uid := labkit.UID(11)
	mnt, err := quotaImage(t, "usrquota,prjquota", "-O", "quota", "-E", "quotatype=usrquota:prjquota")
	if err != nil {
		why := "the kernel refused the mount"
		if v, ok := kernelConfig("QFMT_V2"); ok && v == "" {
			why = "this kernel is built without CONFIG_QFMT_V2, the quota format ext4's quota feature needs"
			if x, _ := kernelConfig("XFS_QUOTA"); x == "" {
				why += " (nor CONFIG_XFS_QUOTA"
				if tq, _ := kernelConfig("TMPFS_QUOTA"); tq == "" {
					why += " or CONFIG_TMPFS_QUOTA"
				}
				why += "): no filesystem here can enforce a quota"
			}
		}
		t.Fatalf("LAB CANNOT RUN %s: %s: %v", t.Name(), why, err)
	}

	// The uid's limits, set with quotactl on the mount point.
	fd, err := unix.Open(mnt, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", mnt, err)
	}
	defer unix.Close(fd)
	lim := labDqblk{BHardLimit: blockLimitKiB, IHardLimit: inodeLimit, Valid: labQIFBLimits | labQIFILimits}
	if err := labQuotactl(fd, labQSetQuota, labUsrQuota, uid, &lim); err != nil {
		t.Fatalf("LAB CANNOT RUN: quotactl Q_SETQUOTA uid %d on %s: %v", uid, mnt, err)
	}
	home := filepath.Join(mnt, "u")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, uid); err != nil {
		t.Fatal(err)
	}

	// Blocks: dd writes 4 MiB against 1 MiB.
	out := runAs(t, uid, 30*time.Second, "Disk quota exceeded", "dd", "if=/dev/zero", "of="+filepath.Join(home, "big"), "bs=64k", "count=64")
	ddMsg := quotaLine(out, "Disk quota exceeded")
	t.Logf("dd as uid %d printed: %q", uid, out)
	if ddMsg == "" {
		t.Fatalf("dd as uid %d over a 1 MiB quota did not say \"Disk quota exceeded\": %q", uid, out)
	}
	// Inodes: touch until the 16th inode is refused (bounded).
	out = runAs(t, uid, 30*time.Second, "Disk quota exceeded", "sh", "-c",
		fmt.Sprintf("cd %s && i=0; while [ $i -lt %d ]; do touch f$i || exit 1; i=$((i+1)); done", home, 4*inodeLimit))
	touchMsg := quotaLine(out, "Disk quota exceeded")
	t.Logf("touch as uid %d printed: %q", uid, out)
	if touchMsg == "" {
		t.Fatalf("touch as uid %d over a %d-inode quota did not say \"Disk quota exceeded\": %q", uid, inodeLimit, out)
	}
	var now labDqblk
	if err := labQuotactl(fd, labQGetQuota, labUsrQuota, uid, &now); err == nil {
		t.Logf("quotactl: uid %d uses %d bytes of %d KiB, %d inodes of %d", uid, now.CurSpace, now.BHardLimit, now.CurInodes, now.IHardLimit)
	}

	rep, code := labkit.RunCheck(t)
	scope := fmt.Sprintf("uid %d on %s", uid, mnt)
	u := labkit.Find(t, rep, "quota", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(u))
	if u.Severity != limits.Critical {
		t.Errorf("quota %s is %s, want critical", scope, u.Severity)
	}
	if u.Max != blockLimitKiB*1024 || u.Used < u.Max*95/100 {
		t.Errorf("quota %s: used %d max %d, want the 1 MiB limit nearly all used", scope, u.Used, u.Max)
	}
	if len(u.Consumers) == 0 || u.Consumers[0].UID == nil || *u.Consumers[0].UID != uid {
		t.Errorf("quota %s: holder %+v, want uid %d", scope, u.Consumers, uid)
	}
	if rem := strings.Join(u.Remedy, "\n"); !strings.Contains(rem, fmt.Sprintf("setquota -u %d ", uid)) || !strings.Contains(rem, mnt) {
		t.Errorf("quota %s: remedy does not give the setquota command for the mount: %q", scope, u.Remedy)
	}
	ui := labkit.Find(t, rep, "quota.inodes", labkit.ScopeIs(scope))
	t.Logf("check: %s", describe(ui))
	if ui.Severity != limits.Critical || ui.Max != inodeLimit || ui.Used != inodeLimit {
		t.Errorf("quota.inodes %s: %s %d/%d, want critical %d/%d", scope, ui.Severity, ui.Used, ui.Max, inodeLimit, inodeLimit)
	}
	if code != 2 {
		t.Errorf("check exit status %d, want 2 (some critical)", code)
	}

	for _, msg := range []string{ddMsg, touchMsg} {
		causes := explainOffline(t, msg)
		if len(causes) == 0 || causes[0] != "quota" {
			t.Errorf("explain --offline %q ranks %v, want quota first", msg, causes)
		}
	}
	if causes := explainOffline(t, touchMsg); !containsString(causes, "quota.inodes") {
		t.Errorf("explain --offline %q: %v, want quota.inodes among the causes", touchMsg, causes)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
