package trace

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// Unexplained is the limit of a failure no limit explains.
const Unexplained = "unexplained"

// pending is a key seen for the first time, being named.
type pending struct {
	key fkey
	raw rawFailure
	out Failure
	// ask lists the limits whose rows decide this failure, pick chooses
	// among them; sure says the syscall and errno admit no other limit,
	// so the limit stands even when its row is not at its max any more.
	ask  []string
	pick func([]limits.Finding) *limits.Finding
	sure bool
	// childScope is the scope of a failure in a child user namespace,
	// whose own limits (per-namespace ucounts) refused it when the host's
	// row is not at its max: only a process inside can read them.
	childScope string
}

// namer names failures: limit, scope, object, container, pod.
type namer struct {
	h    *host.Host
	opts Options
	cg   *cgroupPaths

	inv   *attrib.Inventory
	invAt time.Time
}

// newNamer asks the runtimes once before the trace starts (each bounded
// by its timeout), so that the first failures already have names.
func newNamer(ctx context.Context, h *host.Host, opts Options) *namer {
	n := &namer{h: h, opts: opts, cg: newCgroupPaths(h)}
	if ro := opts.Check.Runtimes; ro != nil {
		r := *ro
		if r.SocketPath == nil {
			r.SocketPath = h.RootPath
		}
		n.inv, n.invAt = attrib.Collect(ctx, r), time.Now()
	}
	return n
}

// refreshInventory asks the runtimes again when a container is not in
// the inventory (started during the trace), at most every 2 seconds, each
// runtime bounded by its timeout.
func (n *namer) refreshInventory(ctx context.Context) {
	ro := n.opts.Check.Runtimes
	if ro == nil || time.Since(n.invAt) < 2*time.Second {
		return
	}
	r := *ro
	if r.SocketPath == nil {
		r.SocketPath = n.h.RootPath
	}
	n.inv, n.invAt = attrib.Collect(ctx, r), time.Now()
}

// keep applies the --only, --container and --pod filters.
func (n *namer) keep(f *Failure) bool {
	if len(n.opts.Only) > 0 && !slices.Contains(n.opts.Only, f.Limit) {
		return false
	}
	if c := n.opts.Container; c != "" {
		if f.ContainerName != c && f.Container != c && (len(c) < 4 || !strings.HasPrefix(f.Container, c)) {
			return false
		}
	}
	if p := n.opts.Pod; p != "" && p != f.Namespace+"/"+f.Pod {
		return false
	}
	return true
}

// name names every pending failure: the process and its container now,
// the limit from the syscall, the errno and its object, confirmed by one
// check of the limits they point to.
func (n *namer) name(ctx context.Context, ps []*pending) {
	var ask []string
	for _, p := range ps {
		n.identify(ctx, p)
		n.decide(ctx, p)
		for _, id := range p.ask {
			if !slices.Contains(ask, id) {
				ask = append(ask, id)
			}
		}
	}
	if len(ask) == 0 {
		return
	}
	co := n.opts.Check
	co.Only, co.Inventory, co.Runtimes, co.By = ask, n.inv, nil, ""
	rep, err := check.Run(ctx, n.h, co)
	for _, p := range ps {
		if len(p.ask) == 0 {
			continue
		}
		if err != nil {
			p.settle(nil, fmt.Sprintf("the limits could not be read: %v", err))
			continue
		}
		var rows []limits.Finding
		for _, u := range rep.Findings {
			if slices.Contains(p.ask, u.Limit) && u.Severity != limits.Unknown {
				rows = append(rows, u)
			}
		}
		p.settle(p.pick(rows), "")
	}
}

