package trace

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Filesystem magic numbers (statfs f_type) of cgroupfs.
const (
	cgroupMagic  = 0x27e0eb
	cgroup2Magic = 0x63677270
	devptsMagic  = 0x1cd1
)

// cgroupsRow picks the row of a refused mkdir in cgroupfs: the v2
// ancestor whose cgroup.max.descendants or cgroup.max.depth is reached,
// else, in a v1 hierarchy, the memory cgroup ids.
func cgroupsRow(mountPoint, object string, v1 bool) func([]limits.Finding) *limits.Finding {
	return func(rows []limits.Finding) *limits.Finding {
		var best *limits.Finding
		for i := range rows {
			u := &rows[i]
			dir, ok := strings.CutSuffix(u.Scope, " descendants")
			if !ok {
				dir, ok = strings.CutSuffix(u.Scope, " depth")
			}
			if ok && strings.HasPrefix(path.Clean(object), dir+"/") && (best == nil || u.Ratio() > best.Ratio()) {
				best = u
			}
		}
		if best != nil || !v1 {
			return best
		}
		return byScope("memory cgroup ids")(rows)
	}
}

// ptysRow picks the row of a refused open of ptmx: the devpts instance
// mounted at mountPoint when it has a max of its own, else the host's
// kernel.pty.max.
func ptysRow(mountPoint string) func([]limits.Finding) *limits.Finding {
	return func(rows []limits.Finding) *limits.Finding {
		if mountPoint != "" {
			if u := byScope("devpts " + mountPoint)(rows); u != nil {
				return u
			}
		}
		return fullestOf(func(u limits.Finding) bool { return strings.HasPrefix(u.Scope, "host") })(rows)
	}
}

// fsObject is the filesystem a failure wrote to, found now.
type fsObject struct {
	mount limits.Mount
	found bool
	// statPath is where statfs reaches that filesystem now.
	statPath string
}

// filesystem names ENOSPC and EDQUOT from a call on a file or path: the
// filesystem behind it, read by a statfs now (disk or inodes, whichever
// has nothing left), a disk quota, or cgroupfs refusing a new cgroup.
func (n *namer) filesystem(ctx context.Context, p *pending) {
	f := &p.out
	si := classify(f.Syscall)
	obj, why := n.findFS(p, si)
	if f.Object == "/dev/ptmx" || f.Object == "/dev/pts/ptmx" {
		p.ask, p.pick, p.sure, f.Limit = []string{"ptys"}, ptysRow(""), true, "ptys"
		return
	}
	if !obj.found {
		f.Limit, f.Reason = Unexplained, join(f.Reason, fmt.Sprintf("%s from %s: %s", f.Errno, f.Syscall, why))
		return
	}
	scope := limits.MountScope(obj.mount)
	st, err := n.h.Statfs(ctx, obj.statPath)
	if err != nil {
		f.Limit, f.Reason = Unexplained, join(f.Reason, fmt.Sprintf("statfs %s: %v", scope, err))
		return
	}
	switch st.Type {
	case cgroupMagic, cgroup2Magic:
		p.ask, p.pick, p.sure, f.Limit = []string{"cgroups"}, cgroupsRow(obj.mount.MountPoint, f.Object, st.Type == cgroupMagic), true, "cgroups"
		return
	case devptsMagic:
		p.ask, p.pick, p.sure, f.Limit = []string{"ptys"}, ptysRow(obj.mount.MountPoint), true, "ptys"
		return
	}
	bs := uint64(st.BlockSize)
	used := int64((st.Blocks - st.BlocksFree) * bs)
	maxBytes := used + int64(st.BlocksAvail*bs)
	iused, imax := int64(st.Files-st.FilesFree), int64(st.Files)
	switch {
	case p.key.err == eDQUOT:
		f.Limit, f.Scope = "quota", scope
		f.Reason = join(f.Reason, fmt.Sprintf("a disk quota of uid %d, its group or its project on %s (enospc check --only quota lists them)", f.UID, obj.mount.MountPoint))
	case st.Files > 0 && st.FilesFree == 0:
		f.Limit, f.Scope, f.Used, f.Max, f.Unit = "inodes", scope, &iused, &imax, "inodes"
		f.Reason = join(f.Reason, fmt.Sprintf("no inode left on %s (%d bytes still free)", obj.mount.MountPoint, st.BlocksAvail*bs))
	case st.BlocksAvail == 0:
		f.Limit, f.Scope, f.Used, f.Max, f.Unit = "disk", scope, &used, &maxBytes, "bytes"
		f.Reason = join(f.Reason, fmt.Sprintf("no block left on %s for uid %d", obj.mount.MountPoint, f.UID))
	default:
		f.Limit = Unexplained
		f.Reason = join(f.Reason, fmt.Sprintf("%s on %s, which has %d bytes and %d inodes free now: the burst is over, or a limit of the filesystem's own refused it (project quota, reserved blocks)", f.Errno, scope, st.BlocksAvail*bs, st.FilesFree))
	}
}

