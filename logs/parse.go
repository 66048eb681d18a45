package logs

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// record is what one log line says: when, who, and the message.
type record struct {
	time  time.Time
	where string
	msg   string
}

// parseLine reads the usual shapes of a log line: journalctl's JSON,
// docker's json-file, the CRI's "TIME STREAM TAG msg", RFC 3339 and syslog
// prefixes, klog's "E1122 08:00:00.123456 ...". What it does not know is
// taken whole as the message.
func parseLine(raw []byte, src Source, now time.Time) record {
	line := strings.TrimRight(string(raw), "\r")
	if len(line) > 0 && line[0] == '{' {
		if r, ok := parseJSON(line, src); ok {
			return r
		}
	}
	var r record
	rest := line
	// RFC 3339 (containerd, dockerd, CRI logs), then syslog, then klog.
	// A layout that cannot fit the first byte is not tried: a failed
	// time.Parse costs more than the rest of the line.
	if f, tail, ok := strings.Cut(rest, " "); ok && f != "" && '0' <= f[0] && f[0] <= '9' {
		if t, err := time.Parse(time.RFC3339Nano, f); err == nil {
			r.time, rest = t, tail
			// CRI log: "stdout F msg" / "stderr P msg".
			if s, t2, ok := strings.Cut(rest, " "); ok && (s == "stdout" || s == "stderr") {
				if tag, t3, ok := strings.Cut(t2, " "); ok && (tag == "F" || tag == "P") {
					rest = t3
				}
			}
		}
	}
	if r.time.IsZero() && len(rest) > 16 && isLetter(rest[0]) {
		if t, err := time.Parse(time.Stamp, rest[:15]); err == nil {
			r.time = withYear(t, now)
			rest = rest[16:]
			// "host prog[pid]: msg"
			if host, tail, ok := strings.Cut(rest, " "); ok && host != "" {
				if prog, msg, ok := strings.Cut(tail, ": "); ok && !strings.Contains(prog, " ") {
					if i := strings.IndexByte(prog, '['); i > 0 {
						prog = prog[:i]
					}
					r.where, rest = prog, msg
				}
			}
		}
	}
	if r.time.IsZero() && len(rest) > 21 && strings.ContainsRune("IWEF", rune(rest[0])) {
		// klog: Lmmdd hh:mm:ss.uuuuuu
		if t, err := time.Parse("0102 15:04:05.000000", rest[1:21]); err == nil {
			r.time = withYear(t, now)
		}
	}
	r.msg = rest
	return r
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// withYear puts a time without a year (syslog, klog) in the year that
// makes it most recent but not in the future.
func withYear(t, now time.Time) time.Time {
	if now.IsZero() {
		now = time.Now()
	}
	y := time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), now.Location())
	if y.After(now.Add(24 * time.Hour)) {
		y = y.AddDate(-1, 0, 0)
	}
	return y
}

// parseJSON reads journalctl -o json records and docker json-file lines.
func parseJSON(line string, src Source) (record, bool) {
	if r, ok := parseDockerJSON(line); ok {
		return r, true
	}
	return parseJSONMap(line, src)
}

// parseDockerJSON is parseJSONMap for the usual docker json-file line,
// {"log":"...","stream":"stderr","time":"..."}, without a map: an object
// of string values, without spaces, escaped keys, repeated keys or a
// MESSAGE, with a "log". ok is false for any other line, which
// parseJSONMap then reads.
func parseDockerJSON(line string) (record, bool) {
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' {
		return record{}, false
	}
	var log, tm string
	var hasLog, hasTime, hasStream bool
	i := 1
	for {
		key, next, ok := jsonString(line, i, false)
		if !ok || next >= len(line) || line[next] != ':' {
			return record{}, false
		}
		val, end, ok := jsonString(line, next+1, true)
		if !ok || end >= len(line) {
			return record{}, false
		}
		switch key {
		case `"log"`:
			if hasLog {
				return record{}, false
			}
			log, hasLog = val, true
		case `"time"`:
			if hasTime {
				return record{}, false
			}
			tm, hasTime = val, true
		case `"stream"`:
			if hasStream {
				return record{}, false
			}
			hasStream = true
		default: // another key, MESSAGE above all: parseJSONMap
			return record{}, false
		}
		if line[end] == '}' {
			if end != len(line)-1 || !hasLog {
				return record{}, false
			}
			break
		}
		if line[end] != ',' {
			return record{}, false
		}
		i = end + 1
	}
	var r record
	r.msg = strings.TrimRight(jsonUnquote(log), "\n")
	if hasTime {
		if t, err := time.Parse(time.RFC3339Nano, jsonUnquote(tm)); err == nil {
			r.time = t
		}
	}
	return r, true
}

