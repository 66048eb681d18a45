package limits

// Disk quotas of users, groups and projects (quotactl(2), quota(1),
// xfs_quota(8), ext4's "quota" and "project" features).
//
// A filesystem mounted with quotas counts, per uid, gid or project id, the
// bytes and the inodes charged to it, against a soft and a hard limit of
// each. Past the hard limit, or past the soft limit once its grace period
// (7 days by default) has run out, the write, create or mkdir fails with
// EDQUOT:
//
//	dd: error writing '/home/ci/x': Disk quota exceeded
//	fatal: could not create work tree dir 'pagila-hw2': Disk quota exceeded
//	ERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded
//
// while df shows a filesystem with room. XFS reports its project quotas as
// ENOSPC instead, "no space left on device": that is what a container of
// docker's overlay2 on XFS mounted with pquota (prjquota) and run with
// --storage-opt size=N sees when its writable layer is full (containers/
// storage does the same for podman and CRI-O). ext4 and tmpfs say EDQUOT
// for project quotas too. Rootless docker keeps its layers in the user's
// home, so a home quota fills with image layers ("ApplyLayer ... disk
// quota exceeded").
//
// Which filesystems enforce quotas is read from the mount table's options
// (usrquota, grpquota, prjquota, quota, usrjquota=, grpjquota=, uquota,
// gquota, pquota; the *noenforce forms only account and never refuse).
// Usage and limits come from quotactl_fd(2) on the mount point (quotactl(2)
// on the block device before Linux 5.14): Q_GETNEXTQUOTA (Linux 4.6) walks
// every id that has a quota record; older kernels get Q_GETQUOTA for the
// uids of the census and the project ids of /etc/projects and /etc/projid.
// A type whose accounting is off (ESRCH: mounted with usrquota but quotaon
// never ran) cannot refuse anything and gives no row. Network filesystems
// are skipped: their quotas are the server's, and a dead server must not
// hang the check; every quotactl runs bounded by the statfs timeout.
// Listing other ids' quotas needs CAP_SYS_ADMIN: without root only the
// reader's own uid and gids are read, and the rest is an unknown row.
//
// One row per id that has a limit: "uid 1000 on /home" (quota, bytes) and,
// when an inode limit is set, the same scope in quota.inodes. The row's max
// is the hard limit, or the soft limit when only that is set; a row over
// its soft limit is a warning while the grace period runs and critical once
// it is over (writes fail), whatever its ratio to the hard limit. Project
// rows name the project (/etc/projid, /etc/projects) or the overlay upper
// directory that carries the project id (FS_IOC_FSGETXATTR), which is the
// container's writable layer.
//
// The fix: delete what the holder wrote, or raise its limits with setquota
// (ext4, tmpfs) or xfs_quota (XFS), or recreate the container with a larger
// --storage-opt size.
//
// Lab: lab/kernel/quota_test.go exhausts a user quota on a loop-mounted
// ext4 image. The kernel of the lab's machine (6.18, CONFIG_QUOTA=y) is
// built without CONFIG_QFMT_V2, CONFIG_XFS_QUOTA and CONFIG_TMPFS_QUOTA, so
// no filesystem there can enforce a quota: the test says LAB CANNOT RUN,
// and its part that runs checks a filesystem mounted with usrquota whose
// accounting is off (quotactl_fd answers ESRCH: no row, no hang).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

var quotaFamily = Family{
	Name: "quota",
	Limits: []Limit{
		{
			ID:    "quota",
			Title: "disk quota of a user, group or project (bytes)",
			Unit:  "bytes",
			Doc: "Bytes charged to a uid, gid or project id on a filesystem mounted with quotas (ext4 " +
				"usrquota/grpquota/prjquota, XFS uquota/gquota/pquota, tmpfs quota), against its hard limit " +
				"(or its soft limit once the grace period is over). Past it writes fail with EDQUOT, \"disk " +
				"quota exceeded\", or with ENOSPC for an XFS project quota, which is what docker's overlay2 " +
				"--storage-opt size uses for a container's writable layer.",
			Signatures: []*Signature{
				sigQuotaFileOp, sigQuotaFailedTo, sigQuotaPath, sigQuotaErrno, sigQuotaNodeEDQUOT,
				NewSignature(`(?i)\b(project quota|prjquota|pquota|storage-opt)\b[^\n]*no space left on device`),
			},
			Remedy: quotaRemedy,
		},
		{
			ID:    "quota.inodes",
			Title: "inode quota of a user, group or project",
			Unit:  "inodes",
			Doc: "Files, directories and other inodes charged to a uid, gid or project id on a filesystem " +
				"mounted with quotas, against its inode hard limit (or soft limit once the grace period is " +
				"over). Past it creating a file, a directory, a fifo or a symlink fails with EDQUOT, \"disk " +
				"quota exceeded\", while writes to existing files still work.",
			Signatures: []*Signature{
				NewSignature(`(?i)\b(cannot|can't|could not|couldn't|unable to|failed to) (create|touch|make|mkdir|open)\b[^:'"‘/\n]{0,60}['"‘/][^\n]{0,300}disk quota exceeded`),
				NewSignature(`(?i)\b(mkdir|mkfifo|mknod|touch|symlink)\b[^\n]{0,300}disk quota exceeded`),
				NewSignature(`(?i)\bEDQUOT\b[^\n]*\b(open|mkdir|symlink|link)\b`),
			},
			Remedy: quotaRemedy,
		},
	},
	Read: readQuota,
}

