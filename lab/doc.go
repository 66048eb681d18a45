// Package lab holds enospc's real fault reproductions: each limit driven to
// exhaustion on the real kernel with the real runtimes, the exact error
// captured, and `enospc check` asserted to name the limit and its holder.
// Run them as root with: go test -tags lab ./lab/...
//
//	lab/kernel   inodes, inotify, memory cgroups, cgroup v2 subtree limits, pids
//	lab/runtime  the keyring quota with runc, leaked fifo dirs with containerd
package lab
