package limits

// What to do about a full network limit.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/enospc/enospc/internal/quote"
)

// nsEnter prefixes a command with nsenter into the namespace of a row's
// consumer, for rows of namespaces other than the host's.
func nsEnter(u Finding) string {
	if strings.HasSuffix(u.Scope, "(host)") {
		return ""
	}
	for _, c := range u.Consumers {
		if c.PID > 0 {
			return fmt.Sprintf("nsenter --net=/proc/%d/ns/net ", c.PID)
		}
	}
	return ""
}

func portsRemedy(u Finding) []string {
	out := []string{}
	if len(u.Consumers) > 0 {
		c := u.Consumers[0]
		dest := strings.TrimPrefix(c.Name, "to ")
		holder := ""
		if c.Container != "" || c.Pod != "" {
			holder = " (the namespace of " + containerOrPod(c) + ")"
		}
		out = append(out, fmt.Sprintf("%d local ports of %s%s go to %s: reuse connections to it (HTTP keep-alive, a connection pool) instead of one per request; list them with %sss -tan dst %s",
			c.Count, u.Scope, holder, dest, nsEnter(u), quote.Shell(dest)))
	}
	if strings.Contains(u.Reason, "TIME_WAIT") {
		out = append(out, fmt.Sprintf("closed connections wait 60s in TIME_WAIT; let connect reuse them: %ssysctl -w net.ipv4.tcp_tw_reuse=1", nsEnter(u)))
	}
	widen := fmt.Sprintf("widen the range (per network namespace): %ssysctl -w net.ipv4.ip_local_port_range=\"1024 65535\" (keep listening ports out of it with net.ipv4.ip_local_reserved_ports)", nsEnter(u))
	if !strings.HasSuffix(u.Scope, "(host)") {
		widen += "; for a pod, securityContext.sysctls net.ipv4.ip_local_port_range; for a container, docker run --sysctl net.ipv4.ip_local_port_range=\"1024 65535\""
	}
	out = append(out, widen,
		"or spread the load over more destination addresses or ports (more backends), each of which has the whole range")
	return out
}

func containerOrPod(c Consumer) string {
	switch {
	case c.Pod != "" && c.Namespace != "":
		return "pod " + c.Namespace + "/" + c.Pod
	case c.Pod != "":
		return "pod " + c.Pod
	case c.ContainerName != "":
		return "container " + c.ContainerName
	}
	return "container " + c.Container
}

func conntrackRemedy(u Finding) []string {
	return []string{
		fmt.Sprintf("see what holds the entries: %sconntrack -L 2>/dev/null | awk '{print $1, $3, $4}' | sort | uniq -c | sort -rn | head (conntrack-tools), or count by state in /proc/net/nf_conntrack", nsEnter(u)),
		fmt.Sprintf("raise the global limit (it applies to every namespace): sysctl -w net.netfilter.nf_conntrack_max=%d; if net.netfilter.nf_conntrack_buckets is below %d, grow the hash table too: echo %d > /sys/module/nf_conntrack/parameters/hashsize (never lower it); kube-proxy sets the max from --conntrack-max-per-core", 2*u.Max, u.Max/2, u.Max/2),
		"keep it across reboots: echo 'net.netfilter.nf_conntrack_max = " + strconv.FormatInt(2*u.Max, 10) + "' > /etc/sysctl.d/90-enospc-conntrack.conf",
		"shorten how long closed flows linger: net.netfilter.nf_conntrack_tcp_timeout_time_wait (120s) and _close_wait, or exempt heavy local traffic with iptables -t raw ... -j NOTRACK",
	}
}

func neighbourRemedy(u Finding) []string {
	fam := "ipv4"
	if strings.HasPrefix(u.Scope, "ndisc") {
		fam = "ipv6"
	}
	t3 := max(4*u.Max, 8192)
	t2, t1 := t3/2, t3/8
	set := fmt.Sprintf("net.%s.neigh.default.gc_thresh1=%d net.%s.neigh.default.gc_thresh2=%d net.%s.neigh.default.gc_thresh3=%d", fam, t1, fam, t2, fam, t3)
	conf := strings.ReplaceAll(strings.ReplaceAll(set, " ", "\\n"), "=", " = ")
	return []string{
		"the table is one for the whole kernel: the entries of every pod's and container's namespace count; see them with ip -s neigh (and ip netns exec / nsenter for the namespaces listed)",
		"raise the thresholds, in the host's namespace (the only one that has them): sysctl -w " + set,
		fmt.Sprintf("keep it across reboots: printf '%s\\n' > /etc/sysctl.d/90-enospc-neigh.conf", conf),
	}
}

func bridgeRemedy(u Finding) []string {
	br := strings.TrimPrefix(u.Scope, "bridge ")
	return []string{
		fmt.Sprintf("a bridge holds at most %d ports, a constant of the kernel: list them with ip link show master %s and delete veths whose container is gone (ip link delete vethXXX)", brMaxPorts, quote.Shell(br)),
		"put further containers on another bridge (docker network create; a second CNI bridge) or fewer on this host",
	}
}
