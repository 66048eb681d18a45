// Package census walks /proc once and records, for every process, what the
// limit families need: identity (pid, comm, uids), namespaces, cgroups,
// thread count and the file descriptors that hold kernel objects (inotify
// instances and their watches, fifos under a runtime's fifo directory).
// Every limit reads the same census, so a check costs one /proc walk however
// many limits there are.
package census

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// Process is one process (thread group) of the host.
type Process struct {
	PID     int
	Comm    string
	UID     int // real uid, as seen from the reader's user namespace
	EUID    int // effective uid; inotify instances are charged to it
	Threads int
	// UserNS and MntNS are the inode numbers of the process's user and
	// mount namespaces, 0 when unknown.
	UserNS, MntNS uint64
	Cgroups       []CgroupMembership
	// FDs is the number of open file descriptors; FDErr is set when the fd
	// directory could not be read (another user's process, without root).
	FDs   int
	FDErr error
	// InotifyInstances and InotifyWatches count the inotify fds of the
	// process and the watches they hold.
	InotifyInstances int
	InotifyWatches   int
	// EpollInstances and EpollWatches count the epoll fds and the fds
	// they watch (charged to the uid against fs.epoll.max_user_watches).
	EpollInstances, EpollWatches int
	// FanotifyGroups and FanotifyMarks count the fanotify fds and their
	// marks.
	FanotifyGroups, FanotifyMarks int
	// NS holds the inode of each of the process's namespaces, by NSUser,
	// NSMnt...; 0 when unknown.
	NS [NSKinds]uint64
	// VmSizeKB is the process's virtual size, from status.
	VmSizeKB int64
	// Fifos lists fd targets under Options.FifoDirs.
	Fifos []string
}

// The namespace kinds of Process.NS, and their names under /proc/PID/ns.
const (
	NSUser = iota
	NSMnt
	NSIPC
	NSNet
	NSPID
	NSUTS
	NSCgroup
	NSTime
	NSKinds
)

// NSNames are the /proc/PID/ns link names of the kinds, in order.
var NSNames = [NSKinds]string{"user", "mnt", "ipc", "net", "pid", "uts", "cgroup", "time"}

// CgroupMembership is one line of /proc/PID/cgroup.
type CgroupMembership struct {
	Hierarchy   int
	Controllers []string // empty for the cgroup v2 line
	Path        string
}

// Census is the result of one walk over /proc.
type Census struct {
	Processes []Process
	// Tasks is the number of threads on the host, the sum over processes.
	Tasks int
	// InitUserNS is the inode of the initial user namespace (that of pid 1),
	// 0 when unknown.
	InitUserNS uint64
	// UserNSOwner maps a user namespace to the uid, in its parent namespace,
	// of the user that created it. Known only on a live host.
	UserNSOwner map[uint64]int
	// FDUnreadable counts processes whose fds could not be read.
	FDUnreadable int
}

// Options select what the walk records beyond the basics.
type Options struct {
	// FifoDirs are host paths; fd targets below them are kept in
	// Process.Fifos.
	FifoDirs []string
	// Live enables namespace ioctls on the running kernel.
	Live bool
}

