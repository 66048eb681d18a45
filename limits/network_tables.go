package limits

// Conntrack, neighbour tables and bridges: the network limits counted once per namespace or per host.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/enospc/enospc/host"
)

const (
	sysConntrackMax   = "net.netfilter.nf_conntrack_max"
	sysConntrackCount = "net.netfilter.nf_conntrack_count"
)

func (r *netReader) readConntrack() []Finding {
	if r.env.Census == nil {
		return nil // the ports row already says why
	}
	var out []Finding
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
		u := Finding{Limit: "conntrack", Scope: scope, Used: count, Max: maxEntries, Unit: "entries"}
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

func (r *netReader) readNeighbours() []Finding {
	// The tables' stat files and gc_thresh3 exist in the initial
	// namespace only.
	var out []Finding
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
		u := Finding{Limit: "neighbour", Scope: tbl.scope, Used: entries, Max: thresh3, Unit: "entries"}
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

func (r *netReader) readBridges() []Finding {
	dir := r.env.Host.SysPath("class", "net")
	devs, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []Finding{unknown("bridge.ports", "bridges", "ports", err)}
	}
	var out []Finding
	for _, d := range devs {
		ports, err := os.ReadDir(filepath.Join(dir, d.Name(), "brif"))
		if err != nil {
			continue // not a bridge
		}
		u := Finding{Limit: "bridge.ports", Scope: "bridge " + d.Name(), Used: int64(len(ports)), Max: brMaxPorts, Unit: "ports"}
		cs := make([]Consumer, 0, len(ports))
		for _, p := range ports {
			cs = append(cs, Consumer{Name: p.Name(), Count: 1})
		}
		u.setConsumers(cs, topConsumers)
		out = append(out, u)
	}
	return out
}