// The signatures of a file operation refused by a quota. Keyring calls
// fail with the same words ("create session key: disk quota exceeded"):
// these want a file operation, a path or a file errno's wording.
var (
	sigQuotaFileOp     = NewSignature(`(?i)\b(write|writing|written|copy|copying|extract|extracting|mkdir|mkfifo|mknod|touch|rename|symlink|install|saving|flush)\b[^\n]{0,200}disk quota exceeded`)
	sigQuotaFailedTo   = NewSignature(`(?i)\b(cannot|can't|could not|couldn't|unable to|failed to) (create|open|make|write|copy|extract|install|save|touch|mkdir)\b[^:'"‘/\n]{0,60}['"‘/][^\n]{0,300}disk quota exceeded`)
	sigQuotaPath       = NewSignature(`(?i)/[^\s'"‘’:]*['"’]?\)?: disk quota exceeded`)
	sigQuotaErrno      = NewSignature(`(?i)\[errno 122\] disk quota exceeded|\berrno[ =]122\b|\bos error 122\b`)
	sigQuotaNodeEDQUOT = NewSignature(`(?i)\bEDQUOT\b[^\n]*\b(open|write|mkdir|copyfile|rename|symlink|link)\b`)
)

// The quota types, as quotactl numbers them (USRQUOTA, GRPQUOTA, PRJQUOTA).
const (
	quotaUser = iota
	quotaGroup
	quotaProject
	quotaKinds
)

var (
	quotaKindNames = [quotaKinds]string{"user", "group", "project"}
	quotaScopeWord = [quotaKinds]string{"uid", "gid", "project"}
	quotaScopeAll  = [quotaKinds]string{"users", "groups", "projects"}
)

func quotaKindOf(name string) int {
	for k, n := range quotaKindNames {
		if n == name {
			return k
		}
	}
	return -1
}

// quotaKindsOf reports which quota types a mount enforces, from its mount
// and superblock options. The noenforce forms (uqnoenforce, qnoenforce,
// gqnoenforce, pqnoenforce) only account: they never refuse a write.
func quotaKindsOf(fstype, opts string) (on [quotaKinds]bool) {
	for _, o := range strings.Split(opts, ",") {
		k, v, hasValue := strings.Cut(o, "=")
		if hasValue && v == "" {
			continue // usrjquota= turns journaled quota off
		}
		switch k {
		case "usrquota", "uquota", "usrjquota":
			on[quotaUser] = true
		case "grpquota", "gquota", "grpjquota":
			on[quotaGroup] = true
		case "prjquota", "pquota":
			on[quotaProject] = true
		case "quota":
			switch fstype {
			case "ext2", "ext3", "ext4":
				// ext4 shows "quota" for grpquota too, and usrquota
				// whenever user quotas are on.
			case "tmpfs":
				on[quotaUser], on[quotaGroup] = true, true
			default:
				on[quotaUser] = true // the old name of usrquota (jfs, ocfs2)
			}
		}
	}
	return on
}

// networkFS are filesystems whose quotas are kept by a server (rquotad,
// the cluster) and whose calls may block on it.
var networkFS = map[string]bool{
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "ceph": true, "glusterfs": true,
	"9p": true, "lustre": true, "gpfs": true, "afs": true, "beegfs": true, "ncpfs": true, "coda": true,
}

// quotaMounts are the real local filesystems (one mount per device) that
// enforce some quota type.
func quotaMounts(mounts []Mount) []Mount {
	var out []Mount
	for _, m := range realFilesystems(mounts) {
		if networkFS[m.FSType] || strings.HasPrefix(m.FSType, "fuse") {
			continue
		}
		on := quotaKindsOf(m.FSType, m.Options+","+m.Super)
		if on[quotaUser] || on[quotaGroup] || on[quotaProject] {
			out = append(out, m)
		}
	}
	return out
}

