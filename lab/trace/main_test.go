//go:build lab

package trace

import (
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/lab/labkit"
)

// helperMode, when set, makes the test binary a helper that drives one
// limit to a refusal, says "refused" and stays alive for the tracer to
// look at it.
const helperMode = "ENOSPC_TRACE_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperMode) {
	case "":
		labkit.Main(m)
	case "inotify":
		// inotify_init1 until the uid's max_user_instances refuses.
		for i := 0; i < 100000; i++ {
			if _, err := unix.InotifyInit1(unix.IN_CLOEXEC); err != nil {
				fmt.Printf("refused after %d: %v\n", i, err)
				break
			}
		}
	case "keys":
		// add_key in a session keyring of its own until the uid's key
		// quota (kernel.keys.maxkeys, maxbytes) refuses.
		if _, err := unix.KeyctlJoinSessionKeyring("enospc-trace"); err != nil {
			fmt.Println("join session keyring:", err)
			os.Exit(1)
		}
		payload := make([]byte, 200)
		for i := 0; i < 10000; i++ {
			if _, err := unix.AddKey("user", fmt.Sprintf("enospc-trace-%d", i), payload, unix.KEY_SPEC_SESSION_KEYRING); err != nil {
				fmt.Printf("refused after %d: %v\n", i, err)
				break
			}
		}
	case "watches":
		// inotify_add_watch on new directories until the watches limit
		// refuses.
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		dir, err2 := os.MkdirTemp("", "enospc-trace-watches-")
		if err != nil || err2 != nil {
			fmt.Println("inotify_init1 or mkdir:", err, err2)
			os.Exit(1)
		}
		for i := 0; i < 1000; i++ {
			d := fmt.Sprintf("%s/%d", dir, i)
			os.Mkdir(d, 0o755)
			if _, err := unix.InotifyAddWatch(fd, d, unix.IN_CREATE); err != nil {
				fmt.Printf("refused after %d: %v\n", i, err)
				break
			}
		}
	case "nofile":
		// open until RLIMIT_NOFILE refuses.
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 16, Max: 16}); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(1)
		}
		for i := 0; i < 100; i++ {
			if _, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				fmt.Printf("refused after %d: %v\n", i, err)
				break
			}
		}
	}
	time.Sleep(4 * time.Second)
	os.Exit(0)
}
