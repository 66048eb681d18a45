package limits

// Namespaces per user (Documentation/admin-guide/sysctl/user.rst,
// kernel/ucount.c, namespaces(7), unshare(2)).
//
// /proc/sys/user/max_{user,mnt,ipc,net,pid,uts,cgroup,time}_namespaces cap
// how many namespaces of each kind one user may hold. The kernel charges a
// new namespace to a per-user counter (ucounts) of the user namespace that
// owns it, under the uid (kuid) that created it, AND to the counter of every
// ancestor user namespace, where the charged uid is the owner of the child
// namespace on the way up. Creation fails with ENOSPC, "no space left on
// device", when any level is at its max; the limit of a level is the
// max_*_namespaces of that user namespace. The initial namespace's values
// default to half of kernel.threads-max (96365 on the 24 GiB lab VM); a
// new user namespace starts with every value at INT_MAX (unlimited) and its
// root may lower (or raise) them: bwrap --disable-userns and flatpak set
// max_user_namespaces to 1 inside their sandboxes on purpose. A value of 0
// in the initial namespace disables the kind for everyone, root included: a
// hardening setting, and the default of RHEL 7 and of Talos.
//
// What the user sees (real reports):
//
//	unshare: unshare failed: No space left on device
//	bwrap: Creating new namespace failed: No space left on device
//	[rootlesskit:parent] error: failed to start the child: fork/exec /proc/self/exe: no space left on device
//	OCI runtime create failed: creating container: starting sandbox: fork/exec /proc/self/exe: no space left on device
//	Failed to create a new network namespace "x": No space left on device
//	systemd-logind.service: Failed to set up special execution directory in /run: No space left on device
//
// Usage: the distinct namespaces of each kind that live processes are in
// (census Process.NS), plus those bind-mounted in the host's mount table
// (nsfs mounts: ip netns, CNI, docker's netns files). The initial
// namespaces (pid 1's) are not charged. On the live host the owner of each
// namespace (NS_GET_USERNS), the parent and owner uid of each user namespace
// (NS_GET_PARENT, NS_GET_OWNER_UID) and the pid namespaces between a
// process's and the initial one (NS_GET_PARENT) are asked of the kernel, so
// that every level is charged as the kernel charges it; on a fixture tree
// every user namespace is taken for a child of the initial one owned by the
// uid its first process runs as (census.ChargedUID). The creating uid of a
// namespace is not recorded anywhere: a namespace owned by the initial user
// namespace is charged to root (creating one takes CAP_SYS_ADMIN there);
// one owned by a child is charged to the uid that child maps to its root,
// or to its owner when it maps none. Namespaces kept alive only by an open
// fd, by a bind mount in another mount namespace, or by a child that
// unshared its pid or time namespace but has no children yet are not seen:
// the count is a lower bound.
//
// Max: the initial namespace's /proc/sys/user/max_*_namespaces, per uid
// ("uid N (initial user ns)"). A child user namespace's own values are
// visible only to processes inside it: a multithreaded program cannot
// setns(CLONE_NEWUSER), and /proc/PID/ does not show them: the sysctl
// table a file of /proc/sys/user shows is chosen by the user namespace of
// the process that opens it. On the live host a forked child of enospc
// that never executes anything joins the namespace and reads them
// (host.ReadInUserNamespace): an executed program there, with root's kuid,
// could be ptraced by the namespace's owner. Entering takes CAP_SYS_ADMIN
// over the namespace (root, or its owner); reading takes nothing once
// inside. Writing does take root inside it. A child level gets a row only when its value was
// lowered from INT_MAX (else its ancestors' rows cover it), and for user
// namespaces only when lowered to more than 1 (0 or 1 is a sandbox
// forbidding nesting on purpose); where they cannot be read (another
// user's namespace without root, a fixture) the child levels are one
// Unknown row per limit.
//
// Fix: find what creates the namespaces and whether it leaks them (lsns -t
// user; sandboxes left behind by CI jobs, rootless containers not removed),
// raise user.max_*_namespaces, or set a value of 0 to something useful.
//
// The lab (lab/kernel/userns_test.go) drives a child user namespace of a
// dedicated uid to its own lowered limits and never touches the initial
// namespace's values.

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Namespaces ID = "namespaces"
	Userns     ID = "userns"
)

