//go:build amd64 || arm64

package trace

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Each of the two programs loads, attaches and counts a failure of
// another process: raw_tp is otherwise used only where tp_btf is refused.
// As cilium/ebpf's own tests do, it skips without root and fails where
// the kernel should support it.
func TestLoadAttachCount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root (CAP_BPF and CAP_PERFMON); the lab runs it as root")
	}
	if err := Supported(); err != nil {
		var ns *NotSupportedError
		if errors.As(err, &ns) && errors.Is(err, ebpf.ErrNotSupported) {
			t.Skipf("not supported on this host: %v", err)
		}
		t.Fatal(err)
	}
	for _, prog := range []string{tracerProgSysExitBtf, tracerProgSysExitRaw} {
		t.Run(prog, func(t *testing.T) {
			p, err := loadOne(prog)
			if err != nil {
				t.Fatalf("load and attach %s: %v", prog, err)
			}
			defer p.close()
			// cat at RLIMIT_NOFILE 3 cannot open its file: EMFILE.
			out, err := exec.Command("/bin/sh", "-c", "ulimit -n 3; exec cat /etc/hostname").CombinedOutput()
			if err == nil {
				t.Fatalf("cat did not fail: %s", out)
			}
			es, err := p.entries()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				v := e.val.raw()
				if e.key.err == uint32(unix.EMFILE) && v.Comm == "cat" {
					// The dynamic loader's first open (ld.so.cache) is the
					// first refused: the path is the first failure's.
					if v.Count < 1 || v.NofileCur != 3 || !v.HasPath || !strings.HasPrefix(v.Path, "/") {
						t.Errorf("%s: the failure is %+v, want count >= 1, RLIMIT_NOFILE 3, an absolute path", prog, v)
					}
					st, err := p.stats()
					if err != nil || st.Kept < 1 {
						t.Errorf("%s: counters %+v %v, want at least one kept", prog, st, err)
					}
					return
				}
			}
			t.Fatalf("%s: cat's EMFILE is not in the map (%d entries)", prog, len(es))
		})
	}
}
