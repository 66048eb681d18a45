package limits

// Network limits: the conntrack table, the neighbour (ARP/ND) tables, the
// ephemeral ports of each network namespace and the ports of a bridge.
//
// conntrack (Documentation/networking/nf_conntrack-sysctl.rst). Every flow
// that netfilter tracks (NAT, kube-proxy's iptables/IPVS, docker's port
// maps, stateful rules) takes an entry. Each network namespace counts its
// own entries (/proc/PID/net/stat/nf_conntrack, "entries"; the namespace's
// net.netfilter.nf_conntrack_count) against net.netfilter.nf_conntrack_max,
// which is global: only the initial namespace may change it, the others
// show it read-only. Past it the kernel drops the packet that would have
// made a new entry (the "drop" column counts them) and logs
//
//	nf_conntrack: table full, dropping packet
//	nf_conntrack: nf_conntrack: table full, dropping packet   (older kernels)
//
// No row when the nf_conntrack module is not loaded (no stat file, no
// sysctl): nothing is tracked then.
//
// neighbour (ip-sysctl.rst, neigh/default/gc_thresh3). The ARP (arp_cache)
// and ND (ndisc_cache) tables are one each per kernel, shared by every
// network namespace, and so are their limits: gc_thresh3 exists only under
// the initial namespace's net.ipv4.neigh.default and net.ipv6.neigh.default.
// Each pod's veth and each peer a node talks to takes an entry; past
// gc_thresh3, when garbage collection frees nothing, a new entry is refused
// ("RTNETLINK answers: No buffer space available", sends fail) and the
// kernel logs
//
//	neighbour: arp_cache: neighbor table overflow!
//	ipv4: Neighbour table overflow.                           (older kernels)
//
// The rows are global: entries from the initial namespace's
// /proc/net/stat/arp_cache and ndisc_cache (their table_fulls column counts
// the refusals since boot). The consumers are the namespaces holding IPv4
// entries (/proc/PID/net/arp of one process of each); IPv6 entries are
// not listed per namespace (that takes netlink), only counted.
//
// ports (ip-sysctl.rst, ip_local_port_range, ip_local_reserved_ports). A
// connect() without bind picks a local port from the namespace's
// net.ipv4.ip_local_port_range (default 32768-60999, per network namespace),
// less ip_local_reserved_ports, such that the (local address, local port,
// remote address, remote port) tuple is unused. So the ports run out per
// destination: a proxy, a service mesh sidecar or a client without
// keep-alive that opens a connection per request to one backend, each
// closed connection held TIME_WAIT for 60 seconds, uses up the range for
// that backend while other destinations still connect. Then
//
//	connect: cannot assign requested address           (EADDRNOTAVAIL)
//	dial tcp 10.0.3.7:8080: connect: cannot assign requested address
//	bind: address already in use                       (bind-before-connect, port 0)
//
// Usage is the TCP sockets of each namespace, dumped through sock_diag on
// the live host (as ss does; netdiag_linux.go), read from /proc/PID/net/tcp
// and tcp6 of one of its processes elsewhere: the sockets of any state
// (TIME_WAIT included) whose local port is in the range, grouped by remote
// address and port; the row is the busiest destination. Ports of listening or bound sockets (remote port 0)
// in the range are taken for every destination: connect() skips ports a
// bind() holds. Ports are counted per destination whatever the local
// address, which is exact when a host reaches a destination from one
// address. UDP is not counted.
//
// The range and reserved ports are sysctls of the namespace, which show the
// namespace of the task reading them: for a namespace other than enospc's
// own they are read by entering it (setns, host.InNetNSOf), as root on the
// live host, and the sock_diag socket is made there in the same visit;
// otherwise the row is unknown. On a tree that is not the live
// host (a fixture, a DaemonSet without hostPID) only the host's namespace
// is read, from the tree's /proc/sys, which must then be the host's
// (hostNetwork).
//
// bridge.ports (net/bridge/br_if.c, find_portno). A Linux bridge numbers
// its ports below BR_MAX_PORTS (1024) and reserves number 0: it holds at
// most 1023 ports, a constant of the kernel (in the lab the 1024th
// fails). Docker's docker0 and a CNI bridge (cni0, cbr0) take one port per
// container or pod; leaked veths count too. Past it, adding a port fails
// with EXFULL:
//
//	RTNETLINK answers: Exchange full
//	failed to add interface vethXXX to sandbox: ... exchange full
//	unable to set master of vethwepl3c8c481: exchange full
//
// Ports are the entries of /sys/class/net/<bridge>/brif, in the network
// namespace of the sysfs mount (the host's).
//
// The lab (lab/kernel/network_test.go) exhausts the ports of a private
// namespace for real and captures a bridge's "exchange full" in another.
// conntrack and neighbour have no lab: their maximum and, for neighbours,
// the table itself are global, and filling them would break the host's own
// traffic.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	BridgePorts ID = "bridge.ports"
	Conntrack   ID = "conntrack"
	Neighbour   ID = "neighbour"
	Ports       ID = "ports"
)

