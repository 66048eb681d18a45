package limits

// POSIX message queues: where each IPC namespace's mqueue filesystem is mounted, and its row.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/enospc/enospc/census"
)

// errNoMqueueMount: the namespace's POSIX queues cannot be counted. Such a
// namespace gets no mqueue row rather than an unknown one: most hosts
// without /dev/mqueue use no POSIX queues, and an unknown row would make
// every check of them exit 3.
var errNoMqueueMount = errors.New("no mqueue filesystem of this IPC namespace is mounted where its processes see it (mount -t mqueue none /dev/mqueue in it to count its POSIX queues)")

// mqueueDir is where one IPC namespace's mqueue filesystem can be listed.
type mqueueDir struct {
	path       string // readable path of the directory
	fallback   string // another path to try (the host's root)
	mountPoint string // as the namespace's processes see it
}

type mqueueFinder struct {
	env    *Env
	procfs bool
	once   sync.Once
	dirs   map[uint64]mqueueDir
	err    map[uint64]error
}

func (f *mqueueFinder) find(ns *ipcNamespace) (mqueueDir, error) {
	f.once.Do(f.load)
	if d, ok := f.dirs[ns.ino]; ok {
		return d, nil
	}
	if err := f.err[ns.ino]; err != nil {
		return mqueueDir{}, err
	}
	return mqueueDir{}, errNoMqueueMount
}

// Long on purpose: one pass over the mount namespaces that tells, for each mqueue filesystem, which IPC namespace it belongs to; cut in pieces, its maps would be passed around for nothing.
func (f *mqueueFinder) load() {
	f.dirs, f.err = map[uint64]mqueueDir{}, map[uint64]error{}
	env := f.env
	if !f.procfs || env.Census == nil {
		// A fixture tree (or no census): the host's mount table, for the
		// initial namespace.
		mounts, err := env.Mounts()
		nss, _ := ipcNamespaces(env, false)
		host := nss[0].ino
		if err != nil {
			f.err[host] = err
			return
		}
		for _, m := range mounts {
			if m.FSType == "mqueue" {
				f.dirs[host] = mqueueDir{path: env.Host.RootPath(m.MountPoint), mountPoint: m.MountPoint}
				return
			}
		}
		return
	}
	// One process per mount namespace, and the IPC namespaces seen with it.
	type mntNS struct {
		pids []int
		ipc  map[uint64]bool
	}
	byMnt := map[uint64]*mntNS{}
	var mntOrder []uint64
	var initMnt, initIPC uint64
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		mnt, ipc := p.NS[census.NSMnt], p.NS[census.NSIPC]
		if p.PID == 1 {
			initMnt, initIPC = mnt, ipc
		}
		if mnt == 0 || ipc == 0 {
			continue
		}
		m := byMnt[mnt]
		if m == nil {
			m = &mntNS{ipc: map[uint64]bool{}}
			byMnt[mnt] = m
			mntOrder = append(mntOrder, mnt)
		}
		if len(m.pids) < 4 {
			m.pids = append(m.pids, p.PID)
		}
		m.ipc[ipc] = true
	}
	type seen struct {
		ipc   map[uint64]bool
		where []mqueueDir // a process that sees the mount, and where
		host  bool
	}
	byDev := map[string]*seen{}
	var devOrder []string
	for _, mnt := range mntOrder {
		m := byMnt[mnt]
		var mounts []Mount
		pid := 0
		for _, p := range m.pids {
			err := env.Host.ViewProc(func(b []byte) error {
				mounts = mqueueMounts(b)
				return nil
			}, strconv.Itoa(p), "mountinfo")
			if err != nil {
				continue
			}
			pid = p
			break
		}
		for _, mt := range mounts {
			if mt.FSType != "mqueue" {
				continue
			}
			s := byDev[mt.Device]
			if s == nil {
				s = &seen{ipc: map[uint64]bool{}}
				byDev[mt.Device] = s
				devOrder = append(devOrder, mt.Device)
			}
			for ipc := range m.ipc {
				s.ipc[ipc] = true
			}
			if mnt == initMnt {
				s.host = true
			}
			d := mqueueDir{path: env.Host.ProcPath(strconv.Itoa(pid), "root"+mt.MountPoint), mountPoint: mt.MountPoint}
			if mnt == initMnt {
				d.fallback = env.Host.RootPath(mt.MountPoint)
			}
			s.where = append(s.where, d)
		}
	}
	for _, dev := range devOrder {
		s := byDev[dev]
		owner := uint64(0)
		switch {
		case s.host && initIPC != 0:
			// pid 1's mount table shows the host's queues: systemd
			// mounts /dev/mqueue at boot, in the initial namespace.
			owner = initIPC
		case len(s.ipc) == 1:
			for ipc := range s.ipc {
				owner = ipc
			}
		}
		if owner == 0 {
			continue
		}
		if _, ok := f.dirs[owner]; !ok {
			f.dirs[owner] = s.where[0]
		}
	}
}

