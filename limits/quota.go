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
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Quota       ID = "quota"
	QuotaInodes ID = "quota.inodes"
)

var quotaFamily = Family{
	Name: "quota",
	Limits: []Limit{
		{
			ID:    Quota,
			Clues: quotaClues,
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
			ID:    QuotaInodes,
			Clues: quotaInodesClues,
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

func readQuota(env *Env) []Finding {
	mounts, err := env.Mounts()
	if err != nil {
		return []Finding{unknown("quota", "all filesystems", "bytes", err), unknown("quota.inodes", "all filesystems", "inodes", err)}
	}
	qms := quotaMounts(mounts)
	rows := make([][]Finding, len(qms))
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
	var out []Finding
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

// quotaClues are the words and facts of an error message that point to quota (explain).
var quotaClues = []clue.Clue{
	{Errno: clue.EDQUOT, NotOp: clue.OpKeyring, Prior: 0.75,
		Why: "EDQUOT from a file operation: a user, group or project quota of the filesystem; the block quota is the one usually full"},
	{Errno: clue.ENOSPC, Words: []string{"storage-opt", "project quota", "prjquota", "pquota"}, Prior: 0.8,
		Why: "overlay2 with --storage-opt size on XFS reports its project quota as ENOSPC"},
	{Errno: clue.EDQUOT, Op: clue.OpKeyring, Prior: 0.2,
		Why: "EDQUOT is also the filesystem quota's error"},
}

// quotaInodesClues are the words and facts of an error message that point to quota.inodes (explain).
var quotaInodesClues = []clue.Clue{
	{Errno: clue.EDQUOT, Op: clue.OpCreate | clue.OpMkdir, NotOp: clue.OpKeyring, Prior: 0.6,
		Why: "creating a file fails with EDQUOT when its owner's inode quota is used up as well as at its block quota"},
	{Errno: clue.EDQUOT, NotOp: clue.OpKeyring, Prior: 0.5,
		Why: "or the inode quota of that user, group or project"},
	{Errno: clue.EDQUOT, Words: []string{"file limit", "files quota", "inode quota"}, Prior: 0.85,
		Why: "the message names the file (inode) quota"},
}
