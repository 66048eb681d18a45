package logs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseLine feeds one log line, seeded with the lines of the node-1
// fixture's logs (syslog, CRI, docker json-file, binary junk): no panic;
// JSON lines read as parseJSON reads them, the docker fast path when it
// answers, else the map; other lines give a message that is the line's
// tail and a prefixed time that is not in the future; trailing \r does not
// matter.
func FuzzParseLine(f *testing.F) {
	filepath.WalkDir(filepath.Join("..", "testdata", "logs", "node-1", "var"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".gz") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for i, l := range bytes.Split(b, []byte("\n")) {
			if i < 40 && len(l) > 0 {
				f.Add(string(l))
			}
		}
		return nil
	})
	f.Add(`{"MESSAGE":[110,111,255],"__REALTIME_TIMESTAMP":"1795852800000000","_SYSTEMD_UNIT":"dockerd.service"}`)
	f.Add(`{"MESSAGE":"no space left on device","SYSLOG_IDENTIFIER":"kubelet","CONTAINER_NAME":"app"}`)
	f.Add(`{"log":"x\n","log":"y"}`)
	f.Add("Feb 29 12:00:00 node-1 kernel: x\r\r")
	f.Add("E1231 23:59:59.999999 1 x.go:1] quota exceeded")
	f.Fuzz(func(t *testing.T, line string) {
		src := Source{Name: "fuzz"}
		r := parseLine([]byte(line), src, now)
		if again := parseLine([]byte(line+"\r"), src, now); !sameRecord(again, r) {
			t.Fatalf("%q and with \\r: %+v, %+v", line, r, again)
		}
		trimmed := strings.TrimRight(line, "\r")
		if strings.HasPrefix(trimmed, "{") {
			if j, ok := parseJSON(trimmed, src); ok {
				if !sameRecord(j, r) {
					t.Fatalf("%q: parseLine %+v, parseJSON %+v", line, r, j)
				}
				want, wok := parseDockerJSON(trimmed)
				if !wok {
					want, wok = parseJSONMap(trimmed, src)
				}
				if !wok || !sameRecord(want, j) {
					t.Fatalf("%q: parseJSON %+v, docker then map %+v %v", line, j, want, wok)
				}
				return
			}
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(trimmed), &m) == nil && (m["MESSAGE"] != nil || m["log"] != nil) {
				t.Fatalf("%q: a JSON object with a message not read as JSON", line)
			}
		}
		if !strings.HasSuffix(trimmed, r.msg) {
			t.Errorf("%q: message %q is not the line's tail", line, r.msg)
		}
		if !strings.Contains(trimmed, r.where) {
			t.Errorf("%q: where %q is not in the line", line, r.where)
		}
		if !r.time.IsZero() && (trimmed[0] < '0' || trimmed[0] > '9') {
			// syslog and klog times have no year: the most recent one
			// not in the future.
			if r.time.After(now.Add(24*time.Hour)) || r.time.Before(now.AddDate(-1, 0, -1)) {
				t.Errorf("%q: time %v, now %v", line, r.time, now)
			}
		}
	})
}

// sameRecord compares records, times by the instant: a time parsed twice
// with a numeric offset has two locations.
func sameRecord(a, b record) bool {
	return a.msg == b.msg && a.where == b.where && a.time.Equal(b.time)
}
