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
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/internal/quote"
)

var networkFamily = Family{
	Name: "network",
	Limits: []Limit{
		{
			ID:    "conntrack",
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
			ID:    "neighbour",
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
			ID:    "ports",
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
			ID:    "bridge.ports",
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

// tcpSocket is one line of /proc/net/tcp or tcp6.
type tcpSocket struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state number (1 ESTABLISHED, 6
	// TIME_WAIT, 10 LISTEN).
	State uint8
}

const (
	tcpTimeWait = 6
	tcpListen   = 10
)

// parseTCPLine parses one socket line of /proc/net/tcp or tcp6:
//
//	0: 0100007F:1388 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 12345 ...
//
// Addresses are the kernel's words in host byte order, printed in hex; ok
// is false for the header and for lines that do not parse.
func parseTCPLine(line string) (tcpSocket, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
		return tcpSocket{}, false
	}
	local, ok1 := parseHexAddrPort(f[1])
	remote, ok2 := parseHexAddrPort(f[2])
	st, err := strconv.ParseUint(f[3], 16, 8)
	if !ok1 || !ok2 || err != nil {
		return tcpSocket{}, false
	}
	return tcpSocket{Local: local, Remote: remote, State: uint8(st)}, true
}

// parseHexAddrPort parses "0100007F:1388" (IPv4) or 32 hex digits and a
// port (IPv6), each 32-bit word in the host's byte order.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	switch len(a) {
	case 8, 32:
	default:
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(a)/8; i++ {
		w, err := strconv.ParseUint(a[i*8:i*8+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(b[i*4:], uint32(w))
	}
	var addr netip.Addr
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// scanTCP calls fn for every socket of a /proc/net/tcp or tcp6 file. The
// header is skipped; other lines that do not parse are counted and the
// first is returned in the error, after the rest of the file was read.
func scanTCP(r io.Reader, fn func(tcpSocket)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	bad, first := 0, ""
	for sc.Scan() {
		line := sc.Text()
		s, ok := parseTCPLine(line)
		if ok {
			fn(s)
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "sl ") {
			continue
		}
		if bad == 0 {
			first = t
		}
		bad++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d malformed socket lines, the first %.80q", bad, first)
	}
	return nil
}

// portSpan is an inclusive range of ports.
type portSpan struct{ Lo, Hi int }

// parsePortRange parses ip_local_port_range: "32768\t60999".
func parsePortRange(s string) (portSpan, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: want two ports", s)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 0 || hi > 65535 || lo > hi {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: not a port range", s)
	}
	return portSpan{lo, hi}, nil
}

// parsePortList parses ip_local_reserved_ports: "8080,9000-9010" (empty for
// none).
func parsePortList(s string) ([]portSpan, error) {
	var out []portSpan
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil || lo < 0 || lo > 65535 {
			return out, fmt.Errorf("ip_local_reserved_ports: bad port %q", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil || hi < lo || hi > 65535 {
				return out, fmt.Errorf("ip_local_reserved_ports: bad range %q", part)
			}
		}
		out = append(out, portSpan{lo, hi})
	}
	return out, nil
}

// ephemeralPorts is the set of ports connect() may pick: the range less
// the reserved ones.
type ephemeralPorts struct {
	Range    portSpan
	Reserved []portSpan
}

func (e ephemeralPorts) has(port int) bool {
	if port < e.Range.Lo || port > e.Range.Hi {
		return false
	}
	for _, r := range e.Reserved {
		if port >= r.Lo && port <= r.Hi {
			return false
		}
	}
	return true
}

// size is how many ports connect() may pick from.
func (e ephemeralPorts) size() int64 {
	n := int64(e.Range.Hi - e.Range.Lo + 1)
	// Reserved spans may overlap: count each reserved port of the range once.
	var rs []portSpan
	for _, r := range e.Reserved {
		lo, hi := max(r.Lo, e.Range.Lo), min(r.Hi, e.Range.Hi)
		if lo <= hi {
			rs = append(rs, portSpan{lo, hi})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	next := -1
	for _, r := range rs {
		lo := max(r.Lo, next)
		if lo <= r.Hi {
			n -= int64(r.Hi - lo + 1)
		}
		next = max(next, r.Hi+1)
	}
	return n
}

// destUse is what the sockets of one namespace hold towards one
// destination.
type destUse struct {
	Dest netip.AddrPort
	// Ports are the local ports held towards Dest, sorted, each once.
	Ports    []uint16
	TimeWait int
}

// portUsage tallies a namespace's TCP sockets by destination. The
// sockets are kept as a flat list and grouped once, when asked: a map
// (and a set of ports) per destination cost half a kilobyte per socket
// on a host holding thousands of short connections in TIME_WAIT, each
// to a destination of its own.
type portUsage struct {
	eph   ephemeralPorts
	socks []destPort
	// bound are ephemeral ports held by sockets without a peer
	// (listening or bound): no destination can have them.
	bound map[uint16]struct{}
	dests []destUse // grouped from socks by busiest
}

// destPort is one socket: its destination and local port.
type destPort struct {
	dest     netip.AddrPort
	port     uint16
	timeWait bool
}

func newPortUsage(eph ephemeralPorts) *portUsage {
	return &portUsage{eph: eph, bound: map[uint16]struct{}{}}
}

func (u *portUsage) add(s tcpSocket) {
	port := s.Local.Port()
	if !u.eph.has(int(port)) {
		return
	}
	if s.Remote.Port() == 0 || s.State == tcpListen {
		u.bound[port] = struct{}{}
		return
	}
	dest := netip.AddrPortFrom(s.Remote.Addr().Unmap(), s.Remote.Port())
	u.socks = append(u.socks, destPort{dest: dest, port: port, timeWait: s.State == tcpTimeWait})
	u.dests = nil
}

// used is how many ephemeral ports d cannot have: its own and the bound
// ones.
func (u *portUsage) used(d *destUse) int64 {
	n := int64(len(d.Ports))
	for p := range u.bound {
		if _, ok := slices.BinarySearch(d.Ports, p); !ok {
			n++
		}
	}
	return n
}

// busiest returns the destinations, busiest first.
func (u *portUsage) busiest() []*destUse {
	if u.dests == nil && len(u.socks) > 0 {
		slices.SortFunc(u.socks, func(a, b destPort) int {
			if c := a.dest.Compare(b.dest); c != 0 {
				return c
			}
			return int(a.port) - int(b.port)
		})
		ports := make([]uint16, 0, len(u.socks))
		for i, s := range u.socks {
			if i == 0 || s.dest != u.socks[i-1].dest {
				u.dests = append(u.dests, destUse{Dest: s.dest, Ports: ports[len(ports):len(ports)]})
			}
			d := &u.dests[len(u.dests)-1]
			if s.timeWait {
				d.TimeWait++
			}
			if n := len(d.Ports); n == 0 || d.Ports[n-1] != s.port {
				ports = append(ports, s.port)
				d.Ports = d.Ports[:n+1]
			}
		}
	}
	out := make([]*destUse, len(u.dests))
	for i := range u.dests {
		out[i] = &u.dests[i]
	}
	slices.SortFunc(out, func(a, b *destUse) int {
		if len(a.Ports) != len(b.Ports) {
			return len(b.Ports) - len(a.Ports)
		}
		return a.Dest.Compare(b.Dest)
	})
	return out
}

// netStat is a /proc/net/stat table (nf_conntrack, arp_cache, ndisc_cache):
// a header of column names, then one line of hex counters per CPU.
type netStat struct {
	Columns []string
	Rows    [][]uint64
}

// parseNetStat parses a /proc/net/stat table.
func parseNetStat(b []byte) (netStat, error) {
	var st netStat
	// Lines of the file already in memory, walked in place: a scanner
	// would allocate its buffer, and a string per line, for every one of
	// a host's network namespaces.
	var fields [][]byte
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fields = appendFields(fields[:0], line)
		if len(fields) == 0 {
			continue
		}
		if st.Columns == nil {
			st.Columns = make([]string, len(fields))
			for i, c := range fields {
				st.Columns[i] = string(c)
			}
			continue
		}
		f := fields
		if len(f) != len(st.Columns) {
			return st, fmt.Errorf("line %d: %d fields for %d columns", n, len(f), len(st.Columns))
		}
		row := make([]uint64, len(f))
		for i, v := range f {
			// A short string(v) passed to ParseUint lives on the stack.
			x, err := strconv.ParseUint(string(v), 16, 64)
			if err != nil {
				return st, fmt.Errorf("line %d: %q is not a hex counter", n, v)
			}
			row[i] = x
		}
		st.Rows = append(st.Rows, row)
	}
	if len(st.Rows) == 0 {
		return st, errors.New("no counters")
	}
	return st, nil
}

// first is a column's value on the first line: the tables' "entries" is
// the table's count, printed again on every CPU's line.
func (s netStat) first(col string) (int64, bool) {
	i := slices.Index(s.Columns, col)
	if i < 0 || len(s.Rows) == 0 {
		return 0, false
	}
	return int64(min(s.Rows[0][i], 1<<62)), true
}

// sum is a per-CPU counter's total.
func (s netStat) sum(col string) int64 {
	i := slices.Index(s.Columns, col)
	if i < 0 {
		return 0
	}
	var n uint64
	for _, r := range s.Rows {
		n += r[i]
	}
	return int64(min(n, 1<<62))
}

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

func readNetwork(env *Env) []Usage {
	r := newNetReader(env)
	var out []Usage
	out = append(out, r.readPorts()...)
	out = append(out, r.readConntrack()...)
	out = append(out, r.readNeighbours()...)
	out = append(out, r.readBridges()...)
	return out
}

// otherNamespaces is the unknown row for the namespaces of processes whose
// namespace link could not be read (other users' processes, without root).
func (r *netReader) otherNamespaces(id ID, unit string) []Usage {
	if !r.env.Live || r.env.Root || r.unseen == 0 {
		return nil
	}
	return []Usage{{Limit: string(id), Scope: "other net namespaces", Unit: unit, Severity: Unknown, NeedsRoot: true,
		Reason: fmt.Sprintf("the network namespaces of %d processes could not be read; run as root", r.unseen)}}
}

// topDestinations is how many destinations a ports row lists.
const topDestinations = 5

func (r *netReader) readPorts() []Usage {
	if r.env.Census == nil {
		err := r.env.CensusErr
		if err == nil {
			err = errors.New("no process census")
		}
		return []Usage{unknown("ports", "all net namespaces", "ports", err)}
	}
	var out []Usage
	for _, n := range r.nss {
		if r.noNetDir(n) {
			continue
		}
		u := r.portsOf(n)
		if u.Limit == "" {
			continue
		}
		if u.Severity == Unknown && !n.Host {
			// Whose namespace it is, though its ports are unknown.
			u.setConsumers([]Consumer{n.holder(0)}, 1)
		}
		out = append(out, u)
	}
	return append(out, r.otherNamespaces("ports", "ports")...)
}

const (
	sysPortRange = "net.ipv4.ip_local_port_range"
	sysReserved  = "net.ipv4.ip_local_reserved_ports"
)

func (r *netReader) portsOf(n *netNS) Usage {
	scope := n.scope()
	// The sockets are dumped through sock_diag (netdiag_linux.go): in
	// another namespace than enospc's, its socket is made there while the
	// sysctls are read, in one visit.
	diagFD := -1
	var openDiag func()
	// A dump costs a walk of the hash table every namespace shares,
	// sockets or not: a namespace the kernel counts none in is not dumped.
	none := false
	if r.env.Live {
		c, err := r.tcpSockets(n)
		none = err == nil && c == 0
	}
	if r.env.Live && !none && (r.own(n) || r.env.Root) {
		openDiag = func() {
			if fd, err := openSockDiag(); err == nil {
				diagFD = fd
			}
		}
	}
	vals, needsRoot, err := r.sysctlsAnd(n, openDiag, sysPortRange, sysReserved)
	if diagFD >= 0 {
		defer unix.Close(diagFD)
	}
	rangeStr, ok := vals[sysPortRange]
	if !ok && errors.Is(err, host.ErrNamespaceGone) {
		return Usage{} // its processes exited since the census: no row
	}
	if !ok {
		if err == nil {
			err = errors.New("ip_local_port_range not read")
		}
		u := unknown("ports", scope, "ports", err)
		u.NeedsRoot = needsRoot
		return u
	}
	span, err := parsePortRange(rangeStr)
	if err != nil {
		return unknown("ports", scope, "ports", err)
	}
	eph := ephemeralPorts{Range: span}
	// Reserved ports only shrink the range: when they cannot be read the
	// whole range is counted.
	eph.Reserved, _ = parsePortList(vals[sysReserved])

	pu := newPortUsage(eph)
	var errs []error
	read := 0
	switch {
	case none:
		read = 1 // sockstat counts no socket: nothing to tally
	case diagFD >= 0:
		if d, err := r.tallyDiag(diagFD, eph); err == nil {
			pu, read = d, 1
		}
	}
	if read == 0 {
		read, errs = r.tallyProcNet(n, pu)
	}
	if read == 0 {
		return unknown("ports", scope, "ports", errors.Join(errs...))
	}
	u := Usage{Limit: "ports", Scope: scope, Max: eph.size(), Unit: "ports"}
	var cs []Consumer
	dests := pu.busiest()
	for i, d := range dests {
		if i == topDestinations {
			break
		}
		c := n.holder(pu.used(d))
		c.Name = "to " + d.Dest.String()
		cs = append(cs, c)
	}
	u.setConsumers(cs, topDestinations)
	if len(dests) > topDestinations {
		u.ConsumersTotal = len(dests)
	}
	rangeText := fmt.Sprintf("%d-%d", span.Lo, span.Hi)
	if reserved := int64(span.Hi-span.Lo+1) - u.Max; reserved > 0 {
		rangeText += fmt.Sprintf(" less %d reserved", reserved)
	}
	var why []string
	if len(dests) > 0 {
		d := dests[0]
		u.Used = pu.used(d)
		s := fmt.Sprintf("busiest destination %s: %d sockets hold local ports of %s", d.Dest, len(d.Ports), rangeText)
		if d.TimeWait > 0 {
			s += fmt.Sprintf(", %d of them in TIME_WAIT", d.TimeWait)
		}
		why = append(why, s)
	} else {
		u.Used = int64(len(pu.bound))
	}
	if len(pu.bound) > 0 {
		why = append(why, fmt.Sprintf("%d ports of the range are held by listening or bound sockets, for every destination", len(pu.bound)))
	}
	if len(errs) > 0 {
		why = append(why, "partly read: "+errors.Join(errs...).Error())
	}
	u.Reason = strings.Join(why, "; ")
	return u
}

// tcpSockets is how many TCP sockets n holds, from its sockstat and
// sockstat6 (counters the kernel keeps per namespace): in use, IPv4 and
// IPv6, and in TIME_WAIT.
func (r *netReader) tcpSockets(n *netNS) (int64, error) {
	var total int64
	for _, name := range []string{"sockstat", "sockstat6"} {
		path, err := r.procNet(n, name)
		if err != nil {
			if name == "sockstat6" && errors.Is(err, fs.ErrNotExist) {
				continue // a kernel without IPv6
			}
			return 0, err
		}
		b, err := host.ReadFile(path)
		if err != nil {
			return 0, err
		}
		c, err := parseSockstatTCP(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		total += c
	}
	return total, nil
}

// parseSockstatTCP sums inuse and tw of the TCP line of sockstat
// ("TCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1") or sockstat6 ("TCP6: inuse
// 0").
func parseSockstatTCP(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "TCP:" && f[0] != "TCP6:") {
			continue
		}
		var n int64
		found := false
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] != "inuse" && f[i] != "tw" {
				continue
			}
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", f[i], f[i+1], err)
			}
			n, found = n+v, true
		}
		if !found {
			return 0, fmt.Errorf("no inuse in %q", line)
		}
		return n, nil
	}
	return 0, errors.New("no TCP line")
}

