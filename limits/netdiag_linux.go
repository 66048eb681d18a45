package limits

// The TCP sockets of enospc's own network namespace through sock_diag
// (NETLINK_SOCK_DIAG, what ss uses): the kernel dumps the sockets there
// are. /proc/net/tcp walks every bucket of the connection hash table
// instead, sockets or not: on this project's machine 4 ms per read against
// well under one for the dump (BenchmarkTCPSockets), and the ports row
// reads it on every check.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
)

// Sizes and offsets of struct inet_diag_req_v2 and struct inet_diag_msg
// (include/uapi/linux/inet_diag.h).
const (
	inetDiagReqLen = 56
	inetDiagMsgLen = 72
)

// diagTCPSockets calls fn for every TCP socket of family (AF_INET or
// AF_INET6) in the calling thread's network namespace.
func diagTCPSockets(family uint8, fn func(tcpSocket)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // seq
	r := req[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], 0xffffffff) // every state
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return fmt.Errorf("sock_diag: %w", unix.Errno(-e))
					}
				}
				return errors.New("sock_diag: error message")
			}
			if s, ok := parseInetDiagMsg(m.Data); ok {
				fn(s)
			}
		}
	}
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

// ownNetNS is the inode of enospc's own network namespace, 0 when unknown.
func ownNetNS() uint64 {
	t, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return 0
	}
	return census.NSInode(t)
}
