package limits

// Blocks and inodes of every real filesystem (statfs(2)).
//
// `df -h` shows blocks; a filesystem is just as full when its inodes run
// out, and tmpfs (/run, /dev/shm, container shm mounts) has a fixed
// nr_inodes set at mount time. containerd#2421: a create/delete loop left one
// fifo directory (4 inodes) per container in /run/containerd/fifo until /run
// held 505066 of its 505078 inodes while 354M of 395M were free, and every
// container start failed with "no space left on device".
//
// Pseudo filesystems (proc, sysfs, cgroup, ...) are skipped; overlay mounts
// report their upper filesystem's numbers and are skipped in favour of it;
// bind mounts of one device are reported once, at the shortest mount point.

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Disk   ID = "disk"
	Inodes ID = "inodes"
)

var filesystemsFamily = Family{
	Name: "filesystems",
	Limits: []Limit{
		{
			ID:    Disk,
			Clues: diskClues,
			Title: "filesystem blocks",
			Unit:  "bytes",
			Doc:   "Blocks in use on a filesystem, as df -h shows them (used against used+available, so root's reserved blocks count as full).",
			Signatures: []*Signature{
				NewSignature(`(?i)no space left on device`),
				NewSignature(`(?i)\bENOSPC\b`),
				NewSignature(`(?i)(disk|device|filesystem) (is )?full`),
				NewSignature(`(?i)could not extend file|check free disk space`), // PostgreSQL
				NewSignature(`(?i)could not resize shared memory segment`),      // PostgreSQL on /dev/shm
			},
			Remedy: diskRemedy,
		},
		{
			ID:    Inodes,
			Clues: inodesClues,
			Title: "filesystem inodes",
			Unit:  "inodes",
			Doc:   "Inodes in use on a filesystem, as df -i shows them. tmpfs gets a fixed number at mount time (nr_inodes); many small files or leaked directories exhaust it while df -h shows room.",
			Signatures: []*Signature{
				NewSignature(`(?i)no space left on device`),
				NewSignature(`(?i)\bENOSPC\b`),
			},
			Remedy: inodesRemedy,
		},
	},
	Read: readFilesystems,
}

// pseudoFS are filesystem types that hold no user data, or whose numbers
// are those of another mount.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "mqueue": true,
	"debugfs": true, "tracefs": true, "securityfs": true, "pstore": true, "bpf": true, "configfs": true,
	"fusectl": true, "binfmt_misc": true, "autofs": true, "nsfs": true, "rpc_pipefs": true,
	"selinuxfs": true, "efivarfs": true, "ramfs": true, "squashfs": true, "iso9660": true,
	"overlay": true, "aufs": true, "hugetlbfs": true, "nfsd": true, "fuse.lxcfs": true,
}

func readFilesystems(env *Env) []Finding {
	mounts, err := env.Mounts()
	if err != nil {
		return []Finding{unknown("disk", "all filesystems", "bytes", err), unknown("inodes", "all filesystems", "inodes", err)}
	}
	mounts = realFilesystems(mounts)
	rows := make([][]Finding, len(mounts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, m := range mounts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rows[i] = statMount(env, m)
		}()
	}
	wg.Wait()
	var out []Finding
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// realFilesystems drops pseudo filesystems and mounts hidden under a later
// mount on the same mount point (statfs of the path reaches only the top
// one), and keeps one mount per device, the one with the shortest mount
// point (bind mounts come after).
func realFilesystems(mounts []Mount) []Mount {
	top := map[string]int{}
	for i, m := range mounts {
		top[m.MountPoint] = i
	}
	byDev := map[string]Mount{}
	for i, m := range mounts {
		if top[m.MountPoint] != i {
			continue
		}
		// An overlay at / is the host's root itself (kind nodes,
		// immutable OSes); elsewhere it repeats its upper filesystem.
		if pseudoFS[m.FSType] && !(m.FSType == "overlay" && m.MountPoint == "/") {
			continue
		}
		prev, ok := byDev[m.Device]
		if !ok || len(m.MountPoint) < len(prev.MountPoint) {
			byDev[m.Device] = m
		}
	}
	out := make([]Mount, 0, len(byDev))
	for _, m := range byDev {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MountPoint < out[j].MountPoint })
	return out
}

func mountScope(m Mount) string {
	return fmt.Sprintf("%s (%s %s)", m.MountPoint, m.FSType, m.Source)
}

