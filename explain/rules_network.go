package explain

// Rules for the network limits: the conntrack table, the neighbour tables,
// the ephemeral ports of a namespace and the ports of a bridge.

import "strings"

func init() {
	registerRule(func(t string, e errnos, s scorer) {
		// conntrack: the kernel's own words, or the sysctl named.
		conntrack := containsAny(t, "nf_conntrack", "ip_conntrack", "conntrack table")
		if conntrack && containsAny(t, "table full", "dropping packet") {
			s.add("conntrack", 0.95, "the kernel logs \"nf_conntrack: table full, dropping packet\" when a namespace's entries reach net.netfilter.nf_conntrack_max")
		} else if containsAny(t, "nf_conntrack_max", "conntrack_max") {
			s.add("conntrack", 0.85, "the message names nf_conntrack_max")
		}

		// Neighbour tables.
		if containsAny(t, "neighbor table overflow", "neighbour table overflow") {
			s.add("neighbour", 0.95, "the kernel logs \"neighbor table overflow\" when the ARP or ND table reaches gc_thresh3")
		} else if containsAny(t, "gc_thresh3", "gc_thresh") {
			s.add("neighbour", 0.85, "the message names the neighbour table's gc_thresh")
		} else if containsAny(t, "no buffer space available", "enobufs") && containsAny(t, "neigh", "arp", "rtnetlink") {
			s.add("neighbour", 0.6, "adding a neighbour entry fails with ENOBUFS when the table is at gc_thresh3")
		}

		// Ephemeral ports: EADDRNOTAVAIL from connect.
		notavail := containsAny(t, "cannot assign requested address", "eaddrnotavail", "errno=99", "os error 99", "errno 99")
		connecting := containsAny(t, "connect", "dial ", "dial tcp", "upstream", "backend", "outbound", "proxy")
		binding := strings.Contains(t, "bind")
		switch {
		case containsAny(t, "ip_local_port_range", "ephemeral port", "local port range"):
			s.add("ports", 0.9, "the message names the ephemeral port range (net.ipv4.ip_local_port_range)")
		case notavail && connecting && !binding:
			s.add("ports", 0.9, "connect fails with EADDRNOTAVAIL when the namespace's ephemeral ports towards that destination are all taken (net.ipv4.ip_local_port_range)")
		case notavail && binding:
			s.add("ports", 0.35, "bind fails with EADDRNOTAVAIL mostly because the address is not on the host; a bind of port 0 can also find the ephemeral range used up")
		case notavail:
			s.add("ports", 0.7, "EADDRNOTAVAIL, \"cannot assign requested address\", is what connect returns when the ephemeral ports run out")
		}
		if containsAny(t, "address already in use", "eaddrinuse") && binding {
			// Go prints a dial with a local address as "dial tcp A:0->B".
			if strings.Contains(t, ":0->") {
				s.add("ports", 0.85, "a dial bound to port 0 fails with EADDRINUSE when no ephemeral port is free")
			} else if connecting {
				s.add("ports", 0.45, "bind before connect fails with EADDRINUSE when no ephemeral port is free; a listener's port taken by another gives the same error")
			}
		}

		// Bridge ports: EXFULL.
		if containsAny(t, "exchange full", "exfull") {
			s.add("bridge.ports", 0.95, "adding a port to a bridge fails with EXFULL, \"exchange full\", at the kernel's 1023 ports per bridge")
		}
	})
}
