package limits

// /proc/key-users and /proc/keys parsed, every /proc/keys line confirmed by keyctl DESCRIBE of its serial.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/host"
)

// KeyUser is one line of /proc/key-users.
type KeyUser struct {
	UID       int
	Usage     int64 // references to the key_user record
	Keys      int64 // nkeys: all keys owned
	Instant   int64 // nikeys: instantiated keys
	QuotaKeys int64 // qnkeys: keys charged to the quota
	MaxKeys   int64
	QuotaBytes,
	MaxBytes int64
}

// Key is one line of /proc/keys.
type Key struct {
	ID          string
	Flags       string // "I--Q---": Q marks a key charged to its owner's quota
	UID, GID    int
	Type        string
	Description string
}

// InQuota reports whether the key is charged to its owner's quota.
func (k Key) InQuota() bool { return strings.Contains(k.Flags, "Q") }

// parseKeyUsers parses /proc/key-users.
func parseKeyUsers(r io.Reader) ([]KeyUser, error) {
	var out []KeyUser
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		u, err := parseKeyUserLine(line)
		if err != nil {
			return out, fmt.Errorf("key-users line %d: %w", n, err)
		}
		out = append(out, u)
	}
	return out, sc.Err()
}

// 1000:    12 11/11 11/200 1203/20000
func parseKeyUserLine(line string) (KeyUser, error) {
	uidStr, rest, ok := strings.Cut(line, ":")
	if !ok {
		return KeyUser{}, fmt.Errorf("no uid in %q", line)
	}
	f := strings.Fields(rest)
	if len(f) != 4 {
		return KeyUser{}, fmt.Errorf("want 4 fields after the uid, have %d", len(f))
	}
	var u KeyUser
	var err error
	if u.UID, err = strconv.Atoi(strings.TrimSpace(uidStr)); err != nil {
		return KeyUser{}, fmt.Errorf("uid: %w", err)
	}
	if u.Usage, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return KeyUser{}, fmt.Errorf("usage: %w", err)
	}
	pairs := []struct{ a, b *int64 }{{&u.Keys, &u.Instant}, {&u.QuotaKeys, &u.MaxKeys}, {&u.QuotaBytes, &u.MaxBytes}}
	for i, p := range pairs {
		a, b, ok := strings.Cut(f[i+1], "/")
		if !ok {
			return KeyUser{}, fmt.Errorf("field %q: want a/b", f[i+1])
		}
		if *p.a, err = strconv.ParseInt(a, 10, 64); err != nil {
			return KeyUser{}, err
		}
		if *p.b, err = strconv.ParseInt(b, 10, 64); err != nil {
			return KeyUser{}, err
		}
	}
	return u, nil
}

