package limits

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/host"
)

func TestQuotaKindsOf(t *testing.T) {
	tests := []struct {
		fstype, opts string
		want         [quotaKinds]bool
	}{
		{"ext4", "rw,relatime,rw,quota,usrquota,grpquota", [quotaKinds]bool{true, true, false}},
		{"ext4", "rw,usrquota,prjquota", [quotaKinds]bool{true, false, true}},
		{"ext4", "rw,usrjquota=aquota.user,jqfmt=vfsv0", [quotaKinds]bool{true, false, false}},
		{"ext4", "rw,usrjquota=,grpjquota=aquota.group", [quotaKinds]bool{false, true, false}},
		{"xfs", "rw,attr2,inode64,noquota", [quotaKinds]bool{}},
		{"xfs", "rw,attr2,inode64,logbufs=8,usrquota,prjquota", [quotaKinds]bool{true, false, true}},
		{"xfs", "rw,uquota,gquota,pquota", [quotaKinds]bool{true, true, true}},
		{"xfs", "rw,uqnoenforce,gqnoenforce,pqnoenforce,qnoenforce", [quotaKinds]bool{}},
		{"tmpfs", "rw,size=1g,quota", [quotaKinds]bool{true, true, false}},
		{"tmpfs", "rw,usrquota,usrquota_block_hardlimit=1048576", [quotaKinds]bool{true, false, false}},
		{"ext4", "rw,discard", [quotaKinds]bool{}},
		{"ext4", "rw,quota,grpquota", [quotaKinds]bool{false, true, false}},
		{"jfs", "rw,quota", [quotaKinds]bool{true, false, false}},
	}
	for _, tt := range tests {
		if got := quotaKindsOf(tt.fstype, tt.opts); got != tt.want {
			t.Errorf("quotaKindsOf(%s, %q) = %v, want %v", tt.fstype, tt.opts, got, tt.want)
		}
	}
}