// findFS finds the filesystem of the failed call's object: the path
// resolved in the process's own root and working directory while it
// lives, else the filesystem the program read from its fd argument.
func (n *namer) findFS(p *pending, si syscallInfo) (fsObject, string) {
	f, r := &p.out, &p.raw
	pid := strconv.Itoa(f.PID)
	fdArg := -1
	switch {
	case r.HasPath:
		f.Object = r.Path
	case si.flags&flagFD0 != 0:
		fdArg = int(int32(r.Args[0]))
		f.Object = "fd " + strconv.Itoa(fdArg)
		if t, err := os.Readlink(n.h.ProcPath(pid, "fd", strconv.Itoa(fdArg))); err == nil {
			f.Object += " (" + t + ")"
		}
	}
	if !f.Exited {
		if mounts, err := limits.ProcessMounts(n.h, f.PID); err == nil {
			var dir string
			switch {
			case r.HasPath:
				dir = n.resolve(pid, r, si)
			case fdArg >= 0:
				dir = n.h.ProcPath(pid, "fd", strconv.Itoa(fdArg))
			}
			if dir != "" {
				if m, ok := mountOf(dir, mounts); ok {
					return fsObject{mount: m, found: true, statPath: dir}, ""
				}
			}
			if r.HasFS {
				if m, ok := mountByDev(r.FSDev, mounts); ok {
					return fsObject{mount: m, found: true, statPath: n.h.ProcPath(pid, "root") + m.MountPoint}, ""
				}
			}
		}
	}
	if r.HasFS {
		if mounts, err := limits.HostMounts(n.h); err == nil {
			if m, ok := mountByDev(r.FSDev, mounts); ok {
				return fsObject{mount: m, found: true, statPath: n.h.RootPath(m.MountPoint)}, ""
			}
		}
		return fsObject{}, fmt.Sprintf("the filesystem (device %d:%d) is not in the host's mount table and %v", r.FSDev>>20, r.FSDev&0xfffff, errExited)
	}
	// A process that exited in the host's mount namespace named a path
	// the host resolves the same way (unless it had chrooted).
	if f.Exited && r.HasPath && strings.HasPrefix(r.Path, "/") && r.MntNS != 0 && r.MntNS == n.hostNS("mnt") {
		if mounts, err := limits.HostMounts(n.h); err == nil {
			if dir := existingDir(strings.TrimSuffix(n.h.RootPath("/"), "/"), r.Path); dir != "" {
				if m, ok := mountOf(dir, mounts); ok {
					f.Reason = "the process exited; its path was resolved in the host's mount namespace, where it ran"
					return fsObject{mount: m, found: true, statPath: dir}, ""
				}
			}
		}
	}
	if f.Exited {
		return fsObject{}, "its filesystem is not known: " + errExited.Error() + " (in a mount namespace of its own)"
	}
	return fsObject{}, "no file or path to look at"
}

// resolve returns the deepest existing directory on the failed path, as
// reached through the process's root, working directory or directory fd.
func (n *namer) resolve(pid string, r *rawFailure, si syscallInfo) string {
	var base string
	switch {
	case strings.HasPrefix(r.Path, "/"):
		base = n.h.ProcPath(pid, "root")
	case si.dirfdArg >= 0 && int32(r.Args[si.dirfdArg]) != unix.AT_FDCWD:
		base = n.h.ProcPath(pid, "fd", strconv.Itoa(int(int32(r.Args[si.dirfdArg]))))
	default:
		base = n.h.ProcPath(pid, "cwd")
	}
	return existingDir(base, r.Path)
}

// existingDir is the deepest existing directory of p under base: the
// last element is what failed to be made, its directory holds it. The
// path is a process's: a stat along it can block in the kernel (a FUSE
// daemon that never answers, a dead NFS server), so it is bounded
// (host.Bounded) and gives "" when it does not answer.
func existingDir(base, p string) string {
	var dir string
	if err := host.Bounded(context.Background(), base+"\x00"+p, lookupTimeout, func() error {
		dir = existingDirNow(base, p)
		return nil
	}); err != nil {
		return ""
	}
	return dir
}

