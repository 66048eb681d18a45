package limits

// Quotas read from the kernel (quotactl, Q_GETNEXTQUOTA) with a deadline, and overlay project ids.

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

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