func TestQuotaMounts(t *testing.T) {
	mounts, err := parseMountInfo(strings.NewReader(strings.Join([]string{
		"24 0 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,discard",
		"90 24 259:3 / /home rw,relatime shared:30 - ext4 /dev/sdb1 rw,quota,usrquota,grpquota",
		"91 24 259:3 /ci /srv/ci rw,relatime shared:30 - ext4 /dev/sdb1 rw,quota,usrquota,grpquota",
		"92 24 0:60 / /mnt/nfs rw,relatime - nfs4 server:/export rw,vers=4.2,usrquota",
		"93 24 253:4 / /var/lib/docker rw,relatime - xfs /dev/mapper/vg-docker rw,attr2,inode64,prjquota",
		"94 93 0:80 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work",
		"95 24 0:81 / /srv/fuse rw - fuse.sshfs host: rw,usrquota",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range quotaMounts(mounts) {
		got = append(got, m.MountPoint)
	}
	if strings.Join(got, " ") != "/home /var/lib/docker" {
		t.Errorf("quota mounts %q, want /home (once, not its bind mount) and /var/lib/docker", got)
	}
}

// quotaEnv is an Env on a fixture procfs whose pid 1 has the given mount
// table, with quotas served by serve.
func quotaEnv(t *testing.T, mountinfo string, serve func(string) ([]host.Quota, error)) *Env {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"proc/1", "root/etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "proc/1/mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	h := host.New(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), filepath.Join(dir, "root"))
	h.Now = func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) }
	h.StatfsTimeout = 200 * time.Millisecond
	h.QuotaFunc = serve
	return &Env{Ctx: context.Background(), Host: h, Thresholds: DefaultThresholds}
}

func quotaRowOf(rows []Finding, limit, scope string) (Finding, bool) {
	for _, u := range rows {
		if u.Limit == limit && u.Scope == scope {
			return u, true
		}
	}
	return Finding{}, false
}

func TestReadQuota(t *testing.T) {
	const gib = 1 << 30
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC).Unix()
	mi := "24 0 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n" +
		"90 24 259:3 / /home rw,relatime shared:30 - ext4 /dev/sdb1 rw,quota,usrquota,grpquota\n" +
		"93 24 253:4 / /var/lib/docker rw,relatime - xfs /dev/mapper/vg-docker rw,attr2,inode64,prjquota\n"
	recs := map[string][]host.Quota{
		"/home": {
			{Type: "user", ID: 0, Bytes: 3 * gib, Inodes: 40000}, // no limit: no row
			{Type: "user", ID: 1000, Bytes: 10 * gib, BytesHard: 10 * gib, Inodes: 412000, InodesHard: 1000000},
			{Type: "user", ID: 1001, Bytes: 8*gib + gib/2, BytesSoft: 8 * gib, BytesHard: 10 * gib, BytesGrace: now + 3*86400, Inodes: 1000},
			{Type: "user", ID: 1002, Bytes: 5 * gib, BytesSoft: 4 * gib, BytesHard: 10 * gib, BytesGrace: now - 3600},
			{Type: "user", ID: 1003, Bytes: 1 * gib, BytesSoft: 2 * gib},
			{Type: "group", ID: 100, Bytes: 60 * gib, BytesHard: 200 * gib},
			{Type: "project", ID: 9, Bytes: gib, BytesHard: gib}, // /home does not enforce project quotas
		},
	}
	env := quotaEnv(t, mi, func(mp string) ([]host.Quota, error) {
		if mp == "/var/lib/docker" {
			return nil, errors.New("fixture: no quotas here")
		}
		return recs[mp], nil
	})
	rows := readQuota(env)
	for i := range rows {
		rows[i].Grade(env.Thresholds)
	}
	want := []struct {
		limit, scope string
		sev          Severity
		used, max    int64
		reason       string
	}{
		{"quota", "uid 1000 on /home", Critical, 10 * gib, 10 * gib, ""},
		{"quota.inodes", "uid 1000 on /home", OK, 412000, 1000000, ""},
		{"quota", "uid 1001 on /home", Warning, 8*gib + gib/2, 10 * gib, "over its soft limit of 8.0GiB: the grace period ends 2026-11-25T08:00:00Z (in 3.0 days)"},
		{"quota", "uid 1002 on /home", Critical, 5 * gib, 10 * gib, "over its soft limit of 4.0GiB and the grace period ended 2026-11-22T07:00:00Z"},
		{"quota", "uid 1003 on /home", OK, gib, 2 * gib, ""},
		{"quota", "gid 100 on /home", OK, 60 * gib, 200 * gib, ""},
		{"quota", "projects on /var/lib/docker", Unknown, 0, 0, "fixture: no quotas here"},
		{"quota.inodes", "projects on /var/lib/docker", Unknown, 0, 0, "fixture: no quotas here"},
	}
	for _, w := range want {
		u, ok := quotaRowOf(rows, w.limit, w.scope)
		if !ok {
			t.Errorf("no %s row %q in %+v", w.limit, w.scope, rows)
			continue
		}
		if u.Severity != w.sev || u.Used != w.used || u.Max != w.max || !strings.HasPrefix(u.Reason, w.reason) {
			t.Errorf("%s %q: %s %d/%d %q, want %s %d/%d %q", w.limit, w.scope, u.Severity, u.Used, u.Max, u.Reason, w.sev, w.used, w.max, w.reason)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	if _, ok := quotaRowOf(rows, "quota", "uid 0 on /home"); ok {
		t.Error("uid 0 has no limit and must not have a row")
	}
	u, _ := quotaRowOf(rows, "quota", "uid 1000 on /home")
	if len(u.Consumers) != 1 || u.Consumers[0].UID == nil || *u.Consumers[0].UID != 1000 || u.Consumers[0].Count != 10*gib {
		t.Errorf("uid 1000's holder: %+v", u.Consumers)
	}
	if got := u.Consumers[0].Name; got != "uid 1000 (ext4 /dev/sdb1; soft/hard limits 0/10485760 KiB, 0/1000000 inodes)" {
		t.Errorf("holder name %q", got)
	}
	rem := strings.Join(quotaRemedy(u), "\n")
	for _, s := range []string{"find /home -xdev -user 1000", "setquota -u 1000 0 15728640 0 1000000 /home"} {
		if !strings.Contains(rem, s) {
			t.Errorf("remedy lacks %q:\n%s", s, rem)
		}
	}
	u, _ = quotaRowOf(rows, "quota", "uid 1002 on /home")
	rem = strings.Join(quotaRemedy(u), "\n")
	if !strings.Contains(rem, "grace period is over") || !strings.Contains(rem, "setquota -u 1002 6553600 15728640 0 0 /home") {
		t.Errorf("remedy of a soft limit past its grace:\n%s", rem)
	}
}

func TestQuotaRemedyXFSProject(t *testing.T) {
	qi := newQuotaInfo(quotaProject, host.Quota{ID: 17, BytesHard: 1 << 30}, "overlay upper dir /var/lib/docker/overlay2/3f2a/diff", Mount{FSType: "xfs", Source: "/dev/sdc"})
	u := Finding{Limit: "quota", Scope: "project 17 on /var/lib/docker", Used: 1 << 30, Max: 1 << 30, Unit: "bytes",
		Consumers: []Consumer{quotaConsumer(quotaProject, 17, qi, 1<<30)}}
	if got := u.Consumers[0].Name; got != "project 17 overlay upper dir /var/lib/docker/overlay2/3f2a/diff (xfs /dev/sdc; soft/hard limits 0/1048576 KiB, 0/0 inodes)" {
		t.Errorf("holder %q", got)
	}
	rem := strings.Join(quotaRemedy(u), "\n")
	for _, s := range []string{"writable layer /var/lib/docker/overlay2/3f2a/diff", "grep 3f2a", "--storage-opt size", "xfs_quota -x -c 'limit -p bsoft=0k bhard=1572864k 17' /var/lib/docker"} {
		if !strings.Contains(rem, s) {
			t.Errorf("remedy lacks %q:\n%s", s, rem)
		}
	}
	qi = newQuotaInfo(quotaGroup, host.Quota{ID: 50, InodesSoft: 900, InodesHard: 1000}, "", Mount{FSType: "xfs", Source: "/dev/sdd"})
	u = Finding{Limit: "quota.inodes", Scope: "gid 50 on /srv", Used: 990, Max: 1000, Unit: "inodes",
		Consumers: []Consumer{quotaConsumer(quotaGroup, 50, qi, 990)}}
	rem = strings.Join(quotaRemedy(u), "\n")
	for _, s := range []string{"find /srv -xdev -group 50 -printf", "xfs_quota -x -c 'limit -g isoft=1350 ihard=1500 50' /srv"} {
		if !strings.Contains(rem, s) {
			t.Errorf("remedy lacks %q:\n%s", s, rem)
		}
	}
}

func TestReadQuotaHangs(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	env := quotaEnv(t, "90 24 259:3 / /home rw - ext4 /dev/sdb1 rw,usrquota\n", func(string) ([]host.Quota, error) {
		<-block
		return nil, nil
	})
	start := time.Now()
	rows := readQuota(env)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("readQuota took %s on a filesystem that never answers", d)
	}
	u, ok := quotaRowOf(rows, "quota", "users on /home")
	if !ok || u.Severity != Unknown || !strings.Contains(u.Reason, "timed out") {
		t.Errorf("a hung quotactl: %+v", rows)
	}
	if _, ok := quotaRowOf(rows, "quota", "groups on /home"); ok {
		t.Error("a type the mount does not enforce got a row")
	}
}

func TestKeepFullest(t *testing.T) {
	var rows []Finding
	for i := 0; i < 50; i++ {
		rows = append(rows, Finding{Limit: "quota", Used: int64(i), Max: 100})
	}
	rows = append(rows, Finding{Limit: "quota", Used: 10, Max: 100, floor: Warning}, Finding{Limit: "quota", Used: 90, Max: 100})
	got := keepFullest(rows, 0.8)
	if len(got) != maxQuotaOKRows+2 {
		t.Fatalf("kept %d rows, want %d", len(got), maxQuotaOKRows+2)
	}
	if got[0].floor != Warning || got[1].Used != 90 || got[2].Used != 49 {
		t.Errorf("order: %+v", got[:3])
	}
}

func TestProjectFiles(t *testing.T) {
	ids := parseProjid(strings.NewReader("# comment\nbuilds:42\nlogs : 7\nbad\n:5\nx:-1\n"))
	if len(ids) != 2 || ids[42] != "builds" || ids[7] != "logs" {
		t.Errorf("parseProjid = %v", ids)
	}
	paths := parseProjects(strings.NewReader("42:/srv/builds\n42:/srv/cache\n7:/var/log\n#9:/x\n8:\nz:/y\n"))
	if len(paths) != 2 || len(paths[42]) != 2 || paths[7][0] != "/var/log" {
		t.Errorf("parseProjects = %v", paths)
	}
}

func TestOverlayOption(t *testing.T) {
	opts := `rw,lowerdir=/a/l/X:/a/l/Y,upperdir=/var/lib/docker/overlay2/ab\,c/diff,workdir=/w`
	if got := overlayOption(opts, "upperdir"); got != "/var/lib/docker/overlay2/ab,c/diff" {
		t.Errorf("upperdir = %q", got)
	}
	if got := overlayOption(opts, "workdir"); got != "/w" {
		t.Errorf("workdir = %q", got)
	}
	if got := overlayOption(opts, "index"); got != "" {
		t.Errorf("index = %q", got)
	}
	if !pathUnder("/var/lib/docker/x", "/var/lib/docker") || pathUnder("/var/lib/dockerx", "/var/lib/docker") || !pathUnder("/x", "/") {
		t.Error("pathUnder")
	}
}

// The remedy takes the filesystem type and the limits from the quota
// itself: a mount source made to look like a holder's text does not turn
// an ext4 quota into an XFS one.
func TestQuotaRemedyHostileSource(t *testing.T) {
	m := Mount{FSType: "ext4", Source: "/dev/x (xfs /dev/y; soft/hard limits 1/1 KiB, 1/1 inodes) (xfs z"}
	q := host.Quota{Type: "project", ID: 3, BytesSoft: 2048, BytesHard: 4096, InodesSoft: 5, InodesHard: 6}
	qi := newQuotaInfo(quotaProject, q, "builds /srv/b (old)", m)
	if qi.fstype != "ext4" || qi.source != m.Source || qi.bsoft != 2 || qi.bhard != 4 || qi.isoft != 5 || qi.ihard != 6 || qi.who != "project 3 builds /srv/b (old)" {
		t.Errorf("quota %+v", qi)
	}
	u := Finding{Limit: string(Quota), Scope: "project 3 on /srv", Used: 3 << 10, Max: 4 << 10}
	u.setConsumers([]Consumer{quotaConsumer(quotaProject, 3, qi, 3<<10)}, 0)
	rem := strings.Join(quotaRemedy(u), "\n")
	if !strings.Contains(rem, "setquota -P 3 3 6 5 6 /srv") || strings.Contains(rem, "xfs_quota -x -c 'limit") {
		t.Errorf("remedy of an ext4 quota with a hostile source:\n%s", rem)
	}
	if !strings.Contains(u.Consumers[0].Name, m.Source) {
		t.Errorf("holder %q without its source", u.Consumers[0].Name)
	}
}

func FuzzQuotaParsers(f *testing.F) {
	f.Add("builds:42\n42:/srv/builds\n", "rw,usrquota,usrjquota=,upperdir=/a\\,b")
	f.Add("# c\n:\n::\n4294967296:/x\n", "quota,pquota,uqnoenforce")
	f.Fuzz(func(t *testing.T, file, opts string) {
		parseProjid(strings.NewReader(file))
		parseProjects(strings.NewReader(file))
		quotaKindsOf("ext4", opts)
		quotaKindsOf("tmpfs", opts)
		overlayOption(opts, "upperdir")
	})
}
