// Package census walks /proc once and records, for every process, what the
// limit families need: identity (pid, comm, uids), namespaces, cgroups,
// thread count and the file descriptors that hold kernel objects (inotify
// instances and their watches, fifos under a runtime's fifo directory).
// Every limit reads the same census, so a check costs one /proc walk however
// many limits there are.
package census

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

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
	// Cgroups is shared by the processes whose cgroup file is the same
	// (every process of a container): read it, never change it.
	Cgroups []CgroupMembership
	// FDs is the number of open file descriptors; FDErr is set when the fd
	// directory, an fd link or an fdinfo could not be read (another user's
	// process, without root), so that the counts below are a lower bound.
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
	procfd, err := unix.Open(h.Proc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: h.Proc, Err: err}
	}
	defer unix.Close(procfd)
	pids, err := listPIDs(procfd)
	if err != nil {
		return nil, &os.PathError{Op: "readdirent", Path: h.Proc, Err: err}
	}
	c := &Census{UserNSOwner: map[uint64]int{}}
	c.InitUserNS = initUserNSInode
	if ino, err := nsInode(h.ProcPath("1", "ns", "user")); err == nil {
		c.InitUserNS = ino
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
			w := walkers.Get().(*walker)
			defer walkers.Put(w)
			w.trim()
			for i := k; i < len(pids); i += workers {
				if ctx.Err() != nil {
					return
				}
				found[i] = w.process(procfd, pids[i], &procs[i], opts)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Kept processes move down in place: no second slice of them.
	c.Processes = procs[:0]
	for i := range procs {
		if !found[i] {
			continue
		}
		p := &procs[i]
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
		c.Processes = append(c.Processes, *p)
	}
	byPID := func(a, b Process) int { return cmp.Compare(a.PID, b.PID) }
	if !slices.IsSortedFunc(c.Processes, byPID) {
		slices.SortFunc(c.Processes, byPID)
	}
	return c, nil
}

// listPIDs reads the numeric entries of the /proc directory behind fd.
func listPIDs(fd int) ([]int, error) {
	buf := make([]byte, 32<<10)
	var pids []int
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return pids, nil
		}
		for b := buf[:n]; len(b) > 0; {
			var name []byte
			name, b = nextDirent(b)
			if pid, ok := atoiPositive(name); ok {
				pids = append(pids, pid)
			}
		}
	}
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
// directory so that procfs resolves the pid once, not once per file. Its
// buffers are reused from process to process, and the paths it passes to
// the kernel are NUL-terminated bytes (names in a getdents buffer are
// already), so that a process costs syscalls and almost no allocation.
type walker struct {
	buf     []byte // a whole status or cgroup file, or a chunk of an fdinfo
	link    []byte
	dirents []byte
	path    []byte
	// comms and cgroups intern what most processes share: the same few
	// names, and the same /proc/PID/cgroup content for every process of a
	// container or service.
	comms   map[string]string
	cgroups map[string][]CgroupMembership
}

// walkers keep their buffers from one census to the next (serve takes
// one every interval).
var walkers = sync.Pool{New: func() any { return newWalker() }}

func newWalker() *walker {
	return &walker{
		buf:     make([]byte, 0, 32<<10),
		link:    make([]byte, 4096),
		dirents: make([]byte, 16<<10),
		path:    make([]byte, 0, 64),
		comms:   map[string]string{},
		cgroups: map[string][]CgroupMembership{},
	}
}

// maxInterned bounds what a walker keeps from one census to the next.
// What it keeps is still right (a cgroup file parses the same way every
// time), but the containers of a week of churn need not stay in memory.
const maxInterned = 4096

func (w *walker) trim() {
	if len(w.comms) > maxInterned {
		clear(w.comms)
	}
	if len(w.cgroups) > maxInterned {
		clear(w.cgroups)
	}
}

// The names read relative to /proc/PID, NUL-terminated for the syscalls.
var (
	pathStatus = []byte("status\x00")
	pathCgroup = []byte("cgroup\x00")
	pathFD     = []byte("fd\x00")
	pathNS     = func() (p [NSKinds][]byte) {
		for k, name := range NSNames {
			p[k] = []byte("ns/" + name + "\x00")
		}
		return p
	}()
)