var networkFamily = Family{
	Name: "network",
	Limits: []Limit{
		{
			ID:    Conntrack,
			Clues: conntrackClues,
			Title: "conntrack entries per network namespace (net.netfilter.nf_conntrack_max)",
			Unit:  "entries",
			Doc: "Connections netfilter tracks in one network namespace against net.netfilter.nf_conntrack_max, " +
				"which is global. NAT, kube-proxy, docker's published ports and stateful firewall rules add " +
				"entries; short-lived connections linger for their timeouts. Past the max new flows' first " +
				"packets are dropped and the kernel logs \"nf_conntrack: table full, dropping packet\".",
			Signatures: []*Signature{
				NewSignature(`(?i)(nf|ip)_conntrack: (nf_conntrack: )?table full,? dropping packet`),
				NewSignature(`(?i)conntrack table (is )?full`),
			},
			Remedy: conntrackRemedy,
		},
		{
			ID:    Neighbour,
			Clues: neighbourClues,
			Title: "neighbour (ARP/ND) entries (net.ipv4/ipv6.neigh.default.gc_thresh3)",
			Unit:  "entries",
			Doc: "Entries of the kernel's ARP and ND neighbour tables, one table each for all network " +
				"namespaces, against gc_thresh3 of the initial namespace (default 1024). Every pod veth and " +
				"every peer on a flat network takes one; past gc_thresh3 the kernel refuses new entries " +
				"and logs \"neighbour: arp_cache: neighbor table overflow!\".",
			Signatures: []*Signature{
				NewSignature(`(?i)neighbou?r table overflow`),
				NewSignature(`(?i)(arp|ndisc)_cache: neighbou?r table overflow`),
			},
			Remedy: neighbourRemedy,
		},
		{
			ID:    Ports,
			Clues: portsClues,
			Title: "ephemeral ports per destination (net.ipv4.ip_local_port_range)",
			Unit:  "ports",
			Doc: "Local ports of one network namespace's TCP sockets to its busiest destination (address and " +
				"port), against the size of net.ipv4.ip_local_port_range less ip_local_reserved_ports. A " +
				"client that opens a connection per request leaves each one in TIME_WAIT for 60s; when the " +
				"range is used up for a destination, connect fails with EADDRNOTAVAIL, \"cannot assign " +
				"requested address\".",
			Signatures: []*Signature{
				NewSignature(`(?i)connect\b.*cannot assign requested address`),
				NewSignature(`(?i)dial tcp.*cannot assign requested address`),
				NewSignature(`(?i)\bEADDRNOTAVAIL\b.*connect|connect.*\bEADDRNOTAVAIL\b`),
				NewSignature(`(?i)dial tcp [^ ]*:0->[^ ]*: bind: address already in use`),
				NewSignature(`(?i)(ephemeral|local) ports? (are |is )?(exhausted|in use|used up)`),
			},
			Remedy: portsRemedy,
		},
		{
			ID:    BridgePorts,
			Clues: bridgePortsClues,
			Title: "ports of a Linux bridge (1023: BR_MAX_PORTS less port 0)",
			Unit:  "ports",
			Doc: "Interfaces enslaved to one bridge (docker0, cni0, br-*) against the kernel's fixed 1023 " +
				"(port numbers below BR_MAX_PORTS=1024, 0 reserved). Each container or pod on the bridge " +
				"network takes a veth port; veths leaked by a runtime stay. The 1024th fails with EXFULL, " +
				"\"exchange full\".",
			Signatures: []*Signature{
				NewSignature(`(?i)exchange full`),
				NewSignature(`(?i)\bEXFULL\b`),
			},
			Remedy: bridgeRemedy,
		},
	},
	Read: readNetwork,
}

