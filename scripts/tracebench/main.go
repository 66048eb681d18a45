// Command tracebench drives the syscalls behind the figures of `enospc
// trace` in the README (scripts/bench-trace runs it):
//
//	tracebench getpid N     N getpid(2) calls: ns per call
//	tracebench fail N P     N failing open(2) calls (EMFILE at a lowered
//	                        RLIMIT_NOFILE) on each of P threads: ns per call
//	                        and failures per second
//
// Each prints one line "ns_per_call CALLS PER_SECOND".
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tracebench getpid N | fail N P")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "tracebench: N must be a positive number")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "getpid":
		runtime.LockOSThread()
		start := time.Now()
		for i := 0; i < n; i++ {
			unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		}
		report(time.Since(start), n, 1)
	case "fail":
		p := 1
		if len(os.Args) > 3 {
			p, _ = strconv.Atoi(os.Args[3])
		}
		fail(n, max(p, 1))
	default:
		fmt.Fprintln(os.Stderr, "tracebench: unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func report(d time.Duration, calls, threads int) {
	per := float64(d.Nanoseconds()) / float64(calls/threads)
	fmt.Printf("%.1f %d %.0f\n", per, calls, float64(calls)/d.Seconds())
}

// fail makes open(2) fail with EMFILE: RLIMIT_NOFILE is lowered to the
// descriptors already open, so every open is refused without opening.
func fail(n, threads int) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracebench:", err)
		os.Exit(1)
	}
	lim := uint64(len(fds)) + 64
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Fprintln(os.Stderr, "tracebench: setrlimit:", err)
		os.Exit(1)
	}
	// Fill the table up to the limit, so that every open below fails.
	for {
		if _, err := unix.Open("/dev/null", unix.O_RDONLY, 0); err != nil {
			break
		}
	}
	path, _ := unix.BytePtrFromString("/dev/null")
	cwd := unix.AT_FDCWD
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for i := 0; i < n; i++ {
				unix.RawSyscall6(unix.SYS_OPENAT, uintptr(cwd), uintptrOf(path), unix.O_RDONLY, 0, 0, 0)
			}
		}()
	}
	wg.Wait()
	report(time.Since(start), n*threads, threads)
}