func statMount(env *Env, m Mount) []Finding {
	scope := mountScope(m)
	st, err := env.Host.Statfs(env.Ctx, env.Host.RootPath(m.MountPoint))
	if err != nil {
		err = fmt.Errorf("statfs %s: %w", m.MountPoint, err)
		return []Finding{unknown("disk", scope, "bytes", err), unknown("inodes", scope, "inodes", err)}
	}
	bs := uint64(st.BlockSize)
	used := (st.Blocks - min(st.BlocksFree, st.Blocks)) * bs
	owner := mountOwner(m.MountPoint)
	holders := func(n uint64) []Consumer {
		if owner == nil {
			return []Consumer{}
		}
		c := *owner
		c.Count = int64(n)
		return []Consumer{c}
	}
	out := []Finding{{Limit: "disk", Scope: scope, Used: int64(used), Max: int64(used + st.BlocksAvail*bs), Unit: "bytes", Consumers: holders(used), mountPoint: m.MountPoint}}
	if st.Files > 0 {
		iused := st.Files - min(st.FilesFree, st.Files)
		out = append(out, Finding{Limit: "inodes", Scope: scope, Used: int64(iused), Max: int64(st.Files), Unit: "inodes", Consumers: holders(iused), mountPoint: m.MountPoint})
	}
	return out
}

// mountOwner names the container or pod a filesystem belongs to, from
// where the runtime mounts it: a docker container's /dev/shm
// (.../containers/<id>/mounts/shm), a CRI sandbox's
// (.../io.containerd.grpc.v1.cri/sandboxes/<id>/shm), a pod's memory
// emptyDir (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~empty-dir/).
// Attribution then gives it its name, runtime and pod.
func mountOwner(mountPoint string) *Consumer {
	parts := strings.Split(mountPoint, "/")
	for i, p := range parts {
		switch {
		case p == "containers" && i+3 < len(parts) && parts[i+2] == "mounts" && parts[i+3] == "shm":
			return &Consumer{Name: "/dev/shm of container", Container: parts[i+1]}
		case p == "sandboxes" && i+2 < len(parts) && parts[i+2] == "shm" && i > 0 && strings.Contains(parts[i-1], "cri"):
			return &Consumer{Name: "/dev/shm of pod sandbox", Container: parts[i+1]}
		case p == "pods" && i+3 < len(parts) && parts[i+2] == "volumes" && strings.HasPrefix(parts[i+3], "kubernetes.io~empty-dir"):
			name := "emptyDir"
			if i+4 < len(parts) {
				name += " " + parts[i+4]
			}
			return &Consumer{Name: name + " of pod", PodUID: parts[i+1]}
		}
	}
	return nil
}

func mountPointOf(scope string) string {
	for i := 0; i < len(scope); i++ {
		if scope[i] == ' ' && i+1 < len(scope) && scope[i+1] == '(' {
			return scope[:i]
		}
	}
	return scope
}

// filesystem is the mount point of a disk or inodes row.
func (u Finding) filesystem() string {
	if u.mountPoint != "" {
		return u.mountPoint
	}
	return mountPointOf(u.Scope)
}

func diskRemedy(u Finding) []string {
	mp := u.filesystem()
	for _, c := range u.Consumers {
		switch {
		case strings.HasPrefix(c.Name, "/dev/shm of"):
			name := c.ContainerName
			if name == "" {
				name = c.Container
			}
			return []string{
				fmt.Sprintf("the /dev/shm of container %s is full (64 MiB unless set): find what it keeps there (shared memory segments, PostgreSQL, browsers), or give it more: docker run --shm-size=1g, or a pod's emptyDir with medium Memory and a sizeLimit", name),
				fmt.Sprintf("now, without a restart: mount -o remount,size=1g %s", quote.Shell(mp)),
			}
		case strings.HasPrefix(c.Name, "emptyDir"):
			return []string{fmt.Sprintf("the pod's %s is full: raise its sizeLimit, or find what it keeps: du -xh --max-depth=2 %s | sort -h | tail", c.Name, quote.Shell(mp))}
		}
	}
	return []string{
		fmt.Sprintf("find what fills it: du -xh --max-depth=2 %s | sort -h | tail", quote.Shell(mp)),
		"on a container host: docker system df, docker system prune, crictl rmi --prune; rotate or cap container logs",
	}
}

