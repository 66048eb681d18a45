package limits

// Ephemeral ports per destination per network namespace: sockets tallied from sock_diag or /proc/PID/net/tcp.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

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
				u.dests = append(u.dests, destUse{Dest: s.dest, Ports: ports[len(ports):]})
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

// topDestinations is how many destinations a ports row lists.
const topDestinations = 5

func (r *netReader) readPorts() []Finding {
	if r.env.Census == nil {
		err := r.env.CensusErr
		if err == nil {
			err = errors.New("no process census")
		}
		return []Finding{unknown("ports", "all net namespaces", "ports", err)}
	}
	var out []Finding
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

// Long on purpose: one namespace's ports row from the first source that answers (sock_diag inside the namespace, then its /proc/PID/net/tcp), its reason built as it goes.
func (r *netReader) portsOf(n *netNS) Finding {
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
		return Finding{} // its processes exited since the census: no row
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
	u := Finding{Limit: "ports", Scope: scope, Max: eph.size(), Unit: "ports"}
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
