package limits

// Real messages of the namespaces family (namespaces.go): from public
// reports (URL beside each) and from the lab (lab/kernel/userns_test.go) on
// this kernel (6.18, util-linux 2.38, iproute2 6.1).
func init() {
	realMessages["userns"] = []string{
		// https://github.com/containers/bubblewrap/issues/371
		`# bwrap: Creating new namespace failed: No space left on device`,
		// https://github.com/ansible/awx/issues/11016
		`bwrap: Create new namespace failed: No Space left on device`,
		// https://github.com/containers/bubblewrap/issues/465
		`bwrap: unshare user ns: No space left on device`,
		// https://github.com/containers/bubblewrap/issues/764
		`pressure-vessel-wrap[13]: E: Child process exited with code 1: bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces exceeded (ENOSPC)`,
		// https://github.com/konstruktoid/ansible-role-docker-rootless/pull/249
		// (rootless dockerd, user.max_user_namespaces=0)
		`error: failed to start the child: fork/exec /proc/self/exe: no space left on device`,
		// https://github.com/google/gvisor/issues/5964
		`docker: Error response from daemon: OCI runtime create failed: creating container: starting sandbox: fork/exec /proc/self/exe: no space left on device: unknown.`,
		// https://github.com/siderolabs/talos/issues/8554 (user-namespaced
		// pod, Talos's user.max_user_namespaces=0)
		`rpc error: code = Unknown desc = failed to create network namespace for sandbox "0752eaba05387bb7782ff1ad87ebd37ec3e1129e4e6e8c0695fc4337eac088d5": failed to start noop process for unshare: fork/exec /proc/self/exe: no space left on device`,
		// https://github.com/NVIDIA/pyxis/issues/93
		`slurmstepd: error: pyxis:     enroot-nsenter: failed to create user namespace: No space left on device`,
		// https://github.com/lxc/lxc/issues/4586
		`lxc-attach: eolo: ../src/lxc/conf.c: userns_exec_minimal: 4599 No space left on device - Failed to unshare new user namespace`,
		// https://github.com/systemd/systemd/issues/35311
		// (user.max_user_namespaces = 0)
		`systemd-logind.service: Failed to set up special execution directory in /run: No space left on device`,
		// The lab: unshare -U as root of a user namespace whose
		// max_user_namespaces is reached, and Go's exec.Cmd with
		// CLONE_NEWUSER there (rootlesskit's shape).
		`unshare: unshare failed: No space left on device`,
		`fork/exec /proc/self/exe: no space left on device`,
		// The lab: runc 1.1.5 run of a rootless bundle there.
		`time="2026-11-22T09:46:48Z" level=fatal msg="nsexec-1[31922]: failed to unshare user namespace: No space left on device"`,
	}
	realMessages["namespaces"] = []string{
		// https://github.com/containers/bubblewrap/issues/371
		`# bwrap: Creating new namespace failed: No space left on device`,
		// https://github.com/containers/bubblewrap/issues/764
		`bwrap: Creating new namespace failed: nesting depth or /proc/sys/user/max_*_namespaces exceeded (ENOSPC)`,
		// The lab: unshare -n and ip netns add at max_net_namespaces.
		`unshare: unshare failed: No space left on device`,
		`Failed to create a new network namespace "enospc-lab": No space left on device`,
	}
	foreignMessages["userns"] = []string{realMessages["inotify.watches"][0], realMessages["cgroups"][0], realMessages["disk"][0], realMessages["mounts"][0], realMessages["leak.fifo"][0]}
	foreignMessages["namespaces"] = []string{realMessages["inotify.watches"][0], realMessages["cgroups"][0], realMessages["disk"][0], realMessages["mounts"][0], realMessages["leak.fifo"][0]}
}