// tallyDiag tallies the TCP sockets, IPv4 and IPv6, of the namespace of
// the sock_diag socket fd: in one dump, or one per family on a kernel that
// no longer answers the request for both.
func (r *netReader) tallyDiag(fd int, eph ephemeralPorts) (*portUsage, error) {
	if r.diagBuf == nil {
		r.diagBuf = make([]byte, diagBufLen)
	}
	pu := newPortUsage(eph)
	if err := dumpTCPSockets(fd, unix.AF_UNSPEC, r.diagBuf, pu.add); err == nil {
		return pu, nil
	}
	pu = newPortUsage(eph)
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := dumpTCPSockets(fd, fam, r.diagBuf, pu.add); err != nil {
			return nil, err
		}
	}
	return pu, nil
}

// tallyProcNet adds to pu the TCP sockets of n listed in /proc/PID/net/tcp
// and tcp6, and says how many of the two were read.
func (r *netReader) tallyProcNet(n *netNS, pu *portUsage) (read int, errs []error) {
	for _, name := range []string{"tcp", "tcp6"} {
		path, err := r.procNet(n, name)
		if err != nil {
			if name == "tcp6" && errors.Is(err, fs.ErrNotExist) {
				continue // a kernel without IPv6
			}
			errs = append(errs, err)
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = scanTCP(io.LimitReader(f, 1<<32), pu.add)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
		read++
	}
	return read, errs
}

const (
	sysConntrackMax   = "net.netfilter.nf_conntrack_max"
	sysConntrackCount = "net.netfilter.nf_conntrack_count"
)

func (r *netReader) readConntrack() []Usage {
	if r.env.Census == nil {
		return nil // the ports row already says why
	}
	var out []Usage
	maxStr, maxErr := r.env.Host.Sysctl(sysConntrackMax)
	var maxEntries int64
	if maxErr == nil {
		maxEntries, maxErr = strconv.ParseInt(maxStr, 10, 64)
	}
	for _, n := range r.nss {
		if r.noNetDir(n) {
			continue
		}
		scope := n.scope()
		count, drops, found, err := r.conntrackCount(n)
		if !found {
			continue // nf_conntrack is not loaded
		}
		if err != nil {
			out = append(out, unknown("conntrack", scope, "entries", err))
			continue
		}
		if maxErr != nil {
			out = append(out, unknown("conntrack", scope, "entries", maxErr))
			continue
		}
		u := Usage{Limit: "conntrack", Scope: scope, Used: count, Max: maxEntries, Unit: "entries"}
		var cs []Consumer
		if !n.Host {
			// The container or pod the namespace is, by its first process.
			cs = []Consumer{n.holder(count)}
		}
		u.setConsumers(cs, 1)
		if drops > 0 {
			// A counter since boot, also raised by the UDP insert race
			// (nf_ct_resolve_clash): evidence, not a standing warning.
			u.Reason = fmt.Sprintf("%d packets dropped since boot for want of a conntrack entry (drop in /proc/net/stat/nf_conntrack): the table was full at some time, or UDP inserts raced", drops)
		}
		out = append(out, u)
	}
	if len(out) > 0 {
		out = append(out, r.otherNamespaces("conntrack", "entries")...)
	}
	return out
}

// conntrackCount reads a namespace's conntrack entries and drops from its
// stat/nf_conntrack, or its nf_conntrack_count sysctl where that is ours
// to read. found is false when neither exists (no nf_conntrack).
func (r *netReader) conntrackCount(n *netNS) (count, drops int64, found bool, err error) {
	path, perr := r.procNet(n, "stat", "nf_conntrack")
	if perr == nil {
		b, err := host.ReadFile(path)
		if err != nil {
			return 0, 0, true, err
		}
		st, err := parseNetStat(b)
		if err != nil {
			return 0, 0, true, fmt.Errorf("%s: %w", path, err)
		}
		c, ok := st.first("entries")
		if !ok {
			return 0, 0, true, fmt.Errorf("%s: no entries column", path)
		}
		return c, st.sum("drop"), true, nil
	}
	own := (!r.env.Live && n.Host) || (r.env.Live && n.Ino == r.selfNS)
	if !own {
		return 0, 0, !errors.Is(perr, fs.ErrNotExist), perr
	}
	v, err := r.env.Host.SysctlInt(sysConntrackCount)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	return v, 0, true, err
}

var neighbourTables = []struct {
	stat, sysctl, scope string
}{
	{"arp_cache", "net.ipv4.neigh.default.gc_thresh3", "arp table (IPv4, all net namespaces)"},
	{"ndisc_cache", "net.ipv6.neigh.default.gc_thresh3", "ndisc table (IPv6, all net namespaces)"},
}

func (r *netReader) readNeighbours() []Usage {
	// The tables' stat files and gc_thresh3 exist in the initial
	// namespace only.
	var out []Usage
	hostNS := r.host
	if hostNS != nil && r.noNetDir(hostNS) {
		return nil
	}
	if hostNS == nil {
		if _, err := r.procNet(nil); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	for i, tbl := range neighbourTables {
		path, err := r.procNet(hostNS, "stat", tbl.stat)
		if err != nil {
			if i == 1 && errors.Is(err, fs.ErrNotExist) {
				continue // no IPv6
			}
			out = append(out, unknown("neighbour", tbl.scope, "entries", err))
			continue
		}
		b, err := host.ReadFile(path)
		var st netStat
		if err == nil {
			st, err = parseNetStat(b)
		}
		entries, ok := st.first("entries")
		if err == nil && !ok {
			err = fmt.Errorf("%s: no entries column", path)
		}
		if err != nil {
			out = append(out, unknown("neighbour", tbl.scope, "entries", err))
			continue
		}
		var thresh3 int64
		var needsRoot bool
		if hostNS != nil {
			var vals map[string]string
			vals, needsRoot, err = r.sysctls(hostNS, tbl.sysctl)
			if v, ok := vals[tbl.sysctl]; ok {
				thresh3, err = strconv.ParseInt(v, 10, 64)
			}
		} else {
			thresh3, err = r.env.Host.SysctlInt(tbl.sysctl)
		}
		if err != nil {
			u := unknown("neighbour", tbl.scope, "entries", err)
			u.NeedsRoot = needsRoot
			out = append(out, u)
			continue
		}
		u := Usage{Limit: "neighbour", Scope: tbl.scope, Used: entries, Max: thresh3, Unit: "entries"}
		if i == 0 {
			u.setConsumers(r.arpHolders(), topConsumers)
		} else {
			u.setConsumers(nil, topConsumers)
		}
		if fulls := st.sum("table_fulls"); fulls > 0 {
			// Since boot: evidence of a past overflow, not a standing warning.
			u.Reason = fmt.Sprintf("the kernel refused %d neighbour entries since boot (table_fulls in /proc/net/stat/%s): the table was full at some time", fulls, tbl.stat)
		}
		out = append(out, u)
	}
	return out
}

// arpHolders counts the IPv4 neighbour entries of each namespace.
func (r *netReader) arpHolders() []Consumer {
	var cs []Consumer
	for _, n := range r.nss {
		path, err := r.procNet(n, "arp")
		if err != nil {
			continue
		}
		b, err := host.ReadFile(path)
		if err != nil {
			continue
		}
		// One line per entry after the header.
		entries := int64(bytes.Count(b, []byte("\n"))) - 1
		if len(b) > 0 && b[len(b)-1] != '\n' {
			entries++
		}
		if entries > 0 {
			cs = append(cs, n.holder(entries))
		}
	}
	return cs
}

func (r *netReader) readBridges() []Usage {
	dir := r.env.Host.SysPath("class", "net")
	devs, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []Usage{unknown("bridge.ports", "bridges", "ports", err)}
	}
	var out []Usage
	for _, d := range devs {
		ports, err := os.ReadDir(filepath.Join(dir, d.Name(), "brif"))
		if err != nil {
			continue // not a bridge
		}
		u := Usage{Limit: "bridge.ports", Scope: "bridge " + d.Name(), Used: int64(len(ports)), Max: brMaxPorts, Unit: "ports"}
		cs := make([]Consumer, 0, len(ports))
		for _, p := range ports {
			cs = append(cs, Consumer{Name: p.Name(), Count: 1})
		}
		u.setConsumers(cs, topConsumers)
		out = append(out, u)
	}
	return out
}

// nsEnter prefixes a command with nsenter into the namespace of a row's
// consumer, for rows of namespaces other than the host's.
func nsEnter(u Usage) string {
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

func portsRemedy(u Usage) []string {
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

func conntrackRemedy(u Usage) []string {
	return []string{
		fmt.Sprintf("see what holds the entries: %sconntrack -L 2>/dev/null | awk '{print $1, $3, $4}' | sort | uniq -c | sort -rn | head (conntrack-tools), or count by state in /proc/net/nf_conntrack", nsEnter(u)),
		fmt.Sprintf("raise the global limit (it applies to every namespace): sysctl -w net.netfilter.nf_conntrack_max=%d; if net.netfilter.nf_conntrack_buckets is below %d, grow the hash table too: echo %d > /sys/module/nf_conntrack/parameters/hashsize (never lower it); kube-proxy sets the max from --conntrack-max-per-core", 2*u.Max, u.Max/2, u.Max/2),
		"keep it across reboots: echo 'net.netfilter.nf_conntrack_max = " + strconv.FormatInt(2*u.Max, 10) + "' > /etc/sysctl.d/90-enospc-conntrack.conf",
		"shorten how long closed flows linger: net.netfilter.nf_conntrack_tcp_timeout_time_wait (120s) and _close_wait, or exempt heavy local traffic with iptables -t raw ... -j NOTRACK",
	}
}

func neighbourRemedy(u Usage) []string {
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

func bridgeRemedy(u Usage) []string {
	br := strings.TrimPrefix(u.Scope, "bridge ")
	return []string{
		fmt.Sprintf("a bridge holds at most %d ports, a constant of the kernel: list them with ip link show master %s and delete veths whose container is gone (ip link delete vethXXX)", brMaxPorts, quote.Shell(br)),
		"put further containers on another bridge (docker network create; a second CNI bridge) or fewer on this host",
	}
}

// appendFields appends the space-separated fields of line to dst, as
// slices of line.
func appendFields(dst [][]byte, line []byte) [][]byte {
	for len(line) > 0 {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r') {
			line = line[1:]
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\t' && line[end] != '\r' {
			end++
		}
		if end > 0 {
			dst = append(dst, line[:end])
		}
		line = line[end:]
	}
	return dst
}
