package limits

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/enospc/enospc/census"
	"github.com/enospc/enospc/host"
)

// formatTCPLine writes a socket as the kernel does (tcp4_seq_show,
// tcp6_seq_show): each 32-bit word of the address in host byte order.
func formatTCPLine(i int, s tcpSocket) string {
	addr := func(a netip.Addr) string {
		if a.Is4() {
			b := a.As4()
			return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(b[:]))
		}
		b := a.As16()
		var out string
		for w := 0; w < 4; w++ {
			out += fmt.Sprintf("%08X", binary.NativeEndian.Uint32(b[w*4:]))
		}
		return out
	}
	return fmt.Sprintf("%4d: %s:%04X %s:%04X %02X 00000000:00000000 00:00000000 00000000  1000        0 %d 1 0000000000000000 20 4 30 10 -1\n",
		i, addr(s.Local.Addr()), s.Local.Port(), addr(s.Remote.Addr()), s.Remote.Port(), s.State, 40000+i)
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// tcpHost is /proc/net/tcp of this kernel: a listener, a connection and
// a socket in TIME_WAIT.
const tcpHost = tcpHeader +
	"   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24021 1 0000000000000000 100 0 0 10 0\n" +
	"   1: 0100007F:9C40 0100007F:1388 01 00000000:00000000 00:00000000 00000000     0        0 24030 1 0000000000000000 20 4 30 10 -1\n" +
	"   2: 0100007F:9C41 0100007F:1388 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n"

const tcp6Host = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
	"   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n" +
	"   1: 0000000000000000FFFF00000100007F:9C42 0000000000000000FFFF00000100007F:1388 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1\n"

func TestParseTCPLine(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixtures are little-endian")
	}
	ap := netip.MustParseAddrPort
	var got []tcpSocket
	if err := scanTCP(strings.NewReader(tcpHost+tcp6Host[strings.IndexByte(tcp6Host, '\n')+1:]), func(s tcpSocket) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	want := []tcpSocket{
		{ap("127.0.0.1:5000"), ap("0.0.0.0:0"), tcpListen},
		{ap("127.0.0.1:40000"), ap("127.0.0.1:5000"), 1},
		{ap("127.0.0.1:40001"), ap("127.0.0.1:5000"), tcpTimeWait},
		{ap("[::1]:8080"), ap("[::]:0"), tcpListen},
		{ap("[::ffff:127.0.0.1]:40002"), ap("[::ffff:127.0.0.1]:5000"), 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sockets %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("socket %d: got %v, want %v", i, got[i], want[i])
		}
	}
	for i, s := range want {
		if back, ok := parseTCPLine(formatTCPLine(i, s)); !ok || back != s {
			t.Errorf("round trip of %v: %v %v", s, back, ok)
		}
	}
}

func TestScanTCPMalformed(t *testing.T) {
	in := tcpHeader + "   0: 0100007F:1388 00000000:0000 0A\n   1: garbage\n   2: 0100007F:13 00000000:0000 0A\n\n"
	n := 0
	err := scanTCP(strings.NewReader(in), func(tcpSocket) { n++ })
	if n != 1 || err == nil || !strings.Contains(err.Error(), "2 malformed") {
		t.Errorf("got %d sockets, err %v; want 1 and 2 malformed lines", n, err)
	}
}