func mqueueRow(env *Env, ns *ipcNamespace, v *ipcView, note *ipcNote, f *mqueueFinder) Finding {
	scope := ns.scope()
	maxQ, err := v.int(ipcQueuesMax)
	if err != nil {
		u := unknown("mqueue", scope, "queues", err)
		u.NeedsRoot = v.needsRoot
		return u
	}
	d, err := f.find(ns)
	if errors.Is(err, errNoMqueueMount) {
		return Finding{} // no row
	}
	if err != nil {
		return unknown("mqueue", scope, "queues", err)
	}
	entries, err := os.ReadDir(d.path)
	if err != nil && d.fallback != "" {
		entries, err = os.ReadDir(d.fallback)
		if err == nil {
			d.path = d.fallback
		}
	}
	if err != nil {
		u := unknown("mqueue", scope, "queues", fmt.Errorf("list the mqueue filesystem at %s: %w", d.mountPoint, err))
		u.NeedsRoot = !env.Root && errors.Is(err, os.ErrPermission)
		return u
	}
	note.mqDir = d.mountPoint
	uids := ipcNSUIDs(ns)
	type group struct{ names []string }
	groups := map[int]*group{}
	var order []int
	var count int64
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		count++
		uid := -1
		if fi, err := os.Lstat(filepath.Join(d.path, e.Name())); err == nil && f.procfs {
			// A fixture's files belong to whoever checked it out.
			uid = ipcFileUID(fi)
		}
		if ns.complete && uid > 0 && len(uids[uid]) == 0 {
			note.staleQueues = append(note.staleQueues, "/"+e.Name())
		}
		g := groups[uid]
		if g == nil {
			g = &group{}
			groups[uid] = g
			order = append(order, uid)
		}
		g.names = append(g.names, "/"+e.Name())
	}
	u := Finding{Limit: "mqueue", Scope: scope, Used: count, Max: maxQ, Unit: "queues", zeroIsFull: true}
	var cs []Consumer
	for _, uid := range order {
		g := groups[uid]
		names := g.names
		name := strings.Join(names[:min(len(names), 5)], ", ")
		if len(names) > 5 {
			name += fmt.Sprintf(" and %d more", len(names)-5)
		}
		c := Consumer{Name: "queues " + name, Count: int64(len(names))}
		if uid >= 0 {
			c.UID = intp(uid)
			if r := uids.runs(uid, ns.complete); r != "" {
				c.Name += "; " + r
			}
		}
		cs = append(cs, c)
	}
	u.setConsumers(cs, topConsumers)
	u.Reason = fmt.Sprintf("counted in the mqueue filesystem at %s; queues unlinked while still open count too and are not seen", d.mountPoint)
	return u
}

// ipcFileUID is the owner of a file from its stat, -1 when unknown.
func ipcFileUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
