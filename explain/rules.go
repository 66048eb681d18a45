package explain

import (
	"sort"
	"strings"
)

// Candidate is one limit a message may point to, before the host is asked.
type Candidate struct {
	Limit      string
	Confidence float64
	Evidence   []string
}

// errno classes, from the words a C library, Go and Java print for them.
type errnos struct {
	nospc, dquot, mfile, nfile, again, nomem bool
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func classify(t string) errnos {
	var e errnos
	e.nospc = containsAny(t, "no space left on device", "enospc", "no space left", "errno=28", "errno 28", "os error 28")
	e.dquot = containsAny(t, "disk quota exceeded", "edquot", "quota exceeded", "errno=122", "os error 122")
	e.nfile = containsAny(t, "too many open files in system", "file-max", "file table overflow", "enfile", "errno=23", "os error 23")
	e.mfile = !e.nfile && containsAny(t, "too many open file", "emfile", "errno=24", "os error 24")
	e.again = containsAny(t, "resource temporarily unavailable", "eagain", "can't fork", "cannot fork", "try again", "errno=11", "os error 11")
	e.nomem = containsAny(t, "cannot allocate memory", "enomem")
	return e
}

// scorer accumulates candidates: the best confidence per limit, a little
// more for each further independent clue, and the evidence for each.
type scorer map[string]*Candidate

func (s scorer) add(limit string, conf float64, why string) {
	c := s[limit]
	if c == nil {
		s[limit] = &Candidate{Limit: limit, Confidence: conf, Evidence: []string{why}}
		return
	}
	if conf > c.Confidence {
		c.Confidence = min(conf+0.03, 0.99)
	} else {
		c.Confidence = min(c.Confidence+0.03, 0.99)
	}
	c.Evidence = append(c.Evidence, why)
}

// extraRules are the rules of limits kept in files of their own, added by
// their init functions (registerRule).
var extraRules []func(t string, e errnos, s scorer)

func registerRule(r func(t string, e errnos, s scorer)) { extraRules = append(extraRules, r) }

// Candidates ranks the limits a normalized message (see Normalize) points
// to, most likely first. Messages that name no error the catalog knows
// give none.
func Candidates(t string) []Candidate {
	if !plainLower(t) {
		return candidates(t, nil)
	}
	var found wordSet
	catalog().words.find(t, &found)
	return candidates(t, &found)
}

// candidates is Candidates, with the signatures prefiltered by the words
// found in t, or all tried when found is nil.
func candidates(t string, found *wordSet) []Candidate {
	e := classify(t)
	s := scorer{}

	// The keyring quota: runc's session keyring, add_key, keyctl.
	keyring := containsAny(t, "session key", "keyring", "add_key", "keyctl", "request_key")
	if keyring && (e.dquot || containsAny(t, "maxkeys", "maxbytes")) {
		s.add("keys.count", 0.8, "a keyring call failed with EDQUOT: the per-uid key quota (kernel.keys.maxkeys)")
		s.add("keys.bytes", 0.75, "the same quota counts bytes (kernel.keys.maxbytes), often the first to run out")
		s.add("leak.keyrings", 0.4, "keyrings of containers that no longer run fill the quota")
		if strings.Contains(t, "maxbytes") {
			s.add("keys.bytes", 0.9, "the message names maxbytes")
		}
		if strings.Contains(t, "maxkeys") {
			s.add("keys.count", 0.9, "the message names maxkeys")
		}
	}
	if e.dquot && !keyring {
		s.add("quota", 0.75, "EDQUOT from a file operation: a user, group or project quota of the filesystem")
		s.add("keys.count", 0.2, "EDQUOT is also the key quota's error")
	}

	// inotify.
	watches := containsAny(t, "inotify_add_watch", "file watchers", "inotify watch", "max_user_watches", "inotify resources exhausted", "watch limit", "watches limit", "number of watches",
		"unable to watch for file changes", "watch enospc", "fs_events", "tail_fs", "in_tail", "cannot register file")
	instances := containsAny(t, "inotify_init", "max_user_instances", "inotify instance", "fsnotify watcher", "inotify cannot be used", "new inotify", "fsnotify.newwatcher", "inotify.init",
		"initialize inotify", "recommended watcher", "directory watch", "filewatcher", "file watcher")
	switch {
	case watches && !e.mfile:
		s.add("inotify.watches", 0.9, "inotify_add_watch fails with ENOSPC when the uid's fs.inotify.max_user_watches is reached")
	case instances && (e.mfile || !e.nospc):
		s.add("inotify.instances", 0.9, "inotify_init fails with EMFILE when the uid's fs.inotify.max_user_instances is reached")
	case strings.Contains(t, "inotify") && e.mfile:
		s.add("inotify.instances", 0.85, "inotify with \"too many open files\": max_user_instances")
	case strings.Contains(t, "inotify") && e.nospc:
		s.add("inotify.watches", 0.85, "inotify with \"no space left on device\": max_user_watches")
	}

	// cgroups: mkdir under the cgroup filesystem.
	cgroupPath := containsAny(t, "/sys/fs/cgroup", "cgroup configuration", "cgroup.max.descendants", "cgroup.max.depth")
	if cgroupPath && e.nospc {
		// Live cgroups alone rarely reach 65535: dying ones (kmem
		// accounting, page cache) are what fills the id space in the field.
		s.add("cgroups.dying", 0.72, "mkdir of a memory cgroup fails with ENOSPC when the 65535 ids run out, which dying cgroups hold on hosts that churn containers")
		s.add("cgroups", 0.7, "the ids of live memory cgroups count too")
		s.add("leak.cgroups", 0.3, "leaked container cgroups hold ids too")
		if containsAny(t, "dying", "kmem", "memcg", "zombie cgroup") {
			s.add("cgroups.dying", 0.85, "the message points at dying cgroups or kmem accounting")
		}
	}
	if cgroupPath && e.again && containsAny(t, "mkdir", "create") {
		s.add("cgroups", 0.85, "mkdir of a cgroup fails with EAGAIN at cgroup.max.descendants or max.depth")
	}

	// Leaked containerd fifo directories on the /run tmpfs.
	if e.nospc && (containsAny(t, "/run/containerd/fifo", "containerd-fifo", "fifo") || (strings.Contains(t, "ctr:") && strings.Contains(t, "runtime create failed"))) {
		s.add("leak.fifo", 0.8, "creating a task's fifo fails with ENOSPC when /run is out of inodes, often from orphaned fifo directories")
		s.add("inodes", 0.6, "the /run tmpfs is out of inodes")
	} else if e.nospc && containsAny(t, " /run/", "\"/run/", "'/run/", "/var/run/", "/run/containerd", "/run/docker") && !cgroupPath {
		s.add("inodes", 0.55, "a file under /run, a tmpfs whose inodes are few")
		s.add("leak.fifo", 0.45, "orphaned containerd fifo directories are what usually fills /run")
		s.add("disk", 0.4, "or the /run tmpfs is out of space")
	}

	// pids and threads.
	forky := containsAny(t, "fork", "clone", "spawn", "exec ", "posix_spawn")
	thready := containsAny(t, "pthread_create", "native thread", "newosproc", "thread creation", "create thread", "thread.start", "new thread", "os thread")
	if containsAny(t, "pids.max", "pids limit", "pid_max", "fork rejected by pids controller", "pids controller", "tasksmax") {
		s.add("pids", 0.9, "the message names the pids limit")
	}
	if containsAny(t, "ulimit -u", "max user processes", "nproc", "max number of threads", "number of threads for user") {
		s.add("nproc", 0.9, "the message names the per-user process limit (RLIMIT_NPROC, ulimit -u), which counts threads")
	}
	if thready && (e.again || e.nomem || containsAny(t, "failed", "unable", "outofmemoryerror")) {
		// In containers a thread is refused most often by the pids
		// cgroup (--pids-limit, CRI-O's pids_limit, systemd's TasksMax).
		s.add("pids", 0.8, "creating a thread fails with EAGAIN at a pids cgroup's pids.max, the usual cap in containers")
		s.add("nproc", 0.75, "or at the uid's RLIMIT_NPROC (ulimit -u)")
		s.add("threads", 0.7, "or at kernel.threads-max")
	}
	if containsAny(t, "can't fork", "cannot fork") {
		s.add("pids", 0.75, "the shell could not fork: pids.max, pid_max or RLIMIT_NPROC")
	}
	if forky && !thready && (e.again || e.nomem) && !cgroupPath {
		s.add("pids", 0.75, "fork fails with EAGAIN when a pids cgroup's pids.max or pid_max is reached")
		s.add("nproc", 0.55, "or the uid's RLIMIT_NPROC")
		s.add("threads", 0.5, "or kernel.threads-max")
	}

	// File handles.
	if e.nfile {
		s.add("files", 0.9, "ENFILE: the host's fs.file-max is reached")
	}
	if e.mfile && !strings.Contains(t, "inotify") && !instances {
		// EMFILE is a per-process limit: RLIMIT_NOFILE, or the uid's
		// inotify instances, the one that containers on a busy node
		// share and hit.
		s.add("inotify.instances", 0.5, "inotify_init reports the uid's instance limit (fs.inotify.max_user_instances) as EMFILE, \"too many open files\"")
		s.add("files", 0.35, "or the process's own RLIMIT_NOFILE; fs.file-max gives ENFILE, \"in system\"")
	}

	// Mounts.
	if e.nospc && containsAny(t, "mount", "mounting") && !cgroupPath && !containsAny(t, "/run/containerd/fifo") {
		s.add("mounts", 0.5, "mount fails with ENOSPC when a mount namespace reaches fs.mount-max")
		s.add("disk", 0.3, "or the filesystem being written is full")
	}

	// Inodes and disk: what the message says was being written.
	if containsAny(t, "inodes", "no free inode", "out of inode", "ifree", "iused", "df -i", "inode table") {
		s.add("inodes", 0.9, "the message speaks of inodes")
	}
	if e.nospc && containsAny(t, "directory index full", "htree") {
		s.add("inodes", 0.7, "ext4's directory index is full: one huge directory")
	}
	if e.nospc && containsAny(t, "storage-opt", "project quota", "prjquota", "pquota") {
		s.add("quota", 0.8, "overlay2 with --storage-opt size on XFS reports its project quota as ENOSPC")
	}
	if e.nospc && !cgroupPath && containsAny(t, "could not extend file", "could not write", "error writing", "write error", "failed to write", "writing", "write ",
		"copy", "extract", "register layer", "unpack", "layer", "pull", "download", "npm err", "pip", "dpkg", "apt", "database", "wal ",
		"log file", "journal", "tmp", "temp", "cache", "image", "docker build", "git", "failed to create", "cannot create", "could not create", "elasticsearch", "flood stage", "disk watermark", "disk full", "disk is full") {
		s.add("disk", 0.6, "data was being written: the filesystem may really be full (df -h)")
		s.add("inodes", 0.45, "or out of inodes (df -i)")
	}
	if containsAny(t, "flood stage", "disk watermark", "disk full", "disk is full", "filesystem full", "file system full", "could not extend file", "check free disk space") {
		s.add("disk", 0.85, "the message says the disk itself is full")
	}
	if containsAny(t, "could not resize shared memory", "/dev/shm") && e.nospc {
		s.add("disk", 0.85, "/dev/shm is full: a tmpfs of 64 MiB in a docker container unless --shm-size (or the pod's emptyDir medium Memory) says more")
	}
	if containsAny(t, "cannot touch", "touch:") && e.nospc {
		s.add("inodes", 0.62, "creating an empty file fails with ENOSPC when the filesystem has no free inode")
	}

	// A bare ENOSPC: every limit that produces it, the common ones first.
	if e.nospc && len(s) == 0 {
		s.add("disk", 0.4, "\"no space left on device\" alone: a full filesystem is the common cause")
		s.add("inodes", 0.35, "or one out of inodes")
		s.add("inotify.watches", 0.25, "inotify_add_watch reports its watch limit as ENOSPC")
		s.add("cgroups", 0.2, "mkdir of a cgroup reports exhausted memory cgroup ids as ENOSPC")
		s.add("leak.fifo", 0.15, "orphaned fifo directories exhaust /run's inodes")
		s.add("mounts", 0.1, "mount reports fs.mount-max as ENOSPC")
	}

	for _, r := range extraRules {
		r(t, e, s)
	}

	// The catalog's own signatures back a candidate up, or add one the
	// rules above do not know (but for the generic ENOSPC signatures of
	// disk and inodes, whose rules are above).
	for _, g := range catalog().groups {
		for i := range g.sigs {
			if sig := &g.sigs[i]; !sig.may(found) || !sig.re.MatchString(t) {
				continue
			}
			why := "matches the catalog's signature for " + g.limit
			if c := s[g.limit]; c != nil {
				c.Confidence = min(c.Confidence+0.05, 0.99)
				c.Evidence = append(c.Evidence, why)
			} else if g.limit != "disk" && g.limit != "inodes" {
				s.add(g.limit, 0.55, why)
			}
			break
		}
	}

	out := make([]Candidate, 0, len(s))
	for _, c := range s {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].Limit < out[j].Limit
	})
	return out
}