// parseKeys parses /proc/keys: the lines that have the kernel's exact
// shape, but for those whose serial appears on more than one line.
//
//	33bdefef I--Q---     1 perm 1f3f0000     0 65534 keyring   _uid_ses.0: 1
//
// The kernel prints a key's description as it is, and add_key(2) and
// keyctl(2) take any bytes but NUL for one (up to 4095): a description
// holding a newline ends its line and makes the next line say what its
// owner wants, a keyring _ses.<a victim's container id> of any uid for one.
// So a line counts only when every field before the description is the
// kernel's own printf to the character; a field of the wrong width or
// alphabet, tabs, a missing field or a short line is skipped. A forger can
// still print a line of that shape, so a serial seen twice (a copy of a
// real line) counts for neither, and on the running kernel verifyKeys
// asks the kernel about every serial before a line is believed.
func parseKeys(r io.Reader) []Key {
	lines := parseKeyLines(r)
	out := make([]Key, 0, len(lines))
	for _, l := range lines {
		out = append(out, l.Key)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// keyLine is a line of /proc/keys in the kernel's shape.
type keyLine struct {
	Key
	serial int32
	// text is what follows the type: the description, then what the
	// key type's describe adds (": 1", ": empty", ": 7" or nothing),
	// which reading alone cannot tell from a description holding ": ".
	text string
}

func parseKeyLines(r io.Reader) []keyLine {
	b, err := io.ReadAll(io.LimitReader(r, host.MaxPseudoFile))
	if err != nil {
		return nil
	}
	return parseKeyText(string(b))
}

// parseKeyText is parseKeyLines on the whole text: the lines' fields are
// substrings of text, not copies.
func parseKeyText(text string) []keyLine {
	out := make([]keyLine, 0, strings.Count(text, "\n")+1)
	for len(text) > 0 {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if l, ok := parseKeyLine(line); ok {
			out = append(out, l)
		}
	}
	// The kernel lists each key once: a serial on two lines is one line
	// and its forged copy, and which is which cannot be told here.
	serials := make([]int32, len(out))
	for i, l := range out {
		serials[i] = l.serial
	}
	slices.Sort(serials)
	var twice map[int32]bool
	for i := 1; i < len(serials); i++ {
		if serials[i] == serials[i-1] {
			if twice == nil {
				twice = map[int32]bool{}
			}
			twice[serials[i]] = true
		}
	}
	if twice == nil {
		return out
	}
	return slices.DeleteFunc(out, func(l keyLine) bool { return twice[l.serial] })
}

// parseKeyLine parses one line as security/keys/proc.c proc_keys_show
// prints it: "%08x %c%c%c%c%c%c%c %5d %4s %08x %5d %5d %-9.9s " (serial,
// flags, usage, timeout, permissions, uid, gid, type), then the type's
// describe: the description and, for keyrings and user keys once
// instantiated, ": " and a number or "empty".
func parseKeyLine(line string) (keyLine, bool) {
	var l keyLine
	serial, s, ok := strings.Cut(line, " ")
	if !ok || !lowerHex(serial, 8) {
		return l, false
	}
	n, _ := strconv.ParseUint(serial, 16, 32)
	if n == 0 || n > math.MaxInt32 {
		return l, false // key_serial_t is positive
	}
	flags, s, ok := strings.Cut(s, " ")
	if !ok || !keyFlags(flags) {
		return l, false
	}
	usage, s, ok := printfField(s, 5)
	if !ok || !digits(usage) {
		return l, false
	}
	timeout, s, ok := printfField(s, 4)
	if !ok || !keyTimeout(timeout) {
		return l, false
	}
	perm, s, ok := strings.Cut(s, " ")
	if !ok || !lowerHex(perm, 8) {
		return l, false
	}
	uidText, s, ok := printfField(s, 5)
	if !ok {
		return l, false
	}
	gidText, s, ok := printfField(s, 5)
	if !ok {
		return l, false
	}
	uid, ok1 := keyOwner(uidText)
	gid, ok2 := keyOwner(gidText)
	if !ok1 || !ok2 {
		return l, false
	}
	// %-9.9s and a space: the type, cut to 9 characters and padded to 9.
	if len(s) < 10 || s[9] != ' ' {
		return l, false
	}
	typ := strings.TrimRight(s[:9], " ")
	if typ == "" || strings.ContainsFunc(typ, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return l, false
	}
	text := s[10:]
	desc := text
	if j := strings.LastIndex(desc, ": "); j >= 0 {
		desc = desc[:j]
	} else {
		desc = strings.TrimSuffix(desc, ":")
	}
	l.Key = Key{ID: serial, Flags: flags, UID: uid, GID: gid, Type: typ, Description: desc}
	l.serial, l.text = int32(n), text
	return l, true
}

// printfField cuts a field printf wrote with a width (%5d, %4s) and the
// space after it: right-aligned, so as many leading spaces as the value is
// shorter than width, none when it is as long or longer.
func printfField(s string, width int) (field, rest string, ok bool) {
	pad := len(s) - len(strings.TrimLeft(s, " "))
	field, rest, ok = strings.Cut(s[pad:], " ")
	if !ok || field == "" || pad != max(width-len(field), 0) {
		return "", "", false
	}
	return field, rest, true
}

// keyOwner reads a uid or gid as the kernel prints it in /proc/keys and
// for KEYCTL_DESCRIBE: a uid_t through %d, so that uids from 2^31 up come
// out negative.
func keyOwner(s string) (int, bool) {
	if !digits(strings.TrimPrefix(s, "-")) {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(uint32(v)), true
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// keyFlags checks the seven flag letters, each in its place or '-':
// instantiated, revoked, dead, in quota, under construction by the user,
// negative, invalidated.
func keyFlags(s string) bool {
	const letters = "IRDQUNi"
	if len(s) != len(letters) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '-' && s[i] != letters[i] {
			return false
		}
	}
	return true
}

// keyTimeout checks the expiry column: "perm", "expd", or a number and
// one of s, m, h, d, w.
func keyTimeout(s string) bool {
	if s == "perm" || s == "expd" {
		return true
	}
	return len(s) >= 2 && digits(s[:len(s)-1]) && strings.IndexByte("smhdw", s[len(s)-1]) >= 0
}

// verifyKeys keeps the lines of /proc/keys the kernel stands by: for each
// serial, describe returns keyctl(2) KEYCTL_DESCRIBE's
// "type;uid;gid;perm;description", which no description can forge (the
// description comes last, and the serial is the kernel's). A line is kept
// when its serial exists and its type, uid, gid and description are the
// kernel's, with the description taken from the kernel; a forged line, and
// the real line a newline in its description cut short, are dropped, as
// is a key that went away meanwhile (counted in dropped too) or expired or
// was revoked (not counted). describe must run with the
// credentials the lines were read with: it sees what they could view.
// dropped counts the lines dropped; err is set, and nothing kept, when
// keyctl(2) itself is refused (a seccomp profile).
func verifyKeys(lines []keyLine, describe func(serial int32) ([]byte, error)) (keys []Key, dropped int, err error) {
	keys = make([]Key, 0, len(lines))
	for _, l := range lines {
		d, err := describe(l.serial)
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return nil, len(lines), fmt.Errorf("keyctl describe: %w", err)
		}
		if errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED) {
			// A real key on its way out, which keyctl no longer
			// describes: not listed, and no sign of a forgery.
			continue
		}
		if err != nil {
			dropped++
			continue
		}
		var f [4][]byte
		ok := true
		for i := range f {
			f[i], d, ok = bytes.Cut(d, []byte(";"))
			if !ok {
				break
			}
		}
		if !ok {
			dropped++
			continue
		}
		typ, desc := f[0], d
		if len(typ) > 9 {
			typ = typ[:9]
		}
		uid, _ := keyOwner(string(f[1]))
		gid, _ := keyOwner(string(f[2]))
		// The description is the kernel's: the line's text is it, or
		// it and what the type's describe adds after ": ".
		same := strings.HasPrefix(l.text, string(desc)) &&
			(len(l.text) == len(desc) || strings.HasPrefix(l.text[len(desc):], ": "))
		if string(typ) != l.Type || uid != l.UID || gid != l.GID || !same {
			dropped++
			continue
		}
		k := l.Key
		k.Description = l.text[:len(desc)]
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		keys = nil
	}
	return keys, dropped, nil
}

// keyDescriber asks the kernel about keys as the calling thread's
// credentials may view them (keyctl(2) KEYCTL_DESCRIBE), into one buffer
// that the next call overwrites.
type keyDescriber struct{ buf []byte }

func (kd *keyDescriber) describe(serial int32) ([]byte, error) {
	if kd.buf == nil {
		// "type;uid;gid;perm;" and a description of up to 4095 bytes.
		kd.buf = make([]byte, 4096+64)
	}
	for {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_DESCRIBE, int(serial), kd.buf, 0)
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, fmt.Errorf("keyctl describe %08x: empty answer", serial)
		}
		// n counts the terminating NUL, and is the whole size even when
		// the buffer was too short for it.
		if n <= len(kd.buf) {
			return kd.buf[:n-1], nil
		}
		kd.buf = make([]byte, n)
	}
}