func TestPortRanges(t *testing.T) {
	r, err := parsePortRange("32768\t60999\n")
	if err != nil || r != (portSpan{32768, 60999}) {
		t.Fatalf("parsePortRange: %v %v", r, err)
	}
	for _, bad := range []string{"", "1", "60999 32768", "a b", "1 70000", "1 2 3"} {
		if _, err := parsePortRange(bad); err == nil {
			t.Errorf("parsePortRange(%q) accepted", bad)
		}
	}
	res, err := parsePortList("8080,40000-40004, 40003-40010\n")
	if err != nil || len(res) != 3 {
		t.Fatalf("parsePortList: %v %v", res, err)
	}
	for _, bad := range []string{"a", "5-1", "1-70000", "-1"} {
		if _, err := parsePortList(bad); err == nil {
			t.Errorf("parsePortList(%q) accepted", bad)
		}
	}
	if l, err := parsePortList(""); err != nil || len(l) != 0 {
		t.Errorf("parsePortList(empty) = %v %v", l, err)
	}
	e := ephemeralPorts{Range: portSpan{40000, 40099}, Reserved: res}
	// 40000-40010 reserved (overlapping spans counted once), 8080 outside.
	if got := e.size(); got != 89 {
		t.Errorf("size %d, want 89", got)
	}
	if e.has(40005) || !e.has(40011) || e.has(39999) || e.has(40100) {
		t.Error("has() disagrees with the range and reserved ports")
	}
}

func TestPortUsage(t *testing.T) {
	ap := netip.MustParseAddrPort
	pu := newPortUsage(ephemeralPorts{Range: portSpan{40000, 40009}})
	for i := 0; i < 6; i++ {
		st := uint8(1)
		if i%2 == 1 {
			st = tcpTimeWait
		}
		pu.add(tcpSocket{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+i)), ap("127.0.0.1:5000"), st})
	}
	// The v4-mapped form of the same destination, a second destination,
	// a bound port, and sockets outside the range.
	pu.add(tcpSocket{ap("[::ffff:127.0.0.1]:40006"), ap("[::ffff:127.0.0.1]:5000"), 1})
	pu.add(tcpSocket{ap("127.0.0.1:40000"), ap("127.0.0.1:6000"), 1})
	pu.add(tcpSocket{ap("0.0.0.0:40009"), ap("0.0.0.0:0"), tcpListen})
	pu.add(tcpSocket{ap("127.0.0.1:5000"), ap("127.0.0.1:40000"), 1})
	pu.add(tcpSocket{ap("127.0.0.1:30000"), ap("127.0.0.1:5000"), 1})
	ds := pu.busiest()
	if len(ds) != 2 || ds[0].Dest != ap("127.0.0.1:5000") {
		t.Fatalf("busiest: %v", ds)
	}
	if got := pu.used(ds[0]); got != 8 {
		t.Errorf("used towards 127.0.0.1:5000: %d, want 7 ports and the bound one", got)
	}
	if ds[0].TimeWait != 3 {
		t.Errorf("TIME_WAIT %d, want 3", ds[0].TimeWait)
	}
	if got := pu.used(ds[1]); got != 2 {
		t.Errorf("used towards 127.0.0.1:6000: %d, want 2", got)
	}
}

const conntrackStat = `entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
000003e8  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000000 00000000  00000000 00000000 00000000 00000000
000003e8  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000  00000000 00000000 00000000 00000000
`

func TestParseNetStat(t *testing.T) {
	st, err := parseNetStat([]byte(conntrackStat))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := st.first("entries"); !ok || n != 1000 {
		t.Errorf("entries %d %v, want 1000", n, ok)
	}
	if d := st.sum("drop"); d != 5 {
		t.Errorf("drop %d, want 5", d)
	}
	if _, ok := st.first("nothing"); ok {
		t.Error("a missing column was found")
	}
	self, err := os.ReadFile("/proc/net/stat/arp_cache")
	if err == nil {
		if _, err := parseNetStat(self); err != nil {
			t.Errorf("this kernel's arp_cache: %v", err)
		}
	}
	for _, bad := range []string{"", "entries drop\n", "entries drop\n1\n", "entries\nzz\n"} {
		if _, err := parseNetStat([]byte(bad)); err == nil {
			t.Errorf("parseNetStat(%q) accepted", bad)
		}
	}
}

