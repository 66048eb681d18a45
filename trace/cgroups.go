package trace

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// cgroupPaths maps the cgroup ids the program read (kernfs node ids, the
// inode numbers of the cgroup directories) to paths, for processes that
// exited before they were looked at. On a hybrid host the v2 id is the
// root for most processes: the v1 pids and memory ids say where a
// runtime put them.
type cgroupPaths struct {
	h    *host.Host
	once sync.Once
	// Mount points (host paths) of the hierarchies.
	v2, pids, memory string

	mu     sync.Mutex
	byRoot map[string]map[uint64]string
	walked map[string]time.Time
}

// maxCgroupDirs bounds one walk of a hierarchy.
const maxCgroupDirs = 200000

func newCgroupPaths(h *host.Host) *cgroupPaths {
	return &cgroupPaths{h: h, byRoot: map[string]map[uint64]string{}, walked: map[string]time.Time{}}
}

func (c *cgroupPaths) mounts() {
	c.once.Do(func() {
		ms, err := limits.HostMounts(c.h)
		if err != nil {
			return
		}
		for _, m := range ms {
			opts := strings.Split(m.Super, ",")
			switch {
			case m.FSType == "cgroup2" && c.v2 == "":
				c.v2 = m.MountPoint
			case m.FSType == "cgroup" && slices.Contains(opts, "pids") && c.pids == "":
				c.pids = m.MountPoint
			case m.FSType == "cgroup" && slices.Contains(opts, "memory") && c.memory == "":
				c.memory = m.MountPoint
			}
		}
	})
}

// path is the cgroup path of id in the hierarchy mounted at root, "" when
// it is not found (the cgroup is gone too).
func (c *cgroupPaths) path(root string, id uint64) string {
	if root == "" || id == 0 {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.byRoot[root][id]; ok {
		return p
	}
	// A miss walks again, at most once a second per hierarchy.
	if time.Since(c.walked[root]) < time.Second {
		return ""
	}
	c.walked[root] = time.Now()
	ids := map[uint64]string{}
	base := c.h.RootPath(root)
	n := 0
	_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if n++; n > maxCgroupDirs {
			return filepath.SkipAll
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			rel, _ := filepath.Rel(base, p)
			ids[st.Ino] = filepath.Clean("/" + rel)
		}
		return nil
	})
	c.byRoot[root] = ids
	return ids[id]
}

// procCgroup writes what /proc/PID/cgroup said, from the ids, for a
// process that has exited: the v2 line and the v1 pids and memory lines.
func (c *cgroupPaths) procCgroup(r *rawFailure) string {
	c.mounts()
	var b strings.Builder
	if p := c.path(c.v2, r.CgroupV2); p != "" {
		b.WriteString("0::" + p + "\n")
	}
	if c.pids != "" && r.CgroupPids != r.CgroupV2 {
		if p := c.path(c.pids, r.CgroupPids); p != "" {
			b.WriteString("1:pids:" + p + "\n")
		}
	}
	if c.memory != "" && r.CgroupMemory != r.CgroupV2 {
		if p := c.path(c.memory, r.CgroupMemory); p != "" {
			b.WriteString("2:memory:" + p + "\n")
		}
	}
	return b.String()
}

// pidsCgroup is the hierarchy mount and the path of the process's pids
// cgroup: v1 pids when mounted, else v2.
func (c *cgroupPaths) pidsCgroup(p *pending) (root, rel string) {
	c.mounts()
	if !p.out.Exited {
		if b, err := c.h.ReadProc(strconv.Itoa(p.out.PID), "cgroup"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				parts := strings.SplitN(line, ":", 3)
				if len(parts) != 3 {
					continue
				}
				if c.pids != "" && slices.Contains(strings.Split(parts[1], ","), "pids") {
					return c.pids, parts[2]
				}
				if c.pids == "" && parts[0] == "0" && parts[1] == "" && c.v2 != "" {
					return c.v2, parts[2]
				}
			}
		}
	}
	if c.pids != "" {
		if p := c.path(c.pids, p.raw.CgroupPids); p != "" {
			return c.pids, p
		}
	}
	if c.v2 != "" {
		if p := c.path(c.v2, p.raw.CgroupV2); p != "" {
			return c.v2, p
		}
	}
	return "", ""
}
