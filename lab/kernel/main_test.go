//go:build lab

package kernel

import (
	"testing"

	"github.com/enospc/enospc/lab/labkit"
)

func TestMain(m *testing.M) { labkit.Main(m) }