// netTree writes a fixture host for the network family.
func netTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadNetwork(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the fixtures are little-endian")
	}
	var tcp strings.Builder
	tcp.WriteString(tcpHeader)
	for i := 0; i < 10; i++ {
		st := uint8(tcpTimeWait)
		if i == 0 {
			st = 1
		}
		tcp.WriteString(formatTCPLine(i, tcpSocket{netip.AddrPortFrom(netip.MustParseAddr("10.0.0.5"), uint16(50000+i)), netip.MustParseAddrPort("10.0.3.7:8080"), st}))
	}
	arpStat := "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls\n" +
		"00000400 00000001 00000000 00000000   000021fc 00000000 00000000   00000000         00000000         00000199         00000000       00000000            00000007\n"
	dir := netTree(t, map[string]string{
		"proc/sys/net/ipv4/ip_local_port_range":      "50000\t50009\n",
		"proc/sys/net/ipv4/ip_local_reserved_ports":  "\n",
		"proc/sys/net/netfilter/nf_conntrack_max":    "1000\n",
		"proc/sys/net/ipv4/neigh/default/gc_thresh3": "1024\n",
		"proc/1/net/tcp":                               tcp.String(),
		"proc/1/net/stat/nf_conntrack":                 conntrackStat,
		"proc/1/net/stat/arp_cache":                    arpStat,
		"proc/1/net/arp":                               "IP address       HW type     Flags       HW address            Mask     Device\n10.0.0.1 0x1 0x2 02:00:00:00:00:01 * eth0\n",
		"proc/300/net/tcp":                             tcpHeader,
		"proc/300/net/arp":                             "IP address       HW type     Flags       HW address            Mask     Device\n",
		"sys/class/net/docker0/brif/veth1/.keep":       "",
		"sys/class/net/docker0/brif/veth2/.keep":       "",
		"sys/class/net/eth0/address":                   "02:00:00:00:00:01\n",
		"proc/sys/net/ipv6/neigh/default/gc_thresh3":   "1024\n",
		"proc/sys/net/ipv4/neigh/default/gc_thresh2":   "512\n",
		"proc/sys/net/netfilter/nf_conntrack_count":    "1000\n",
		"proc/sys/net/ipv4/ip_local_port_range.unused": "",
	})
	procs := []census.Process{{PID: 1, Comm: "systemd"}, {PID: 300, Comm: "pause", UID: 65535}}
	procs[0].NS[census.NSNet] = 4026531840
	procs[1].NS[census.NSNet] = 4026532500
	env := &Env{Ctx: context.Background(), Host: host.New(filepath.Join(dir, "proc"), filepath.Join(dir, "sys"), dir),
		Census: &census.Census{Processes: procs}, Thresholds: DefaultThresholds}
	rows := readNetwork(env)
	get := func(limit, scope string) Finding {
		t.Helper()
		for _, u := range rows {
			if u.Limit == limit && u.Scope == scope {
				u.Grade(DefaultThresholds)
				return u
			}
		}
		t.Fatalf("no %s row for %s in %+v", limit, scope, rows)
		return Finding{}
	}
	p := get("ports", "net ns 4026531840 (host)")
	if p.Used != 10 || p.Max != 10 || p.Severity != Critical {
		t.Errorf("host ports: %d/%d %s, want 10/10 critical", p.Used, p.Max, p.Severity)
	}
	if len(p.Consumers) != 1 || p.Consumers[0].Name != "to 10.0.3.7:8080" || p.Consumers[0].Count != 10 {
		t.Errorf("host ports consumers: %+v", p.Consumers)
	}
	if !strings.Contains(p.Reason, "9 of them in TIME_WAIT") {
		t.Errorf("host ports reason: %q", p.Reason)
	}
	if rem := portsRemedy(p); !strings.Contains(strings.Join(rem, "\n"), "tcp_tw_reuse") {
		t.Errorf("remedy does not offer tcp_tw_reuse: %q", rem)
	}
	// Another namespace's sysctls cannot be read from a tree.
	o := get("ports", "net ns 4026532500")
	if o.Severity != Unknown || !strings.Contains(o.Reason, "live host") {
		t.Errorf("pod ports: %s %q, want unknown for want of the live host", o.Severity, o.Reason)
	}
	c := get("conntrack", "net ns 4026531840 (host)")
	if c.Used != 1000 || c.Max != 1000 || c.Severity != Critical || !strings.Contains(c.Reason, "5 packets dropped") {
		t.Errorf("conntrack: %d/%d %s %q", c.Used, c.Max, c.Severity, c.Reason)
	}
	n := get("neighbour", "arp table (IPv4, all net namespaces)")
	if n.Used != 1024 || n.Max != 1024 || n.Severity != Critical || !strings.Contains(n.Reason, "refused 7") {
		t.Errorf("neighbour: %d/%d %s %q", n.Used, n.Max, n.Severity, n.Reason)
	}
	if len(n.Consumers) != 1 || n.Consumers[0].Count != 1 {
		t.Errorf("neighbour consumers: %+v", n.Consumers)
	}
	b := get("bridge.ports", "bridge docker0")
	if b.Used != 2 || b.Max != 1023 || len(b.Consumers) != 2 {
		t.Errorf("bridge: %+v", b)
	}
	for _, u := range rows {
		if u.Limit == "conntrack" && u.Scope == "net ns 4026532500" {
			t.Errorf("a conntrack row for a namespace without nf_conntrack: %+v", u)
		}
		if u.Limit == "neighbour" && strings.HasPrefix(u.Scope, "ndisc") {
			t.Errorf("an ndisc row on a host without ndisc_cache: %+v", u)
		}
	}

	// A tree without /proc/PID/net has no network rows.
	bare := netTree(t, map[string]string{"proc/sys/kernel/hostname": "x\n"})
	env = &Env{Ctx: context.Background(), Host: host.New(filepath.Join(bare, "proc"), filepath.Join(bare, "sys"), bare),
		Census: &census.Census{Processes: procs}, Thresholds: DefaultThresholds}
	if rows := readNetwork(env); len(rows) != 0 {
		t.Errorf("rows for a tree without networking: %+v", rows)
	}
	// Without a census: one unknown row.
	env.Census, env.CensusErr = nil, fmt.Errorf("boom")
	if rows := readNetwork(env); len(rows) != 1 || rows[0].Severity != Unknown {
		t.Errorf("rows without census: %+v", rows)
	}
}

