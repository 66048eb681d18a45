package limits

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fifo directory is read in one pass, as `ls | wc -l` would: the
// directories a process holds a fifo of (the census's fd links) are
// counted and nothing more; the others are aged with statx(2) on their
// name alone. One old enough to be an orphan is opened only when what it
// holds must be known: the task ids its fifos name are inside it and
// nowhere else (containerd's client names the directory at random), and
// they matter when some task has state; how many entries it holds (its
// inodes) tmpfs tells by the directory's size, bogoDirent bytes an entry.
// The syscalls take the names where getdents(2) left them, NUL-terminated,
// so that a directory costs no allocation.

// bogoDirent is the size tmpfs gives a directory per entry, "." and ".."
// included (mm/shmem.c BOGO_DIRENT_SIZE): a size that is not a multiple
// of it, or an older kernel's 0, is not used.
const bogoDirent = 20

// orphanFifoDir is an orphan as scanFifoDirs finds it; name and files point
// into the scan's buffers and are valid during the callback only.
type orphanFifoDir struct {
	name  []byte
	files [][]byte
	// unread: the directory was not opened, and files is not known.
	unread bool
	inodes int64
	mtime  time.Time
}

// firstTask is the task id named by the first of its fifos in name order:
// FifoDir.Tasks[0].
func (d *orphanFifoDir) firstTask() []byte {
	var first, id []byte
	for _, f := range d.files {
		if t := fifoTaskID(f); t != nil && (first == nil || bytes.Compare(f, first) < 0) {
			first, id = f, t
		}
	}
	return id
}

// tasks are the task ids its fifos name, in name order, each once.
func (d *orphanFifoDir) tasks() []string {
	files := slices.Clone(d.files)
	slices.SortFunc(files, bytes.Compare)
	var out []string
	for _, f := range files {
		if id := fifoTaskID(f); id != nil && !slices.Contains(out, string(id)) {
			out = append(out, string(id))
		}
	}
	return out
}

// fifoTaskID returns the task id a fifo file names: "<id>-stdin" and the
// like; nil for another name, or an empty id.
func fifoTaskID(name []byte) []byte {
	for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
		if len(name) > len(s) && bytes.HasSuffix(name, []byte(s)) {
			return name[:len(name)-len(s)]
		}
	}
	return nil
}

// scanFifoDirs counts the directories under fifoDir and calls orphan for
// each that is not held (held: directory names whose fifo a process holds
// open), is at least fifoGrace old and names no task of live. With files
// false, orphan may be given directories whose files were not read.
func scanFifoDirs(fifoDir string, held, live map[string]bool, now time.Time, files bool, orphan func(*orphanFifoDir)) (total int, err error) {
	dfd, err := unix.Open(fifoDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: fifoDir, Err: err}
	}
	defer unix.Close(dfd)
	var sfs unix.Statfs_t
	tmpfs := unix.Fstatfs(dfd, &sfs) == nil && sfs.Type == unix.TMPFS_MAGIC
	var (
		top = make([]byte, 64<<10)
		sub = make([]byte, 4<<10)
		stx unix.Statx_t
		d   orphanFifoDir
	)
	for {
		n, err := unix.Getdents(dfd, top)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "readdirent", Path: fifoDir, Err: err}
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			reclen, typ, nameZ := direntAt(top[off:n])
			if reclen == 0 {
				break
			}
			off += reclen
			name := nameZ[:len(nameZ)-1]
			isDir := typ == unix.DT_DIR
			if isDotName(name) || !isDir && typ != unix.DT_UNKNOWN {
				continue
			}
			if isDir {
				total++
				if held[string(name)] {
					continue
				}
			}
			if statxAt(dfd, nameZ, &stx) != nil {
				continue
			}
			if !isDir {
				// A filesystem that does not tell types in its
				// directory entries.
				if stx.Mode&unix.S_IFMT != unix.S_IFDIR {
					continue
				}
				total++
				if held[string(name)] {
					continue
				}
			}
			mtime := time.Unix(stx.Mtime.Sec, int64(stx.Mtime.Nsec))
			if now.Sub(mtime) < fifoGrace {
				continue
			}
			entries := -1
			if tmpfs && stx.Size >= 2*bogoDirent && stx.Size%bogoDirent == 0 {
				entries = int(stx.Size/bogoDirent) - 2
			}
			if entries >= 0 && !files && len(live) == 0 {
				d = orphanFifoDir{name: name, files: d.files[:0], unread: true, inodes: 1 + int64(entries), mtime: mtime}
				orphan(&d)
				continue
			}
			var ok bool
			if sub, ok = readDirAt(dfd, nameZ, sub, entries); !ok {
				continue
			}
			d = orphanFifoDir{name: name, files: d.files[:0], inodes: 1, mtime: mtime}
			isLive := false
			for o := 0; o < len(sub); {
				rl, _, fz := direntAt(sub[o:])
				if rl == 0 {
					break
				}
				o += rl
				f := fz[:len(fz)-1]
				if isDotName(f) {
					continue
				}
				d.inodes++
				d.files = append(d.files, f)
				if id := fifoTaskID(f); id != nil && live[string(id)] {
					isLive = true
				}
			}
			if !isLive {
				orphan(&d)
			}
		}
	}
	return total, nil
}

