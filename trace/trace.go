// Package trace catches the syscalls that fail with an errno a kernel
// limit can cause, live, with an eBPF program at sys_exit, and names each
// failure: the limit and scope that refused it (from the catalog and a
// look at the host right after), the process, its container and pod.
//
// The program (bpf/trace.c) keeps ENOSPC, EDQUOT, EMFILE and ENFILE from
// any syscall, EAGAIN and ENOMEM only from the calls where a limit returns
// them (fork, clone, io_setup, mkdir in cgroupfs, the SysV IPC gets,
// mount, unshare, add_key, keyctl, epoll_ctl, mmap, mprotect) and
// EADDRNOTAVAIL from connect and bind. It folds repeats in a hash map
// keyed by (process, syscall, errno) with their count, first and last
// time; Run drains that map every interval. Nothing is sent per failure,
// so a burst costs a counter increment per call and loses nothing.
package trace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/host"
	"golang.org/x/sys/unix"
)

// Options tune a trace.
type Options struct {
	// Interval is how often the kernel's map is drained and new failures
	// named; 0 means one second.
	Interval time.Duration
	// Only keeps the failures named as one of these limit IDs
	// ("unexplained" for those no limit explains); empty keeps all.
	Only []string
	// Container keeps the failures of one container: its id, an id
	// prefix of at least 4 characters, or its name.
	Container string
	// Pod keeps the failures of one pod, "namespace/name".
	Pod string
	// Check is the base of the checks that confirm a limit (containerd's
	// state directory, the family timeout); its Runtimes says where to ask
	// the container runtimes for names and pods, nil asks none.
	Check check.Options
	// Started, when set, is called once the program is attached.
	Started func(attach string)
	// Drained, when set, is called after every drain with the program's
	// counters so far.
	Drained func(Stats)
}

// Failure is one line of `enospc trace -o json`: failures of one syscall
// with one errno in one process, folded, named.
type Failure struct {
	// Limit is the catalog's ID of the limit that refused the call, or
	// "unexplained" when none does; Scope is the limit's scope as `check`
	// names it (a filesystem, "uid 1000", a pids cgroup).
	Limit string `json:"limit"`
	Scope string `json:"scope"`
	// Used and Max are the limit's state when the failure was named, when
	// it could be read.
	Used *int64 `json:"used,omitempty"`
	Max  *int64 `json:"max,omitempty"`
	Unit string `json:"unit,omitempty"`
	// Reason says how the limit was decided, or why none was.
	Reason  string `json:"reason,omitempty"`
	Syscall string `json:"syscall"`
	Errno   string `json:"errno"`
	// Object is what failed: a path, or "fd N (path)".
	Object string `json:"object,omitempty"`
	PID    int    `json:"pid"`
	TID    int    `json:"tid"`
	Comm   string `json:"comm"`
	UID    int    `json:"uid"`
	// Count is how many calls failed since the previous line for the same
	// process, syscall and errno; First and Last the first and last of
	// them (for a continuing key First is bounded by the previous line's
	// Last: the kernel keeps only the first and last time of a key).
	Count         uint64    `json:"count"`
	First         time.Time `json:"first"`
	Last          time.Time `json:"last"`
	Exited        bool      `json:"exited,omitempty"`
	Cgroup        string    `json:"cgroup,omitempty"`
	Container     string    `json:"container,omitempty"`
	ContainerName string    `json:"container_name,omitempty"`
	Runtime       string    `json:"runtime,omitempty"`
	Pod           string    `json:"pod,omitempty"`
	Namespace     string    `json:"namespace,omitempty"`
	PodUID        string    `json:"pod_uid,omitempty"`
}

// Stats are the program's counters, summed over CPUs: failures counted,
// of those the repeats folded into a key already in the map, and the
// failures lost because the map was full.
type Stats struct {
	Kept    uint64 `json:"kept"`
	Folded  uint64 `json:"folded"`
	Dropped uint64 `json:"dropped"`
	// Attach is how the program was attached.
	Attach string `json:"attach"`
}

// rawFailure is a folded failure as the kernel kept it.
type rawFailure struct {
	Count, FirstNs, LastNs             uint64
	CgroupV2, CgroupPids, CgroupMemory uint64
	Args                               [4]uint64
	NofileCur, NprocCur, FSMagic       uint64
	FSDev, TID, UID, MntNS, UserNS     uint32
	HasPath, HasFS                     bool
	Comm, Path                         string
}

