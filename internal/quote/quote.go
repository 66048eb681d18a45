// Package quote makes text read from the host safe to show and to paste.
//
// Much of what enospc prints comes from people it does not trust: key
// descriptions any uid may set, mount points any user with fusermount may
// choose, process names, container and pod names, log lines. Printed raw,
// such text can clear root's terminal, set its title, forge a table row
// with a newline, reorder what is shown with bidi controls; pasted raw into
// a suggested command, it runs. Terminal makes text inert for a terminal,
// Shell for a POSIX shell.
package quote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Terminal returns s with every byte or character that a terminal would not
// show as itself replaced by a visible escape: \n, \r and \t; \xHH for the
// other C0 controls (ESC is \x1b), DEL and bytes that are not valid UTF-8;
// \uHHHH (or \UHHHHHHHH) for C1 controls and for characters Unicode does not
// count as printable: format and bidi controls (U+200B..U+200F,
// U+202A..U+202E, U+2066..U+2069, U+FEFF), line and paragraph separators,
// spaces other than U+0020, private-use and unassigned code points.
// Printable text, non-ASCII letters included, is returned as it is.
//
// A backslash is not escaped: enospc's own text (shell commands in
// remedies) holds backslashes, and a host string that spells out "\x1b"
// only shows those four characters, which harms no terminal. The result is
// valid UTF-8 and holds no control character.
func Terminal(s string) string {
	if plainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f:
			b.WriteByte(byte(r))
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+size])
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// plainASCII reports whether s is printable ASCII only, which Terminal
// returns unchanged.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Shell returns s as one word of a POSIX shell command line: unchanged when
// it holds only characters no shell treats specially (letters, digits and
// @%+=:,./_-, as in /var/lib/docker), otherwise in single quotes, each
// single quote in it written '\”. Inside single quotes sh(1) expands
// nothing, so "/mnt/x;$(id)" stays one argument. A control character stays
// in the quotes as it is: show the command through Terminal. s must not
// hold a NUL byte, which no argument can.
func Shell(s string) string {
	if s == "" {
		return "''"
	}
	if shellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// JSON rewrites, in the JSON text b, each character that Terminal would
// escape and encoding/json leaves as it is (DEL, C1 controls, bidi and other
// format characters, separators, private-use and unassigned code points) as
// a \uXXXX escape (a surrogate pair above U+FFFF). Outside strings JSON
// text is ASCII, so only string contents change, and only in spelling:
// every value decodes as before. Output piped to a terminal then holds
// nothing it acts on.
func JSON(b []byte) []byte {
	var out []byte
	done := 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r < utf8.RuneSelf && r != 0x7f || r == utf8.RuneError && size == 1 || r >= utf8.RuneSelf && unicode.IsPrint(r) {
			i += size
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(b)+32)
		}
		out = append(out, b[done:i]...)
		if r > 0xffff {
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
		done = i
	}
	if out == nil {
		return b
	}
	return append(out, b[done:]...)
}
