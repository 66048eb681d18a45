package limits

import (
	"encoding/binary"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nlmsg builds one netlink message of type typ around data, padded as
// the kernel pads it.
func nlmsg(typ uint16, data []byte) []byte {
	l := unix.NLMSG_HDRLEN + len(data)
	b := make([]byte, (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1))
	binary.NativeEndian.PutUint32(b[0:4], uint32(l))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	copy(b[unix.NLMSG_HDRLEN:], data)
	return b
}

// FuzzWalkNetlink checks the in-place walk of a sock_diag datagram
// against the standard library's parser: the same payloads in the same
// order wherever the standard library accepts the datagram, and never a
// panic or a payload outside the datagram on garbage.
func FuzzWalkNetlink(f *testing.F) {
	diag := make([]byte, inetDiagMsgLen)
	diag[0], diag[1] = unix.AF_INET, 1
	f.Add(append(nlmsg(unix.SOCK_DIAG_BY_FAMILY, diag), nlmsg(unix.SOCK_DIAG_BY_FAMILY, diag[:5])...))
	f.Add(append(nlmsg(unix.SOCK_DIAG_BY_FAMILY, diag), nlmsg(unix.NLMSG_DONE, []byte{0, 0, 0, 0})...))
	f.Add(nlmsg(unix.NLMSG_ERROR, []byte{0xf3, 0xff, 0xff, 0xff}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got [][]byte
		done, err := walkNetlink(b, func(data []byte) { got = append(got, data) })
		msgs, stdErr := syscall.ParseNetlinkMessage(b)
		if stdErr != nil {
			return
		}
		// The standard library parses every message; the walk stops at
		// the first DONE or ERROR.
		var want [][]byte
		stopped := false
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR {
				stopped = true
				break
			}
			want = append(want, m.Data)
		}
		if !stopped && (done || err != nil) {
			t.Fatalf("walk stopped (done %v, %v) where the standard parser sees no DONE or ERROR", done, err)
		}
		if len(got) != len(want) {
			t.Fatalf("walk gave %d payloads, the standard parser %d", len(got), len(want))
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("payload %d: %x, want %x", i, got[i], want[i])
			}
		}
	})
}