// openat opens the NUL-terminated path relative to dirfd. O_NONBLOCK: a
// fifo planted where a pseudo-file should be (a fixture tree, a --proc
// pointing somewhere odd) reads as empty instead of waiting for a writer;
// on procfs it changes nothing.
func openat(dirfd int, path []byte, flags int) (int, error) {
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])), uintptr(flags|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// readlinkat reads the NUL-terminated link path relative to dirfd into buf.
func readlinkat(dirfd int, path *byte, buf []byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// readAt reads a whole file relative to dirfd into the walker's buffer,
// valid until the next read.
func (w *walker) readAt(dirfd int, path []byte) ([]byte, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
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

// countAt streams a file relative to dirfd through the walker's buffer and
// counts its lines that begin with one of the prefixes. An fdinfo is read
// this way because it has a line per watch or mark: a process holding a
// million inotify watches has an fdinfo of over 100 MiB, which is counted
// in the same fixed buffer as one holding twenty.
func (w *walker) countAt(dirfd int, path []byte, prefixes ...string) (int, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	c := lineCounter{prefixes: prefixes}
	buf := w.buf[:cap(w.buf)]
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return c.n, err
		}
		if n == 0 {
			return c.count(), nil
		}
		c.write(buf[:n])
	}
}

// lineCounter counts the lines, written in pieces of any size, that begin
// with one of its prefixes. It keeps only the start of the current line.
type lineCounter struct {
	prefixes []string
	head     [32]byte // longer than every prefix
	nhead    int
	n        int
}

func (c *lineCounter) write(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		c.nhead += copy(c.head[c.nhead:], seg)
		if i >= 0 {
			c.endLine()
		}
	}
}

func (c *lineCounter) endLine() {
	for _, p := range c.prefixes {
		if bytes.HasPrefix(c.head[:c.nhead], []byte(p)) {
			c.n++
			break
		}
	}
	c.nhead = 0
}

// count ends a last line without a newline and returns the count.
func (c *lineCounter) count() int {
	if c.nhead > 0 {
		c.endLine()
	}
	return c.n
}

// process reads /proc/PID into p; false when the process is gone (or its
// status cannot be read).
func (w *walker) process(procfd, pid int, p *Process, opts Options) bool {
	w.path = append(strconv.AppendInt(w.path[:0], int64(pid), 10), 0)
	dfd, err := openat(procfd, w.path, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	defer unix.Close(dfd)
	status, err := w.readAt(dfd, pathStatus)
	if err != nil {
		return false
	}
	*p = parseStatus(status, w.comms)
	p.PID = pid
	if cg, err := w.readAt(dfd, pathCgroup); err == nil {
		// Processes with the same cgroup file share one parsed slice.
		m, ok := w.cgroups[string(cg)]
		if !ok {
			m = parseCgroup(cg)
			w.cgroups[string(cg)] = m
		}
		p.Cgroups = m
	}
	for k := range pathNS {
		if n, err := readlinkat(dfd, &pathNS[k][0], w.link); err == nil {
			p.NS[k], _ = parseNSLink(w.link[:n])
		}
	}
	p.UserNS, p.MntNS = p.NS[NSUser], p.NS[NSMnt]
	w.fds(dfd, p, opts)
	return true
}

// nextDirent returns the name of the first linux_dirent64 record in b and
// the records after it.
func nextDirent(b []byte) (name, rest []byte) {
	const nameOff = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	if len(b) < nameOff {
		return nil, nil
	}
	reclen := int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen < nameOff || reclen > len(b) {
		return nil, nil
	}
	name = b[nameOff:reclen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i+1] // with its NUL, ready for the next syscall
	}
	return name, b[reclen:]
}

func (w *walker) fds(dfd int, p *Process, opts Options) {
	ffd, err := openat(dfd, pathFD, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		if err != unix.ENOENT {
			p.FDErr = err
		}
		return
	}
	defer unix.Close(ffd)
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
			return
		}
		for b := w.dirents[:n]; len(b) > 0; {
			var name []byte
			name, b = nextDirent(b)
			if len(name) < 2 || name[len(name)-1] != 0 || name[0] == '.' {
				continue
			}
			p.FDs++
			w.fd(dfd, ffd, name, p, opts)
		}
	}
}