// Take walks <proc> once. Processes that exit during the walk are skipped.
// An error is returned only when <proc> itself cannot be listed.
func Take(ctx context.Context, h *host.Host, opts Options) (*Census, error) {
	entries, err := os.ReadDir(h.Proc)
	if err != nil {
		return nil, err
	}
	c := &Census{UserNSOwner: map[uint64]int{}}
	c.InitUserNS = initUserNSInode
	if ino, err := nsInode(h.ProcPath("1", "ns", "user")); err == nil {
		c.InitUserNS = ino
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	// The walk is bound by syscalls on procfs; a few workers overlap them.
	procs := make([]Process, len(pids))
	found := make([]bool, len(pids))
	workers := min(4, max(1, len(pids)/64))
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w walker
			for i := k; i < len(pids); i += workers {
				if ctx.Err() != nil {
					return
				}
				procs[i], found[i] = w.process(h, pids[i], opts)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i, p := range procs {
		if !found[i] {
			continue
		}
		if p.FDErr != nil {
			c.FDUnreadable++
		}
		c.Tasks += p.Threads
		if opts.Live && p.UserNS != 0 && p.UserNS != c.InitUserNS {
			if _, seen := c.UserNSOwner[p.UserNS]; !seen {
				if uid, err := userNSOwner(h.ProcPath(strconv.Itoa(p.PID), "ns", "user"), c.InitUserNS); err == nil {
					c.UserNSOwner[p.UserNS] = uid
				}
			}
		}
		c.Processes = append(c.Processes, p)
	}
	sort.Slice(c.Processes, func(i, j int) bool { return c.Processes[i].PID < c.Processes[j].PID })
	return c, nil
}

// ChargedUID is the uid in the initial user namespace that the kernel's
// per-user counters (ucounts) charge for this process: its own uid in the
// initial namespace, or the owner of its user namespace otherwise.
func (c *Census) ChargedUID(p *Process) int {
	if c.InitUserNS == 0 || p.UserNS == 0 || p.UserNS == c.InitUserNS {
		return p.EUID
	}
	if uid, ok := c.UserNSOwner[p.UserNS]; ok {
		return uid
	}
	return p.EUID
}

// initUserNSInode is the fixed inode number of the initial user namespace
// (PROC_USER_INIT_INO), used when pid 1's namespace link cannot be read.
const initUserNSInode = 0xEFFFFFFD

// walker reads one process at a time, relative to an fd of its /proc/PID
// directory so that procfs resolves the pid once, not once per file.
type walker struct {
	buf     []byte
	link    []byte
	dirents []byte
	names   []string
}

// readAt reads a whole file relative to dirfd into the walker's buffer,
// valid until the next read.
func (w *walker) readAt(dirfd int, name string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if w.buf == nil {
		w.buf = make([]byte, 0, 4096)
	}
	w.buf = w.buf[:0]
	for {
		if len(w.buf) == cap(w.buf) {
			if len(w.buf) >= host.MaxPseudoFile {
				return nil, errors.New("file too large")
			}
			w.buf = append(w.buf, 0)[:len(w.buf)]
		}
		n, err := unix.Read(fd, w.buf[len(w.buf):cap(w.buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return w.buf, nil
		}
		w.buf = w.buf[:len(w.buf)+n]
	}
}

func (w *walker) readlinkAt(dirfd int, name string) (string, error) {
	n, err := unix.Readlinkat(dirfd, name, w.link)
	if err != nil {
		return "", err
	}
	return string(w.link[:n]), nil
}

func (w *walker) process(h *host.Host, pid int, opts Options) (Process, bool) {
	if w.link == nil {
		w.link = make([]byte, 4096)
	}
	dfd, err := unix.Open(h.ProcPath(strconv.Itoa(pid)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Process{}, false
	}
	defer unix.Close(dfd)
	status, err := w.readAt(dfd, "status")
	if err != nil {
		return Process{}, false
	}
	p := parseStatus(status)
	p.PID = pid
	if cg, err := w.readAt(dfd, "cgroup"); err == nil {
		p.Cgroups = parseCgroup(cg)
	}
	for k, name := range NSNames {
		if t, err := w.readlinkAt(dfd, "ns/"+name); err == nil {
			p.NS[k], _ = parseNSLink(t)
		}
	}
	p.UserNS, p.MntNS = p.NS[NSUser], p.NS[NSMnt]
	w.fds(dfd, &p, opts)
	return p, true
}

func (w *walker) fds(dfd int, p *Process, opts Options) {
	ffd, err := unix.Openat(dfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err != unix.ENOENT {
			p.FDErr = err
		}
		return
	}
	defer unix.Close(ffd)
	w.names = w.names[:0]
	if w.dirents == nil {
		w.dirents = make([]byte, 16<<10)
	}
	for {
		n, err := unix.Getdents(ffd, w.dirents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.FDErr = err
			return
		}
		if n <= 0 {
			break
		}
		_, _, w.names = unix.ParseDirent(w.dirents[:n], -1, w.names)
	}
	p.FDs = len(w.names)
	for _, fd := range w.names {
		n, err := unix.Readlinkat(ffd, fd, w.link)
		if err != nil {
			// An fd closed since the listing is gone; one that cannot
			// be read (no CAP_SYS_PTRACE) makes the counts a lower bound.
			if err != unix.ENOENT && p.FDErr == nil {
				p.FDErr = err
			}
			continue
		}
		target := w.link[:n]
		switch string(target) {
		case "anon_inode:inotify":
			p.InotifyInstances++
			if info, err := w.readAt(dfd, "fdinfo/"+fd); err == nil {
				p.InotifyWatches += countInotifyWatches(info)
			}
			continue
		case "anon_inode:[eventpoll]":
			p.EpollInstances++
			if info, err := w.readAt(dfd, "fdinfo/"+fd); err == nil {
				p.EpollWatches += countLines(info, "tfd:")
			}
			continue
		case "anon_inode:[fanotify]":
			p.FanotifyGroups++
			if info, err := w.readAt(dfd, "fdinfo/"+fd); err == nil {
				p.FanotifyMarks += countLines(info, "fanotify ino:") + countLines(info, "fanotify mnt_id:") + countLines(info, "fanotify fsid:")
			}
			continue
		}
		for _, d := range opts.FifoDirs {
			if len(target) > len(d) && target[len(d)] == '/' && string(target[:len(d)]) == d {
				p.Fifos = append(p.Fifos, string(target))
				break
			}
		}
	}
}

// parseStatus reads Name, Uid and Threads from /proc/PID/status.
func parseStatus(b []byte) Process {
	var p Process
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "Name":
			p.Comm = strings.TrimSpace(string(v))
		case "Uid":
			f := strings.Fields(string(v))
			if len(f) >= 2 {
				p.UID, _ = strconv.Atoi(f[0])
				p.EUID, _ = strconv.Atoi(f[1])
			}
		case "Threads":
			p.Threads, _ = strconv.Atoi(strings.TrimSpace(string(v)))
		case "VmSize":
			p.VmSizeKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
		}
	}
	return p
}

// parseCgroup parses /proc/PID/cgroup: "hierarchy-ID:controller-list:path".
func parseCgroup(b []byte) []CgroupMembership {
	var out []CgroupMembership
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		h, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		m := CgroupMembership{Hierarchy: h, Path: path}
		if ctrls != "" {
			m.Controllers = strings.Split(ctrls, ",")
		}
		out = append(out, m)
	}
	return out
}

// countInotifyWatches counts the "inotify wd:" lines of an inotify fd's
// fdinfo, one per watch.
func countInotifyWatches(b []byte) int { return countLines(b, "inotify wd:") }

// countLines counts the lines of b that start with prefix (fdinfo: epoll's
// "tfd:", fanotify's "fanotify ino:").
func countLines(b []byte, prefix string) int {
	n := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if bytes.HasPrefix(line, []byte(prefix)) {
			n++
		}
	}
	return n
}

// nsInode reads a namespace link ("user:[4026531837]") and returns the inode.
func nsInode(path string) (uint64, error) {
	t, err := os.Readlink(path)
	if err != nil {
		return 0, err
	}
	return parseNSLink(t)
}

// NSInode reads a namespace link ("net:[4026531840]") and returns its
// inode, 0 when it is not one.
func NSInode(link string) uint64 {
	ino, _ := parseNSLink(link)
	return ino
}

func parseNSLink(t string) (uint64, error) {
	i := strings.IndexByte(t, '[')
	if i < 0 || !strings.HasSuffix(t, "]") {
		return 0, errors.New("not a namespace link: " + t)
	}
	// ParseUint returns the max value on overflow; callers read 0 as unknown.
	ino, err := strconv.ParseUint(t[i+1:len(t)-1], 10, 64)
	if err != nil {
		return 0, err
	}
	return ino, nil
}

// ControllerPath returns the process's cgroup path in the hierarchy that
// has the controller, or in the v2 hierarchy when controller is "".
func (p *Process) ControllerPath(controller string) (string, bool) {
	for _, m := range p.Cgroups {
		if controller == "" && m.Hierarchy == 0 {
			return m.Path, true
		}
		for _, c := range m.Controllers {
			if c == controller {
				return m.Path, true
			}
		}
	}
	return "", false
}