// quotaSet is what was read of one filesystem's quotas: the records, and
// for each type that could not be read (in full), why.
type quotaSet struct {
	recs     []host.Quota
	problems []quotaProblem
	// names are what project ids stand for (a project name or path, an
	// overlay upper directory).
	names map[uint32]string
}

type quotaProblem struct {
	kind      int
	err       error
	needsRoot bool
}

// maxQuotaIDs bounds the ids read per filesystem and type.
const maxQuotaIDs = 100000

// maxQuotaOKRows bounds the rows under the warning threshold per
// filesystem and type (the fullest are kept); rows at or above it are all
// kept.
const maxQuotaOKRows = 20

func readQuota(env *Env) []Usage {
	mounts, err := env.Mounts()
	if err != nil {
		return []Usage{unknown("quota", "all filesystems", "bytes", err), unknown("quota.inodes", "all filesystems", "inodes", err)}
	}
	qms := quotaMounts(mounts)
	rows := make([][]Usage, len(qms))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, m := range qms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			on := quotaKindsOf(m.FSType, m.Options+","+m.Super)
			set := readQuotaSet(env, m, on, mounts)
			rows[i] = quotaRows(env, m, on, set)
		}()
	}
	wg.Wait()
	var out []Usage
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// quotaTimeout bounds the reading of one filesystem's quotas.
func quotaTimeout(h *host.Host) time.Duration {
	if h.StatfsTimeout > 0 {
		return h.StatfsTimeout
	}
	return 2 * time.Second
}

// readQuotaSet reads one filesystem's quotas, from the host's QuotaFunc
// when it has one (fixtures) or by quotactl, bounded in time: a call that
// does not return is abandoned, like a statfs on a dead server.
func readQuotaSet(env *Env, m Mount, on [quotaKinds]bool, mounts []Mount) quotaSet {
	timeout := quotaTimeout(env.Host)
	ch := make(chan quotaSet, 1)
	go func() {
		var set quotaSet
		if f := env.Host.QuotaFunc; f != nil {
			recs, err := f(m.MountPoint)
			if err != nil {
				for k := range quotaKinds {
					if on[k] {
						set.problems = append(set.problems, quotaProblem{kind: k, err: err})
					}
				}
			}
			set.recs = recs
		} else {
			set = liveQuotas(env, m, on, mounts, time.Now().Add(timeout*3/4))
		}
		if set.names == nil {
			set.names = map[uint32]string{}
		}
		projectNames(env, set.names)
		ch <- set
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case set := <-ch:
		return set
	case <-t.C:
		err = fmt.Errorf("quotactl on %s: %w after %s", m.MountPoint, host.ErrTimeout, timeout)
	case <-env.Ctx.Done():
		err = env.Ctx.Err()
	}
	var set quotaSet
	for k := range quotaKinds {
		if on[k] {
			set.problems = append(set.problems, quotaProblem{kind: k, err: err})
		}
	}
	return set
}

// projectNames adds the names of /etc/projid ("name:id") and the paths of
// /etc/projects ("id:path") to names, where names has none yet.
func projectNames(env *Env, names map[uint32]string) {
	label := map[uint32]string{}
	if b, err := host.ReadFile(env.Host.RootPath("/etc/projid")); err == nil {
		for id, name := range parseProjid(bytes.NewReader(b)) {
			label[id] = name
		}
	}
	if b, err := host.ReadFile(env.Host.RootPath("/etc/projects")); err == nil {
		for id, paths := range parseProjects(bytes.NewReader(b)) {
			s := strings.Join(paths, " ")
			if label[id] != "" {
				s = label[id] + " " + s
			}
			label[id] = s
		}
	}
	for id, s := range label {
		if names[id] == "" {
			names[id] = s
		}
	}
}

// parseProjid parses /etc/projid: "name:id" lines, # comments.
func parseProjid(r io.Reader) map[uint32]string {
	out := map[uint32]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, idStr, ok := strings.Cut(line, ":")
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 32)
		if !ok || err != nil || strings.TrimSpace(name) == "" {
			continue
		}
		out[uint32(id)] = strings.TrimSpace(name)
	}
	return out
}

// parseProjects parses /etc/projects: "id:path" lines, # comments; a
// project may have several paths.
func parseProjects(r io.Reader) map[uint32][]string {
	out := map[uint32][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		idStr, path, ok := strings.Cut(line, ":")
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 32)
		path = strings.TrimSpace(path)
		if !ok || err != nil || path == "" {
			continue
		}
		out[uint32(id)] = append(out[uint32(id)], path)
	}
	return out
}

