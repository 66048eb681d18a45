package trace

//go:generate go run mksysnames.go

//go:generate go tool bpf2go -cc clang -strip llvm-strip -target amd64,arm64 -type failure -type fold_key tracer bpf/trace.c -- -O2 -g -Wall -Werror -I/usr/include/bpf
