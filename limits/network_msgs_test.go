package limits

// Real messages of the network family: captured by the lab
// (lab/kernel/network_test.go) on kernel 6.18, or quoted from the public
// reports named beside them.
func init() {
	realMessages["conntrack"] = []string{
		// https://github.com/kubernetes/kubernetes/issues/71261 (dmesg -T).
		`[Tue Nov 20 22:30:22 2018] nf_conntrack: table full, dropping packet`,
		// https://github.com/kubernetes-retired/kube-aws/pull/476 (older kernels double the prefix).
		`[2833841.216211] nf_conntrack: nf_conntrack: table full, dropping packet`,
	}
	realMessages["neighbour"] = []string{
		// https://github.com/Requiem4Eternity/Appstream/issues/102 (a Kubernetes node's journal).
		`Jun 11 11:04:35 k8snode228 kernel: neighbour: arp_cache: neighbor table overflow!`,
		// https://github.com/QubesOS/qubes-issues/issues/355 (kernel 3.x wording).
		`[250066.491572] ipv4: Neighbour table overflow.`,
	}
	realMessages["ports"] = []string{
		// The lab: Go's net.Dial in a private namespace whose
		// ip_local_port_range is 40000-40009, the 11th connection.
		`dial tcp 127.0.0.1:39999: connect: cannot assign requested address`,
		// The lab: the same with a local address (bind before connect).
		`dial tcp 127.0.0.1:0->127.0.0.1:39999: bind: address already in use`,
		// The lab: busybox nc in that namespace.
		`nc: can't connect to remote host (127.0.0.1): Cannot assign requested address`,
		// https://github.com/engintron/engintron/issues/938 (nginx to its upstream).
		`2018/09/29 23:34:57 [crit] 4793#4793: *210641 connect() to Xx.XX.XX.XXX:80 failed (99: Cannot assign requested address) while connecting to upstream, client: Xx.XX.XX.XXX, server: localhost, request: "GET /?sitemap84.xml HTTP/1.1", upstream: "http://Xx.XX.XX.XXX:80/?sitemap84.xml", host: "domain.com"`,
		// https://github.com/varnish/hitch/issues/213 (hitch to its varnish backend).
		`Oct  9 10:01:35 cache1-vm hitch[18741]: 20171009T100135.652141 [18774] {backend-connect}: Cannot assign requested address`,
	}
	realMessages["bridge.ports"] = []string{
		// https://github.com/weaveworks/weave/issues/3258 (kubelet with weave's CNI plugin).
		`createPodSandbox for pod "foo(a1c7d76a-261c-11e8-80e1-0a918743583e)" failed: rpc error: code = Unknown desc = NetworkPlugin cni failed to set up pod "foo" network: unable to set master of vethwepl3c8c481: exchange full`,
		// https://github.com/moby/libnetwork/issues/820 (docker overlay network).
		`could not add veth pair inside the network sandbox: error setting interface "vethe1e64f7" master to "br0": exchange full`,
		// The lab: ip link set ... master on a bridge of 1024 ports.
		`RTNETLINK answers: Exchange full`,
	}
	foreignMessages["ports"] = []string{realMessages["inotify.watches"][0], realMessages["files"][1], realMessages["neighbour"][0],
		// https://github.com/engintron/engintron/issues/1333: a listener's port taken, not the ephemeral range.
		`2021/06/18 14:49:02 [emerg] 1379408#1379408: bind() to [::]:80 failed (98: Address already in use)`}
	foreignMessages["conntrack"] = []string{realMessages["neighbour"][0], realMessages["keys.bytes"][0]}
	foreignMessages["neighbour"] = []string{realMessages["conntrack"][0], realMessages["inotify.watches"][0]}
	foreignMessages["bridge.ports"] = []string{realMessages["conntrack"][0], realMessages["cgroups"][0]}
}
