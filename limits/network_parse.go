package limits

// The network files of /proc, parsed: TCP tables, port ranges, /proc/net/stat and sockstat; functions of the bytes read, fuzzed.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// tcpSocket is one line of /proc/net/tcp or tcp6.
type tcpSocket struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state number (1 ESTABLISHED, 6
	// TIME_WAIT, 10 LISTEN).
	State uint8
}

const (
	tcpTimeWait = 6
	tcpListen   = 10
)

// parseTCPLine parses one socket line of /proc/net/tcp or tcp6:
//
//	0: 0100007F:1388 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 12345 ...
//
// Addresses are the kernel's words in host byte order, printed in hex; ok
// is false for the header and for lines that do not parse.
func parseTCPLine(line string) (tcpSocket, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
		return tcpSocket{}, false
	}
	local, ok1 := parseHexAddrPort(f[1])
	remote, ok2 := parseHexAddrPort(f[2])
	st, err := strconv.ParseUint(f[3], 16, 8)
	if !ok1 || !ok2 || err != nil {
		return tcpSocket{}, false
	}
	return tcpSocket{Local: local, Remote: remote, State: uint8(st)}, true
}

// parseHexAddrPort parses "0100007F:1388" (IPv4) or 32 hex digits and a
// port (IPv6), each 32-bit word in the host's byte order.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	switch len(a) {
	case 8, 32:
	default:
		return netip.AddrPort{}, false
	}
	for i := 0; i < len(a)/8; i++ {
		w, err := strconv.ParseUint(a[i*8:i*8+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(b[i*4:], uint32(w))
	}
	var addr netip.Addr
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// scanTCP calls fn for every socket of a /proc/net/tcp or tcp6 file. The
// header is skipped; other lines that do not parse are counted and the
// first is returned in the error, after the rest of the file was read.
func scanTCP(r io.Reader, fn func(tcpSocket)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	bad, first := 0, ""
	for sc.Scan() {
		line := sc.Text()
		s, ok := parseTCPLine(line)
		if ok {
			fn(s)
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "sl ") {
			continue
		}
		if bad == 0 {
			first = t
		}
		bad++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d malformed socket lines, the first %.80q", bad, first)
	}
	return nil
}

// portSpan is an inclusive range of ports.
type portSpan struct{ Lo, Hi int }

// parsePortRange parses ip_local_port_range: "32768\t60999".
func parsePortRange(s string) (portSpan, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: want two ports", s)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 0 || hi > 65535 || lo > hi {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: not a port range", s)
	}
	return portSpan{lo, hi}, nil
}

// parsePortList parses ip_local_reserved_ports: "8080,9000-9010" (empty for
// none).
func parsePortList(s string) ([]portSpan, error) {
	var out []portSpan
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil || lo < 0 || lo > 65535 {
			return out, fmt.Errorf("ip_local_reserved_ports: bad port %q", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil || hi < lo || hi > 65535 {
				return out, fmt.Errorf("ip_local_reserved_ports: bad range %q", part)
			}
		}
		out = append(out, portSpan{lo, hi})
	}
	return out, nil
}

// netStat is a /proc/net/stat table (nf_conntrack, arp_cache, ndisc_cache):
// a header of column names, then one line of hex counters per CPU.
type netStat struct {
	Columns []string
	Rows    [][]uint64
}

// parseNetStat parses a /proc/net/stat table.
func parseNetStat(b []byte) (netStat, error) {
	var st netStat
	// Lines of the file already in memory, walked in place: a scanner
	// would allocate its buffer, and a string per line, for every one of
	// a host's network namespaces.
	var fields [][]byte
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fields = appendFields(fields[:0], line)
		if len(fields) == 0 {
			continue
		}
		if st.Columns == nil {
			st.Columns = make([]string, len(fields))
			for i, c := range fields {
				st.Columns[i] = string(c)
			}
			continue
		}
		f := fields
		if len(f) != len(st.Columns) {
			return st, fmt.Errorf("line %d: %d fields for %d columns", n, len(f), len(st.Columns))
		}
		row := make([]uint64, len(f))
		for i, v := range f {
			// A short string(v) passed to ParseUint lives on the stack.
			x, err := strconv.ParseUint(string(v), 16, 64)
			if err != nil {
				return st, fmt.Errorf("line %d: %q is not a hex counter", n, v)
			}
			row[i] = x
		}
		st.Rows = append(st.Rows, row)
	}
	if len(st.Rows) == 0 {
		return st, errors.New("no counters")
	}
	return st, nil
}

// first is a column's value on the first line: the tables' "entries" is
// the table's count, printed again on every CPU's line.
func (s netStat) first(col string) (int64, bool) {
	i := slices.Index(s.Columns, col)
	if i < 0 || len(s.Rows) == 0 {
		return 0, false
	}
	return int64(min(s.Rows[0][i], 1<<62)), true
}

// sum is a per-CPU counter's total.
func (s netStat) sum(col string) int64 {
	i := slices.Index(s.Columns, col)
	if i < 0 {
		return 0
	}
	var n uint64
	for _, r := range s.Rows {
		n += r[i]
	}
	return int64(min(n, 1<<62))
}

// parseSockstatTCP sums inuse and tw of the TCP line of sockstat
// ("TCP: inuse 5 orphan 0 tw 2 alloc 9 mem 1") or sockstat6 ("TCP6: inuse
// 0").
func parseSockstatTCP(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "TCP:" && f[0] != "TCP6:") {
			continue
		}
		var n int64
		found := false
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] != "inuse" && f[i] != "tw" {
				continue
			}
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", f[i], f[i+1], err)
			}
			n, found = n+v, true
		}
		if !found {
			return 0, fmt.Errorf("no inuse in %q", line)
		}
		return n, nil
	}
	return 0, errors.New("no TCP line")
}

// appendFields appends the space-separated fields of line to dst, as
// slices of line.
func appendFields(dst [][]byte, line []byte) [][]byte {
	for len(line) > 0 {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r') {
			line = line[1:]
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\t' && line[end] != '\r' {
			end++
		}
		if end > 0 {
			dst = append(dst, line[:end])
		}
		line = line[end:]
	}
	return dst
}
