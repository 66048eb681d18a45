// Package lab holds enospc's real fault reproductions: each limit driven to
// exhaustion on the real kernel with the real runtimes, the exact error
// captured, and `enospc check` asserted to name the limit and its holder.
// Run them as root with: go test -tags lab ./lab/...
//
//	lab/kernel   inodes, inotify, memory cgroups, cgroup v2 subtree limits, pids,
//	             ptys, epoll, fanotify, SysV IPC and POSIX queues, user and net
//	             namespaces, ephemeral ports, bridge ports, process limits, quota
//	lab/runtime  the keyring quota with runc and dockerd, leaked fifo dirs and
//	             cgroups with containerd, attribution through the CRI
//	lab/serve    enospc serve scraped by a real Prometheus whose shipped alert
//	             fires on a real exhaustion, and its page in headless Chromium
package lab