// hasLimit reports whether a record has any limit: ids without one (root's
// usage, files of a user nobody limited) cannot be refused.
func hasLimit(q host.Quota) bool {
	return q.BytesHard > 0 || q.BytesSoft > 0 || q.InodesHard > 0 || q.InodesSoft > 0
}

// clampInt64 converts a kernel counter to a row's number.
func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// quotaRows turns one filesystem's records into rows: one per id and
// limited resource, the fullest kept (see maxQuotaOKRows), and an unknown
// row per type that could not be read.
func quotaRows(env *Env, m Mount, on [quotaKinds]bool, set quotaSet) []Usage {
	now := time.Now()
	if env.Host.Now != nil {
		now = env.Host.Now()
	}
	var byKind [quotaKinds][]Usage
	seen := map[[2]uint64]bool{}
	for _, q := range set.recs {
		k := quotaKindOf(q.Type)
		if k < 0 || !on[k] || !hasLimit(q) || seen[[2]uint64{uint64(k), uint64(q.ID)}] {
			continue
		}
		seen[[2]uint64{uint64(k), uint64(q.ID)}] = true
		scope := fmt.Sprintf("%s %d on %s", quotaScopeWord[k], q.ID, m.MountPoint)
		name := ""
		if k == quotaProject {
			name = set.names[q.ID]
		}
		holder := quotaHolder(k, q, name, m)
		if q.BytesHard > 0 || q.BytesSoft > 0 {
			u := quotaUsage("quota", scope, "bytes", q.Bytes, q.BytesSoft, q.BytesHard, q.BytesGrace, now, byteSize)
			u.setConsumers([]Consumer{quotaConsumer(k, q.ID, holder, q.Bytes)}, 0)
			byKind[k] = append(byKind[k], u)
		}
		if q.InodesHard > 0 || q.InodesSoft > 0 {
			u := quotaUsage("quota.inodes", scope, "inodes", q.Inodes, q.InodesSoft, q.InodesHard, q.InodesGrace, now, func(v uint64) string { return strconv.FormatUint(v, 10) + " inodes" })
			u.setConsumers([]Consumer{quotaConsumer(k, q.ID, holder, q.Inodes)}, 0)
			byKind[k] = append(byKind[k], u)
		}
	}
	var out []Usage
	for k := range quotaKinds {
		out = append(out, keepFullest(byKind[k], env.Thresholds.Warn)...)
	}
	for _, p := range set.problems {
		scope := fmt.Sprintf("%s on %s", quotaScopeAll[p.kind], m.MountPoint)
		for _, l := range []struct {
			id   ID
			unit string
		}{{Quota, "bytes"}, {QuotaInodes, "inodes"}} {
			u := unknown(l.id, scope, l.unit, p.err)
			u.NeedsRoot = p.needsRoot
			out = append(out, u)
		}
	}
	return out
}

// keepFullest keeps every row at or above the warning fraction, or raised
// by a soft limit, and the fullest of the others up to maxQuotaOKRows.
func keepFullest(rows []Usage, warn float64) []Usage {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].floor != rows[j].floor {
			return rows[i].floor > rows[j].floor
		}
		return rows[i].Ratio() > rows[j].Ratio()
	})
	var out []Usage
	ok := 0
	for _, u := range rows {
		if u.floor == OK && (warn <= 0 || u.Ratio() < warn) {
			if ok == maxQuotaOKRows {
				continue
			}
			ok++
		}
		out = append(out, u)
	}
	return out
}

func byteSize(v uint64) string {
	const units = "KMGTPE"
	if v < 1<<20 {
		return strconv.FormatUint(v, 10) + " bytes"
	}
	f := float64(v)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%ciB", f, units[i])
}

// quotaUsage is the row of one limited resource: used against the hard
// limit, or against the soft limit when only that is set. Over the soft
// limit the row is a warning while the grace period runs, critical once it
// has run out (the kernel then refuses as at the hard limit).
func quotaUsage(id ID, scope, unit string, used, soft, hard uint64, grace int64, now time.Time, show func(uint64) string) Usage {
	mx := hard
	if mx == 0 {
		mx = soft
	}
	u := Usage{Limit: string(id), Scope: scope, Used: clampInt64(used), Max: clampInt64(mx), Unit: unit}
	if soft == 0 || used <= soft {
		return u
	}
	switch {
	case grace > 0 && now.Unix() >= grace:
		u.floor = Critical
		u.Reason = fmt.Sprintf("over its soft limit of %s and the grace period ended %s: it is refused as at a hard limit (EDQUOT)",
			show(soft), time.Unix(grace, 0).UTC().Format(time.RFC3339))
	case grace > 0:
		u.floor = Warning
		u.Reason = fmt.Sprintf("over its soft limit of %s: the grace period ends %s (in %s), then it is refused (EDQUOT)",
			show(soft), time.Unix(grace, 0).UTC().Format(time.RFC3339), graceLeft(time.Unix(grace, 0).Sub(now)))
	default:
		u.floor = Warning
		u.Reason = fmt.Sprintf("over its soft limit of %s", show(soft))
	}
	return u
}

