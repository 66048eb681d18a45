package fix

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits"
)

// kernelKeyring looks a session keyring up in the kernel rather than in
// the text of /proc/keys, where a key description holding a newline can
// forge a line: each /proc/keys line (read as uid) that names _ses.<id>
// gives a serial, and the kernel describes that serial (keyctl(2)
// KEYCTL_DESCRIBE, as uid) as "type;uid;gid;perm;description", the owner
// before the description, where no description can reach it.
func kernelKeyring(h *host.Host) keyringCheck {
	return func(id string, uid int) error {
		if !h.Live() {
			return fmt.Errorf("not the live kernel: the keyring cannot be looked up")
		}
		want := limits.SessionKeyring(id)
		b, err := host.ReadFileAsUID(h.ProcPath("keys"), uid)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, want) {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 9 {
				continue
			}
			serial, err := strconv.ParseUint(f[0], 16, 31)
			if err != nil {
				continue
			}
			desc, err := describeKeyAs(int(serial), uid)
			if err != nil {
				continue
			}
			p := strings.SplitN(desc, ";", 5)
			if len(p) == 5 && p[0] == "keyring" && p[1] == strconv.Itoa(uid) && p[4] == want {
				return nil
			}
		}
		return fmt.Errorf("the kernel has no such keyring")
	}
}

// describeKeyAs describes key serial with the filesystem uid set to uid on
// this thread only: a key is viewable by its owner, not by root.
func describeKeyAs(serial, uid int) (string, error) {
	var desc string
	err := host.AsFSUID(uid, func() error {
		var err error
		desc, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, serial)
		return err
	})
	return desc, err
}
