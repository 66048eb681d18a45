package census

import (
	"errors"

	"golang.org/x/sys/unix"
)

// maxUserNSDepth is the kernel's limit on user namespace nesting.
const maxUserNSDepth = 32

// userNSOwner returns the uid that the initial user namespace's per-user
// counters charge for a process in the user namespace behind path. The
// kernel charges every ancestor level, and at the initial namespace the
// charged uid is the owner of the top-level child namespace, so the walk
// climbs with NS_GET_PARENT to the namespace whose parent is the initial
// one and asks for its owner (NS_GET_OWNER_UID).
func userNSOwner(path string, initIno uint64) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	for depth := 0; depth < maxUserNSDepth; depth++ {
		parent, err := unix.IoctlRetInt(fd, unix.NS_GET_PARENT)
		if err != nil {
			unix.Close(fd)
			return 0, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(parent, &st); err != nil {
			unix.Close(parent)
			unix.Close(fd)
			return 0, err
		}
		if st.Ino == initIno {
			unix.Close(parent)
			uid, err := unix.IoctlGetUint32(fd, unix.NS_GET_OWNER_UID)
			unix.Close(fd)
			return int(uid), err
		}
		unix.Close(fd)
		fd = parent
	}
	unix.Close(fd)
	return 0, errors.New("user namespace nested deeper than the kernel allows")
}
