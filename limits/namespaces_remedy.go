package limits

// What to do about a full namespace limit.

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/enospc/enospc/census"
)

// nsKindOf reads the kind back from a row's unit ("net namespaces").
func nsKindOf(u Finding) int {
	name, _, _ := strings.Cut(u.Unit, " ")
	for k, n := range census.NSNames {
		if n == name {
			return k
		}
	}
	if u.Limit == "userns" {
		return census.NSUser
	}
	return census.NSMnt
}

// nsPidInRe finds the process a child level's reason names.
// nsScopeUIDRe finds the uid of a child level's scope.
var nsScopeUIDRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`uid (\d+) in user ns `) })

var nsPidInRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`, which pid (\d+) is in;`) })

func namespacesRemedy(u Finding) []string {
	kind := nsKindOf(u)
	name := nsSysctl(kind)
	var out []string
	if len(u.Consumers) > 0 {
		c := u.Consumers[0]
		holders := max(u.ConsumersTotal, len(u.Consumers))
		who := c.Name
		if c.PID != 0 {
			who = fmt.Sprintf("pid %d (%s)", c.PID, c.Comm)
		}
		held := fmt.Sprintf("%d holders, the biggest %s with %d of %d", holders, who, c.Count, u.Used)
		if c.Count == 1 && holders > 1 {
			held = fmt.Sprintf("%d holders with one each, the first %s", holders, who)
		}
		out = append(out, fmt.Sprintf("%s: list them with lsns -t %s and look for leaks (sandboxes left behind by CI jobs, rootless containers never removed, a daemon that unshares in a loop)",
			held, census.NSNames[kind]))
	}
	if strings.Contains(u.Scope, " in user ns ") {
		level := u.Scope[strings.LastIndex(u.Scope, " ")+1:]
		suggest := max(u.Max*4, 64)
		pid, where := "PID", ", with PID a process in that namespace (lsns -t user)"
		if m := nsPidInRe().FindStringSubmatch(u.Reason); m != nil {
			pid, where = m[1], ""
		}
		owner := "OWNER"
		if m := nsScopeUIDRe().FindStringSubmatch(u.Scope); m != nil {
			owner = m[1]
		}
		return append(out,
			fmt.Sprintf("the limit was lowered inside user ns %s by what made it (a container runtime, a sandbox); raise it from inside as the uid that owns the namespace and is root in it, never as root (a root process inside a namespace a user owns can be taken over by that user): setpriv --reuid=%s --regid=%s --clear-groups nsenter --user=/proc/%s/ns/user --preserve-credentials sh -c 'echo %d > /proc/sys/user/%s'%s; %d, the value a new user namespace starts with, leaves only the ancestors' limits", level, owner, owner, pid, suggest, name, where, nsUnlimited),
			"or have its creator set a higher value when it sets the namespace up")
	}
	suggest := max(u.Max*2, 28633)
	if u.Max == 0 {
		out = append(out, fmt.Sprintf("%s namespaces are disabled (user.%s = 0): rootless containers, user-namespaced pods, bwrap and flatpak, browsers' sandboxes and systemd's id-mapped directories need them", census.NSNames[kind], name))
	}
	return append(out,
		fmt.Sprintf("raise the limit now: sysctl -w user.%s=%d", name, suggest),
		fmt.Sprintf("keep it across reboots: echo 'user.%s = %d' > /etc/sysctl.d/90-enospc-namespaces.conf", name, suggest),
	)
}
