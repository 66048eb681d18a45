// Package host is a rooted, read-only view of a Linux host: its procfs, its
// sysfs and its root filesystem, each at a path of the caller's choosing. The
// same code reads the running kernel (/proc, /sys, /), a host mounted into a
// DaemonSet pod (/host/proc, /host/sys, /host) and fixture trees in tests.
package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// MaxPseudoFile bounds how much of one pseudo-file is read. /proc and /sys
// report a size of 0 or 4096 whatever their content, so files are read until
// EOF; the bound keeps a malicious or broken file from exhausting memory.
const MaxPseudoFile = 64 << 20

// ErrTimeout is returned by Host.Statfs when the filesystem did not answer
// in time (a dead NFS server, a hung FUSE daemon).
var ErrTimeout = errors.New("timed out")

// ErrNotRegular is returned by ReadFile for what is not a regular file (a
// fifo or a device where a pseudo-file should be): it is never opened
// for reading in a way that could wait.
var ErrNotRegular = errors.New("not a regular file")

// Statfs is what enospc needs from statfs(2).
type Statfs struct {
	Type        int64
	BlockSize   int64
	Blocks      uint64
	BlocksFree  uint64
	BlocksAvail uint64
	Files       uint64
	FilesFree   uint64
}

// Host is where enospc reads from. The zero value is not useful: use New.
type Host struct {
	// Proc, Sys and Root are the host's procfs, sysfs and root directory.
	Proc, Sys, Root string
	// StatfsFunc performs statfs(2); nil is the real one. Tests set it to serve fixture
	// numbers for fixture trees.
	StatfsFunc func(path string) (Statfs, error)
	// StatfsTimeout bounds each statfs call.
	StatfsTimeout time.Duration
	// Now is the clock; tests replace it for golden output.
	Now func() time.Time
	// QuotaFunc, when set, returns the disk quotas of the filesystem
	// mounted at mountpoint (a host path, as in mountinfo) instead of
	// quotactl(2); tests serve a fixture's quota.json through it.
	QuotaFunc func(mountpoint string) ([]Quota, error)
}

// Quota is one id's disk quota on one filesystem, as quotactl(2)
// Q_GETQUOTA reports it: usage and limits in bytes and inodes (0: no
// limit), and when the grace period of an exceeded soft limit ends (unix
// seconds, 0 when not running).
type Quota struct {
	Type        string `json:"type"` // "user", "group" or "project"
	ID          uint32 `json:"id"`
	Bytes       uint64 `json:"bytes"`
	BytesSoft   uint64 `json:"bytes_soft,omitempty"`
	BytesHard   uint64 `json:"bytes_hard,omitempty"`
	BytesGrace  int64  `json:"bytes_grace,omitempty"`
	Inodes      uint64 `json:"inodes"`
	InodesSoft  uint64 `json:"inodes_soft,omitempty"`
	InodesHard  uint64 `json:"inodes_hard,omitempty"`
	InodesGrace int64  `json:"inodes_grace,omitempty"`
}

// New returns a Host on the given paths that reads the running kernel.
func New(proc, sys, root string) *Host {
	return &Host{
		Proc:          filepath.Clean(proc),
		Sys:           filepath.Clean(sys),
		Root:          filepath.Clean(root),
		StatfsTimeout: 2 * time.Second,
		Now:           time.Now,
	}
}

// ProcPath joins elem under the procfs root.
func (h *Host) ProcPath(elem ...string) string {
	return filepath.Join(append([]string{h.Proc}, elem...)...)
}

// SysPath joins elem under the sysfs root.
func (h *Host) SysPath(elem ...string) string {
	return filepath.Join(append([]string{h.Sys}, elem...)...)
}

// RootPath maps an absolute host path (as it appears in mountinfo or in a
// process's fd links) to a path readable from here.
func (h *Host) RootPath(p string) string {
	return filepath.Join(h.Root, p)
}

// ReadFile reads a whole file, up to MaxPseudoFile bytes, ignoring the size
// that stat reports.
func ReadFile(path string) ([]byte, error) {
	// Read into a buffer kept between calls, and return a copy of what
	// was read: one allocation of the file's size, where growing a buffer
	// from nothing made four for a 2 KiB pseudo-file.
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	b, err := AppendFile((*bp)[:0], path)
	if err != nil {
		return nil, err
	}
	if cap(b) <= 1<<20 {
		*bp = b[:0] // keep a grown buffer, unless it is a big one
	}
	return bytes.Clone(b), nil
}

