//go:build !amd64 && !arm64

package trace

// The tracer runs on amd64 and arm64; elsewhere it says so before
// loading anything, and no syscall has a name.
var sysnames = map[uint32]string{}
