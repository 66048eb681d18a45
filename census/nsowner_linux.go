package census

import (
	"os"

	"golang.org/x/sys/unix"
)

// userNSOwner asks the kernel (ioctl NS_GET_OWNER_UID) which uid created the
// user namespace behind path.
func userNSOwner(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	uid, err := unix.IoctlGetUint32(int(f.Fd()), unix.NS_GET_OWNER_UID)
	if err != nil {
		return 0, err
	}
	return int(uid), nil
}