// graceLeft says how long a grace period has left, in the unit that
// matters.
func graceLeft(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.0f hours", d.Hours())
	}
	return d.Round(time.Minute).String()
}

// quotaHolder names who holds a quota and carries the record's limits for
// the remedy: "uid 1000 (ext4 /dev/sdb1; soft/hard limits 0/10485760 KiB,
// 0/1000000 inodes)", the numbers setquota takes.
func quotaHolder(kind int, q host.Quota, name string, m Mount) string {
	who := fmt.Sprintf("%s %d", quotaScopeWord[kind], q.ID)
	if name != "" {
		who += " " + name
	}
	return fmt.Sprintf("%s (%s %s; soft/hard limits %d/%d KiB, %d/%d inodes)", who, m.FSType, m.Source,
		q.BytesSoft/1024, q.BytesHard/1024, q.InodesSoft, q.InodesHard)
}

func quotaConsumer(kind int, id uint32, holder string, count uint64) Consumer {
	c := Consumer{Name: holder, Count: clampInt64(count)}
	if kind == quotaUser {
		c.UID = intp(int(id))
	}
	return c
}

// quotaInfo is what a row's holder says of its quota.
type quotaInfo struct {
	who, fstype, source string
	bsoft, bhard        uint64 // KiB
	isoft, ihard        uint64
	upperDir            string
}

var quotaHolderRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(.*) \((\S+) (.*); soft/hard limits (\d+)/(\d+) KiB, (\d+)/(\d+) inodes\)$`)
})

func parseQuotaHolder(s string) (quotaInfo, bool) {
	m := quotaHolderRe().FindStringSubmatch(s)
	if m == nil {
		return quotaInfo{}, false
	}
	qi := quotaInfo{who: m[1], fstype: m[2], source: m[3]}
	for i, p := range []*uint64{&qi.bsoft, &qi.bhard, &qi.isoft, &qi.ihard} {
		v, err := strconv.ParseUint(m[4+i], 10, 64)
		if err != nil {
			return quotaInfo{}, false
		}
		*p = v
	}
	if _, rest, ok := strings.Cut(qi.who, " overlay upper dir "); ok {
		qi.upperDir = rest
	}
	return qi, true
}

var quotaScopeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(uid|gid|project) (\d+) on (.+)$`) })

// raiseLimit proposes a new limit: half as much again, and at least a
// quarter above what is used; 0 (no limit) stays 0.
func raiseLimit(limit, used uint64) uint64 {
	if limit == 0 {
		return 0
	}
	return max(limit+limit/2, used+used/4)
}

