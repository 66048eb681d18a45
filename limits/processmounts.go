package limits

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/enospc/enospc/host"
)

// ProcessMounts reads the mount table of pid's mount namespace,
// <proc>/PID/mountinfo: a process in a container or a private namespace
// sees filesystems the host's table does not list.
func ProcessMounts(h *host.Host, pid int) ([]Mount, error) {
	b, err := h.ReadProc(strconv.Itoa(pid), "mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return parseMountInfo(bytes.NewReader(b))
}

// MountScope is the scope of a filesystem's disk and inodes rows:
// "MOUNTPOINT (FSTYPE SOURCE)".
func MountScope(m Mount) string { return mountScope(m) }