func TestReadInNetNSSelf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setns needs root")
	}
	want, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip(err)
	}
	files, err := host.ReadInNetNS("/proc/self/ns/net", "/proc/sys/net/ipv4/ip_local_port_range", "/proc/sys/net/nothing")
	if string(files["/proc/sys/net/ipv4/ip_local_port_range"]) != string(want) {
		t.Errorf("read %q in our own namespace, want %q", files["/proc/sys/net/ipv4/ip_local_port_range"], want)
	}
	if err == nil || !strings.Contains(err.Error(), "nothing") {
		t.Errorf("the missing file is not reported: %v", err)
	}
	if _, err := host.ReadInNetNS("/proc/self/ns/user"); err == nil {
		t.Error("entered a user namespace as a net one")
	}
	if _, err := host.ReadInNetNS("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		t.Error("entered a file that is no namespace")
	}
}

func TestParseSockstatTCP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"sockets: used 15\nTCP: inuse 2 orphan 0 tw 3 alloc 9 mem 139\nUDP: inuse 4 mem 0\n", 5, true},
		{"TCP: inuse 0 orphan 0 tw 0 alloc 2 mem 303\n", 0, true},
		{"TCP6: inuse 7\nUDP6: inuse 1\n", 7, true},
		{"UDP6: inuse 1\n", 0, false},
		{"TCP: inuse x\n", 0, false},
		{"TCP: orphan 1\n", 0, false},
	} {
		got, err := parseSockstatTCP([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
