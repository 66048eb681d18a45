// Package explain maps an error message to the hidden limits that can
// produce it: the limits' own signatures first, then what the message says
// of itself (the errno's words, the syscall, the path, the tool), ranked by
// confidence; on a live host, each candidate is then checked.
package explain

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// maxMessage bounds what is read of one message: errors are short, and a
// 10 MB line must cost no more than a short one.
const maxMessage = 64 << 10

// Normalize turns a message as it was found (a JSON log record, a kubelet
// event escaped three times, lines split by a terminal) into one line of
// plain lower-case text: log wrappers unwrapped, escapes undone, lines
// joined, spaces collapsed, invalid UTF-8 dropped.
func Normalize(msg string) string {
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	if s, ok := normalizePlain(msg); ok {
		return s
	}
	return normalize(msg)
}

// normalizePlain is Normalize for the usual message, in one pass: ASCII,
// without a backslash to undo or a brace that could open a JSON record.
// ok is false for any other message.
func normalizePlain(msg string) (s string, ok bool) {
	b := make([]byte, 0, len(msg))
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; {
		case c >= 0x80 || c == '\\' || c == '{':
			return "", false
		case c == ' ' || c == ',' || ('\t' <= c && c <= '\r'):
			if len(b) > 0 && b[len(b)-1] != ' ' {
				b = append(b, ' ')
			}
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	if len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b), true
}

// normalize is Normalize for any message.
func normalize(msg string) string {
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, " ")
	}
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		parts = append(parts, unwrapJSON(line))
	}
	s := strings.Join(parts, " ")
	// Undo escaping, as deep as it goes: kubelet quotes runc's error,
	// which quoted the process's, and a JSON log quotes it all again.
	for i := 0; i < 6; i++ {
		t := unescape(s)
		if t == s {
			break
		}
		s = t
	}
	// Commas for spaces: CSV output ("ctr:,oci,runtime,create,failed:,no,
	// space,left,on,device") reads like the message it holds.
	s = strings.ReplaceAll(s, ",", " ")
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// unescape undoes one level of backslash escaping.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return unescaper.Replace(s)
}

var unescaper = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, " ", `\t`, " ", `\r`, " ", `\u0026`, "&", `\u003c`, "<", `\u003e`, ">")

// unwrapJSON returns the message of a JSON log record (docker's json-file
// "log", journald's "MESSAGE", structured loggers' "msg", "message",
// "error", "err"), or the line itself.
func unwrapJSON(line string) string {
	t := strings.TrimSpace(line)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return line
	}
	var rec map[string]any
	if json.Unmarshal([]byte(t), &rec) != nil {
		return line
	}
	var out []string
	for _, k := range []string{"log", "MESSAGE", "msg", "message", "error", "err", "reason", "note"} {
		if v, ok := rec[k].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return line
	}
	return strings.Join(out, " ")
}
