package check

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/enospc/enospc/host"
)

// PersistFile is where `enospc fix --persist` keeps the sysctls it raised.
const PersistFile = "/etc/sysctl.d/90-enospc.conf"

// Drift compares the running value of every sysctl in the host's
// PersistFile with the value persisted there: a note for each that is
// lower now (someone lowered it, or a reboot lost it and nothing applied
// the file).
func Drift(h *host.Host) []string {
	b, err := host.ReadFile(h.RootPath(PersistFile))
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name, want := strings.TrimSpace(k), strings.TrimSpace(v)
		wantN, err := strconv.ParseInt(want, 10, 64)
		if err != nil {
			continue
		}
		cur, err := h.SysctlInt(name)
		if err != nil {
			out = append(out, fmt.Sprintf("%s is persisted as %d in %s but cannot be read: %v", name, wantN, PersistFile, err))
			continue
		}
		if cur < wantN {
			out = append(out, fmt.Sprintf("%s is %d running but %d in %s: lowered since, or the file was not applied (sysctl --system)", name, cur, wantN, PersistFile))
		}
	}
	return out
}