// brMaxPorts is how many ports a bridge holds: the numbers below
// BR_MAX_PORTS (1024, net/bridge/br_private.h) but 0, which find_portno
// reserves.
const brMaxPorts = 1023

// netNS is one network namespace of the census.
type netNS struct {
	Ino  uint64
	Host bool
	// Procs are its processes, by pid.
	Procs []*census.Process
}

func (n *netNS) scope() string {
	s := "net ns " + strconv.FormatUint(n.Ino, 10)
	if n.Host {
		s += " (host)"
	}
	return s
}

// holder is the consumer that names the namespace's owner: its first
// process (a pod's pause, a container's init), for the host's none.
func (n *netNS) holder(count int64) Consumer {
	c := Consumer{Name: n.scope(), Count: count}
	if !n.Host && len(n.Procs) > 0 {
		p := n.Procs[0]
		c.PID, c.UID, c.Comm = p.PID, intp(p.UID), p.Comm
	}
	return c
}

// netReader reads the network namespaces of one check.
type netReader struct {
	env    *Env
	nss    []*netNS
	host   *netNS
	selfNS uint64
	// unseen counts processes whose net ns could not be read.
	unseen int
	// diagBuf receives the sock_diag dumps of every namespace.
	diagBuf []byte
}

func newNetReader(env *Env) *netReader {
	r := &netReader{env: env}
	if env.Live {
		if t, err := os.Readlink("/proc/self/ns/net"); err == nil {
			r.selfNS = census.NSInode(t)
		}
	}
	if env.Census == nil {
		return r
	}
	// The host's namespace is pid 1's, or kthreadd's when pid 1's link
	// cannot be read: kernel threads live in the initial namespaces.
	var hostIno uint64
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		if p.PID == 1 && p.NS[census.NSNet] != 0 {
			hostIno = p.NS[census.NSNet]
			break
		}
		if p.PID == 2 && p.Comm == "kthreadd" && p.NS[census.NSNet] != 0 {
			hostIno = p.NS[census.NSNet]
		}
	}
	byIno := map[uint64]*netNS{}
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		ino := p.NS[census.NSNet]
		if ino == 0 {
			r.unseen++
			continue
		}
		n := byIno[ino]
		if n == nil {
			n = &netNS{Ino: ino, Host: ino == hostIno}
			byIno[ino] = n
			r.nss = append(r.nss, n)
			if n.Host {
				r.host = n
			}
		}
		n.Procs = append(n.Procs, p)
	}
	slices.SortFunc(r.nss, func(a, b *netNS) int {
		switch {
		case a.Host != b.Host:
			if a.Host {
				return -1
			}
			return 1
		case a.Ino < b.Ino:
			return -1
		case a.Ino > b.Ino:
			return 1
		}
		return 0
	})
	return r
}

// maxTries is how many processes of a namespace are tried to read its
// /proc/PID/net files: one that exited since the census gives way to the
// next.
const maxTries = 3

