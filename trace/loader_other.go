//go:build !amd64 && !arm64

package trace

import (
	"fmt"
	"runtime"
)

type probe struct{ attach string }

type fkey struct{ tgid, nr, err uint32 }

type entry struct {
	key fkey
	val rawFailure
}

func load() (*probe, error) {
	return nil, &NotSupportedError{Reason: fmt.Sprintf("the tracer is built for amd64 and arm64, not %s", runtime.GOARCH)}
}

func (p *probe) detach()                       {}
func (p *probe) close()                        {}
func (p *probe) entries() ([]entry, error)     { return nil, nil }
func (p *probe) take(fkey) (rawFailure, error) { return rawFailure{}, nil }
func (p *probe) stats() (Stats, error)         { return Stats{}, nil }
func (v *rawFailure) raw() rawFailure          { return *v }
