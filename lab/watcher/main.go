// Command watcher holds inotify watches for the lab: `watcher N DIR` makes
// N directories under DIR, watches each from one inotify instance, prints
// "watching N" and then holds them until killed. The lab builds it static
// and runs it inside containers, whose images have no such tool.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: watcher N DIR")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "watcher: N must be a positive number")
		os.Exit(2)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watcher: inotify_init1:", err)
		os.Exit(1)
	}
	for i := 0; i < n; i++ {
		dir := filepath.Join(os.Args[2], strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "watcher:", err)
			os.Exit(1)
		}
		if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
			fmt.Fprintf(os.Stderr, "watcher: inotify_add_watch %s: %v\n", dir, err)
			os.Exit(1)
		}
	}
	fmt.Printf("watching %d\n", n)
	for {
		unix.Pause()
	}
}