// fd reads one fd link; name is the fd's NUL-terminated name under fd/.
func (w *walker) fd(dfd, ffd int, name []byte, p *Process, opts Options) {
	n, err := readlinkat(ffd, &name[0], w.link)
	if err != nil {
		// An fd closed since the listing is gone; one that cannot
		// be read (no CAP_SYS_PTRACE) makes the counts a lower bound.
		if err != unix.ENOENT && p.FDErr == nil {
			p.FDErr = err
		}
		return
	}
	target := w.link[:n]
	var prefixes []string
	switch string(target) {
	case "anon_inode:inotify":
		p.InotifyInstances++
		prefixes = inotifyPrefixes
	case "anon_inode:[eventpoll]":
		p.EpollInstances++
		prefixes = epollPrefixes
	case "anon_inode:[fanotify]":
		p.FanotifyGroups++
		prefixes = fanotifyPrefixes
	default:
		for _, d := range opts.FifoDirs {
			if len(target) > len(d) && target[len(d)] == '/' && string(target[:len(d)]) == d {
				p.Fifos = append(p.Fifos, string(target))
				break
			}
		}
		return
	}
	w.path = append(append(w.path[:0], "fdinfo/"...), name...)
	count, err := w.countAt(dfd, w.path, prefixes...)
	switch prefixes[0] {
	case inotifyPrefixes[0]:
		p.InotifyWatches += count
	case epollPrefixes[0]:
		p.EpollWatches += count
	default:
		p.FanotifyMarks += count
	}
	// A count cut short is a lower bound, and says so like an fd that
	// could not be read; an fd closed meanwhile holds nothing.
	if err != nil && err != unix.ENOENT && p.FDErr == nil {
		p.FDErr = fmt.Errorf("read fdinfo/%s: %w", name[:len(name)-1], err)
	}
}

// The fdinfo lines that count: one per inotify watch, per fd an epoll
// instance watches, per fanotify mark (on an inode, a mount or a
// filesystem).
var (
	inotifyPrefixes  = []string{"inotify wd:"}
	epollPrefixes    = []string{"tfd:"}
	fanotifyPrefixes = []string{"fanotify ino:", "fanotify mnt_id:", "fanotify fsid:"}
)

// atoiPositive parses a decimal number above zero without a sign, as
// procfs names pids.
func atoiPositive(b []byte) (int, bool) {
	if len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

// parseStatus reads Name, Uid, Threads and VmSize from /proc/PID/status.
// Names are interned in comms when it is not nil.
func parseStatus(b []byte, comms map[string]string) Process {
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
			v = bytes.TrimSpace(v)
			if c, ok := comms[string(v)]; ok {
				p.Comm = c
			} else {
				p.Comm = string(v)
				if comms != nil {
					comms[p.Comm] = p.Comm
				}
			}
		case "Uid":
			uid, rest := nextField(v)
			euid, _ := nextField(rest)
			if euid != nil {
				p.UID, p.EUID = atoi(uid), atoi(euid)
			}
		case "Threads":
			p.Threads = atoi(bytes.TrimSpace(v))
		case "VmSize":
			p.VmSizeKB = int64(atoi(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))))
		}
	}
	return p
}

// nextField returns the first field of b, separated by white space, and
// what follows it; nil when there is none.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && asciiSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !asciiSpace(b[j]) {
		j++
	}
	if i == j {
		return nil, nil
	}
	return b[i:j], b[j:]
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// atoi is strconv.Atoi of b, 0 when it is not a number (and the nearest
// int when it is out of range, as Atoi returns).
func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b))
	return n
}

// parseCgroup parses /proc/PID/cgroup: "hierarchy-ID:controller-list:path".
func parseCgroup(b []byte) []CgroupMembership {
	var out []CgroupMembership
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		id, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		ctrls, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		h, err := strconv.Atoi(string(id))
		if err != nil {
			continue
		}
		m := CgroupMembership{Hierarchy: h, Path: string(path)}
		if len(ctrls) > 0 {
			m.Controllers = strings.Split(string(ctrls), ",")
		}
		out = append(out, m)
	}
	return out
}

// countInotifyWatches counts the "inotify wd:" lines of an inotify fd's
// fdinfo, one per watch.
func countInotifyWatches(b []byte) int { return countLines(b, inotifyPrefixes[0]) }

// countLines counts the lines of b that start with prefix (fdinfo: epoll's
// "tfd:", fanotify's "fanotify ino:").
func countLines(b []byte, prefix string) int {
	c := lineCounter{prefixes: []string{prefix}}
	c.write(b)
	return c.count()
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

func parseNSLink[T ~string | ~[]byte](t T) (uint64, error) {
	i := 0
	for i < len(t) && t[i] != '[' {
		i++
	}
	if i == len(t) || t[len(t)-1] != ']' || i+1 >= len(t)-1 {
		return 0, fmt.Errorf("not a namespace link: %s", t)
	}
	// Callers read 0 as unknown.
	var ino uint64
	for j := i + 1; j < len(t)-1; j++ {
		c := t[j]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a namespace link: %s", t)
		}
		d := uint64(c - '0')
		if ino > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("namespace inode out of range: %s", t)
		}
		ino = ino*10 + d
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
