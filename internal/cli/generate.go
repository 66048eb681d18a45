package cli

// `go generate ./...` regenerates everything derived in this repository,
// in this order: deploy's files (deploy/seccomp.go's directive), then the
// fixture host trees, then the goldens of every command run on them.

//go:generate go -C ../.. run ./testdata/hosts
//go:generate go test -run Golden -update .
