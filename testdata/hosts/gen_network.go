package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/enospc/enospc/attrib"
)

const (
	// hostNetNS is the initial network namespace's inode on 5.x kernels.
	hostNetNS = 4026531992
	apiNetNS  = 4026532318
)

// tcpSock is one socket of a fixture's /proc/PID/net/tcp.
type tcpSock struct {
	local, remote string
	state         int // 1 ESTABLISHED, 6 TIME_WAIT, 10 LISTEN
}

// hexAddrPort writes an IPv4 address and port as /proc/net/tcp does: the
// address's 32-bit word in the host's byte order.
func hexAddrPort(s string) string {
	ap := netip.MustParseAddrPort(s)
	b := ap.Addr().As4()
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(b[:]), ap.Port())
}

// tcpFile is /proc/PID/net/tcp holding socks, in the kernel's format
// (tcp4_seq_show; TIME_WAIT sockets have no uid nor inode).
func tcpFile(socks []tcpSock) string {
	var b strings.Builder
	b.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     \n")
	for i, s := range socks {
		if s.state == 6 {
			fmt.Fprintf(&b, "%4d: %s %s %02X 00000000:00000000 03:%08X 00000000     0        0 0 3 0000000000000000\n",
				i, hexAddrPort(s.local), hexAddrPort(s.remote), s.state, 1000+i%5000)
			continue
		}
		fmt.Fprintf(&b, "%4d: %s %s %02X 00000000:00000000 00:00000000 00000000    33        0 %d 1 0000000000000000 20 4 30 10 -1                     \n",
			i, hexAddrPort(s.local), hexAddrPort(s.remote), s.state, 81000+i)
	}
	return b.String()
}

// conntrackStatFile is /proc/net/stat/nf_conntrack of a two-CPU host.
func conntrackStatFile(entries int) string {
	row := fmt.Sprintf("%08x  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n", entries)
	return "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n" + row + row
}

// neighStatFile is /proc/net/stat/arp_cache or ndisc_cache of a two-CPU
// host (the columns of kernel 6.18).
func neighStatFile(entries int) string {
	row := fmt.Sprintf("%08x 00000011 00000000 00000000   000021fc 00000000 00000000   00000000         00000000         00000199         00000000       00000000            00000000\n", entries)
	return "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls\n" + row + row
}

const arpHeader = "IP address       HW type     Flags       HW address            Mask     Device\n"

