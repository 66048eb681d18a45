package limits

import (
	"bytes"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The sock_diag dump and /proc/net/tcp see the same sockets: a listener
// and a connection made here are in both, with the same ends and states.
func TestDiagMatchesProcNet(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := func(s tcpSocket) string {
		return s.Local.String() + ">" + s.Remote.String() + string(rune('0'+s.State))
	}
	diag := map[string]bool{}
	if err := diagTCPSockets(unix.AF_INET, func(s tcpSocket) { diag[key(s)] = true }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	proc := map[string]bool{}
	if err := scanTCP(bytes.NewReader(b), func(s tcpSocket) { proc[key(s)] = true }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{l.Addr().String(), c.LocalAddr().String()} {
		found := false
		for k := range diag {
			found = found || bytes.HasPrefix([]byte(k), []byte(want+">"))
		}
		if !found {
			t.Errorf("sock_diag misses the socket of %s: %v", want, diag)
		}
	}
	for k := range proc {
		if !diag[k] {
			// Sockets come and go on a live host; ours must agree.
			if bytes.Contains([]byte(k), []byte(l.Addr().String())) {
				t.Errorf("/proc/net/tcp has %s, sock_diag has not", k)
			}
		}
	}
}

// BenchmarkTCPSockets: sock_diag against /proc/net/tcp on this host.
func BenchmarkTCPSockets(b *testing.B) {
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if err := diagTCPSockets(unix.AF_INET, func(tcpSocket) {}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc-net-tcp", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open("/proc/net/tcp")
			if err != nil {
				b.Fatal(err)
			}
			scanTCP(f, func(tcpSocket) {})
			f.Close()
		}
	})
}

// The dump of both families at once sees what the two dumps of one
// family each see.
func TestDiagBothFamilies(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	fd, err := openSockDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, diagBufLen)
	both := map[tcpSocket]bool{}
	if err := dumpTCPSockets(fd, unix.AF_UNSPEC, buf, func(s tcpSocket) { both[s] = true }); err != nil {
		t.Fatal(err)
	}
	for _, a := range []net.Addr{l.Addr(), l4.Addr()} {
		found := false
		for s := range both {
			found = found || s.Local.String() == a.String()
		}
		if !found {
			t.Errorf("the dump of both families misses the listener on %s", a)
		}
	}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := dumpTCPSockets(fd, fam, buf, func(s tcpSocket) {
			if !both[s] && (s.Local.String() == l.Addr().String() || s.Local.String() == l4.Addr().String()) {
				t.Errorf("%v is in the dump of family %d only", s, fam)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
}
