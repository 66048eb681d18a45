// Command base is the baseline of size.sh: what every store program
// shares (fmt, os, time).
package main

import (
	"fmt"
	"os"
	"time"
)

func main() { fmt.Fprintln(os.Stderr, time.Now(), len(os.Args)) }
