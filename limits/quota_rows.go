package limits

// Quota rows: graded against soft and hard limits and grace times, with their holders, and what to do.

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

// quotaRows turns one filesystem's records into rows: one per id and
// limited resource, the fullest kept (see maxQuotaOKRows), and an unknown
// row per type that could not be read.
func quotaRows(env *Env, m Mount, on [quotaKinds]bool, set quotaSet) []Finding {
	now := time.Now()
	if env.Host.Now != nil {
		now = env.Host.Now()
	}
	var byKind [quotaKinds][]Finding
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
		qi := newQuotaInfo(k, q, name, m)
		if q.BytesHard > 0 || q.BytesSoft > 0 {
			u := quotaUsage("quota", scope, "bytes", q.Bytes, q.BytesSoft, q.BytesHard, q.BytesGrace, now, byteSize)
			u.setConsumers([]Consumer{quotaConsumer(k, q.ID, qi, q.Bytes)}, 0)
			byKind[k] = append(byKind[k], u)
		}
		if q.InodesHard > 0 || q.InodesSoft > 0 {
			u := quotaUsage("quota.inodes", scope, "inodes", q.Inodes, q.InodesSoft, q.InodesHard, q.InodesGrace, now, func(v uint64) string { return strconv.FormatUint(v, 10) + " inodes" })
			u.setConsumers([]Consumer{quotaConsumer(k, q.ID, qi, q.Inodes)}, 0)
			byKind[k] = append(byKind[k], u)
		}
	}
	var out []Finding
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
func keepFullest(rows []Finding, warn float64) []Finding {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].floor != rows[j].floor {
			return rows[i].floor > rows[j].floor
		}
		return rows[i].Ratio() > rows[j].Ratio()
	})
	var out []Finding
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
func quotaUsage(id ID, scope, unit string, used, soft, hard uint64, grace int64, now time.Time, show func(uint64) string) Finding {
	mx := hard
	if mx == 0 {
		mx = soft
	}
	u := Finding{Limit: string(id), Scope: scope, Used: clampInt64(used), Max: clampInt64(mx), Unit: unit}
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

// quotaInfo is what a quota row knows of its quota: who holds it (the
// kind, the id and, for a project, its name), the filesystem, and the
// limits in the units setquota takes. The remedy reads it from here, never
// back from the holder's text, whose mount source (anything a mount(2)
// caller gave it) could pass for a filesystem type.
type quotaInfo struct {
	who, fstype, source string
	bsoft, bhard        uint64 // KiB
	isoft, ihard        uint64
	upperDir            string
}

func newQuotaInfo(kind int, q host.Quota, name string, m Mount) *quotaInfo {
	qi := &quotaInfo{who: fmt.Sprintf("%s %d", quotaScopeWord[kind], q.ID), fstype: m.FSType, source: m.Source,
		bsoft: q.BytesSoft / 1024, bhard: q.BytesHard / 1024, isoft: q.InodesSoft, ihard: q.InodesHard}
	if name != "" {
		qi.who += " " + name
	}
	if _, rest, ok := strings.Cut(qi.who, " overlay upper dir "); ok {
		qi.upperDir = rest
	}
	return qi
}

// holder is the row's holder for people: "project 42 builds (xfs
// /dev/sdb1; soft/hard limits 0/1048576 KiB, 0/1000000 inodes)", the
// numbers setquota takes.
func (qi *quotaInfo) holder() string {
	return fmt.Sprintf("%s (%s %s; soft/hard limits %d/%d KiB, %d/%d inodes)", qi.who, qi.fstype, qi.source,
		qi.bsoft, qi.bhard, qi.isoft, qi.ihard)
}

func quotaConsumer(kind int, id uint32, qi *quotaInfo, count uint64) Consumer {
	c := Consumer{Name: qi.holder(), Count: clampInt64(count), quota: qi}
	if kind == quotaUser {
		c.UID = intp(int(id))
	}
	return c
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

func quotaRemedy(u Finding) []string {
	sm := quotaScopeRe().FindStringSubmatch(u.Scope)
	if sm == nil {
		return []string{"see who is over: repquota -a (ext4, tmpfs) or xfs_quota -x -c 'report -h' (XFS)"}
	}
	word, id, mp := sm[1], sm[2], sm[3]
	qi := &quotaInfo{}
	for _, c := range u.Consumers {
		if c.quota != nil {
			qi = c.quota
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
