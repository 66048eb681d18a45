package explain

import "strings"

// The namespaces family (limits/namespaces.go): unshare, clone and setns
// helpers report an exhausted user.max_*_namespaces (or one set to 0) as
// ENOSPC. User namespaces are the usual culprit: rootless runtimes,
// sandboxes and user-namespaced pods create one with every other kind, and
// max_user_namespaces is the value hardening guides and some distributions
// set to 0.
func init() { registerRule(namespacesRule) }

// nsKindWords name a namespace kind other than user.
var nsKindWords = []string{
	"network namespace", "net namespace", "netns", "mount namespace", "mnt namespace", "pid namespace",
	"ipc namespace", "uts namespace", "cgroup namespace", "time namespace",
	"clone_newnet", "clone_newns", "clone_newpid", "clone_newipc", "clone_newuts", "clone_newcgroup", "clone_newtime",
}

func namespacesRule(t string, e errnos, s scorer) {
	if strings.Contains(t, "max_user_namespaces") {
		s.add("userns", 0.95, "the message names user.max_user_namespaces")
	}
	if containsAny(t, "max_mnt_namespaces", "max_ipc_namespaces", "max_net_namespaces", "max_pid_namespaces", "max_uts_namespaces", "max_cgroup_namespaces", "max_time_namespaces") {
		s.add("namespaces", 0.95, "the message names a user.max_*_namespaces limit")
	}
	if strings.Contains(t, "max_*_namespaces") {
		s.add("userns", 0.9, "the message names /proc/sys/user/max_*_namespaces; user namespaces are the kind most often limited")
		s.add("namespaces", 0.85, "or the limit of the other kinds created with it")
	}
	// runc's parent sees its stage-1 child die before it reports the
	// container's pid; runc#3666: user.max_user_namespaces at 0 (or
	// reached) is one cause, nsexec's "failed to unshare user namespace"
	// line before it says so.
	if strings.Contains(t, "final child's pid from pipe") && strings.Contains(t, "eof") {
		s.add("userns", 0.5, "runc lost its container's init before it reported a pid: with user namespaces, nsexec failing to unshare one (ENOSPC at user.max_user_namespaces) ends like this; look for nsexec's line before it")
	}
	if !e.nospc {
		return
	}
	userWords := containsAny(t, "user namespace", "user ns", "userns", "clone_newuser", "newuser")
	kindWords := containsAny(t, nsKindWords...)
	// A Go program re-executing itself with clone flags: rootlesskit,
	// runsc's sandbox and gofer, containerd's netns helper for
	// user-namespaced pods; all of them create a user namespace.
	reexec := strings.Contains(t, "fork/exec /proc/self/exe")
	generic := containsAny(t, "unshare", "cannot clone:", "clone failed", "failed to clone", "clone3", "clone(", "creating new namespace", "create new namespace", "new namespace failed", "nsenter")
	switch {
	case userWords:
		s.add("userns", 0.92, "creating a user namespace fails with ENOSPC when the uid's user.max_user_namespaces (of its user namespace or an ancestor) is reached, or set to 0")
	case reexec:
		s.add("userns", 0.88, "fork/exec of /proc/self/exe with ENOSPC: a runtime re-executing itself into new namespaces, a user namespace among them; user.max_user_namespaces is reached or 0")
		if kindWords {
			s.add("namespaces", 0.75, "or the limit of the other kind it names (user.max_*_namespaces)")
		} else {
			s.add("namespaces", 0.6, "or the limit of another kind it creates with it (user.max_*_namespaces)")
		}
	case kindWords && (generic || containsAny(t, "failed to create", "cannot create", "could not create", "unable to create", "creating")):
		s.add("namespaces", 0.9, "creating that namespace failed with ENOSPC: user.max_*_namespaces of its kind is reached for the uid (or 0)")
		s.add("userns", 0.55, "or a user namespace created with it")
	case generic:
		s.add("userns", 0.86, "unshare/clone into new namespaces failed with ENOSPC: a user.max_*_namespaces limit, most often max_user_namespaces (reached, or 0)")
		s.add("namespaces", 0.82, "or the limit of another kind unshared with it (max_net_namespaces, max_mnt_namespaces, ...)")
	case strings.Contains(t, "special execution directory"):
		s.add("userns", 0.8, "systemd 257 sets up RuntimeDirectory= and friends with an id-mapped mount in a new user namespace: ENOSPC there is user.max_user_namespaces reached or 0")
	case strings.Contains(t, "mount namespacing"):
		s.add("namespaces", 0.7, "systemd could not set up the unit's mount namespace: user.max_mnt_namespaces (ENOSPC from unshare), or fs.mount-max for its mounts")
	}
}
