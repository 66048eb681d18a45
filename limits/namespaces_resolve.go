package limits

// Which user namespace owns each namespace, and who created it: resolved from the live host, or from what a fixture tree shows.

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
)

// findInit records the initial namespaces: pid 1's, or kthreadd's where
// pid 1's link cannot be read, else the fixed inode numbers.
func (t *nsTree) findInit() {
	t.initNS = nsInitInodes
	if t.env.Census.InitUserNS != 0 {
		t.initNS[census.NSUser] = t.env.Census.InitUserNS
	}
	var seeds [2]*census.Process
	for i := range t.env.Census.Processes {
		p := &t.env.Census.Processes[i]
		if p.PID == 1 || p.PID == 2 {
			seeds[p.PID-1] = p
		}
	}
	for k := 0; k < census.NSKinds; k++ {
		known := false
		for _, p := range seeds {
			if p != nil && p.NS[k] != 0 {
				t.initNS[k], known = p.NS[k], true
				break
			}
		}
		if !known && t.initNS[k] == 0 {
			t.initNS[k] = t.commonNS(k)
		}
	}
}

// commonNS guesses the initial namespace of a kind that has no fixed
// inode (mnt, net) when neither pid 1 nor kthreadd can be read (without
// root): the one most processes of the initial user namespace are in.
func (t *nsTree) commonNS(kind int) uint64 {
	n := map[uint64]int{}
	for i := range t.env.Census.Processes {
		p := &t.env.Census.Processes[i]
		if p.NS[kind] != 0 && p.NS[census.NSUser] == t.initNS[census.NSUser] {
			n[p.NS[kind]]++
		}
	}
	var best uint64
	for ino, c := range n {
		if c > n[best] || (c == n[best] && ino < best) {
			best = ino
		}
	}
	return best
}

// collect records the namespaces of the processes and of nsfs bind
// mounts; it returns how many processes' namespaces could not be read.
func (t *nsTree) collect() int {
	unseen := 0
	procs := t.env.Census.Processes
	for i := range procs {
		p := &procs[i]
		if p.NS[census.NSUser] == 0 {
			unseen++
			continue
		}
		for k := 0; k < census.NSKinds; k++ {
			ino := p.NS[k]
			if ino == 0 || t.isInit(k, ino) {
				continue
			}
			o := t.add(&nsObj{kind: k, ino: ino, holder: p, ref: nsRef{path: t.env.Host.ProcPath(strconv.Itoa(p.PID), "ns", census.NSNames[k])}})
			if k == census.NSUser {
				if n := t.users[ino]; n == nil {
					t.users[ino] = &userNode{pid: p.PID, ref: o.ref}
				}
			}
		}
	}
	if mounts, err := t.env.Mounts(); err == nil {
		for _, m := range mounts {
			if m.FSType != "nsfs" {
				continue
			}
			kind, ino, ok := parseNSRoot(m.Root)
			if !ok || t.isInit(kind, ino) {
				continue
			}
			o := t.add(&nsObj{kind: kind, ino: ino, mount: "bind mount " + m.MountPoint, ref: nsRef{path: t.env.Host.RootPath(m.MountPoint)}})
			if kind == census.NSUser && t.users[ino] == nil {
				t.users[ino] = &userNode{ref: o.ref}
			}
		}
	}
	return unseen
}