// procNet returns the path of a file under /proc/PID/net of a process of
// n that still has it, or the error of the first try. A namespace of nil
// reads <proc>/net (the reader's own namespace).
func (r *netReader) procNet(n *netNS, elem ...string) (string, error) {
	if n == nil {
		p := r.env.Host.ProcPath(append([]string{"net"}, elem...)...)
		_, err := os.Stat(p)
		return p, err
	}
	var firstErr error
	for i, p := range n.Procs {
		if i == maxTries {
			break
		}
		path := r.env.Host.ProcPath(append([]string{strconv.Itoa(p.PID), "net"}, elem...)...)
		_, err := os.Stat(path)
		if err == nil {
			return path, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = errors.New("no process left in it")
	}
	return "", firstErr
}

// noNetDir reports whether n's processes have no /proc/PID/net directory
// at all: a tree (a fixture) that does not show networking.
func (r *netReader) noNetDir(n *netNS) bool {
	_, err := r.procNet(n)
	return errors.Is(err, fs.ErrNotExist)
}

// errNotLive explains why another namespace's sysctls are not read.
var errNotLive = errors.New("the sysctls of a network namespace other than the host's are read by entering it, " +
	"which only works on the live host (run enospc on the host, or in a pod with hostPID and privileges)")

// own reports whether n is the namespace enospc reads as its own: its
// own on the live host, the host's in a tree.
func (r *netReader) own(n *netNS) bool {
	return (!r.env.Live && n.Host) || (r.env.Live && r.selfNS != 0 && n.Ino == r.selfNS)
}

// sysctls reads dotted sysctls as a task of n sees them. needsRoot is set
// when only root could have read them.
func (r *netReader) sysctls(n *netNS, names ...string) (vals map[string]string, needsRoot bool, err error) {
	return r.sysctlsAnd(n, nil, names...)
}

// sysctlsAnd is sysctls that also runs inNS (when not nil) as a thread of
// n, on the live host: in n itself, when the sysctls are read by entering
// it.
func (r *netReader) sysctlsAnd(n *netNS, inNS func(), names ...string) (vals map[string]string, needsRoot bool, err error) {
	vals = map[string]string{}
	if r.own(n) {
		if inNS != nil && r.env.Live {
			inNS()
		}
		var errs []error
		for _, name := range names {
			v, err := r.env.Host.Sysctl(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			vals[name] = v
		}
		return vals, false, errors.Join(errs...)
	}
	if !r.env.Live {
		return vals, false, errNotLive
	}
	if !r.env.Root {
		return vals, true, fmt.Errorf("reading the sysctls of %s means entering it: run as root", n.scope())
	}
	paths := make([]string, len(names))
	for i, name := range names {
		paths[i] = r.env.Host.ProcPath(append([]string{"sys"}, strings.Split(name, ".")...)...)
	}
	var files map[string][]byte
	var lastErr error
	for i, p := range n.Procs {
		if i == maxTries {
			break
		}
		lastErr = host.InNetNSOf(r.env.Host.ProcPath(strconv.Itoa(p.PID), "ns", "net"), n.Ino, func() error {
			files = make(map[string][]byte, len(paths))
			var errs []error
			for _, p := range paths {
				b, err := host.ReadFile(p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				files[p] = b
			}
			if inNS != nil {
				inNS()
			}
			return errors.Join(errs...)
		})
		if files != nil {
			break
		}
	}
	for i, name := range names {
		if b, ok := files[paths[i]]; ok {
			vals[name] = strings.TrimSpace(string(b))
		}
	}
	return vals, false, lastErr
}

func readNetwork(env *Env) []Finding {
	r := newNetReader(env)
	var out []Finding
	out = append(out, r.readPorts()...)
	out = append(out, r.readConntrack()...)
	out = append(out, r.readNeighbours()...)
	out = append(out, r.readBridges()...)
	return out
}

// otherNamespaces is the unknown row for the namespaces of processes whose
// namespace link could not be read (other users' processes, without root).
func (r *netReader) otherNamespaces(id ID, unit string) []Finding {
	if !r.env.Live || r.env.Root || r.unseen == 0 {
		return nil
	}
	return []Finding{{Limit: string(id), Scope: "other net namespaces", Unit: unit, Severity: Unknown, NeedsRoot: true,
		Reason: fmt.Sprintf("the network namespaces of %d processes could not be read; run as root", r.unseen)}}
}

// conntrackClues are the words and facts of an error message that point to conntrack (explain).
var conntrackClues = []clue.Clue{
	{Words: []string{"nf_conntrack: table full", "ip_conntrack: table full", "table full, dropping packet"}, Prior: 0.95,
		Why: "the kernel logs \"nf_conntrack: table full, dropping packet\" at net.netfilter.nf_conntrack_max"},
	{Words: []string{"nf_conntrack_max", "conntrack_max"}, Prior: 0.85,
		Why: "the message names nf_conntrack_max"},
}

// neighbourClues are the words and facts of an error message that point to neighbour (explain).
var neighbourClues = []clue.Clue{
	{Words: []string{"neighbor table overflow", "neighbour table overflow"}, Prior: 0.95,
		Why: "the kernel logs \"neighbour table overflow\" when the ARP or ND table reaches gc_thresh3"},
	{Words: []string{"gc_thresh3", "gc_thresh"}, Prior: 0.85,
		Why: "the message names the neighbour table's gc_thresh"},
	{Errno: clue.ENOBUFS, Op: clue.OpNeigh, Prior: 0.72,
		Why: "adding a neighbour entry returns ENOBUFS when the table is at gc_thresh3"},
	{Errno: clue.ENOBUFS, NotOp: clue.OpNeigh, Prior: 0.5,
		Why: "ENOBUFS from the network stack: a full neighbour table is the hidden limit that gives it"},
	{Errno: clue.EINVAL, Words: []string{"sendmsg"}, Prior: 0.55,
		Why: "sendmsg fails with EINVAL when no neighbour entry can be made at a full table"},
}

// portsClues are the words and facts of an error message that point to ports (explain).
var portsClues = []clue.Clue{
	{Words: []string{"ip_local_port_range", "ephemeral port", "local port range"}, Prior: 0.9,
		Why: "the message names the ephemeral port range (net.ipv4.ip_local_port_range)"},
	{Errno: clue.EADDRNOTAVAIL, Op: clue.OpConnect, NotOp: clue.OpBind, Prior: 0.9,
		Why: "connect returns EADDRNOTAVAIL when the namespace's ephemeral ports towards that destination are all taken"},
	{Errno: clue.EADDRNOTAVAIL, NotOp: clue.OpBind, Prior: 0.7,
		Why: "EADDRNOTAVAIL is what connect returns when the ephemeral ports run out"},
	{Errno: clue.EADDRNOTAVAIL, Op: clue.OpBind, Prior: 0.35,
		Why: "bind fails with EADDRNOTAVAIL mostly because the address is not on the host"},
	{Errno: clue.EADDRINUSE, Words: []string{":0->"}, Prior: 0.85,
		Why: "a dial bound to port 0 fails with EADDRINUSE when no ephemeral port is free"},
	{Errno: clue.EADDRINUSE, Op: clue.OpBind, NotWords: []string{":0->"}, Prior: 0.4,
		Why: "bind before connect fails with EADDRINUSE when no ephemeral port is free; a listener's port taken gives the same"},
}

// bridgePortsClues are the words and facts of an error message that point to bridge.ports (explain).
var bridgePortsClues = []clue.Clue{
	{Errno: clue.EXFULL, Prior: 0.95,
		Why: "adding a port to a bridge fails with EXFULL, \"exchange full\", at the kernel's 1023 ports per bridge"},
}