// seen is what the drain remembers of a key still in the map.
type seen struct {
	count, last uint64
	idle        int
	named       Failure
	keep        bool
}

// lastDrainTimeout bounds the naming of what the last drain finds.
const lastDrainTimeout = 15 * time.Second

// idleDrains is how many drains a key may go without a new failure before
// it is taken out of the map, making room for others.
const idleDrains = 2

// Run traces until ctx is done, calling emit with every failure as it is
// drained, and returns the program's counters. A host where the tracer
// cannot run gives a *NotSupportedError; nothing is left attached
// whatever the outcome.
func Run(ctx context.Context, h *host.Host, opts Options, emit func(Failure)) (Stats, error) {
	if err := Supported(); err != nil {
		return Stats{}, err
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	p, err := load()
	if err != nil {
		return Stats{}, err
	}
	defer p.close()
	if opts.Started != nil {
		opts.Started(p.attach)
	}
	n := newNamer(ctx, h, opts)
	state := map[fkey]*seen{}
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
			p.detach()
		case <-tick.C:
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if done {
			// The last drain names what is left after the trace's own
			// context has ended.
			dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), lastDrainTimeout)
		}
		err := drain(dctx, p, n, state, done, emit)
		cancel()
		if err != nil {
			return Stats{}, err
		}
		if opts.Drained != nil {
			if st, err := p.stats(); err == nil {
				st.Attach = p.attach
				opts.Drained(st)
			}
		}
	}
	st, err := p.stats()
	st.Attach = p.attach
	return st, err
}

// drain reads the kernel's map, names the keys seen for the first time
// and emits what each key counted since the last drain. Keys idle for
// idleDrains drains are taken out; the last drain takes them all.
func drain(ctx context.Context, p *probe, n *namer, state map[fkey]*seen, last bool, emit func(Failure)) error {
	es, err := p.entries()
	if err != nil {
		return fmt.Errorf("read the failures map: %w", err)
	}
	clock := newClock()
	var fresh []*pending
	for i := range es {
		e := &es[i]
		v := e.val.raw()
		s := state[e.key]
		if s == nil {
			fresh = append(fresh, &pending{key: e.key, raw: v})
			continue
		}
		if v.Count > s.count {
			emitDelta(s, v, clock, emit)
			continue
		}
		s.idle++
		if s.idle >= idleDrains || last {
			if fin, err := p.take(e.key); err == nil {
				emitDelta(s, fin.raw(), clock, emit)
			}
			delete(state, e.key)
		}
	}
	if len(fresh) > 0 {
		n.name(ctx, fresh)
		for _, f := range fresh {
			s := &seen{named: f.out, keep: n.keep(&f.out)}
			state[f.key] = s
			emitDelta(s, f.raw, clock, emit)
		}
	}
	if last {
		for k, s := range state {
			if fin, err := p.take(k); err == nil {
				emitDelta(s, fin.raw(), clock, emit)
			}
			delete(state, k)
		}
	}
	return nil
}

func emitDelta(s *seen, v rawFailure, c clock, emit func(Failure)) {
	if v.Count <= s.count {
		return
	}
	f := s.named
	f.Count = v.Count - s.count
	if s.count == 0 {
		f.First = c.wall(v.FirstNs)
	} else {
		f.First = c.wall(s.last)
	}
	f.Last = c.wall(v.LastNs)
	s.count, s.last, s.idle = v.Count, v.LastNs, 0
	if s.keep {
		emit(f)
	}
}

// clock maps the kernel's monotonic nanoseconds to wall time.
type clock struct {
	wallNow time.Time
	monoNow int64
}

func newClock() clock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return clock{wallNow: time.Now(), monoNow: ts.Nano()}
}

func (c clock) wall(ns uint64) time.Time {
	return c.wallNow.Add(-time.Duration(c.monoNow - int64(ns))).UTC()
}

// ErrnoName is errno's symbolic name ("ENOSPC").
func ErrnoName(errno uint32) string {
	if n := unix.ErrnoName(unix.Errno(errno)); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(errno))
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// errExited marks an object that could not be read because its process
// is gone.
var errExited = errors.New("the process exited before it was looked at")

// alive says whether pid is a live process: a zombie has let go of its
// mounts, files and cgroups, and is as good as gone.
func alive(h *host.Host, pid int) bool {
	b, err := h.ReadProc(strconv.Itoa(pid), "stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
