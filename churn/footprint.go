package churn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/enospc/enospc/host"
)

// Reading is one value of the runtime's own footprint at a sample.
type Reading struct {
	Limit string
	Scope string
	Unit  string
	Value int64
	// Max is the value at which it runs out, 0 when there is none.
	Max int64
	// Err says why the value could not be read.
	Err error
}

// The footprint's series, named like the catalog's limits.
const (
	FootFDs      = "runtime.fds"
	FootThreads  = "runtime.threads"
	FootRSS      = "runtime.rss"
	FootShims    = "runtime.shims"
	FootFiles    = "runtime.files"
	FootFifoDirs = "runtime.fifo_dirs"
	FootCgroups  = "runtime.cgroups"
	// FootShimSockets counts ShimSocketDir, which every containerd of the
	// host shares.
	FootShimSockets = "runtime.shim_sockets"
)

// maxFilesCounted bounds the walk of one state directory.
const maxFilesCounted = 1 << 20

// footprint reads a runtime's own footprint: its daemon's descriptors,
// threads and resident memory, its live shims, the files under its state
// directories.
type footprint struct {
	h       *host.Host
	address string // the daemon's socket, "" for none
	daemon  int    // pid, 0 until found
	dirs    []string
	fifoDir string
	// shimsOf picks the daemon's shims among containerd's shims; nil
	// counts none.
	shimsOf func(shimProc) bool
	// cgroup is the cgroup (a path in the hierarchy) under which the
	// runtime makes its containers' cgroups; "" for none known.
	cgroup string
	// shimSockets counts containerd's shim socket directory (the host's,
	// shared by every containerd).
	shimSockets bool
}

func newContainerdFootprint(h *host.Host, o ContainerdOptions) *footprint {
	return &footprint{h: h, address: o.Address, dirs: []string{o.State, o.Root}, fifoDir: o.FifoDir,
		shimsOf: func(p shimProc) bool { return p.arg("-address") == o.Address },
		// containerd's default spec: /<namespace>/<id>.
		cgroup: "/" + o.Namespace, shimSockets: true}
}

func (f *footprint) read(ctx context.Context) []Reading {
	var out []Reading
	if f.address != "" {
		scope := "daemon on " + f.address
		if f.daemon == 0 || !alive(f.h, f.daemon) {
			pid, err := socketOwner(f.h, f.address)
			if err != nil {
				out = append(out, Reading{Limit: FootFDs, Scope: scope, Unit: "fds", Err: err})
			}
			f.daemon = pid
		}
		if f.daemon != 0 {
			out = append(out, daemonReadings(f.h, f.daemon, scope)...)
		}
		if f.shimsOf != nil {
			n := 0
			for _, p := range shims(f.h) {
				if f.shimsOf(p) {
					n++
				}
			}
			out = append(out, Reading{Limit: FootShims, Scope: scope, Unit: "processes", Value: int64(n)})
		}
	}
	for _, d := range f.dirs {
		n, err := countFiles(ctx, f.h.RootPath(d))
		out = append(out, Reading{Limit: FootFiles, Scope: d, Unit: "files", Value: n, Err: err})
	}
	if f.cgroup != "" {
		out = append(out, memoryCgroups(f.h, f.cgroup))
	}
	if f.shimSockets {
		ents, err := os.ReadDir(f.h.RootPath(ShimSocketDir))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		out = append(out, Reading{Limit: FootShimSockets, Scope: ShimSocketDir, Unit: "sockets", Value: int64(len(ents)), Err: err})
	}
	if f.fifoDir != "" {
		ents, err := os.ReadDir(f.h.RootPath(f.fifoDir))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		out = append(out, Reading{Limit: FootFifoDirs, Scope: f.fifoDir, Unit: "directories", Value: int64(len(ents)), Err: err})
	}
	return out
}

// memoryCgroups counts the live memory cgroups at and under rel: in the
// memory hierarchy of cgroup v1, else in the unified one. A runtime's
// containers each have one while they live; what stays after they are
// gone is the runtime's (or its client's) leak, on the host's 65,535
// memory cgroup ids.
func memoryCgroups(h *host.Host, rel string) Reading {
	r := Reading{Limit: FootCgroups, Scope: "memory cgroups under " + rel, Unit: "cgroups", Max: 65535}
	root := h.SysPath("fs", "cgroup", "memory")
	if _, err := os.Stat(root); err != nil {
		root = h.SysPath("fs", "cgroup")
	}
	err := filepath.WalkDir(filepath.Join(root, rel), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			r.Value++
			if r.Value >= maxFilesCounted {
				return fmt.Errorf("more than %d cgroups", maxFilesCounted)
			}
		}
		return nil
	})
	r.Err = err
	return r
}

