package limits

// The rows of one IPC namespace: shared memory, semaphores, message queues, graded with their holders.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/enospc/enospc/census"
)

// ipcUIDProcs says which uids run processes in a namespace, and what.
type ipcUIDProcs map[int][]*census.Process

func ipcNSUIDs(ns *ipcNamespace) ipcUIDProcs {
	m := ipcUIDProcs{}
	for _, p := range ns.procs {
		m[p.UID] = append(m[p.UID], p)
		if p.EUID != p.UID {
			m[p.EUID] = append(m[p.EUID], p)
		}
	}
	return m
}

// runs words what a uid runs in the namespace: "runs postgres (12
// processes)", or that it runs nothing.
func (m ipcUIDProcs) runs(uid int, known bool) string {
	ps := m[uid]
	if len(ps) == 0 {
		if !known {
			return ""
		}
		return fmt.Sprintf("uid %d runs no process in this namespace", uid)
	}
	return fmt.Sprintf("uid %d runs %s (%d %s)", uid, ps[0].Comm, len(ps), ipcPlural(len(ps), "process", "processes"))
}

func ipcPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ipcIDList lists ids for a consumer's name: "3, 4, 5 and 12 more".
func ipcIDList(ids []int64, n int) string {
	var b strings.Builder
	for i, id := range ids {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(ids)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// alive returns the census process pid when it runs in the namespace.
func (n *ipcNamespace) alive(pid int) *census.Process {
	if pid <= 0 {
		return nil
	}
	i := sort.Search(len(n.procs), func(i int) bool { return n.procs[i].PID >= pid })
	if i < len(n.procs) && n.procs[i].PID == pid {
		return n.procs[i]
	}
	return nil
}

// ipcPages is the pages a segment of size bytes takes, rounded up.
func ipcPages(size, pageSize int64) int64 {
	p := size / pageSize
	if size%pageSize != 0 {
		p++
	}
	return p
}

// ipcWithOther notes the other limit of a two-limit row in its reason.
func ipcWithOther(u, o Finding) Finding {
	if o.Max >= 1<<62 {
		// kernel.shmall's default, ULONG_MAX - 2^24: no limit.
		u.Reason = fmt.Sprintf("also %d %s in use, of no set limit", o.Used, o.Unit)
		return u
	}
	u.Reason = fmt.Sprintf("also %d of %d %s in use", o.Used, o.Max, o.Unit)
	return u
}

func (v *ipcView) unknownAll(id ID, scope, unit, file string, err error) Finding {
	u := unknown(id, scope, unit, ipcUnreadable(file, err))
	u.NeedsRoot = v.needsRoot
	return u
}

// Long on purpose: shared memory has three limits at once (segments, pages in all, the largest segment), graded as one row, each with its leftovers and holders.
func shmRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Finding {
	scope := ns.scope()
	b, err := v.get(ipcShm)
	if err != nil {
		return v.unknownAll("ipc.shm", scope, "segments", ipcShm, err)
	}
	segs, bad, err := parseSysvShm(b)
	if err != nil {
		return unknown("ipc.shm", scope, "segments", fmt.Errorf("/proc/%s: %w", ipcShm, err))
	}
	mni, errN := v.int(ipcShmmni)
	all, errA := v.int(ipcShmall)
	if errN != nil && errA != nil {
		return unknown("ipc.shm", scope, "segments", errN)
	}
	var pages int64
	for _, s := range segs {
		pages += ipcPages(s.Size, note.pageSize)
	}
	segRow := Finding{Limit: "ipc.shm", Scope: scope, Used: int64(len(segs)), Max: mni, Unit: "segments", zeroIsFull: true}
	pageRow := Finding{Limit: "ipc.shm", Scope: scope, Used: pages, Max: all, Unit: "pages", zeroIsFull: true}
	var u Finding
	switch {
	case errN != nil:
		u = pageRow
		u.Reason = fmt.Sprintf("kernel.shmmni unreadable: %v", errN)
	case errA != nil:
		u = segRow
		u.Reason = fmt.Sprintf("kernel.shmall unreadable: %v", errA)
	case pageRow.Ratio() > segRow.Ratio():
		u = ipcWithOther(pageRow, segRow)
		u.Reason += " (kernel.shmmni)"
	default:
		u = ipcWithOther(segRow, pageRow)
		u.Reason += " (kernel.shmall)"
	}
	// Holders: the segments of one owner and creator; a creator that no
	// longer runs in the namespace is named, not attributed.
	uids := ipcNSUIDs(ns)
	type key struct {
		uid, cpid int
		orphan    bool
	}
	type group struct {
		ids   []int64
		gone  []int64 // pids of creators that have exited
		count int64
	}
	var groups orderedGroups[key, group]
	for _, s := range segs {
		creator := ns.alive(s.CPID)
		k := key{uid: s.UID, orphan: creator == nil && s.Nattch == 0}
		if creator != nil {
			k.cpid = creator.PID
		}
		if k.orphan {
			note.orphans = append(note.orphans, s.ID)
		}
		g := groups.get(k)
		g.ids = append(g.ids, s.ID)
		if creator == nil && s.CPID > 0 && !slices.Contains(g.gone, int64(s.CPID)) {
			g.gone = append(g.gone, int64(s.CPID))
		}
		if u.Unit == "pages" {
			g.count += ipcPages(s.Size, note.pageSize)
		} else {
			g.count++
		}
	}
	var cs []Consumer
	for _, k := range groups.order {
		g := groups.m[k]
		c := Consumer{UID: intp(k.uid), Count: g.count}
		name := "shmid " + ipcIDList(g.ids, 5)
		if p := ns.alive(k.cpid); p != nil {
			c.PID, c.Comm = p.PID, p.Comm
		}
		switch len(g.gone) {
		case 0:
		case 1:
			name += fmt.Sprintf("; created by pid %d, which has exited", g.gone[0])
		default:
			name += fmt.Sprintf("; created by pids %s, which have exited", ipcIDList(g.gone, 5))
		}
		if k.orphan {
			name += "; attached by no process"
		}
		if r := uids.runs(k.uid, c.PID == 0 && ns.complete); r != "" {
			name += "; " + r
		}
		c.Name = name
		cs = append(cs, c)
	}
	u.setConsumers(cs, topConsumers)
	if len(note.orphans) > 0 {
		u.Reason += fmt.Sprintf("; %d segments are attached by no process and their creator has exited", len(note.orphans))
	}
	if bad > 0 {
		u.Reason += fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcShm)
	}
	u.NeedsRoot = v.needsRoot
	return u
}

func semRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Finding {
	scope := ns.scope()
	b, err := v.get(ipcSem)
	if err != nil {
		return v.unknownAll("ipc.sem", scope, "sets", ipcSem, err)
	}
	sets, bad, err := parseSysvSem(b)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", fmt.Errorf("/proc/%s: %w", ipcSem, err))
	}
	cb, err := v.get(ipcSemCtl)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", err)
	}
	ctl, err := parseSemCtl(cb)
	if err != nil {
		return unknown("ipc.sem", scope, "sets", err)
	}
	note.sem, note.semOK = ctl, true
	var sems int64
	for _, s := range sets {
		sems += s.NSems
	}
	setRow := Finding{Limit: "ipc.sem", Scope: scope, Used: int64(len(sets)), Max: ctl[3], Unit: "sets", zeroIsFull: true}
	semsRow := Finding{Limit: "ipc.sem", Scope: scope, Used: sems, Max: ctl[1], Unit: "semaphores", zeroIsFull: true}
	var u Finding
	if semsRow.Ratio() > setRow.Ratio() {
		u = ipcWithOther(semsRow, setRow)
		u.Reason += " (SEMMNI, kernel.sem's 4th field)"
	} else {
		u = ipcWithOther(setRow, semsRow)
		u.Reason += " (SEMMNS, kernel.sem's 2nd field)"
	}
	uids := ipcNSUIDs(ns)
	type key struct {
		uid, cuid int
		cookie    bool
	}
	type group struct {
		ids   []int64
		count int64
	}
	var groups orderedGroups[key, group]
	for _, s := range sets {
		k := key{uid: s.UID, cuid: s.CUID, cookie: uint32(s.Key)>>16 == dmCookieMagic}
		if k.cookie {
			note.cookies = append(note.cookies, s.ID)
		} else if ns.complete && s.UID != 0 && len(uids[s.UID]) == 0 {
			note.leftovers["ipc.sem"] = append(note.leftovers["ipc.sem"], s.ID)
		}
		g := groups.get(k)
		g.ids = append(g.ids, s.ID)
		if u.Unit == "semaphores" {
			g.count += s.NSems
		} else {
			g.count++
		}
	}
	var cs []Consumer
	for _, k := range groups.order {
		g := groups.m[k]
		name := "semid " + ipcIDList(g.ids, 5)
		if k.cookie {
			name = "device-mapper udev cookies (keys 0x0d4dXXXX), " + name
		}
		if k.cuid != k.uid {
			name += fmt.Sprintf("; created by uid %d", k.cuid)
		}
		if r := uids.runs(k.uid, ns.complete); r != "" {
			name += "; " + r
		}
		cs = append(cs, Consumer{UID: intp(k.uid), Name: name, Count: g.count})
	}
	u.setConsumers(cs, topConsumers)
	if n := len(note.cookies); n > 0 {
		u.Reason += fmt.Sprintf("; %d sets are device-mapper udev cookies", n)
	}
	if n := len(note.leftovers["ipc.sem"]); n > 0 {
		u.Reason += fmt.Sprintf("; %d sets belong to uids that run no process in this namespace", n)
	}
	if bad > 0 {
		u.Reason += fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcSem)
	}
	u.NeedsRoot = v.needsRoot
	return u
}

func msgRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote) Finding {
	scope := ns.scope()
	b, err := v.get(ipcMsg)
	if err != nil {
		return v.unknownAll("ipc.msg", scope, "queues", ipcMsg, err)
	}
	qs, bad, err := parseSysvMsg(b)
	if err != nil {
		return unknown("ipc.msg", scope, "queues", fmt.Errorf("/proc/%s: %w", ipcMsg, err))
	}
	mni, err := v.int(ipcMsgmni)
	if err != nil {
		return unknown("ipc.msg", scope, "queues", err)
	}
	u := Finding{Limit: "ipc.msg", Scope: scope, Used: int64(len(qs)), Max: mni, Unit: "queues", zeroIsFull: true}
	uids := ipcNSUIDs(ns)
	type key struct{ uid, cuid int }
	type group struct {
		ids      []int64
		messages int64
	}
	var groups orderedGroups[key, group]
	for _, q := range qs {
		k := key{q.UID, q.CUID}
		if ns.complete && q.UID != 0 && len(uids[q.UID]) == 0 {
			note.leftovers["ipc.msg"] = append(note.leftovers["ipc.msg"], q.ID)
		}
		g := groups.get(k)
		g.ids = append(g.ids, q.ID)
		g.messages += q.QNum
	}
	var cs []Consumer
	for _, k := range groups.order {
		g := groups.m[k]
		name := fmt.Sprintf("msqid %s; %d messages queued", ipcIDList(g.ids, 5), g.messages)
		if k.cuid != k.uid {
			name += fmt.Sprintf("; created by uid %d", k.cuid)
		}
		if r := uids.runs(k.uid, ns.complete); r != "" {
			name += "; " + r
		}
		cs = append(cs, Consumer{UID: intp(k.uid), Name: name, Count: int64(len(g.ids))})
	}
	u.setConsumers(cs, topConsumers)
	if n := len(note.leftovers["ipc.msg"]); n > 0 {
		u.Reason = fmt.Sprintf("%d queues belong to uids that run no process in this namespace", n)
	}
	if bad > 0 {
		u.Reason = strings.TrimPrefix(u.Reason+fmt.Sprintf("; %d lines of /proc/%s did not parse and are not counted", bad, ipcMsg), "; ")
	}
	u.NeedsRoot = v.needsRoot
	return u
}

// orderedGroups holds the groups of a table's rows by key, in the order
// their keys first came (the order the holders are listed in).
type orderedGroups[K comparable, G any] struct {
	m     map[K]*G
	order []K
}

// get is k's group, made empty the first time.
func (o *orderedGroups[K, G]) get(k K) *G {
	g := o.m[k]
	if g == nil {
		if o.m == nil {
			o.m = map[K]*G{}
		}
		g = new(G)
		o.m[k] = g
		o.order = append(o.order, k)
	}
	return g
}
