// Command genlog writes a syslog-like log of the given size in MiB, one
// line in 10000 an error of a hidden limit, for scripts/bench-logs; with
// "dense", every line an error (logs.DenseLog).
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/enospc/enospc/logs"
)

func main() {
	args := append(os.Args[1:], "", "") // MiB, "dense" or ""
	dense := args[1] == "dense"
	mb, err := strconv.Atoi(args[0])
	if len(os.Args) > 3 || (args[1] != "" && !dense) || err != nil || mb < 1 {
		fmt.Fprintln(os.Stderr, "usage: genlog MiB [dense]")
		os.Exit(2)
	}
	// 64 MiB at a time: the same bytes, repeated, whatever the size.
	block := logs.SyntheticLog(64<<20, 10000)
	if dense {
		block = logs.DenseLog(64 << 20)
	}
	for left := mb << 20; left > 0; left -= len(block) {
		if _, err := os.Stdout.Write(block[:min(left, len(block))]); err != nil {
			fmt.Fprintln(os.Stderr, "genlog:", err)
			os.Exit(1)
		}
	}
}
