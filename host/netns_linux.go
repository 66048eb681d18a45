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

// InNetNSOf runs fn as a thread of the network namespace nsPath names,
// when it is the namespace with inode ino (0: any): InNamespace for
// CLONE_NEWNET. Sockets fn opens belong to that namespace.
func InNetNSOf(nsPath string, ino uint64, fn func() error) error {
	return (*Host)(nil).InNamespace(nsPath, unix.CLONE_NEWNET, ino, fn)
}