var namespacesFamily = Family{
	Name: "namespaces",
	Limits: []Limit{
		{
			ID:    Userns,
			Clues: usernsClues,
			Title: "user namespaces per user (user.max_user_namespaces)",
			Unit:  "namespaces",
			Doc: "User namespaces one uid holds, charged in the user namespace that owns them and in every " +
				"ancestor up to the initial one, against user.max_user_namespaces of each level. Rootless " +
				"containers (podman, rootless docker, buildah), user-namespaced pods, bwrap and flatpak " +
				"sandboxes, browsers' sandboxes and systemd's id-mapped directories take them; past the limit " +
				"(or with it set to 0) unshare and clone fail with ENOSPC, \"no space left on device\". " +
				"Counted from the namespaces of live processes and bind mounts: ones held only by an open fd " +
				"are not seen, so the count is a lower bound.",
			Signatures: []*Signature{
				NewSignature(`(?i)max_user_namespaces`),
				NewSignature(`(?i)max_\*_namespaces`),
				NewSignature(`(?i)(user namespace|user ns\b|userns|clone_newuser).*no space left on device`),
				NewSignature(`(?i)(unshare|creat(e|ing) (a )?new namespace)\b.*failed.*no space left on device`),
				NewSignature(`(?i)fork/exec /proc/self/exe: no space left on device`),
				NewSignature(`(?i)cannot clone: no space left on device`),
				NewSignature(`(?i)failed to set up special execution directory.*no space left on device`),
			},
			Remedy: namespacesRemedy,
		},
		{
			ID:    Namespaces,
			Clues: namespacesClues,
			Title: "mount, ipc, net, pid, uts, cgroup and time namespaces per user (user.max_*_namespaces)",
			Unit:  "namespaces",
			Doc: "Namespaces of each other kind one uid holds, charged like user namespaces to the owning user " +
				"namespace and its ancestors, against user.max_mnt_namespaces, max_net_namespaces and the " +
				"others of each level; unshare, clone and `ip netns add` fail with ENOSPC past them. Every " +
				"container and sandbox holds several. Counted from live processes and bind mounts: " +
				"namespaces held only by an open fd, or unshared for children that do not exist yet, are " +
				"not seen, so the count is a lower bound.",
			Signatures: []*Signature{
				NewSignature(`(?i)max_(mnt|ipc|net|pid|uts|cgroup|time)_namespaces`),
				NewSignature(`(?i)max_\*_namespaces`),
				NewSignature(`(?i)(network|mount|pid|ipc|uts|cgroup|time) namespace.*no space left on device`),
				NewSignature(`(?i)clone_new(ns|net|pid|ipc|uts|cgroup|time)\b.*(ENOSPC|no space left on device)`),
				NewSignature(`(?i)(unshare|creat(e|ing) (a )?new namespace)\b.*failed.*no space left on device`),
			},
			Remedy: namespacesRemedy,
		},
	},
	Read: readNamespaces,
}

// nsUnlimited is the value a new user namespace starts with (INT_MAX).
const nsUnlimited = 1<<31 - 1

// nsChildReads bounds how many child user namespaces have their limits
// read in one check, nsReadTimeout each read.
const (
	nsChildReads  = 256
	nsReadTimeout = 5 * time.Second
)

