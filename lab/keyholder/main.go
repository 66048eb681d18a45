// Command keyholder takes some of a uid's key quota for the lab:
// `keyholder N` joins a new session keyring, adds N small user keys to it,
// prints "holding N" and holds them until killed. Run as a dedicated uid,
// it leaves that uid room for only a few more keys, so that the lab reaches
// the quota with a handful of containers instead of two hundred.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: keyholder N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "keyholder: N must be a number >= 0")
		os.Exit(2)
	}
	// A session keyring belongs to the credentials of one thread: join it
	// and add the keys on the same one, or the keys are added by a thread
	// that does not possess the keyring (EACCES).
	runtime.LockOSThread()
	// A name of its own: joining by a name that exists joins that keyring.
	ring, err := unix.KeyctlJoinSessionKeyring(fmt.Sprintf("enospc-lab-keyholder-%d", os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyholder: join session keyring:", err)
		os.Exit(1)
	}
	for i := 0; i < n; i++ {
		if _, err := unix.AddKey("user", "k"+strconv.Itoa(i), []byte{1}, ring); err != nil {
			fmt.Fprintf(os.Stderr, "keyholder: add_key %d: %v\n", i, err)
			os.Exit(1)
		}
	}
	fmt.Printf("holding %d\n", n)
	for {
		unix.Pause()
	}
}
