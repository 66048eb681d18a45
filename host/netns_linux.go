package host

import "golang.org/x/sys/unix"

// ReadInNetNS reads files (the sysctls under /proc/sys/net) as a thread of
// the network namespace nsPath names: ReadInNamespace for CLONE_NEWNET.
func ReadInNetNS(nsPath string, paths ...string) (map[string][]byte, error) {
	return ReadInNetNSOf(nsPath, 0, paths...)
}

// ReadInNetNSOf is ReadInNetNS that first checks that nsPath is the
// namespace with inode ino (0: any), so that a pid reused since the census
// does not send the reads to another namespace.
func ReadInNetNSOf(nsPath string, ino uint64, paths ...string) (map[string][]byte, error) {
	return (*Host)(nil).ReadInNamespace(nsPath, unix.CLONE_NEWNET, ino, paths...)
}