// lookupTimeout bounds the lookup of one failed call's path.
const lookupTimeout = time.Second

func existingDirNow(base, p string) string {
	rel := path.Clean("/" + p)
	for d := path.Dir(rel); ; d = path.Dir(d) {
		full := base + d
		if fi, err := os.Stat(full); err == nil && fi.IsDir() {
			return full
		}
		if d == "/" {
			return ""
		}
	}
}

// mountOf finds the mount of dir by its device number; among the mounts
// of one device (bind mounts) the last mounted wins, as the kernel's view
// of an overmounted path does.
func mountOf(dir string, mounts []limits.Mount) (limits.Mount, bool) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return limits.Mount{}, false
	}
	return mountByDev(uint32(unix.Major(st.Dev))<<20|uint32(unix.Minor(st.Dev)), mounts)
}

// mountByDev finds a mount by the kernel's device number (major<<20|minor).
func mountByDev(dev uint32, mounts []limits.Mount) (limits.Mount, bool) {
	want := fmt.Sprintf("%d:%d", dev>>20, dev&0xfffff)
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Device == want && mounts[i].Root == "/" {
			return mounts[i], true
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Device == want {
			return mounts[i], true
		}
	}
	return limits.Mount{}, false
}

// fork names EAGAIN from fork and clone: a pids cgroup at its max (the
// deepest, as the kernel charges up the tree), else RLIMIT_NPROC of the
// uid, else threads-max or pid_max of the host.
func (n *namer) fork(p *pending) {
	f, r := &p.out, &p.raw
	if scope, cur, maxv, refused, ok := n.pidsAtMax(p); ok {
		f.Limit, f.Scope, f.Used, f.Max, f.Unit = "pids", scope, &cur, &maxv, "tasks"
		f.Reason = fmt.Sprintf("pids cgroup at its max: %d of %d tasks, pids.events counts %d refused", cur, maxv, refused)
		return
	}
	nproc := r.NprocCur
	uidScope := "uid " + strconv.Itoa(f.UID)
	p.ask = []string{"nproc", "threads", "pids"}
	p.pick = func(rows []limits.Finding) *limits.Finding {
		for i := range rows {
			u := &rows[i]
			if u.Limit == "nproc" && u.Scope == uidScope && f.UID != 0 && nproc < 1<<62 && uint64(u.Used) >= nproc {
				u.Max = int64(nproc)
				return u
			}
		}
		for i := range rows {
			u := &rows[i]
			if (u.Limit == "threads" || u.Limit == "pids") && u.Scope == "host" && u.Max > 0 && u.Used >= u.Max {
				return u
			}
		}
		return nil
	}
	f.Reason = "no pids cgroup of the process at its max"
}

// pidsAtMax walks the process's pids cgroup and its ancestors for the one
// that refused: at its max now, or with refusals counted in pids.events.
func (n *namer) pidsAtMax(p *pending) (scope string, cur, maxv, refused int64, ok bool) {
	root, rel := n.cg.pidsCgroup(p)
	if root == "" {
		return
	}
	var best string
	var bestCur, bestMax, bestRefused int64
	for d := rel; ; d = path.Dir(d) {
		dir := filepath.Join(n.h.RootPath(root), d)
		m, err1 := readCgroupInt(filepath.Join(dir, "pids.max"))
		c, err2 := readCgroupInt(filepath.Join(dir, "pids.current"))
		if err1 == nil && err2 == nil {
			ev := readPidsEvents(filepath.Join(dir, "pids.events"))
			if c >= m || ev > 0 {
				if best == "" || c >= m && bestCur < bestMax {
					best, bestCur, bestMax, bestRefused = filepath.Join(root, d), c, m, ev
				}
			}
		}
		if d == "/" || d == "." {
			break
		}
	}
	return best, bestCur, bestMax, bestRefused, best != ""
}

func readCgroupInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// readPidsEvents is the "max" count of pids.events: forks refused at this
// cgroup's limit.
func readPidsEvents(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	return parsePidsEvents(string(b))
}

// parsePidsEvents reads the "max N" line of pids.events; 0 when absent.
func parsePidsEvents(s string) int64 {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "max "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
