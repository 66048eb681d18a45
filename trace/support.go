package trace

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// NotSupportedError says why the tracer cannot run on this host: the
// second of the three outcomes (it runs; it is not supported here, skip
// it with the reason; anything else is an error).
type NotSupportedError struct {
	Reason string
}

func (e *NotSupportedError) Error() string {
	return "not supported here: " + e.Reason + "; `enospc check` shows what is full now and `enospc logs` the failures already logged"
}

// Is makes errors.Is(err, ebpf.ErrNotSupported) true, as cilium/ebpf's
// own feature probes are.
func (e *NotSupportedError) Is(target error) bool { return target == ebpf.ErrNotSupported }

// Capability bits of /proc/self/status CapEff (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Supported says whether the tracer can run here, reading only what does
// not need loading anything: the architecture, the kernel's BTF and the
// capabilities. nil does not promise the load will succeed (a kernel with
// BPF disabled by a security module says so only then).
func Supported() error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return &NotSupportedError{Reason: "the tracer is built for amd64 and arm64, not " + runtime.GOARCH}
	}
	if _, err := btf.LoadKernelSpec(); err != nil {
		return &NotSupportedError{Reason: fmt.Sprintf("the kernel has no BTF (/sys/kernel/btf/vmlinux: %v); the tracer needs CONFIG_DEBUG_INFO_BTF (kernel 5.8 or later)", err)}
	}
	eff, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return nil
	}
	return &NotSupportedError{Reason: "it needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before kernel 5.8); run it as root or grant them"}
}

func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// classifyLoadError turns a refused load into the reason an operator can
// act on. cilium/ebpf adds a hint about RLIMIT_MEMLOCK to every EPERM;
// since 5.11 memory is charged to the cgroup and the hint misleads, so
// the reason says what is known instead.
func classifyLoadError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return &NotSupportedError{Reason: "the kernel refused to load the program (EPERM): it needs CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before 5.8), and a security module (lockdown, SELinux) may forbid BPF: " + err.Error()}
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOSYS):
		return &NotSupportedError{Reason: "the kernel lacks what the program needs (BPF, tp_btf or raw_tp at sys_exit): " + err.Error()}
	}
	return err
}
