package limits

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// privateNetNS starts n processes, each a sleep in a network namespace of
// its own (unshare -n) with its loopback up, and makes conns loopback
// connections in each (a listener and both ends of every connection),
// the first closeFirst of them closed by the client, which leaves them
// in TIME_WAIT. Everything is ended when tb ends. It returns the pids.
func privateNetNS(tb testing.TB, n, conns, closeFirst int) []int {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		tb.Skip("no unshare")
	}
	var pids []int
	var closers []func() error
	tb.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	for range n {
		cmd := exec.Command("unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		closers = append(closers, func() error { cmd.Process.Kill(); return cmd.Wait() })
		pid := cmd.Process.Pid
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "sleep" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("pid %d: loopback not up in its namespace", pid)
			}
		}
		pids = append(pids, pid)
		if conns == 0 {
			continue
		}
		var socks []net.Conn
		var l net.Listener
		err := host.InNetNSOf(fmt.Sprintf("/proc/%d/ns/net", pid), 0, func() error {
			var err error
			if l, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
				return err
			}
			for range conns {
				c, err := net.Dial("tcp4", l.Addr().String())
				if err != nil {
					return err
				}
				socks = append(socks, c)
			}
			return nil
		})
		if l != nil {
			closers = append(closers, l.Close)
		}
		for _, c := range socks {
			closers = append(closers, c.Close)
		}
		if err != nil {
			tb.Fatal(err)
		}
		for i := range conns {
			s, err := l.Accept()
			if err != nil {
				tb.Fatal(err)
			}
			if i >= closeFirst {
				closers = append(closers, s.Close)
				continue
			}
			// The client closes first, the server when it has read
			// the end: the client's socket waits in TIME_WAIT.
			socks[i].Close()
			if _, err := s.Read(make([]byte, 1)); err != io.EOF {
				tb.Fatalf("read after the client closed: %v", err)
			}
			s.Close()
		}
	}
	return pids
}

// netEnv is an Env whose census holds only the processes pids, so that
// the network family sees their namespaces and no other.
func netEnv(tb testing.TB, pids []int) *Env {
	tb.Helper()
	h := host.New("/proc", "/sys", "/")
	c, err := census.Take(context.Background(), h, census.Options{Live: true})
	if err != nil {
		tb.Fatal(err)
	}
	c.Processes = slices.DeleteFunc(c.Processes, func(p census.Process) bool { return !slices.Contains(pids, p.PID) })
	if len(c.Processes) != len(pids) {
		tb.Fatalf("census has %d of the %d processes", len(c.Processes), len(pids))
	}
	return &Env{Ctx: context.Background(), Host: h, Census: c, Live: true, Root: true, Thresholds: DefaultThresholds}
}

// In each network namespace, sock_diag and /proc/PID/net/tcp{,6} see the
// same sockets: the same destinations, with as many ports and as many in
// TIME_WAIT, and the same bound ports (issue 12: a fast path is compared
// with the slow one on the same host).
func TestPortsDiagMatchesProcNet(t *testing.T) {
	const conns, timeWait = 20, 5
	pids := privateNetNS(t, 3, conns, timeWait)
	r := newNetReader(netEnv(t, pids))
	if len(r.nss) != len(pids) {
		t.Fatalf("%d namespaces, want %d", len(r.nss), len(pids))
	}
	eph := ephemeralPorts{Range: portSpan{1, 65535}}
	for _, n := range r.nss {
		nsPath := fmt.Sprintf("/proc/%d/ns/net", n.Procs[0].PID)
		var proc *portUsage
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			proc = newPortUsage(eph)
			if read, errs := r.tallyProcNet(n, proc); read == 0 {
				t.Fatal(errs)
			}
			if busiest := proc.busiest(); len(busiest) > 0 && busiest[0].TimeWait == timeWait {
				break // the closed connections have settled
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not %d connections in TIME_WAIT", n.scope(), timeWait)
			}
		}
		fd := -1
		if err := host.InNetNSOf(nsPath, n.Ino, func() (err error) {
			fd, err = openSockDiag()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		diag, err := r.tallyDiag(fd, eph)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		summary := func(u *portUsage) []string {
			var out []string
			for _, d := range u.busiest() {
				out = append(out, fmt.Sprintf("%s ports=%d tw=%d", d.Dest, len(d.Ports), d.TimeWait))
			}
			for p := range u.bound {
				out = append(out, fmt.Sprintf("bound %d", p))
			}
			slices.Sort(out)
			return out
		}
		if p, d := summary(proc), summary(diag); !slices.Equal(p, d) {
			t.Errorf("%s:\n/proc/PID/net/tcp: %q\nsock_diag:         %q", n.scope(), p, d)
		}
		b := diag.busiest()
		if len(b) == 0 || len(b[0].Ports) != conns || b[0].TimeWait != timeWait || len(diag.bound) != 1 {
			t.Errorf("%s: sock_diag saw %q, want %d ports to the listener, %d in TIME_WAIT, and the listener's bound", n.scope(), summary(diag), conns, timeWait)
		}
	}
}

// BenchmarkPortsNetNS reads the ports rows of 50 network namespaces, idle
// (no TCP socket, a bad night's sleeping containers) or with a loopback
// listener and four connections each, one of them in TIME_WAIT:
//
//	sudo go test -run '^$' -bench PortsNetNS -benchmem ./limits/
func BenchmarkPortsNetNS(b *testing.B) {
	const n = 50
	for _, conns := range []int{0, 4} {
		name := "idle"
		if conns > 0 {
			name = fmt.Sprintf("%d-conns", conns)
		}
		b.Run(name, func(b *testing.B) {
			env := netEnv(b, privateNetNS(b, n, conns, min(conns, 1)))
			for b.Loop() {
				r := newNetReader(env)
				rows := r.readPorts()
				if len(rows) != n {
					b.Fatalf("%d rows, want %d", len(rows), n)
				}
				for _, u := range rows {
					if u.Severity == Unknown || (conns > 0 && len(u.Consumers) == 0) {
						b.Fatalf("row %s: %s %+v", u.Scope, u.Reason, u.Consumers)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/netns")
		})
	}
}