// nsInitInodes are the fixed inode numbers of the initial namespaces
// (PROC_*_INIT_INO), for the kinds that have one; mnt and net are numbered
// at boot.
var nsInitInodes = [census.NSKinds]uint64{
	census.NSUser:   0xEFFFFFFD,
	census.NSIPC:    0xEFFFFFFF,
	census.NSUTS:    0xEFFFFFFE,
	census.NSPID:    0xEFFFFFFC,
	census.NSCgroup: 0xEFFFFFFB,
	census.NSTime:   0xEFFFFFFA,
}

// nsSysctl is the /proc/sys/user file of a kind.
func nsSysctl(kind int) string { return "max_" + census.NSNames[kind] + "_namespaces" }

// nsRef reopens a namespace on the live host: a path (/proc/PID/ns/KIND or
// a bind mount), then namespace ioctls applied in turn (NS_GET_USERNS,
// NS_GET_PARENT).
type nsRef struct {
	path string
	ops  []uint
}

func (r nsRef) then(op uint) nsRef {
	return nsRef{path: r.path, ops: append(append([]uint(nil), r.ops...), op)}
}

// open returns an fd of the namespace, to be closed by the caller.
func (r nsRef) open() (int, error) {
	fd, err := unix.Open(r.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, op := range r.ops {
		next, err := unix.IoctlRetInt(fd, op)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func fdInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// nsObj is one namespace that is charged somewhere.
type nsObj struct {
	kind int
	ino  uint64
	// owner is the user namespace that owns it (for a user namespace, its
	// parent); 0 is the initial one.
	owner uint64
	// holder is the lowest pid in it, or the process through which it was
	// found (an intermediate user or pid namespace); nil for a bind mount.
	holder *census.Process
	mount  string
	ref    nsRef
}

// userNode is one user namespace of the tree.
type userNode struct {
	parent uint64 // 0: the initial namespace
	owner  int    // kuid of its creator
	pid    int    // a process directly in it, 0 when none is known
	ref    nsRef  // how to open it (live)
	live   bool   // ref opens it
}

// nsLevel is one per-user counter: a user namespace (0: initial), a kuid
// and a kind.
type nsLevel struct {
	level uint64
	uid   int
	kind  int
}

type nsAcc struct {
	used int64
	cs   map[string]*Consumer
	keys []string
}

func (a *nsAcc) add(c Consumer) {
	a.used++
	key := "name:" + c.Name
	if c.PID != 0 {
		key = "pid:" + strconv.Itoa(c.PID)
	}
	if have := a.cs[key]; have != nil {
		have.Count++
		return
	}
	c.Count = 1
	a.cs[key] = &c
	a.keys = append(a.keys, key)
}

func (a *nsAcc) consumers() []Consumer {
	out := make([]Consumer, 0, len(a.keys))
	for _, k := range a.keys {
		out = append(out, *a.cs[k])
	}
	return out
}

// nsTree is what Read learns of the host's namespaces.
type nsTree struct {
	env     *Env
	initNS  [census.NSKinds]uint64
	objs    map[[2]uint64]*nsObj // (kind, inode)
	order   []*nsObj
	users   map[uint64]*userNode
	rootMap map[uint64]int // user ns -> kuid of its root, -1 none
}

func (t *nsTree) isInit(kind int, ino uint64) bool {
	return ino == 0 || ino == t.initNS[kind] || (kind == census.NSUser && ino == nsInitInodes[census.NSUser])
}

func (t *nsTree) add(o *nsObj) *nsObj {
	k := [2]uint64{uint64(o.kind), o.ino}
	if have := t.objs[k]; have != nil {
		return have
	}
	t.objs[k] = o
	t.order = append(t.order, o)
	return o
}

func readNamespaces(env *Env) []Finding {
	maxes, have, out := readNSMaxes(env)
	if have == ([census.NSKinds]bool{}) {
		return out
	}
	if env.Census == nil {
		err := env.CensusErr
		if err == nil {
			err = fmt.Errorf("no process census")
		}
		return append(out, unknown("userns", "all users", "user namespaces", err), unknown("namespaces", "all users", "namespaces", err))
	}
	t := &nsTree{env: env, objs: map[[2]uint64]*nsObj{}, users: map[uint64]*userNode{}, rootMap: map[uint64]int{}}
	t.findInit()
	unseen := t.collect()
	if env.Live {
		t.resolveLive()
	}
	t.resolveFallback()
	accs := t.charge(have)
	// The child levels' own limits.
	childMax, childErr := t.readChildMaxes(accs, have)
	return append(out, t.rows(accs, maxes, have, childMax, childErr, unseen)...)
}

// readNSMaxes reads the limits in force in the initial namespace; a
// kernel without the file (before 4.9, time before 5.6) has no such
// limit. Those that cannot be read are unknown rows.
func readNSMaxes(env *Env) (maxes [census.NSKinds]int64, have [census.NSKinds]bool, out []Finding) {
	for k := 0; k < census.NSKinds; k++ {
		v, err := env.Host.SysctlInt("user." + nsSysctl(k))
		switch {
		case err == nil:
			maxes[k], have[k] = v, true
		case errors.Is(err, fs.ErrNotExist):
		default:
			out = append(out, unknown(nsLimitID(k), nsScope(k, "all users"), nsUnit(k), err))
		}
	}
	return maxes, have, out
}

// charge counts every namespace at each level of the user namespace
// tree it is charged to: its owner's, and each ancestor's.
func (t *nsTree) charge(have [census.NSKinds]bool) map[nsLevel]*nsAcc {
	accs := map[nsLevel]*nsAcc{}
	charge := func(l nsLevel, c Consumer) {
		a := accs[l]
		if a == nil {
			a = &nsAcc{cs: map[string]*Consumer{}}
			accs[l] = a
		}
		a.add(c)
	}
	for _, o := range t.order {
		if !have[o.kind] {
			continue
		}
		c := Consumer{Name: o.mount}
		if o.holder != nil {
			c = Consumer{PID: o.holder.PID, UID: intp(o.holder.EUID), Comm: o.holder.Comm}
		}
		u := o.owner
		if o.kind != census.NSUser {
			charge(nsLevel{u, t.creator(u), o.kind}, c)
		} else {
			u = o.ino
		}
		// Up the tree: each level charges the owner of the child below it.
		for depth := 0; u != 0 && depth <= 33; depth++ {
			n := t.users[u]
			if n == nil {
				break
			}
			charge(nsLevel{n.parent, n.owner, o.kind}, c)
			u = n.parent
		}
	}
	return accs
}

// rows makes a row of every level charged: the initial namespace's
// against the host's limits, a child's against its own when it set one.
func (t *nsTree) rows(accs map[nsLevel]*nsAcc, maxes [census.NSKinds]int64, have [census.NSKinds]bool, childMax map[uint64]map[int]int64, childErr error, unseen int) []Finding {
	env := t.env
	var out []Finding
	var levels []nsLevel
	for l := range accs {
		levels = append(levels, l)
	}
	sort.Slice(levels, func(i, j int) bool {
		a, b := levels[i], levels[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if (a.level == 0) != (b.level == 0) {
			return a.level == 0
		}
		if a.level != b.level {
			return a.level < b.level
		}
		return a.uid < b.uid
	})
	needsRoot := unseen > 0 && !env.Root
	note := ""
	if unseen > 0 {
		note = fmt.Sprintf("the namespaces of %d processes could not be read, so this is a lower bound", unseen)
		if !env.Root {
			note += "; run as root for a full count"
		}
	}
	initRows := [census.NSKinds]bool{}
	unknownChild := map[ID][]nsLevel{}
	for _, l := range levels {
		if !have[l.kind] {
			continue
		}
		a := accs[l]
		if l.level == 0 {
			initRows[l.kind] = true
			u := t.initRow(l.kind, l.uid, a.used, maxes[l.kind])
			u.setConsumers(a.consumers(), topConsumers)
			if note != "" && u.Reason == "" {
				u.Reason = note
			}
			u.NeedsRoot = needsRoot
			out = append(out, u)
			continue
		}
		m, ok := childMax[l.level]
		if !ok {
			id := nsLimitID(l.kind)
			unknownChild[id] = append(unknownChild[id], l)
			continue
		}
		v, set := m[l.kind]
		if !set || v >= nsUnlimited {
			continue // unlimited: its ancestors' rows bind first
		}
		if l.kind == census.NSUser && v <= 1 {
			// bwrap --disable-userns and flatpak: nesting forbidden on purpose.
			continue
		}
		u := Finding{Limit: string(nsLimitID(l.kind)), Scope: nsScope(l.kind, fmt.Sprintf("uid %d in user ns %d", l.uid, l.level)),
			Used: a.used, Max: v, Unit: nsUnit(l.kind),
			Reason: fmt.Sprintf("%s is %d inside user ns %d%s; a new user namespace starts unlimited, and the kernel checks this level and every ancestor's", nsSysctl(l.kind), v, l.level, t.pidIn(l.level))}
		u.setConsumers(a.consumers(), topConsumers)
		out = append(out, u)
	}
	for k := 0; k < census.NSKinds; k++ {
		if have[k] && !initRows[k] {
			u := t.initRow(k, 0, 0, maxes[k])
			u.setConsumers(nil, topConsumers)
			u.NeedsRoot = needsRoot
			if note != "" && u.Reason == "" {
				u.Reason = note
			}
			out = append(out, u)
		}
	}
	return append(out, childUnknownRows(env, accs, unknownChild, childErr)...)
}

// childUnknownRows are the unknown rows of the child levels whose own
// limits could not be read.
func childUnknownRows(env *Env, accs map[nsLevel]*nsAcc, unknownChild map[ID][]nsLevel, childErr error) []Finding {
	var out []Finding
	for _, id := range []ID{Userns, Namespaces} {
		ls := unknownChild[id]
		if len(ls) == 0 {
			continue
		}
		nss := map[uint64]bool{}
		kinds := map[string]bool{}
		top := ls[0]
		for _, l := range ls {
			nss[l.level] = true
			kinds[census.NSNames[l.kind]] = true
			if accs[l].used > accs[top].used {
				top = l
			}
		}
		var kn []string
		for k := range kinds {
			kn = append(kn, k)
		}
		sort.Strings(kn)
		why := childErr
		if why == nil {
			why = errors.New("not read")
		}
		unit := "namespaces"
		if id == "userns" {
			unit = "user namespaces"
		}
		u := Finding{Limit: string(id), Scope: "child user namespaces", Unit: unit, Severity: Unknown, NeedsRoot: env.Live && !env.Root,
			Reason: fmt.Sprintf("%s namespaces are charged in %d child user %s too, against limits of their own (unlimited unless lowered inside) that only a process inside can read: %v",
				strings.Join(kn, ", "), len(nss), pluralS(len(nss), "namespace"), why)}
		u.setConsumers(accs[top].consumers(), topConsumers)
		out = append(out, u)
	}
	return out
}

func nsLimitID(kind int) ID {
	if kind == census.NSUser {
		return "userns"
	}
	return "namespaces"
}

func nsUnit(kind int) string { return census.NSNames[kind] + " namespaces" }

// nsScope names a row: "uid 0 (initial user ns)" for user namespaces,
// "net ns of uid 0 (initial user ns)" for the others.
func nsScope(kind int, who string) string {
	if kind == census.NSUser {
		return who
	}
	return census.NSNames[kind] + " ns of " + who
}

func (t *nsTree) initRow(kind, uid int, used, max int64) Finding {
	u := Finding{Limit: string(nsLimitID(kind)), Scope: nsScope(kind, fmt.Sprintf("uid %d (initial user ns)", uid)), Used: used, Max: max, Unit: nsUnit(kind)}
	if max == 0 {
		// A hardened host: a warning only when something is in use
		// that could not be made again.
		if used > 0 {
			u.floor = Warning
		}
		u.Reason = fmt.Sprintf("user.%s is 0: nobody, root included, can create a %s namespace (a hardening setting or a distribution's default)", nsSysctl(kind), census.NSNames[kind])
	}
	return u
}

// pidIn names a process in a user namespace, for the reason of a row.
func (t *nsTree) pidIn(level uint64) string {
	if n := t.users[level]; n != nil && n.pid != 0 {
		return fmt.Sprintf(", which pid %d is in", n.pid)
	}
	return ""
}

// usernsClues are the words and facts of an error message that point to userns (explain).
var usernsClues = []clue.Clue{
	{Words: []string{"max_user_namespaces"}, Prior: 0.95,
		Why: "the message names user.max_user_namespaces"},
	{Errno: clue.ENOSPC, Words: []string{"user namespace", "unshare user", "user ns", "userns", "clone_newuser", "newuser"}, Prior: 0.92,
		Why: "creating a user namespace returns ENOSPC when the uid's user.max_user_namespaces is reached or 0"},
	{Errno: clue.ENOSPC, Words: []string{"fork/exec /proc/self/exe"}, Prior: 0.88,
		Why: "a runtime re-executing itself into new namespaces (rootlesskit, runsc, containerd's netns helper) got ENOSPC: a user namespace among them, user.max_user_namespaces"},
	{Errno: clue.ENOSPC, Op: clue.OpUnshare, NotObj: clue.ObjCgroup, Prior: 0.86,
		Why: "unshare/clone into new namespaces returns ENOSPC at a user.max_*_namespaces limit, most often max_user_namespaces (reached, or 0)"},
	{Errno: clue.ENOSPC, Words: []string{"special execution directory"}, Prior: 0.8,
		Why: "systemd sets up RuntimeDirectory= with an id-mapped mount in a new user namespace"},
	{Errno: clue.ENOSPC, Words: []string{"max_*_namespaces"}, Prior: 0.9,
		Why: "the message names /proc/sys/user/max_*_namespaces; user namespaces are the kind most often limited (0 on some distributions, the hardening guides' advice)"},
	{Words: []string{"final child's pid from pipe"}, Prior: 0.5,
		Why: "runc lost its container's init before it reported a pid: nsexec failing to unshare a user namespace ends like this"},
}

// namespacesClues are the words and facts of an error message that point to namespaces (explain).
var namespacesClues = []clue.Clue{
	{Words: []string{"max_mnt_namespaces", "max_ipc_namespaces", "max_net_namespaces", "max_pid_namespaces", "max_uts_namespaces", "max_cgroup_namespaces", "max_time_namespaces"}, Prior: 0.95,
		Why: "the message names a user.max_*_namespaces limit"},
	{Words: []string{"max_*_namespaces"}, Prior: 0.85,
		Why: "the message names /proc/sys/user/max_*_namespaces"},
	{Errno: clue.ENOSPC, Words: []string{"network namespace", "net namespace", "netns", "mount namespace", "mnt namespace", "pid namespace", "ipc namespace", "uts namespace", "cgroup namespace", "clone_newnet", "clone_newns", "clone_newpid"}, NotWords: []string{"/proc/self/exe"}, Prior: 0.88,
		Why: "creating that namespace failed with ENOSPC: user.max_*_namespaces of its kind (a re-exec of /proc/self/exe creates a user namespace with it: userns)"},
	{Errno: clue.ENOSPC, Op: clue.OpUnshare, NotObj: clue.ObjCgroup, Prior: 0.8,
		Why: "or the limit of another kind unshared with it (max_net_namespaces, max_mnt_namespaces)"},
	{Words: []string{"mount namespacing"}, Prior: 0.7,
		Why: "systemd could not set up the unit's mount namespace"},
}