// portsExhausted: an nginx reverse proxy on the host's network that opens
// a connection per request to its upstream 10.0.3.7:8080 and closes it,
// each closed connection waiting 60 seconds in TIME_WAIT. The upstream's
// ephemeral ports run out: "connect() to 10.0.3.7:8080 failed (99: Cannot
// assign requested address) while connecting to upstream". Scaled down:
// ip_local_port_range is 50000-50999 (1000 ports, 10 of them reserved)
// instead of the default 32768-60999, so the tree holds 1000 sockets
// rather than 28000. conntrack_max, gc_thresh3 and the table layouts are
// this machine's (kernel 6.18).
func portsExhausted() {
	h := newHost("ports-exhausted", "5.15.0-1034-aws")
	h.sysctl["net/ipv4/ip_local_port_range"] = "50000\t50999"
	h.sysctl["net/ipv4/ip_local_reserved_ports"] = "50100-50109"
	h.sysctl["net/netfilter/nf_conntrack_max"] = "262144"
	h.sysctl["net/netfilter/nf_conntrack_count"] = "3041"
	h.sysctl["net/ipv4/neigh/default/gc_thresh3"] = "1024"
	h.sysctl["net/ipv6/neigh/default/gc_thresh3"] = "1024"
	h.basics()
	h.files["keys"] = "33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1\n"
	h.files["key-users"] = "    0:     8 7/7 6/1000000 120/25000000\n"
	h.files["cgroups"] = cgroupsFile(90)
	h.mounts = append([]string{
		"24 0 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw,discard",
		"20 24 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=3990000k,nr_inodes=997500,mode=755",
		"22 20 0:18 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw",
		"23 24 0:19 / /run rw,nosuid,nodev shared:22 - tmpfs tmpfs rw,mode=755",
	}, append(pseudoMounts, v1Mounts...)...)

	// The host's sockets: nginx listens on 80 and 443, clients connect to
	// 443, and nginx holds 982 local ports of the range towards its
	// upstream (974 in TIME_WAIT) and 12 towards a second one. sshd
	// listens on 22.
	var socks []tcpSock
	for _, l := range []string{"0.0.0.0:80", "0.0.0.0:443", "0.0.0.0:22"} {
		socks = append(socks, tcpSock{l, "0.0.0.0:0", 10})
	}
	for i := 0; i < 40; i++ {
		socks = append(socks, tcpSock{"10.0.1.15:443", fmt.Sprintf("203.0.113.%d:%d", 10+i, 41000+i*37), 1})
	}
	port := 50000
	next := func() int {
		for {
			p := port
			port++
			if p < 50100 || p > 50109 {
				return p
			}
		}
	}
	for i := 0; i < 982; i++ {
		st := 6
		if i%140 == 0 {
			st = 1
		}
		socks = append(socks, tcpSock{fmt.Sprintf("10.0.1.15:%d", next()), "10.0.3.7:8080", st})
	}
	for i := 0; i < 12; i++ {
		socks = append(socks, tcpSock{fmt.Sprintf("10.0.1.15:%d", 50000+i*3), "10.0.3.8:8080", 1})
	}
	hostArp := arpHeader +
		"10.0.1.1         0x1         0x2         0a:1f:3c:00:00:01     *        eth0\n" +
		"10.0.3.7         0x1         0x2         0a:1f:3c:00:03:07     *        eth0\n" +
		"10.0.3.8         0x1         0x2         0a:1f:3c:00:03:08     *        eth0\n" +
		"172.17.0.2       0x1         0x2         02:42:ac:11:00:02     *        docker0\n"
	h.procs[0].files = map[string]string{
		"net/tcp":               tcpFile(socks),
		"net/stat/nf_conntrack": conntrackStatFile(3041),
		"net/stat/arp_cache":    neighStatFile(5),
		"net/stat/ndisc_cache":  neighStatFile(3),
		"net/arp":               hostArp,
	}

	api := hex64("api container")
	apiTCP := tcpFile([]tcpSock{{"0.0.0.0:8080", "0.0.0.0:0", 10}, {"172.17.0.2:8080", "172.17.0.1:50874", 1},
		{"172.17.0.2:33012", "10.0.4.20:5432", 1}, {"172.17.0.2:33020", "10.0.4.20:5432", 1}})
	h.procs = append(h.procs,
		proc{pid: 1200, comm: "nginx", threads: 1, cgroup: v1CgroupFile("/system.slice/nginx.service")},
		proc{pid: 1201, comm: "nginx", uid: 33, threads: 1, cgroup: v1CgroupFile("/system.slice/nginx.service"), fds: []string{"socket:[81043]", "socket:[81044]"}},
		proc{pid: 1020, comm: "dockerd", threads: 24, cgroup: v1CgroupFile("/system.slice/docker.service")},
		proc{pid: 1040, comm: "containerd", threads: 12, cgroup: v1CgroupFile("/system.slice/containerd.service")},
		proc{pid: 3310, comm: "node", uid: 1000, threads: 11, mntns: 4026532316, cgroup: v1CgroupFile("/docker/" + api),
			files: map[string]string{
				"net/tcp":               apiTCP,
				"net/stat/nf_conntrack": conntrackStatFile(6),
				"net/arp":               arpHeader + "172.17.0.1       0x1         0x2         02:42:5e:7a:11:90     *        eth0\n",
			}},
	)
	h.inventory = attrib.NewInventory()
	h.inventory.Sources = []attrib.Source{{Runtime: "docker", Endpoint: "unix:///var/run/docker.sock", Reached: true, Containers: 1}}
	h.inventory.Containers[api] = &attrib.Container{ID: api, Name: "api", Image: "registry.local/shop/api:2.3",
		Runtime: "docker", State: "running", Live: true}
	h.statfs["/"] = statfs{BlockSize: 4096, Blocks: 10480385, BlocksFree: 7200000, BlocksAvail: 7200000, Files: 5242880, FilesFree: 5000000}
	h.statfs["/dev"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 997500, BlocksAvail: 997500, Files: 997500, FilesFree: 997100}
	h.statfs["/dev/shm"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 997500, BlocksAvail: 997500, Files: 997500, FilesFree: 997499}
	h.statfs["/run"] = statfs{BlockSize: 4096, Blocks: 997500, BlocksFree: 995000, BlocksAvail: 995000, Files: 997500, FilesFree: 996900}
	h.readme = "# ports-exhausted\n\nAn nginx reverse proxy on the host's network opens a connection per request to its upstream 10.0.3.7:8080 and closes it; each closed connection waits 60s in TIME_WAIT, and nginx logs \"connect() to 10.0.3.7:8080 failed (99: Cannot assign requested address) while connecting to upstream\". The host's namespace holds 982 of its 990 ephemeral ports towards that upstream (974 in TIME_WAIT, 8 established) while 12 go to 10.0.3.8:8080. Scaled down: ip_local_port_range is 50000-50999 with 50100-50109 reserved (990 ports) instead of the default 32768-60999, so that the tree holds a thousand sockets rather than 28000. The container api (docker, on docker0) has its own network namespace, whose sysctls a tree cannot show: its ports row is unknown. conntrack (3041 and 6 of nf_conntrack_max=262144), the neighbour tables (5 and 3 of gc_thresh3=1024) and docker0's one port are fine; their maxima and the stat tables' layout are those of this machine (kernel 6.18).\n"
	h.write()

	// The network namespace links and the bridge, which write() does not
	// know.
	for _, pr := range h.procs {
		ns := uint64(hostNetNS)
		if pr.pid == 3310 {
			ns = apiNetNS
		}
		must(os.Symlink(fmt.Sprintf("net:[%d]", ns), filepath.Join(h.dir, "proc", fmt.Sprint(pr.pid), "ns", "net")))
	}
	netDir := filepath.Join(h.dir, "sys", "class", "net")
	for _, dev := range []string{"lo", "eth0", "docker0", "veth3f2a1c9"} {
		writeFile(filepath.Join(netDir, dev, "mtu"), "1500\n")
	}
	must(os.MkdirAll(filepath.Join(netDir, "docker0", "brif"), 0o755))
	must(os.Symlink("../../veth3f2a1c9/brport", filepath.Join(netDir, "docker0", "brif", "veth3f2a1c9")))
}