// ViewFile reads a pseudo-file, bounded as ReadFile is, into a buffer
// kept between calls and hands it to fn, which must not keep it (or any
// slice of it) after it returns: for the files read once per process or
// namespace (limits, mountinfo), where copying each one out made a
// megabyte of garbage per check on a host of 5,000 processes.
func ViewFile(path string, fn func([]byte) error) error {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	b, err := AppendFile((*bp)[:0], path)
	if err != nil {
		return err
	}
	if cap(b) <= 1<<20 {
		*bp = b[:0]
	}
	return fn(b)
}

// ViewProc is ViewFile of a file under the procfs root.
func (h *Host) ViewProc(fn func([]byte) error, elem ...string) error {
	return ViewFile(h.ProcPath(elem...), fn)
}

// AppendFile is ReadFile appending to dst, so that a caller reading the
// same pseudo-file again and again (/proc/keys once per uid) reuses one
// buffer.
func AppendFile(dst []byte, path string) ([]byte, error) {
	f, err := openPseudo(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, max(512, len(dst)-start))
		}
		n, err := f.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > MaxPseudoFile {
			return nil, fmt.Errorf("read %s: larger than %d bytes", path, MaxPseudoFile)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// openPseudo opens a pseudo-file for reading. O_NONBLOCK: opening a fifo
// planted where a pseudo-file should be (a fixture tree, a --proc pointing
// somewhere odd) must not wait for a writer; and what is not a regular
// file is not read at all. Every file of /proc and /sys is a regular one.
func openPseudo(path string) (*os.File, error) {
	// unix.Open and Fstat rather than os.OpenFile and Stat: no FileInfo
	// made for each of the thousands of files a check reads.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("read %s: %w", path, ErrNotRegular)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// readBufs are ReadFile's buffers.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// ReadProc reads a file under the procfs root.
func (h *Host) ReadProc(elem ...string) ([]byte, error) {
	return ReadFile(h.ProcPath(elem...))
}

// ReadSys reads a file under the sysfs root.
func (h *Host) ReadSys(elem ...string) ([]byte, error) {
	return ReadFile(h.SysPath(elem...))
}

// Sysctl reads a sysctl by its dotted name (kernel.keys.maxkeys) from
// <proc>/sys and returns its content without the trailing newline.
func (h *Host) Sysctl(name string) (string, error) {
	b, err := h.ReadProc(append([]string{"sys"}, strings.Split(name, ".")...)...)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// SysctlInt reads a sysctl holding one integer.
func (h *Host) SysctlInt(name string) (int64, error) {
	s, err := h.Sysctl(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s: %w", name, err)
	}
	return v, nil
}

// Hostname is the host's name from <proc>/sys/kernel/hostname.
func (h *Host) Hostname() string {
	s, err := h.Sysctl("kernel.hostname")
	if err != nil {
		return ""
	}
	return s
}

// KernelRelease is the running kernel's release from <proc>/sys/kernel/osrelease.
func (h *Host) KernelRelease() string {
	s, err := h.Sysctl("kernel.osrelease")
	if err != nil {
		return ""
	}
	return s
}

// Live reports whether Proc is the procfs of the kernel this process runs
// on, so that actions on the running kernel (reading /proc/keys as another
// uid, namespace ioctls) are meaningful. Fixture trees are not live.
func (h *Host) Live() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(h.Proc, &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		return false
	}
	var self, host unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &self) != nil {
		return false
	}
	if unix.Stat(h.ProcPath("self", "ns", "pid"), &host) != nil {
		// A procfs of another pid namespace (hostPID pods see the host's
		// procfs, whose "self" is us as well); absent "self" means it is
		// not ours to act on.
		return false
	}
	return self.Ino == host.Ino
}

// Statfs runs statfs on path, giving up after h.StatfsTimeout. Errors do
// not name the path, which callers name as the host knows it. A
// statfs on a dead NFS mount blocks in the kernel, so the call runs in its own
// goroutine, which is abandoned on timeout.
//
// A statfs that did not answer is left running (a thread blocked in the
// kernel cannot be stopped) and the path is not asked again until that
// call returns: a dead NFS server or a FUSE daemon that never answers
// would otherwise take one more OS thread at every check, and a serve
// running for days would reach the runtime's limit of threads.
func (h *Host) Statfs(ctx context.Context, path string) (Statfs, error) {
	fn, blocked := h.StatfsFunc, hungStatfs
	if fn == nil {
		fn = statfs
	} else {
		// A stand-in's calls are its own: they do not mark the path.
		blocked = NewStragglers()
	}
	if since, ok := blocked.Blocked(path); ok {
		return Statfs{}, fmt.Errorf("%w: an earlier statfs has not answered since %s; not asked again until it does", ErrTimeout, since.UTC().Format(time.RFC3339))
	}
	timeout := h.StatfsTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var st Statfs
	err := bounded(ctx, blocked, path, timeout, func() error {
		var err error
		st, err = fn(path)
		return err
	})
	if err != nil {
		return Statfs{}, err
	}
	return st, nil
}

// bounded runs fn for at most timeout, watched by reg under key: a call
// that does not return is abandoned (a thread blocked in the kernel
// cannot be stopped) and stays in reg until it returns.
func bounded(ctx context.Context, reg *Stragglers, key string, timeout time.Duration, fn func() error) error {
	ch := make(chan error, 1)
	call := reg.Start(key)
	go func() {
		err := fn()
		reg.Finish(call)
		ch <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		reg.Abandon(call)
		return fmt.Errorf("%w after %s", ErrTimeout, timeout)
	case <-ctx.Done():
		reg.Abandon(call)
		return ctx.Err()
	}
}

// hungStatfs are the paths whose statfs was given up on and has not
// returned yet. Process-wide, like the threads they hold.
var hungStatfs = NewStragglers()

// hungLookups are the lookups given up on by Bounded.
var hungLookups = NewStragglers()

// maxHungLookups bounds the threads Bounded leaves blocked: past it, a
// new lookup is refused rather than started.
const maxHungLookups = 16

// Bounded runs fn, a lookup of a path that a process named (a stat along
// it, which a FUSE daemon that never answers or a dead NFS server can
// block in the kernel), for at most timeout. A call that does not return
// is abandoned, not stopped (a thread blocked in the kernel cannot be),
// and key is not looked up again until it returns; past a few such calls
// every lookup is refused, so that a user who makes paths that hang
// cannot make enospc hold more and more threads.
func Bounded(ctx context.Context, key string, timeout time.Duration, fn func() error) error {
	if since, ok := hungLookups.Blocked(key); ok {
		return fmt.Errorf("%w: an earlier lookup has not answered since %s", ErrTimeout, since.UTC().Format(time.RFC3339))
	}
	if n := hungLookups.Abandoned(); n >= maxHungLookups {
		return fmt.Errorf("%w: %d earlier lookups have not answered; no more are started until they do", ErrTimeout, n)
	}
	return bounded(ctx, hungLookups, key, timeout, fn)
}

// Stragglers remembers calls that were given up on while they still run
// (a read blocked in the kernel cannot be stopped), by key, so that the
// same call is not started again until the first one returns: a hung
// mount asked at every check of a long-running serve would otherwise
// hold one more thread each time. Statfs uses one for paths, check one
// for the families of limits.
type Stragglers struct {
	mu    sync.Mutex
	calls map[string]*Call
}

// Call is one call watched by Stragglers.
type Call struct {
	key       string
	started   time.Time
	done      bool
	abandoned bool
}

// NewStragglers returns an empty registry.
func NewStragglers() *Stragglers { return &Stragglers{calls: map[string]*Call{}} }

// Blocked says whether a call for key was given up on and has not
// returned, and since when.
func (s *Stragglers) Blocked(key string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[key]
	if !ok || !c.abandoned {
		return time.Time{}, false
	}
	return c.started, true
}

// Abandoned is how many calls were given up on and have not returned.
func (s *Stragglers) Abandoned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.abandoned && !c.done {
			n++
		}
	}
	return n
}

// Start begins watching a call for key.
func (s *Stragglers) Start(key string) *Call {
	return &Call{key: key, started: time.Now()}
}

// Since is how long ago c started.
func (c *Call) Since() time.Duration { return time.Since(c.started) }

// Finish records that c returned; key is free again.
func (s *Stragglers) Finish(c *Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.done = true
	if s.calls[c.key] == c {
		delete(s.calls, c.key)
	}
}

// Abandon records that c was given up on, unless it has returned.
func (s *Stragglers) Abandon(c *Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.done {
		c.abandoned = true
		s.calls[c.key] = c
	}
}

func statfs(path string) (Statfs, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Statfs{}, err
	}
	return Statfs{
		Type:        int64(st.Type),
		BlockSize:   int64(st.Bsize),
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: st.Bavail,
		Files:       st.Files,
		FilesFree:   st.Ffree,
	}, nil
}