func inodesRemedy(u Finding) []string {
	mp := u.filesystem()
	return []string{
		fmt.Sprintf("find the directories with the most entries: du -x --inodes --max-depth=3 %s | sort -n | tail", quote.Shell(mp)),
		"under /run look for leaked containerd fifo directories (leak.fifo in this report)",
		fmt.Sprintf("for tmpfs, more inodes now: mount -o remount,nr_inodes=N %s", quote.Shell(mp)),
	}
}

// diskClues are the words and facts of an error message that point to disk (explain).
var diskClues = []clue.Clue{
	{Errno: clue.ENOSPC, Op: clue.OpWrite, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock, NotObj: clue.ObjCgroup, Prior: 0.6,
		Why: "data was being written when the filesystem said ENOSPC: in the field a full filesystem is the common cause (df -h)"},
	{Errno: clue.ENOSPC, Op: clue.OpCreate | clue.OpMkdir, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock | clue.OpMount, NotObj: clue.ObjCgroup | clue.ObjSmall, Prior: 0.5,
		Why: "creating a file or directory failed with ENOSPC: a full filesystem, or one out of inodes"},
	{Errno: clue.ENOSPC, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock | clue.OpMount | clue.OpMkdir | clue.OpInotify, NotObj: clue.ObjCgroup, Prior: 0.45,
		Why: "\"no space left on device\" alone: a full filesystem is the common cause"},
	{Errno: clue.ENOSPC, Obj: clue.ObjLog, Prior: 0.7,
		Why: "logs were being written: log volumes fill up"},
	{Words: []string{"disk full", "disk is full", "filesystem full", "file system full", "could not extend file", "check free disk space", "flood stage", "disk watermark", "ephemeral-storage", "diskpressure", "disk space error", "not enough space", "insufficient disk space"}, Prior: 0.86,
		Why: "the message says the disk itself is full (kubelet's ephemeral-storage eviction counts the node's filesystem)"},
	{Obj: clue.ObjShm, Words: []string{"bus error", "insufficient shared memory", "out of shared memory", "raise your shared memory limit", "could not resize shared memory"}, Prior: 0.86,
		Why: "/dev/shm is full: a tmpfs of 64 MiB in a docker container unless --shm-size (PyTorch's DataLoader passes tensors through it)"},
	{Prog: clue.ProgPyTorch, Words: []string{"bus error"}, Prior: 0.8,
		Why: "a DataLoader worker killed by a bus error: its tensors go through /dev/shm, which is full (pytorch#5040)"},
	{Errno: clue.ENOSPC, Obj: clue.ObjShm, Prior: 0.8,
		Why: "a file of the /dev/shm tmpfs could not grow: the tmpfs is full"},
}

// inodesClues are the words and facts of an error message that point to inodes (explain).
var inodesClues = []clue.Clue{
	{Words: []string{"inodes", "no free inode", "out of inode", "ifree", "iused", "df -i", "inode table"}, Prior: 0.9,
		Why: "the message speaks of inodes"},
	{Errno: clue.ENOSPC, Obj: clue.ObjSmall, NotOp: clue.OpWatch | clue.OpInotify, Prior: 0.55,
		Why: "a tree of many small files (node_modules, caches, git objects) was being created: such trees run out of inodes before blocks"},
	{Errno: clue.ENOSPC, Op: clue.OpCreate | clue.OpMkdir, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock | clue.OpMount, NotObj: clue.ObjCgroup, Prior: 0.45,
		Why: "creating a file takes an inode: ENOSPC there is often a filesystem out of inodes (df -i)"},
	{Errno: clue.ENOSPC, Words: []string{"cannot touch", "touch:"}, Prior: 0.62,
		Why: "creating an empty file fails with ENOSPC when the filesystem has no free inode"},
	{Errno: clue.ENOSPC, Obj: clue.ObjRun, NotObj: clue.ObjCgroup, Prior: 0.55,
		Why: "a file under /run, a tmpfs whose inodes are few"},
	{Errno: clue.ENOSPC, Words: []string{"directory index full", "htree"}, Prior: 0.7,
		Why: "ext4's directory index is full: one huge directory"},
	{Errno: clue.ENOSPC, NotOp: clue.OpWatch | clue.OpPty | clue.OpUnshare | clue.OpKeyring | clue.OpShmget | clue.OpSemget | clue.OpMsgget | clue.OpMqOpen | clue.OpEpoll | clue.OpCgAttach | clue.OpLock | clue.OpInotify, NotObj: clue.ObjCgroup, Prior: 0.36,
		Why: "or the filesystem is out of inodes (df -i)"},
}
