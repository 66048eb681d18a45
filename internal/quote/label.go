package quote

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Label is s when it is valid UTF-8; otherwise each byte that is not
// part of a valid character becomes \xNN and each backslash \\, so that
// distinct invalid inputs stay distinct (a mount point made by fusermount
// may be any bytes, and Prometheus takes only UTF-8): for metric label
// values.
func Label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
