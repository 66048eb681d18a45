// Command genlog writes a syslog-like log of the given size in MiB, one
// line in 10000 an error of a hidden limit, for scripts/bench-logs.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/enospc/enospc/logs"
)

func main() {
	mb, err := strconv.Atoi(os.Args[len(os.Args)-1])
	if len(os.Args) != 2 || err != nil || mb < 1 {
		fmt.Fprintln(os.Stderr, "usage: genlog MiB")
		os.Exit(2)
	}
	// 64 MiB at a time: the same bytes, repeated, whatever the size.
	block := logs.SyntheticLog(64<<20, 10000)
	for left := mb << 20; left > 0; left -= len(block) {
		if _, err := os.Stdout.Write(block[:min(left, len(block))]); err != nil {
			fmt.Fprintln(os.Stderr, "genlog:", err)
			os.Exit(1)
		}
	}
}
