package explain

// Rules for the per-process limits RLIMIT_NOFILE and vm.max_map_count
// (RLIMIT_NPROC is with the thread rules in rules.go).

func init() {
	registerRule(func(t string, e errnos, s scorer) {
		if containsAny(t, "max_map_count", "max virtual memory areas", "map count") {
			s.add("mapcount", 0.92, "the message names vm.max_map_count, the mappings one process may have")
		}
		nofile := containsAny(t, "ulimit -n", "nofile", "rlimit_nofile", "max open files", "limitnofile")
		switch {
		case e.mfile && nofile:
			s.add("files.process", 0.92, "EMFILE with the process's RLIMIT_NOFILE named")
		case e.mfile && !containsAny(t, "inotify", "fsnotify", "watcher", "directory watch"):
			s.add("files.process", 0.45, "EMFILE is the process's own RLIMIT_NOFILE, unless it came from inotify_init")
		}
	})
}