// parseNSRoot parses the root of an nsfs mount, "net:[4026532291]".
func parseNSRoot(root string) (kind int, ino uint64, ok bool) {
	name, rest, found := strings.Cut(root, ":[")
	if !found || !strings.HasSuffix(rest, "]") {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(rest[:len(rest)-1], 10, 64)
	if err != nil || v == 0 {
		return 0, 0, false
	}
	for k, n := range census.NSNames {
		if n == name {
			return k, v, true
		}
	}
	return 0, 0, false
}

// resolveLive asks the kernel who owns each namespace, the parent and
// owner of each user namespace, and the pid namespaces above each one.
func (t *nsTree) resolveLive() {
	// Pid namespaces between a process's and the initial one hold pids
	// of their own even when no process is directly in them.
	for _, o := range append([]*nsObj(nil), t.order...) {
		if o.kind != census.NSPID {
			continue
		}
		ref := o.ref
		for depth := 0; depth < 33; depth++ {
			ref = ref.then(unix.NS_GET_PARENT)
			fd, err := ref.open()
			if err != nil {
				break
			}
			ino, err := fdInode(fd)
			unix.Close(fd)
			if err != nil || t.isInit(census.NSPID, ino) || t.objs[[2]uint64{census.NSPID, ino}] != nil {
				break
			}
			t.add(&nsObj{kind: census.NSPID, ino: ino, holder: o.holder, mount: o.mount, ref: ref})
		}
	}
	for _, o := range t.order {
		if o.kind == census.NSUser {
			t.resolveUser(o.ino, o.ref)
			if n := t.users[o.ino]; n != nil {
				o.owner = n.parent
			}
			continue
		}
		uref := o.ref.then(unix.NS_GET_USERNS)
		fd, err := uref.open()
		if err != nil {
			o.owner = t.ownerFallback(o)
			continue
		}
		ino, err := fdInode(fd)
		unix.Close(fd)
		if err != nil {
			o.owner = t.ownerFallback(o)
			continue
		}
		if t.isInit(census.NSUser, ino) {
			o.owner = 0
			continue
		}
		o.owner = ino
		if t.users[ino] == nil {
			t.users[ino] = &userNode{ref: uref}
		}
		t.resolveUser(ino, uref)
		// Ancestors found this way are user namespaces too.
		t.addUserChain(ino, o.holder, o.mount)
	}
	// The user namespaces found above processes' own.
	for _, o := range append([]*nsObj(nil), t.order...) {
		if o.kind == census.NSUser {
			t.addUserChain(o.ino, o.holder, o.mount)
		}
	}
}

// addUserChain adds the ancestors of a user namespace as namespaces of
// their own, held through the same process or mount.
func (t *nsTree) addUserChain(ino uint64, holder *census.Process, mount string) {
	for depth := 0; depth <= 33; depth++ {
		n := t.users[ino]
		if n == nil || n.parent == 0 {
			return
		}
		t.add(&nsObj{kind: census.NSUser, ino: n.parent, owner: t.users[n.parent].parentOr0(), holder: holder, mount: mount})
		ino = n.parent
	}
}

func (n *userNode) parentOr0() uint64 {
	if n == nil {
		return 0
	}
	return n.parent
}

// resolveUser walks a user namespace's chain up to the initial one,
// recording parent and owner of each level not known yet.
func (t *nsTree) resolveUser(ino uint64, ref nsRef) {
	for depth := 0; depth <= 33; depth++ {
		n := t.users[ino]
		if n == nil {
			n = &userNode{ref: ref}
			t.users[ino] = n
		}
		if n.live {
			return
		}
		fd, err := ref.open()
		if err != nil {
			return
		}
		uid, err := unix.IoctlGetUint32(fd, unix.NS_GET_OWNER_UID)
		if err != nil {
			unix.Close(fd)
			return
		}
		pfd, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		unix.Close(fd)
		if err != nil {
			return
		}
		pino, err := fdInode(pfd)
		unix.Close(pfd)
		if err != nil {
			return
		}
		n.owner, n.ref, n.live = int(uid), ref, true
		if t.isInit(census.NSUser, pino) {
			n.parent = 0
			return
		}
		n.parent = pino
		ino, ref = pino, ref.then(unix.NS_GET_PARENT)
	}
}

// resolveFallback fills in what the kernel was not asked (a fixture) or
// did not answer: every user namespace a child of the initial one, owned
// as census.ChargedUID says; every other namespace owned by its holder's
// user namespace.
func (t *nsTree) resolveFallback() {
	for ino, n := range t.users {
		if n.live {
			continue
		}
		n.parent = 0
		n.owner = 0
		for i := range t.env.Census.Processes {
			p := &t.env.Census.Processes[i]
			if p.NS[census.NSUser] == ino {
				n.owner = t.env.Census.ChargedUID(p)
				break
			}
		}
	}
	for _, o := range t.order {
		if o.kind == census.NSUser {
			if n := t.users[o.ino]; n != nil {
				o.owner = n.parent
			}
			continue
		}
		if !t.env.Live && o.owner == 0 {
			o.owner = t.ownerFallback(o)
		}
	}
	// Processes name a user namespace to look into for each level.
	for i := range t.env.Census.Processes {
		p := &t.env.Census.Processes[i]
		if n := t.users[p.NS[census.NSUser]]; n != nil && n.pid == 0 {
			n.pid = p.PID
		}
	}
}

// ownerFallback is the holder's user namespace.
func (t *nsTree) ownerFallback(o *nsObj) uint64 {
	if o.holder == nil || t.isInit(census.NSUser, o.holder.NS[census.NSUser]) {
		return 0
	}
	ino := o.holder.NS[census.NSUser]
	if t.users[ino] == nil {
		t.users[ino] = &userNode{pid: o.holder.PID}
	}
	return ino
}

// creator is the kuid charged at a level for the namespaces it owns:
// root for the initial namespace, the uid a child maps to its root, or
// the child's owner when it maps none.
func (t *nsTree) creator(level uint64) int {
	if level == 0 {
		return 0
	}
	n := t.users[level]
	if n == nil {
		return 0
	}
	if v, ok := t.rootMap[level]; ok {
		if v >= 0 {
			return v
		}
		return n.owner
	}
	t.rootMap[level] = -1
	if n.pid != 0 {
		if b, err := t.env.Host.ReadProc(strconv.Itoa(n.pid), "uid_map"); err == nil {
			if kuid, ok := parseUIDMapRoot(b); ok {
				t.rootMap[level] = kuid
				return kuid
			}
		}
	}
	return n.owner
}

// parseUIDMapRoot returns the outside uid that a uid_map maps uid 0 to.
func parseUIDMapRoot(b []byte) (int, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.ParseUint(f[0], 10, 32)
		out, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || err3 != nil || n == 0 {
			continue
		}
		if in == 0 {
			return int(out), true
		}
	}
	return 0, false
}