// settle sets the limit from the row chosen: at its max it explains the
// failure; below it, only a limit the syscall admits alone still does.
func (p *pending) settle(u *limits.Finding, why string) {
	f := &p.out
	if p.childScope != "" && (u == nil || !(u.Max >= 0 && u.Used >= u.Max)) {
		f.Limit, f.Scope = p.ask[0], p.childScope
		if u != nil {
			used, maxv := u.Used, u.Max
			f.Used, f.Max, f.Unit = &used, &maxv, u.Unit
			why = join(why, fmt.Sprintf("%s %s is below its max (%d of %d %s)", u.Limit, u.Scope, u.Used, u.Max, u.Unit))
		}
		f.Reason = join(f.Reason, join(why, "refused in a child user namespace, against its own limit (or an ancestor's), which only a process inside can read"))
		return
	}
	if u == nil {
		if !p.sure || f.Limit == "" {
			f.Limit, f.Scope = Unexplained, ""
		}
		if why == "" {
			why = "no row of " + strings.Join(p.ask, ", ") + " matches this process"
		}
		f.Reason = join(f.Reason, why)
		return
	}
	used, maxv := u.Used, u.Max
	f.Used, f.Max, f.Unit = &used, &maxv, u.Unit
	full := u.Max >= 0 && u.Used >= u.Max || u.Severity == limits.Critical
	switch {
	case full:
		f.Limit, f.Scope = u.Limit, u.Scope
		f.Reason = join(f.Reason, fmt.Sprintf("%s %s at its max: %d of %d %s", u.Limit, u.Scope, u.Used, u.Max, u.Unit))
	case p.sure:
		f.Limit, f.Scope = u.Limit, u.Scope
		f.Reason = join(f.Reason, fmt.Sprintf("%s %s is below its max now (%d of %d %s): the burst is over", u.Limit, u.Scope, u.Used, u.Max, u.Unit))
	default:
		f.Limit, f.Scope = Unexplained, ""
		f.Reason = join(f.Reason, fmt.Sprintf("no candidate at its max; the fullest is %s %s, %d of %d %s", u.Limit, u.Scope, u.Used, u.Max, u.Unit))
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

// identify fills what the failure says of itself and its process's
// container: from /proc/PID/cgroup while the process lives, from the
// cgroup ids the kernel gave once it has exited.
func (n *namer) identify(ctx context.Context, p *pending) {
	r := &p.raw
	f := &p.out
	f.Syscall, f.Errno = syscallName(p.key.nr), ErrnoName(p.key.err)
	f.PID, f.TID, f.Comm, f.UID = int(p.key.tgid), int(r.TID), r.Comm, int(r.UID)
	var content string
	if b, err := n.h.ReadProc(strconv.Itoa(f.PID), "cgroup"); err == nil && alive(n.h, f.PID) {
		content = string(b)
	} else {
		f.Exited = true
		content = n.cg.procCgroup(r)
	}
	ref := attrib.ParseProcCgroup(content)
	f.Cgroup = bestCgroup(content)
	f.PodUID = ref.PodUID
	if !ref.Guess {
		f.Container, f.Runtime = ref.ID, ref.Runtime
	}
	// A path shaped like plain containerd's "/<ns>/<id>" is a container
	// only when containerd lists it.
	if ref.ID != "" {
		if _, ok := n.inv.Lookup(ref.ID); !ok {
			n.refreshInventory(ctx)
		}
		if inv := n.inv; inv != nil {
			if c, ok := inv.Lookup(ref.ID); ok {
				f.Container = ref.ID
				f.ContainerName, f.Runtime = c.Name, c.Runtime
				f.Pod, f.Namespace = c.PodName, c.PodNamespace
				if c.PodUID != "" {
					f.PodUID = c.PodUID
				}
			}
		}
	}
}

// bestCgroup is the path of the line of /proc/PID/cgroup that says most:
// the v2 line unless it is "/", then pids, then memory.
func bestCgroup(content string) string {
	var v2, pids, mem string
	for _, line := range strings.Split(content, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case slices.Contains(strings.Split(parts[1], ","), "pids"):
			pids = parts[2]
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			mem = parts[2]
		}
	}
	for _, c := range []string{v2, pids, mem} {
		if c != "" && c != "/" {
			return c
		}
	}
	return v2
}

// Errnos the program keeps.
const (
	eAGAIN        = uint32(unix.EAGAIN)
	eNOMEM        = uint32(unix.ENOMEM)
	eNFILE        = uint32(unix.ENFILE)
	eMFILE        = uint32(unix.EMFILE)
	eNOSPC        = uint32(unix.ENOSPC)
	eADDRNOTAVAIL = uint32(unix.EADDRNOTAVAIL)
	eDQUOT        = uint32(unix.EDQUOT)
)

// decide names the limit from the syscall, the errno and the object;
// limits whose state lives in a check row are left in p.ask for name.
func (n *namer) decide(ctx context.Context, p *pending) {
	f := &p.out
	sc, e := f.Syscall, p.key.err
	uidScope := "uid " + strconv.Itoa(f.UID)
	ask := func(sure bool, pick func([]limits.Finding) *limits.Finding, ids ...string) {
		p.ask, p.pick, p.sure = ids, pick, sure
		if sure && len(ids) == 1 {
			f.Limit = ids[0]
		}
	}
	switch {
	case sc == "inotify_add_watch" && e == eNOSPC:
		ask(true, byScope(uidScope), "inotify.watches")
		p.childScope = n.childScope(p)
	case (sc == "inotify_init" || sc == "inotify_init1") && e == eMFILE:
		if n.atNofile(p) {
			n.nofile(p)
			return
		}
		ask(true, byScope(uidScope), "inotify.instances")
		p.childScope = n.childScope(p)
	case sc == "fanotify_init" && e == eMFILE, sc == "fanotify_mark" && e == eNOSPC:
		ask(true, fullest(f.PID), "fanotify")
	case sc == "epoll_ctl" && e == eNOSPC:
		ask(true, byScope(uidScope), "epoll")
	case (sc == "add_key" || sc == "keyctl" || sc == "request_key") && e == eDQUOT:
		ask(true, fullestOf(byScopeAll(uidScope)), "keys.count", "keys.bytes")
	case (sc == "fork" || sc == "vfork" || sc == "clone" || sc == "clone3") && e == eAGAIN:
		n.fork(p)
	case (sc == "clone" || sc == "unshare") && e == eNOSPC:
		id := "namespaces"
		if p.raw.Args[0]&unix.CLONE_NEWUSER != 0 {
			id = "userns"
		}
		ask(true, fullestOf(byScopeContains("uid "+strconv.Itoa(f.UID)+" ")), id)
		p.childScope = n.childScope(p)
	case sc == "clone3" && e == eNOSPC, sc == "setns" && e == eNOSPC:
		ask(false, fullestOf(byScopeContains("uid "+strconv.Itoa(f.UID)+" ")), "userns", "namespaces")
	case (sc == "mount" || sc == "fsmount" || sc == "move_mount" || sc == "open_tree") && e == eNOSPC:
		ask(true, fullest(f.PID), "mounts")
	case sc == "shmget" && (e == eNOSPC || e == eNOMEM):
		ask(true, fullest(f.PID), "ipc.shm")
	case sc == "semget" && e == eNOSPC:
		ask(true, fullest(f.PID), "ipc.sem")
	case sc == "msgget" && e == eNOSPC:
		ask(true, fullest(f.PID), "ipc.msg")
	case sc == "mq_open" && (e == eNOSPC || e == eMFILE):
		ask(true, fullest(f.PID), "mqueue")
	case sc == "io_setup" && e == eAGAIN:
		ask(true, byScope("host"), "aio")
	case (sc == "connect") && e == eADDRNOTAVAIL:
		ask(true, fullest(f.PID), "ports")
	case (sc == "mmap" || sc == "mprotect") && e == eNOMEM:
		n.mapcount(p)
	case e == eNFILE:
		ask(true, byScope("host"), "files")
	case e == eMFILE:
		n.nofile(p)
	case e == eNOSPC || e == eDQUOT || (e == eAGAIN && (sc == "mkdir" || sc == "mkdirat")):
		n.filesystem(ctx, p)
	default:
		f.Limit = Unexplained
		f.Reason = fmt.Sprintf("%s from %s is not a limit enospc knows", f.Errno, sc)
	}
}

func byScope(scope string) func([]limits.Finding) *limits.Finding {
	return func(rows []limits.Finding) *limits.Finding {
		for i := range rows {
			if rows[i].Scope == scope {
				return &rows[i]
			}
		}
		return nil
	}
}

func byScopeAll(scope string) func(limits.Finding) bool {
	return func(u limits.Finding) bool { return u.Scope == scope }
}

func byScopeContains(s string) func(limits.Finding) bool {
	return func(u limits.Finding) bool { return strings.Contains(u.Scope+" ", s) }
}

// fullestOf picks the fullest row among those match accepts.
func fullestOf(match func(limits.Finding) bool) func([]limits.Finding) *limits.Finding {
	return func(rows []limits.Finding) *limits.Finding {
		var best *limits.Finding
		for i := range rows {
			if match(rows[i]) && (best == nil || rows[i].Ratio() > best.Ratio()) {
				best = &rows[i]
			}
		}
		return best
	}
}

// fullest picks the row that lists pid among its holders, else the
// fullest row of the host: for limits whose scope is a namespace, the
// one the process is in when it holds some of it.
func fullest(pid int) func([]limits.Finding) *limits.Finding {
	return func(rows []limits.Finding) *limits.Finding {
		for i := range rows {
			for _, c := range rows[i].Consumers {
				if c.PID == pid {
					return &rows[i]
				}
			}
		}
		return fullestOf(func(limits.Finding) bool { return true })(rows)
	}
}

// inChildUserNS says whether the failing task ran in a user namespace
// other than the host's (pid 1's).
func (n *namer) inChildUserNS(p *pending) bool {
	host := n.hostNS("user")
	return p.raw.UserNS != 0 && host != 0 && host != p.raw.UserNS
}

// childScope is the scope of a per-user-namespace limit for a task in a
// child user namespace, "" for a task in the host's.
func (n *namer) childScope(p *pending) string {
	if !n.inChildUserNS(p) {
		return ""
	}
	return fmt.Sprintf("uid %d in user ns %d", p.out.UID, p.raw.UserNS)
}

// hostNS is the inode number of the host's namespace of kind (pid 1's),
// or of enospc's own when pid 1's cannot be read (no CAP_SYS_PTRACE over
// it); 0 when neither can.
func (n *namer) hostNS(kind string) uint32 {
	var st unix.Stat_t
	for _, pid := range []string{"1", "self"} {
		if unix.Stat(n.h.ProcPath(pid, "ns", kind), &st) == nil {
			return uint32(st.Ino)
		}
	}
	return 0
}

// openFDs counts the process's open file descriptors, -1 when it is gone.
func (n *namer) openFDs(pid int) int64 {
	d, err := os.Open(n.h.ProcPath(strconv.Itoa(pid), "fd"))
	if err != nil {
		return -1
	}
	defer d.Close()
	var count int64
	for {
		names, err := d.Readdirnames(1024)
		count += int64(len(names))
		if err != nil || len(names) == 0 {
			return count
		}
	}
}

func (n *namer) atNofile(p *pending) bool {
	fds := n.openFDs(int(p.key.tgid))
	return fds >= 0 && p.raw.NofileCur > 0 && uint64(fds) >= p.raw.NofileCur
}

// nofile names RLIMIT_NOFILE, whose value the program read from the
// failing task itself.
func (n *namer) nofile(p *pending) {
	f := &p.out
	f.Limit, f.Scope, f.Unit = "files.process", fmt.Sprintf("pid %d (%s)", f.PID, f.Comm), "files"
	maxv := int64(p.raw.NofileCur)
	f.Max = &maxv
	if fds := n.openFDs(f.PID); fds >= 0 {
		f.Used = &fds
		f.Reason = fmt.Sprintf("RLIMIT_NOFILE %d, %d descriptors open now", maxv, fds)
	} else {
		f.Reason = fmt.Sprintf("RLIMIT_NOFILE %d; %v", maxv, errExited)
	}
}

// mapcount names vm.max_map_count when the process's mappings reach it;
// otherwise ENOMEM is memory, not a limit enospc reads.
func (n *namer) mapcount(p *pending) {
	f := &p.out
	maxMaps, err := n.h.SysctlInt("vm.max_map_count")
	b, err2 := n.h.ReadProc(strconv.Itoa(f.PID), "maps")
	if err != nil || err2 != nil {
		f.Limit, f.Reason = Unexplained, "ENOMEM from "+f.Syscall+": the process's mappings could not be counted"
		return
	}
	maps := int64(strings.Count(string(b), "\n"))
	f.Used, f.Max, f.Unit = &maps, &maxMaps, "mappings"
	if maps+2 >= maxMaps {
		f.Limit, f.Scope = "mapcount", fmt.Sprintf("pid %d (%s)", f.PID, f.Comm)
		return
	}
	f.Limit, f.Reason = Unexplained, fmt.Sprintf("ENOMEM from %s with %d of %d mappings: memory, not vm.max_map_count", f.Syscall, maps, maxMaps)
}
