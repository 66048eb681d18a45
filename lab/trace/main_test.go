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
