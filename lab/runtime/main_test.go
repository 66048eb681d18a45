//go:build lab

package runtime

import (
	"fmt"
	"os"
	"testing"

	"github.com/enospc/enospc/lab/labkit"
)

func TestMain(m *testing.M) { labkit.Main(m) }

// labNamespace is the containerd namespace of this test process's
// containers, and so the cgroup runc puts them below.
var labNamespace = fmt.Sprintf("enospc-lab-%d", os.Getpid())

// labContainerd is the runtime lab's containerd: labkit's private one in
// labNamespace, logging at info for the failures it is shown in.
var labContainerd = labkit.ContainerdOptions{Namespace: labNamespace, LogLevel: "info"}

// startContainerd starts a private containerd of labContainerd's shape.
func startContainerd(t testing.TB) *labkit.Containerd {
	t.Helper()
	return labkit.StartContainerdWith(t, labContainerd)
}