func quotaRemedy(u Usage) []string {
	sm := quotaScopeRe().FindStringSubmatch(u.Scope)
	if sm == nil {
		return []string{"see who is over: repquota -a (ext4, tmpfs) or xfs_quota -x -c 'report -h' (XFS)"}
	}
	word, id, mp := sm[1], sm[2], sm[3]
	var qi quotaInfo
	for _, c := range u.Consumers {
		if i, ok := parseQuotaHolder(c.Name); ok {
			qi = i
			break
		}
	}
	inodes := u.Limit == "quota.inodes"
	used := uint64(max(u.Used, 0))
	var out []string

	// What holds it.
	switch {
	case qi.upperDir != "":
		layer := filepath.Base(filepath.Dir(qi.upperDir))
		out = append(out,
			fmt.Sprintf("project %s is a container's writable layer %s (--storage-opt size): find the container with docker ps -aq | xargs docker inspect -f '{{.Name}} {{.GraphDriver.Data.UpperDir}}' | grep %s (podman and CRI-O: podman inspect / crictl inspect), then delete what it wrote or recreate it with a larger --storage-opt size", id, qi.upperDir, quote.Shell(layer)))
	case word == "project":
		what := strings.TrimSpace(strings.TrimPrefix(qi.who, "project "+id))
		if what != "" {
			out = append(out, fmt.Sprintf("project %s is %s: see what fills it with du -xsh on its directories", id, what))
		} else {
			out = append(out, fmt.Sprintf("find project %s's directories: lsattr -p -R %s 2>/dev/null | awk '$1 == %s' | head", id, quote.Shell(mp), id))
		}
	case inodes:
		out = append(out, fmt.Sprintf("find where %s %s's files are: find %s -xdev -%s %s -printf '%%h\\n' | sort | uniq -c | sort -n | tail", word, id, quote.Shell(mp), map[string]string{"uid": "user", "gid": "group"}[word], id))
	default:
		out = append(out, fmt.Sprintf("find what %s %s holds: find %s -xdev -%s %s -type f -size +10M -printf '%%s\\t%%p\\n' | sort -n | tail -20", word, id, quote.Shell(mp), map[string]string{"uid": "user", "gid": "group"}[word], id))
	}

	// Or raise its limits, keeping the others as they are.
	if qi.fstype == "" {
		out = append(out, fmt.Sprintf("or raise its limits: setquota (ext4, tmpfs) or xfs_quota -x -c 'limit ...' %s (XFS); quota -v, repquota -a or xfs_quota -x -c 'report -h' %s show them", quote.Shell(mp), quote.Shell(mp)))
		return out
	}
	bsoft, bhard, isoft, ihard := qi.bsoft, qi.bhard, qi.isoft, qi.ihard
	if inodes {
		isoft, ihard = raiseLimit(isoft, used), raiseLimit(ihard, used)
	} else {
		bsoft, bhard = raiseLimit(bsoft, (used+1023)/1024), raiseLimit(bhard, (used+1023)/1024)
	}
	if qi.fstype == "xfs" {
		flag := map[string]string{"uid": "-u", "gid": "-g", "project": "-p"}[word]
		lim := fmt.Sprintf("bsoft=%dk bhard=%dk", bsoft, bhard)
		if inodes {
			lim = fmt.Sprintf("isoft=%d ihard=%d", isoft, ihard)
		}
		out = append(out, fmt.Sprintf("or raise its limit: xfs_quota -x -c 'limit %s %s %s' %s", flag, lim, id, quote.Shell(mp)))
	} else {
		flag := map[string]string{"uid": "-u", "gid": "-g", "project": "-P"}[word]
		out = append(out, fmt.Sprintf("or raise its limit: setquota %s %s %d %d %d %d %s (block soft and hard in KiB, then inode soft and hard; the others as they are)", flag, id, bsoft, bhard, isoft, ihard, quote.Shell(mp)))
	}
	if strings.Contains(u.Reason, "grace period ended") {
		out = append(out, fmt.Sprintf("the grace period is over: it must go back under its soft limit (or the soft limit up) before writes work; setquota -t (ext4) or xfs_quota -x -c 'timer ...' %s sets the grace time", quote.Shell(mp)))
	}
	return out
}

// errQuotaSlow stops a walk of ids that takes too long.
var errQuotaSlow = errors.New("listing quotas took too long; the ids read so far are shown")

// The live reading: quotactl_fd(2) on the mount point, quotactl(2) on the
// block device where quotactl_fd is missing (before Linux 5.14).

// Subcommands of quotactl (linux/quota.h), combined with the type by
// QCMD(cmd, type) = cmd<<8 | type.
const (
	qGetInfo      = 0x800005
	qGetQuota     = 0x800007
	qGetNextQuota = 0x800009
)

// ifNextDqblk is struct if_nextdqblk (if_dqblk plus the id, which
// Q_GETQUOTA leaves alone): limits in 1 KiB blocks, space in bytes, grace
// deadlines in unix seconds.
type ifNextDqblk struct {
	BHardLimit, BSoftLimit, CurSpace  uint64
	IHardLimit, ISoftLimit, CurInodes uint64
	BTime, ITime                      uint64
	Valid, ID                         uint32
}

func (d *ifNextDqblk) quota(kind int, id uint32) host.Quota {
	return host.Quota{
		Type: quotaKindNames[kind], ID: id,
		Bytes: d.CurSpace, BytesSoft: kib(d.BSoftLimit), BytesHard: kib(d.BHardLimit), BytesGrace: clampInt64(d.BTime),
		Inodes: d.CurInodes, InodesSoft: d.ISoftLimit, InodesHard: d.IHardLimit, InodesGrace: clampInt64(d.ITime),
	}
}

// kib converts 1 KiB blocks to bytes, saturating.
func kib(v uint64) uint64 {
	if v > math.MaxUint64/1024 {
		return math.MaxUint64
	}
	return v * 1024
}