func alive(h *host.Host, pid int) bool {
	_, err := os.Stat(h.ProcPath(strconv.Itoa(pid)))
	return err == nil
}

// daemonReadings are a process's descriptors (against its RLIMIT_NOFILE),
// threads and resident memory.
func daemonReadings(h *host.Host, pid int, scope string) []Reading {
	p := strconv.Itoa(pid)
	fds := Reading{Limit: FootFDs, Scope: scope, Unit: "fds"}
	if ents, err := os.ReadDir(h.ProcPath(p, "fd")); err != nil {
		fds.Err = err
	} else {
		fds.Value = int64(len(ents))
	}
	if b, err := h.ReadProc(p, "limits"); err == nil {
		fds.Max = openFilesLimit(b)
	}
	thr := Reading{Limit: FootThreads, Scope: scope, Unit: "threads"}
	rss := Reading{Limit: FootRSS, Scope: scope, Unit: "bytes"}
	if b, err := h.ReadProc(p, "status"); err != nil {
		thr.Err, rss.Err = err, err
	} else {
		st, err := parseStatus(bytes.NewReader(b))
		thr.Value, rss.Value, thr.Err, rss.Err = st.threads, st.rssBytes, err, err
	}
	if v, err := h.SysctlInt("kernel/threads-max"); err == nil {
		thr.Max = v
	}
	return []Reading{fds, thr, rss}
}

type procStatus struct {
	threads  int64
	rssBytes int64
}

// parseStatus reads Threads and VmRSS from /proc/PID/status.
func parseStatus(r io.Reader) (procStatus, error) {
	var st procStatus
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			continue
		}
		switch k {
		case "Threads":
			st.threads = n
			seen |= 1
		case "VmRSS":
			if len(f) > 1 && f[1] == "kB" && n <= 1<<53 {
				st.rssBytes = n * 1024
				seen |= 2
			}
		}
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if seen != 3 {
		return st, errors.New("status has no Threads or VmRSS line")
	}
	return st, nil
}

// openFilesLimit is the soft "Max open files" of /proc/PID/limits, 0 when
// unlimited or unreadable.
func openFilesLimit(b []byte) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return 0
}

// socketOwner finds the process listening on the unix socket at path:
// its inode from /proc/net/unix, then the process holding that socket.
// A daemon restarted during the loop is found again at the next sample.
func socketOwner(h *host.Host, path string) (int, error) {
	b, err := h.ReadProc("net", "unix")
	if err != nil {
		return 0, err
	}
	inodes := unixSocketInodes(bytes.NewReader(b), path)
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on %s", path)
	}
	ents, err := os.ReadDir(h.Proc)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if _, ok := pidName(e.Name()); !ok {
			continue
		}
		fds, err := os.ReadDir(h.ProcPath(e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(h.ProcPath(e.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				pid, _ := pidName(e.Name())
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process holds the socket %s", path)
}

// unixSocketInodes reads /proc/net/unix and returns the inodes of the
// listening sockets bound to path.
func unixSocketInodes(r io.Reader, path string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[7] != path {
			continue
		}
		// Flags 00010000 is __SO_ACCEPTCON: a listening socket.
		if f[3] != "00010000" {
			continue
		}
		if _, err := strconv.ParseUint(f[6], 10, 64); err == nil {
			out[f[6]] = true
		}
	}
	return out
}

func pidName(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// countFiles counts the entries under dir, without following links,
// bounded by maxFilesCounted entries and by ctx.
func countFiles(ctx context.Context, dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if p == dir {
			// The directory itself is not one of its files.
			return err
		}
		if err != nil {
			// An entry removed during the walk (a task going away).
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		n++
		if n >= maxFilesCounted {
			return fmt.Errorf("more than %d entries", maxFilesCounted)
		}
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) && n == 0 {
		return 0, nil
	}
	return n, err
}
