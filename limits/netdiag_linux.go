package limits

// The TCP sockets of a network namespace through sock_diag
// (NETLINK_SOCK_DIAG, what ss uses): the kernel dumps the sockets there
// are. /proc/net/tcp walks every bucket of the connection hash table
// instead, sockets or not, and the table is shared by every namespace: on
// this project's machine 4 ms per read against well under one for the dump
// (BenchmarkTCPSockets), and the ports rows read it for every namespace on
// every check. A netlink socket dumps the namespace it was created in, so
// for another namespace only its creation is done inside it
// (host.InNetNSOf).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Sizes of struct inet_diag_req_v2, struct inet_diag_req (the request of
// TCPDIAG_GETSOCK) and struct inet_diag_msg (include/uapi/linux/inet_diag.h).
const (
	inetDiagReqLen       = 56
	inetDiagReqCompatLen = 60
	inetDiagMsgLen       = 72
	tcpDiagGetSock       = 18
)

// diagStates asks for the sockets of every state but TCP_BOUND_INACTIVE
// (13, Linux 6.5): sockets bound and nothing more are not in
// /proc/net/tcp, and dumping them walks one more table, the bind hash.
const diagStates = 0xffffffff &^ (1 << 13)

// diagTCPSockets calls fn for every TCP socket of family (AF_INET or
// AF_INET6) in the calling thread's network namespace.
func diagTCPSockets(family uint8, fn func(tcpSocket)) error {
	fd, err := openSockDiag()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return dumpTCPSockets(fd, family, make([]byte, diagBufLen), fn)
}

// diagBufLen is the size of a dump's receive buffer: a netlink dump
// datagram, up to 32 KiB, must fit whole.
const diagBufLen = 64 << 10

// openSockDiag opens a sock_diag socket of the calling thread's network
// namespace.
func openSockDiag() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("sock_diag: %w", err)
	}
	return fd, nil
}

// dumpTCPSockets calls fn for every TCP socket of family (AF_INET or
// AF_INET6, or AF_UNSPEC for both) in the network namespace of the
// sock_diag socket fd, received in buf (diagBufLen bytes). A socket can
// dump again once a dump is done.
//
// Each dump walks every bucket of the connection hash table, which all
// namespaces share: its cost is the table's size (tcp_ehash_entries), not
// the namespace's sockets. SOCK_DIAG_BY_FAMILY takes one family a walk;
// only the older TCPDIAG_GETSOCK request dumps both in one
// (inet_diag_dump_compat), hence AF_UNSPEC.
func dumpTCPSockets(fd int, family uint8, buf []byte, fn func(tcpSocket)) error {
	var req []byte
	if family == unix.AF_UNSPEC {
		req = make([]byte, unix.NLMSG_HDRLEN+inetDiagReqCompatLen)
		binary.NativeEndian.PutUint16(req[4:], tcpDiagGetSock)
		binary.NativeEndian.PutUint32(req[unix.NLMSG_HDRLEN+52:], diagStates)
	} else {
		req = make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
		binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
		r := req[unix.NLMSG_HDRLEN:]
		r[0], r[1] = family, unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(r[4:], diagStates)
	}
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		done, err := walkNetlink(buf[:n], func(data []byte) {
			if s, ok := parseInetDiagMsg(data); ok {
				fn(s)
			}
		})
		if err != nil || done {
			return err
		}
	}
}

// walkNetlink hands the payload of each message of one netlink datagram
// to fn, until NLMSG_DONE (done) or NLMSG_ERROR (an error). The messages
// are walked in place: syscall.ParseNetlinkMessage allocates a slice and
// a header per message, that is per socket.
func walkNetlink(b []byte, fn func(data []byte)) (done bool, err error) {
	// A tail shorter than a header is padding, as the standard library
	// reads it.
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("sock_diag: netlink message of %d bytes in %d", l, len(b))
		}
		data := b[unix.NLMSG_HDRLEN:l]
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(data) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
					return false, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
				}
			}
			return false, errors.New("sock_diag: error message")
		}
		fn(data)
	}
	return false, nil
}

// parseInetDiagMsg reads the state and the two ends of a struct
// inet_diag_msg: ports and addresses in network byte order.
func parseInetDiagMsg(b []byte) (tcpSocket, bool) {
	if len(b) < inetDiagMsgLen {
		return tcpSocket{}, false
	}
	var s tcpSocket
	family, state := b[0], b[1]
	sport, dport := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	switch family {
	case unix.AF_INET:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[24:28])), dport)
	case unix.AF_INET6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), dport)
	default:
		return tcpSocket{}, false
	}
	s.State = state
	return s, true
}