// quotactl runs quota commands on one filesystem.
type quotactl struct {
	fd      int    // an O_PATH fd of the mount point
	special string // the block device, for quotactl(2)
	probed  bool
	noFD    bool // quotactl_fd is missing
}

func (q *quotactl) call(cmd, kind int, id uint32, d *ifNextDqblk) error {
	c := uintptr(uint32(cmd<<8 | kind))
	if !q.probed {
		// A filesystem without quota operations says ENOSYS too: the
		// syscall is missing only if an invalid fd gets ENOSYS, not EBADF.
		_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(math.MaxUint32), c, 0, 0, 0, 0)
		q.probed, q.noFD = true, e == unix.ENOSYS
	}
	if !q.noFD {
		_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(q.fd), c, uintptr(id), uintptr(unsafe.Pointer(d)), 0, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	p, err := unix.BytePtrFromString(q.special)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL, c, uintptr(unsafe.Pointer(p)), uintptr(id), uintptr(unsafe.Pointer(d)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// list walks every id of a type that has a quota record (Q_GETNEXTQUOTA),
// keeping those with a limit.
func (q *quotactl) list(kind int, deadline time.Time) ([]host.Quota, error) {
	var out []host.Quota
	id := uint32(0)
	for n := 0; ; n++ {
		if n == maxQuotaIDs {
			return out, fmt.Errorf("more than %d ids have %s quotas; the first are shown", maxQuotaIDs, quotaKindNames[kind])
		}
		if n%256 == 255 && time.Now().After(deadline) {
			return out, errQuotaSlow
		}
		var d ifNextDqblk
		err := q.call(qGetNextQuota, kind, id, &d)
		if err == unix.ENOENT {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if d.ID < id {
			return out, nil // a kernel going backwards would loop for ever
		}
		if r := d.quota(kind, d.ID); hasLimit(r) {
			out = append(out, r)
		}
		if d.ID == math.MaxUint32 {
			return out, nil
		}
		id = d.ID + 1
	}
}

// get reads the given ids one by one (Q_GETQUOTA); an id without a record
// reads as zeros.
func (q *quotactl) get(kind int, ids []uint32) ([]host.Quota, error) {
	var out []host.Quota
	for _, id := range ids {
		var d ifNextDqblk
		if err := q.call(qGetQuota, kind, id, &d); err != nil {
			return out, err
		}
		if r := d.quota(kind, id); hasLimit(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// liveQuotas reads one filesystem's quotas with quotactl.
func liveQuotas(env *Env, m Mount, on [quotaKinds]bool, mounts []Mount, deadline time.Time) quotaSet {
	var set quotaSet
	fail := func(err error) quotaSet {
		for k := range quotaKinds {
			if on[k] {
				set.problems = append(set.problems, quotaProblem{kind: k, err: err})
			}
		}
		return set
	}
	path := env.Host.RootPath(m.MountPoint)
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", m.MountPoint, err))
	}
	defer unix.Close(fd)
	// Under --root, the path must reach the host's mount, not a directory
	// of the container's own filesystem.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(fmt.Errorf("stat %s: %w", m.MountPoint, err))
	}
	if dev := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev))); m.Device != "" && dev != m.Device {
		return fail(fmt.Errorf("%s here is device %s, not the filesystem mounted there (%s): the host's mounts are not visible under %s", path, dev, m.Device, env.Host.Root))
	}
	q := &quotactl{fd: fd, special: env.Host.RootPath(m.Source)}
	if on[quotaProject] {
		set.names = overlayProjects(env, m, mounts)
	}
	for k := range quotaKinds {
		if !on[k] {
			continue
		}
		// Q_GETINFO needs no privilege and says ESRCH when accounting is
		// off for the type: nothing to read, nothing can be refused.
		var info ifNextDqblk
		if err := q.call(qGetInfo, k, 0, &info); errors.Is(err, unix.ESRCH) {
			continue
		}
		recs, err := q.list(k, deadline)
		set.recs = append(set.recs, recs...)
		switch {
		case err == nil:
		case errors.Is(err, unix.ESRCH):
			// Accounting is off for this type: nothing can be refused.
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			// Without CAP_SYS_ADMIN a process reads its own quotas only.
			own, err2 := q.get(k, ownQuotaIDs(k))
			set.recs = append(set.recs, own...)
			if errors.Is(err2, unix.ESRCH) {
				continue // accounting is off after all
			}
			if err2 != nil && !errors.Is(err2, unix.EPERM) {
				err = err2
			}
			set.problems = append(set.problems, quotaProblem{kind: k, needsRoot: true,
				err: fmt.Errorf("quotactl: %w: other ids' %s quotas need root (CAP_SYS_ADMIN); only enospc's own are shown", err, quotaKindNames[k])})
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
			// No Q_GETNEXTQUOTA (before Linux 4.6): the ids we know of.
			ids := fallbackQuotaIDs(env, k, set.names)
			if len(ids) == 0 {
				set.problems = append(set.problems, quotaProblem{kind: k, err: fmt.Errorf("this kernel cannot list %s quotas (no Q_GETNEXTQUOTA, Linux 4.6) and no id is known to ask for", quotaKindNames[k])})
				continue
			}
			recs, err := q.get(k, ids)
			set.recs = append(set.recs, recs...)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				set.problems = append(set.problems, quotaProblem{kind: k, err: fmt.Errorf("quotactl Q_GETQUOTA on %s: %w", m.MountPoint, err)})
			}
		default:
			set.problems = append(set.problems, quotaProblem{kind: k, err: fmt.Errorf("quotactl Q_GETNEXTQUOTA on %s: %w", m.MountPoint, err)})
		}
	}
	return set
}

