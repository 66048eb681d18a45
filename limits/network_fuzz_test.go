package limits

import (
	"strings"
	"testing"
)

func FuzzScanTCP(f *testing.F) {
	f.Add(tcpHost)
	f.Add(tcp6Host)
	f.Add(tcpHeader + "   0: 0100007F:1388 00000000:0000 0A\n   1: garbage\n")
	f.Add("   0: 0100007F:1388 0100007F:zzzz 01\n")
	f.Add("   0: 00000000000000000000000001000000:1F90 00000000:0000 0A\n")
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		err := scanTCP(strings.NewReader(in), func(s tcpSocket) {
			n++
			// What the kernel would print for the socket parses back to it.
			back, ok := parseTCPLine(formatTCPLine(n, s))
			if !ok || back != s {
				t.Fatalf("round trip of %v: %v %v", s, back, ok)
			}
			if s.Local.Addr().Is4() != s.Remote.Addr().Is4() && s.Local.Addr().BitLen() == 0 {
				t.Fatalf("invalid address in %v", s)
			}
		})
		if n > lines(in) {
			t.Fatalf("%d sockets from %d lines", n, lines(in))
		}
		if err != nil && !strings.Contains(err.Error(), "malformed") && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("unexpected error %v", err)
		}
		// Counting ports never panics and never exceeds the range.
		pu := newPortUsage(ephemeralPorts{Range: portSpan{0, 65535}, Reserved: []portSpan{{100, 200}}})
		scanTCP(strings.NewReader(in), pu.add)
		for _, d := range pu.busiest() {
			if u := pu.used(d); u > pu.eph.size() {
				t.Fatalf("%d ports used of %d", u, pu.eph.size())
			}
		}
	})
}

func FuzzParseNetStat(f *testing.F) {
	f.Add(conntrackStat)
	f.Add("entries  allocs table_fulls\n00000400 00000001 00000007\n")
	f.Add("entries\nffffffffffffffff\nffffffffffffffff\n")
	f.Fuzz(func(t *testing.T, in string) {
		st, err := parseNetStat([]byte(in))
		if err != nil {
			return
		}
		if len(st.Rows) == 0 {
			t.Fatal("no rows and no error")
		}
		for _, r := range st.Rows {
			if len(r) != len(st.Columns) {
				t.Fatalf("row of %d values for %d columns", len(r), len(st.Columns))
			}
		}
		for _, c := range st.Columns {
			if st.sum(c) < 0 {
				t.Fatalf("negative sum of %s", c)
			}
			if v, _ := st.first(c); v < 0 {
				t.Fatalf("negative first %s", c)
			}
		}
	})
}

func FuzzParsePorts(f *testing.F) {
	f.Add("32768\t60999", "8080,9000-9010")
	f.Add("40000 40009", "40000-40004,40003-40010")
	f.Add("1 1", "")
	f.Fuzz(func(t *testing.T, rng, reserved string) {
		r, err := parsePortRange(rng)
		if err != nil {
			return
		}
		if r.Lo > r.Hi || r.Lo < 0 || r.Hi > 65535 {
			t.Fatalf("accepted range %v", r)
		}
		res, err := parsePortList(reserved)
		e := ephemeralPorts{Range: r, Reserved: res}
		n := e.size()
		if n < 0 || n > int64(r.Hi-r.Lo+1) {
			t.Fatalf("size %d of %v less %v", n, r, res)
		}
		if r.Hi-r.Lo < 5000 {
			var count int64
			for p := r.Lo; p <= r.Hi; p++ {
				if e.has(p) {
					count++
				}
			}
			if count != n {
				t.Fatalf("size %d, has() counts %d (%v less %v)", n, count, r, res)
			}
		}
		if err == nil {
			for _, s := range res {
				if s.Lo > s.Hi || s.Lo < 0 || s.Hi > 65535 {
					t.Fatalf("accepted span %v", s)
				}
			}
		}
	})
}
