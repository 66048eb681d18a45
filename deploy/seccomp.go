package deploy

import (
	"bytes"
	"encoding/json"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate go run ./gen

// SeccompFile is the generated seccomp profile of the enospc container,
// relative to this directory: for a Localhost seccompProfile
// (kubernetes/seccomp/README.md).
const SeccompFile = "kubernetes/seccomp/enospc.json"

// SeccompCapabilities is the enospc container's bounding set: the
// capabilities enospc.yaml adds, every other one dropped. The runtimes'
// default profiles allow syscalls by it (setns, quotactl, clone with
// namespace flags need CAP_SYS_ADMIN there).
var SeccompCapabilities = []string{"CAP_DAC_READ_SEARCH", "CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}

// SeccompProfile is containerd's default profile (what its CRI plugin
// installs for RuntimeDefault) for SeccompCapabilities, and keyctl(2)
// KEYCTL_DESCRIBE: enospc confirms every /proc/keys line with the kernel's
// description of its serial (limits/keys.go verifyKeys; fix's keyring
// check too), and containerd's profile refuses keyctl altogether. No other
// keyctl operation, and neither add_key(2) nor request_key(2): enospc never
// makes, links or changes a key.
//
// containerd's profile depends on the architecture it is built for (the
// architectures and a few arch-only syscalls) and on the running kernel
// (ptrace and process_vm_readv from 4.8 on): the committed file is amd64's,
// generated on a kernel after 4.8.
func SeccompProfile() *specs.LinuxSeccomp {
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding:  SeccompCapabilities,
		Effective: SeccompCapabilities,
		Permitted: SeccompCapabilities,
	}}}
	p := seccomp.DefaultProfile(spec)
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
		Names:  []string{"keyctl"},
		Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{
			Index: 0, // the operation
			Value: unix.KEYCTL_DESCRIBE,
			Op:    specs.OpEqualTo,
		}},
	})
	return p
}

// SeccompJSON is the profile's file: the OCI runtime spec's LinuxSeccomp,
// which containerd's CRI plugin reads for a Localhost profile (and CRI-O's
// and Docker's profile format accepts), indented, with a final newline.
func SeccompJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(SeccompProfile()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