// ownQuotaIDs are the ids whose quotas a process may read without
// privilege: its effective uid, its groups.
func ownQuotaIDs(kind int) []uint32 {
	switch kind {
	case quotaUser:
		return []uint32{uint32(unix.Geteuid())}
	case quotaGroup:
		ids := []uint32{uint32(unix.Getegid())}
		if gs, err := unix.Getgroups(); err == nil {
			for _, g := range gs {
				ids = append(ids, uint32(g))
			}
		}
		return ids
	}
	return nil
}

// fallbackQuotaIDs are the ids to ask for when the kernel cannot list
// them: the census's uids, the known project ids. The census records no
// gids.
func fallbackQuotaIDs(env *Env, kind int, names map[uint32]string) []uint32 {
	set := map[uint32]bool{}
	switch kind {
	case quotaUser:
		if env.Census != nil {
			for _, p := range env.Census.Processes {
				set[uint32(p.UID)], set[uint32(p.EUID)] = true, true
			}
		}
	case quotaGroup:
		return nil
	case quotaProject:
		all := map[uint32]string{}
		projectNames(env, all)
		for id := range all {
			set[id] = true
		}
		for id := range names {
			set[id] = true
		}
	}
	ids := make([]uint32, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// fsxattr is struct fsxattr of FS_IOC_FSGETXATTR.
type fsxattr struct {
	XFlags, ExtSize, NExtents, ProjID, CowExtSize uint32
	Pad                                           [8]byte
}

// fsIocFsGetXattr is FS_IOC_FSGETXATTR, _IOR('X', 31, struct fsxattr).
const fsIocFsGetXattr = 0x801c581f

// maxOverlayScan bounds the overlay mounts whose upper directory is asked
// for its project id.
const maxOverlayScan = 4096

// overlayProjects maps project ids to the overlay upper directories on m
// that carry them: docker's overlay2 (and containers/storage) give each
// container's layer directory its own project id when run with
// --storage-opt size on a filesystem with project quotas, and the upper
// directory inherits it.
func overlayProjects(env *Env, m Mount, mounts []Mount) map[uint32]string {
	names := map[uint32]string{}
	n := 0
	for _, om := range mounts {
		if om.FSType != "overlay" || n == maxOverlayScan {
			continue
		}
		upper := overlayOption(om.Super, "upperdir")
		if upper == "" || !pathUnder(upper, m.MountPoint) {
			continue
		}
		n++
		fd, err := unix.Open(env.Host.RootPath(upper), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		var x fsxattr
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocFsGetXattr, uintptr(unsafe.Pointer(&x)))
		unix.Close(fd)
		if e == 0 && x.ProjID != 0 && names[x.ProjID] == "" {
			names[x.ProjID] = "overlay upper dir " + upper
		}
	}
	return names
}

// overlayOption returns an option's value from overlay's super options;
// overlay escapes commas inside paths with a backslash.
func overlayOption(opts, key string) string {
	var cur strings.Builder
	flush := func() string {
		k, v, _ := strings.Cut(cur.String(), "=")
		cur.Reset()
		if k == key {
			return v
		}
		return ""
	}
	for i := 0; i < len(opts); i++ {
		switch {
		case opts[i] == '\\' && i+1 < len(opts):
			i++
			cur.WriteByte(opts[i])
		case opts[i] == ',':
			if v := flush(); v != "" {
				return v
			}
		default:
			cur.WriteByte(opts[i])
		}
	}
	return flush()
}

// pathUnder reports whether p is dir or below it.
func pathUnder(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