// readDirAt reads the whole directory name (NUL-terminated) under dfd into
// buf, grown as needed: the dirents, and whether it could be read. Once it
// has the entries it should hold (entries and "." and ".."; entries -1:
// not known), it does not ask getdents for the end of the directory.
func readDirAt(dfd int, nameZ, buf []byte, entries int) ([]byte, bool) {
	fd, err := openatZ(dfd, nameZ, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return buf[:0], false
	}
	defer unix.Close(fd)
	buf = buf[:cap(buf)]
	used, records := 0, 0
	for {
		if len(buf)-used < 1024 {
			buf = append(buf[:used], make([]byte, max(len(buf), 4096))...)
		}
		n, err := unix.Getdents(fd, buf[used:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf[:0], false
		}
		if n <= 0 {
			return buf[:used], true
		}
		for o := used; o < used+n; {
			rl, _, _ := direntAt(buf[o : used+n])
			if rl == 0 {
				break
			}
			o += rl
			records++
		}
		used += n
		if entries >= 0 && records == entries+2 {
			return buf[:used], true
		}
	}
}

// direntAt decodes the linux_dirent64 at the start of b: its length, type
// and name with its terminating NUL; a length of 0 when b holds none.
func direntAt(b []byte) (reclen int, typ uint8, nameZ []byte) {
	const nameOff = 19 // d_ino, d_off (8 bytes each), d_reclen (2), d_type (1)
	if len(b) < nameOff+1 {
		return 0, 0, nil
	}
	reclen = int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen <= nameOff || reclen > len(b) {
		return 0, 0, nil
	}
	i := bytes.IndexByte(b[nameOff:reclen], 0)
	if i < 0 {
		return 0, 0, nil
	}
	return reclen, b[18], b[nameOff : nameOff+i+1]
}

func isDotName(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}

// statxAt is statx(2) of name (NUL-terminated) under dfd, not following a
// symlink and asking only for the type, size and modification time.
func statxAt(dfd int, nameZ []byte, stx *unix.Statx_t) error {
	_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(dfd), uintptr(unsafe.Pointer(&nameZ[0])),
		unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE|unix.STATX_MTIME|unix.STATX_SIZE, uintptr(unsafe.Pointer(stx)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// openatZ is openat(2) of name (NUL-terminated) under dfd.
func openatZ(dfd int, nameZ []byte, flags int) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dfd), uintptr(unsafe.Pointer(&nameZ[0])), uintptr(flags), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}