// jsonString returns the JSON string at line[i:], quotes included, and
// the index after it; ok is false when there is none, or it does not
// follow JSON's rules (an escape it does not know, a control character),
// or, unless escapes is true, it has an escape.
func jsonString(line string, i int, escapes bool) (s string, next int, ok bool) {
	if i >= len(line) || line[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case c == '"':
			return line[i : j+1], j + 1, true
		case c < 0x20:
			return "", 0, false
		case c == '\\':
			if !escapes || j+1 >= len(line) {
				return "", 0, false
			}
			j++
			switch line[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(line) {
					return "", 0, false
				}
				for _, h := range []byte(line[j+1 : j+5]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return "", 0, false
					}
				}
				j += 4
			default:
				return "", 0, false
			}
		}
	}
	return "", 0, false
}

// jsonUnquote decodes a JSON string that jsonString returned, as
// encoding/json does.
func jsonUnquote(q string) string {
	raw := q[1 : len(q)-1]
	if !utf8.ValidString(raw) {
		var s string
		json.Unmarshal([]byte(q), &s)
		return s
	}
	if !strings.Contains(raw, `\`) {
		return raw
	}
	// The escapes of one character (a log line's \n above all) here;
	// \u, with its surrogates, by encoding/json.
	if !strings.Contains(raw, `\u`) {
		b := make([]byte, 0, len(raw))
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c == '\\' {
				i++
				c = jsonEscapes[raw[i]]
			}
			b = append(b, c)
		}
		return string(b)
	}
	var s string
	json.Unmarshal([]byte(q), &s)
	return s
}

var jsonEscapes = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// parseJSONMap reads any JSON object, as a map.
func parseJSONMap(line string, src Source) (record, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &m) != nil {
		return record{}, false
	}
	str := func(k string) string {
		var s string
		if v, ok := m[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	}
	var r record
	if _, ok := m["MESSAGE"]; ok {
		r.msg = str("MESSAGE")
		if r.msg == "" {
			// journald writes a message that is not UTF-8 as an array
			// of bytes.
			var b []byte
			var ints []int
			if json.Unmarshal(m["MESSAGE"], &ints) == nil {
				for _, i := range ints {
					b = append(b, byte(i))
				}
				r.msg = string(bytes.ToValidUTF8(b, []byte("?")))
			}
		}
		if us, err := strconv.ParseInt(str("__REALTIME_TIMESTAMP"), 10, 64); err == nil {
			r.time = time.UnixMicro(us)
		}
		r.where = str("_SYSTEMD_UNIT")
		if r.where == "" {
			r.where = str("SYSLOG_IDENTIFIER")
		}
		if c := str("CONTAINER_NAME"); c != "" {
			r.where = "container " + c
		}
		return r, true
	}
	if _, ok := m["log"]; ok {
		r.msg = strings.TrimRight(str("log"), "\n")
		if t, err := time.Parse(time.RFC3339Nano, str("time")); err == nil {
			r.time = t
		}
		return r, true
	}
	return record{}, false
}

// whereFromPath names the container or pod of a container log file:
// /var/lib/docker/containers/<id>/<id>-json.log, and kubelet's
// /var/log/containers/<pod>_<namespace>_<container>-<id>.log and
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/N.log.
func whereFromPath(path string) string {
	dir, base := filepath.Split(path)
	switch {
	case strings.HasSuffix(base, "-json.log") && strings.Contains(dir, "/containers/"):
		id := strings.TrimSuffix(base, "-json.log")
		if len(id) > 12 {
			id = id[:12]
		}
		return "container " + id
	case strings.Contains(dir, "/var/log/containers/") && strings.HasSuffix(base, ".log"):
		f := strings.SplitN(strings.TrimSuffix(base, ".log"), "_", 3)
		if len(f) == 3 {
			ctr := f[2]
			if i := strings.LastIndexByte(ctr, '-'); i > 0 {
				ctr = ctr[:i]
			}
			return "pod " + f[1] + "/" + f[0] + " container " + ctr
		}
	case strings.Contains(dir, "/var/log/pods/"):
		parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
		if len(parts) >= 2 {
			pod := strings.SplitN(parts[len(parts)-2], "_", 3)
			if len(pod) >= 2 {
				return "pod " + pod[0] + "/" + pod[1] + " container " + parts[len(parts)-1]
			}
		}
	}
	return ""
}
