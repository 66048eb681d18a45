package limits

// The walk of a cgroup hierarchy. A cgroup directory holds tens of
// interface files and its child cgroups: on the bad night (30,000 cgroups
// under one parent) listing them with os.ReadDir cost a sorted DirEntry
// per file and a path resolved from the mount point for every read. Here
// getdents64 is read raw and only directories (d_type) are kept; a cgroup
// without children (its link count says so) is neither opened nor
// listed, and the few files read are opened relative to a descriptor
// already open: nothing is allocated per cgroup but what a caller keeps.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// direntBuf is the getdents64 buffer of one level of the walk.
const direntBuf = 32 << 10

// cgroupWalker walks one hierarchy depth first.
type cgroupWalker struct {
	ctx   context.Context
	visit func(c cgroupAt, rel []byte, depth int) bool
	// bufs are the getdents buffers by depth: a parent's listing stays in
	// its buffer while its children are walked.
	bufs [][]byte
	rel  []byte
	// path is where cgroupAt.readAt builds a file's name.
	path []byte
	n    int
	err  error
	stop bool
}

// cgroupAt is a cgroup directory as the walk found it: the directory
// name (NUL-terminated) relative to dirfd, "." when dirfd is the
// directory itself. A cgroup without children is never opened: its files
// are opened relative to its parent.
type cgroupAt struct {
	dirfd int
	name  []byte
	w     *cgroupWalker
}

var dotName = []byte(".\x00")

// walkCgroupFDs calls visit for every cgroup directory under root, root
// included, parents first: c is the directory (for readAt); rel its path
// relative to root ("/" for root) and c valid during the call only; depth
// its depth below root. visit returns false to end the walk. The error is
// the root's that could not be opened, or ctx's when it ended the walk
// (checked every 256 directories); a directory removed during the walk is
// skipped.
func walkCgroupFDs(ctx context.Context, root string, visit func(c cgroupAt, rel []byte, depth int) bool) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(fd)
	w := &cgroupWalker{ctx: ctx, visit: visit, rel: make([]byte, 0, 256), path: make([]byte, 0, 512)}
	if w.visitDir(cgroupAt{fd, dotName, w}, 0) && !childless(fd, &dotName[0]) {
		w.list(fd, 0)
	}
	return w.err
}

// visitDir visits one directory and says whether the walk goes on.
func (w *cgroupWalker) visitDir(c cgroupAt, depth int) bool {
	rel := w.rel
	if len(rel) == 0 {
		rel = []byte("/")
	}
	if !w.visit(c, rel, depth) {
		w.stop = true
		return false
	}
	if w.n++; w.n%256 == 0 && w.ctx != nil && w.ctx.Err() != nil {
		w.err, w.stop = w.ctx.Err(), true
		return false
	}
	return true
}

// list walks the children of the directory fd, at depth.
func (w *cgroupWalker) list(fd, depth int) {
	if depth == len(w.bufs) {
		w.bufs = append(w.bufs, make([]byte, direntBuf))
	}
	buf := w.bufs[depth]
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino, off, reclen, type, name.
			rec := buf[off:]
			reclen := int(binary.NativeEndian.Uint16(rec[16:]))
			off += reclen
			typ, name := rec[18], rec[19:reclen]
			i := bytes.IndexByte(name, 0)
			if i < 0 {
				continue
			}
			cname := name[:i+1]
			name = name[:i]
			if isDotOrDotDot(name) {
				continue
			}
			if typ == unix.DT_UNKNOWN {
				typ = direntType(fd, name)
			}
			if typ != unix.DT_DIR {
				continue
			}
			l := len(w.rel)
			w.rel = append(append(w.rel, '/'), name...)
			w.child(fd, cname, depth+1)
			w.rel = w.rel[:l]
			if w.stop {
				return
			}
		}
	}
}

// child visits the directory cname of dirfd and what is below it.
func (w *cgroupWalker) child(dirfd int, cname []byte, depth int) {
	if childless(dirfd, &cname[0]) {
		w.visitDir(cgroupAt{dirfd, cname, w}, depth)
		return
	}
	fd, err := openatC(dirfd, &cname[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		return // removed since the listing
	}
	defer unix.Close(fd)
	if w.visitDir(cgroupAt{fd, dotName, w}, depth) {
		w.list(fd, depth)
	}
}

// childless reports whether directory name (NUL-terminated) of dirfd has
// no subdirectory: its link count is 2, one more per subdirectory (kernfs
// keeps it so, as most filesystems do). Most cgroups have none: one statx
// spares them an open, the two getdents64 of their tens of files and a
// close. A count it cannot tell (statx missing, a filesystem that counts
// otherwise) says no.
func childless(dirfd int, name *byte) bool {
	var stx unix.Statx_t
	_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
		unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_NLINK, uintptr(unsafe.Pointer(&stx)), 0)
	return e == 0 && stx.Mask&unix.STATX_NLINK != 0 && stx.Nlink == 2
}

func isDotOrDotDot(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}

// direntType stats an entry whose type the filesystem did not say (not
// cgroupfs's case; a copied fixture tree's, maybe).
func direntType(dirfd int, name []byte) byte {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.DT_UNKNOWN
	}
	return unix.DT_DIR
}

// openatC is openat(2) of a NUL-terminated name, such as one in a
// getdents buffer, without copying it into a new string.
func openatC(dirfd int, name *byte, flags int) (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(flags), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// cgroupFile is the name of a cgroup interface file, NUL-terminated once
// for openat.
type cgroupFile struct {
	name string
	c    []byte
}

func newCgroupFile(name string) cgroupFile {
	return cgroupFile{name: name, c: append([]byte(name), 0)}
}

var (
	fileMaxDescendants = newCgroupFile("cgroup.max.descendants")
	fileMaxDepth       = newCgroupFile("cgroup.max.depth")
	fileCgroupStat     = newCgroupFile("cgroup.stat")
	fileCgroupProcs    = newCgroupFile("cgroup.procs")
)

// readAt reads file f of the cgroup c into buf with one read: a cgroup
// interface file (a seq_file) answers whole when buf holds it. The result
// is cut to buf's size.
func (f cgroupFile) readAt(c cgroupAt, buf []byte) ([]byte, error) {
	p := append(append(c.w.path[:0], c.name[:len(c.name)-1]...), '/')
	p = append(p, f.c...)
	c.w.path = p
	fd, err := openatC(c.dirfd, &p[0], unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// readIntAt reads a cgroup file holding a number or "max" (-1).
func (f cgroupFile) readIntAt(c cgroupAt, buf []byte) (int64, error) {
	b, err := f.readAt(c, buf)
	if err != nil {
		return 0, err
	}
	return parseCgroupInt(b)
}

// parseCgroupInt parses a cgroup file's number, or "max" as -1.
func parseCgroupInt(b []byte) (int64, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return -1, nil
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("%q is not a cgroup limit", b)
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a cgroup limit", b)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
