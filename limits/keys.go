package limits

// The kernel key quota (keyrings(7), Documentation/security/keys/core.rst).
//
// Every user (kuid) owns a key_user record that counts the keys and the bytes
// of key payload and description charged to it. Above
// kernel.keys.maxkeys keys or kernel.keys.maxbytes bytes (root_maxkeys and
// root_maxbytes for uid 0), add_key(2) and keyctl(2) fail with EDQUOT,
// "disk quota exceeded".
//
// Containers hit it because runc joins every container to a new session
// keyring named _ses.<container id>, owned by the container's uid as the host
// sees it. With user namespaces (docker userns-remap, rootless) all
// containers map to one host uid, so a CI agent with a few hundred
// containers running runs that uid out of quota (maxbytes defaults to
// 20000). A session keyring is freed when its last process exits, so the
// holders are running containers. The failing container then says
//
//	OCI runtime create failed: ... join session keyring: create session key: disk quota exceeded
//	unable to join session keyring: unable to create session key: disk quota exceeded
//
// Usage and limit live in /proc/key-users, one line per uid:
//
//	uid: usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes
//
// where maxkeys and maxbytes are already the limits in force for that uid.
// The keys themselves are listed in /proc/keys, but only those the reader
// may view: root must read it as the owning uid to see them. A key's
// description may hold a newline and so forge lines of /proc/keys: a line
// is believed only when it has the kernel's exact shape and, on the running
// kernel, keyctl confirms it (parseKeys, verifyKeys).

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
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

var keysFamily = Family{
	Name: "keyrings",
	Limits: []Limit{
		{
			ID:    "keys.count",
			Raise: keysRaise,
			Title: "keys per user (kernel.keys.maxkeys)",
			Unit:  "keys",
			Doc: "Number of keys and keyrings a uid may own: kernel.keys.maxkeys (default 200), " +
				"kernel.keys.root_maxkeys for uid 0. runc joins every container to a session keyring " +
				"_ses.<id>, charged to the container's uid on the host and freed when the container's " +
				"last process exits; with user namespaces all containers share that uid.",
			Signatures: []*Signature{sigKeyring, sigEDQUOTKey, sigCrunKeyring},
			Remedy:     keysRemedy,
		},
		{
			ID:    "keys.bytes",
			Raise: keysRaise,
			Title: "key bytes per user (kernel.keys.maxbytes)",
			Unit:  "bytes",
			Doc: "Bytes of key descriptions and payloads a uid may own: kernel.keys.maxbytes (default " +
				"20000), kernel.keys.root_maxbytes for uid 0. Usually the first key limit that runc's " +
				"per-container session keyrings exhaust.",
			Signatures: []*Signature{sigKeyring, sigEDQUOTKey, sigCrunKeyring},
			Remedy:     keysRemedy,
		},
		{
			ID:    "leak.keyrings",
			Title: "session keyrings of containers that no longer run",
			Unit:  "keys",
			Doc: "runc's _ses.<container id> session keyrings, charged to a uid, whose container its runtime " +
				"reports exited, or which no runtime lists and no process of it is left: keys.count and " +
				"keys.bytes quota taken by containers that do nothing. The kernel frees a session keyring " +
				"when its last process exits, so the usual cause is a process that outlived its container.",
			Signatures: []*Signature{sigKeyring, sigEDQUOTKey, sigCrunKeyring},
			Remedy:     leakKeyringsRemedy,
		},
	},
	Read: readKeys,
}

var (
	sigKeyring   = NewSignature(`(?i)(join|create) session key(ring)?:.*disk quota exceeded`)
	sigEDQUOTKey = NewSignature(`(?i)(add_key|keyctl|request_key)\b.*disk quota exceeded`)
	// crun names the keyring after the container.
	sigCrunKeyring = NewSignature("(?i)create keyring `?[^`]*`?: disk quota exceeded")
)

// maxKeysListed bounds the keys listed per uid; the total is kept.
const maxKeysListed = 1000

// Listing one uid's keys costs a walk of every key of the host: the kernel
// walks all keys for each reading of /proc/keys and shows the reader those
// it may view, and root may view no other uid's keys, so each uid is read
// on its own (as that uid) and listing every uid costs uids × keys: about
// 0.35 µs a key on a 2-core VM, 170 ms for 50 uids of 190 keys each. No
// credential views several uids' keys at once: view goes to a key's owner,
// to its group only when the key's permissions grant the group view
// (add_key(2) and runc's session keyrings do not), and to a possessor,
// whose own keyrings would have to link the keys. So the uids are listed
// fullest first while the keys walked stay within keysWalkBudget, and the
// keysListedMin fullest whatever the host's number of keys; the rows of the
// others say why their keys are not listed, and their leak.keyrings is
// unknown.
const (
	keysWalkBudget = 100_000
	keysListedMin  = 3
)

func readKeys(env *Env) []Usage {
	if env.AllKeys {
		return readKeysWithin(env, math.MaxInt64)
	}
	return readKeysWithin(env, keysWalkBudget)
}

// readKeysWithin is readKeys with budget keys to walk for the per-uid
// listings.
func readKeysWithin(env *Env, budget int64) []Usage {
	b, err := env.Host.ReadProc("key-users")
	if err != nil {
		return []Usage{
			unknown("keys.count", "all users", "keys", err),
			unknown("keys.bytes", "all users", "bytes", err),
		}
	}
	users, parseErr := parseKeyUsers(bytes.NewReader(b))
	if parseErr != nil && len(users) == 0 {
		return []Usage{
			unknown("keys.count", "all users", "keys", parseErr),
			unknown("keys.bytes", "all users", "bytes", parseErr),
		}
	}
	kl := &keyLister{path: env.Host.ProcPath("keys")}
	var seen keyView
	visible, err := env.Host.ReadProc("keys")
	switch {
	case err != nil:
		seen.err = err
	case env.Live:
		seen.keys, seen.dropped, seen.why = verifyKeys(parseKeyText(string(visible)), kl.describer.describe)
	default:
		seen.keys = parseKeys(bytes.NewReader(visible))
	}
	// As root on the live host each uid but root is read as itself.
	perUID := env.Live && env.Root
	var read map[int]bool
	var notRead string
	if perUID {
		var all int64
		var listed, cands int
		read, all, listed, cands = keysToRead(users, budget)
		notRead = fmt.Sprintf("each uid's keys are listed by reading /proc/keys as that uid, and each reading walks all %d keys of the host: listed for the %d fullest of %d uids", all, listed, cands)
	}
	var out []Usage
	var leaks []*keyringLeak
	for _, ku := range users {
		scope := "uid " + strconv.Itoa(ku.UID)
		var view keyView
		needsRoot, skipped := false, false
		switch {
		case !perUID || ku.UID == 0:
			// A fixture tree's /proc/keys holds every key; as a non-root
			// user only our own and world-viewable keys are listed.
			view = seen
			view.keys = ownKeys(nil, seen.keys, ku.UID)
			needsRoot = env.Live && !env.Root && seen.err == nil && ku.UID != os.Geteuid()
		case ku.Keys == 0:
			// A key_user record with no key left: nothing to list.
		case !read[ku.UID]:
			skipped = true
		default:
			v, err := kl.view(ku.UID)
			if err != nil {
				view = seen
				view.keys = ownKeys(nil, seen.keys, ku.UID)
				break
			}
			view = v
			view.keys = ownKeys(v.keys[:0], v.keys, ku.UID)
		}
		keys := view.keys
		uid := intp(ku.UID)
		consumers := make([]Consumer, 0, min(len(keys), maxKeysListed))
		for _, k := range keys[:min(len(keys), maxKeysListed)] {
			consumers = append(consumers, Consumer{UID: uid, Name: k.Type + " " + k.Description,
				Container: sessionKeyringContainer(k.Description), Count: 1})
		}
		count := Usage{Limit: "keys.count", Scope: scope, Used: ku.QuotaKeys, Max: ku.MaxKeys, Unit: "keys",
			Consumers: consumers, NeedsRoot: needsRoot}
		bytesRow := Usage{Limit: "keys.bytes", Scope: scope, Used: ku.QuotaBytes, Max: ku.MaxBytes, Unit: "bytes",
			Consumers: consumers, NeedsRoot: needsRoot}
		if len(keys) > len(consumers) {
			count.ConsumersTotal, bytesRow.ConsumersTotal = len(keys), len(keys)
		}
		switch {
		case skipped:
			count.Reason = "keys not listed: " + notRead
		case view.why != nil:
			count.Reason = fmt.Sprintf("keys not listed: %v", view.why)
		case view.dropped > 0:
			count.Reason = fmt.Sprintf("%d %s of /proc/keys not listed, unconfirmed by keyctl (a key gone meanwhile, or a line forged by a key description holding a newline)",
				view.dropped, pluralS(view.dropped, "line"))
		}
		bytesRow.Reason = count.Reason
		count.keyUser, bytesRow.keyUser = &ku, &ku
		out = append(out, count, bytesRow)
		if skipped {
			out = append(out, unknown("leak.keyrings", scope, "keys", errors.New("session keyrings not listed: "+notRead)))
			continue
		}
		if view.why != nil && ku.Keys > 0 {
			// Not listed at all (keyctl refused by a seccomp filter, a
			// read that failed): a leak cannot be told, which is not "none".
			out = append(out, unknown("leak.keyrings", scope, "keys", fmt.Errorf("session keyrings not listed: %v", view.why)))
			continue
		}
		if leak, ok := scanKeyringLeak(env, ku, keys); ok {
			leak.row = len(out)
			out = append(out, leak.u)
			leaks = append(leaks, leak)
		}
	}
	finishKeyringLeaks(env, out, leaks)
	if parseErr != nil {
		// The uids after a malformed line are not lost silently.
		out = append(out,
			unknown("keys.count", "uids after the malformed line", "keys", parseErr),
			unknown("keys.bytes", "uids after the malformed line", "bytes", parseErr))
	}
	return out
}

// keysToRead picks the uids whose keys are listed by reading /proc/keys as
// them (every uid holding keys but root): fullest first, by the larger of
// its keys and bytes against its limits, as many as budget keys walked
// allow and at least keysListedMin. all is the number of keys of the host, and
// cands the number of uids that would be read.
func keysToRead(users []KeyUser, budget int64) (read map[int]bool, all int64, listed, cands int) {
	fullness := func(ku KeyUser) float64 {
		f := 0.0
		if ku.MaxKeys > 0 {
			f = float64(ku.QuotaKeys) / float64(ku.MaxKeys)
		}
		if ku.MaxBytes > 0 {
			f = max(f, float64(ku.QuotaBytes)/float64(ku.MaxBytes))
		}
		return f
	}
	var order []KeyUser
	for _, ku := range users {
		all += ku.Keys
		if ku.UID != 0 && ku.Keys > 0 {
			order = append(order, ku)
		}
	}
	slices.SortStableFunc(order, func(a, b KeyUser) int {
		if c := cmp.Compare(fullness(b), fullness(a)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.QuotaKeys, a.QuotaKeys); c != 0 {
			return c
		}
		return cmp.Compare(a.UID, b.UID)
	})
	n := keysListedMin
	if all > 0 {
		n = max(n, int(min(budget/all, math.MaxInt32)))
	}
	n = min(n, len(order))
	read = make(map[int]bool, n)
	for _, ku := range order[:n] {
		read[ku.UID] = true
	}
	return read, all, n, len(order)
}

// ownKeys appends to dst the keys of src that uid owns and that are charged
// to its quota, sorted by description; dst may be src[:0].
func ownKeys(dst, src []Key, uid int) []Key {
	for _, k := range src {
		if k.UID == uid && k.InQuota() {
			dst = append(dst, k)
		}
	}
	sort.Slice(dst, func(i, j int) bool { return dst[i].Description < dst[j].Description })
	return dst
}

// keyView is /proc/keys as one reader sees it: the keys it lists; on the
// live host how many lines the kernel did not stand by (verifyKeys), of
// the whole view, other uids' lines included (which uid a forged line
// really belongs to is not known), and why none could be checked; err when
// it could not be read.
type keyView struct {
	keys     []Key
	dropped  int
	why, err error
}

// keyLister reads /proc/keys as one uid after another, with one buffer for
// the file and one for keyctl's answers.
type keyLister struct {
	path      string
	raw       []byte
	describer keyDescriber
}

// view reads /proc/keys as uid, which lists the keys uid may view, and
// checks each line with the kernel by the same credentials.
func (kl *keyLister) view(uid int) (keyView, error) {
	var v keyView
	err := host.AsFSUID(uid, func() error {
		b, err := host.AppendFile(kl.raw[:0], kl.path)
		if err != nil {
			return err
		}
		kl.raw = b
		v.keys, v.dropped, v.why = verifyKeys(parseKeyText(string(b)), kl.describer.describe)
		return nil
	})
	return v, err
}

func keysRemedy(u Usage) []string {
	uid := strings.TrimPrefix(u.Scope, "uid ")
	sessions, live, exited := 0, 0, 0
	for _, c := range u.Consumers {
		if !strings.HasPrefix(c.Name, "keyring _ses.") {
			continue
		}
		sessions++
		switch c.State {
		case "running", "paused", "created", "restarting":
			live++
		case "exited", "stopped", "dead", "gone":
			exited++
		}
	}
	out := []string{}
	switch {
	case exited > 0:
		out = append(out, fmt.Sprintf("%d of uid %s's keys are session keyrings of containers that no longer run (leak.keyrings lists them): remove those containers (docker container prune) and stop any process of theirs still running: it holds the keyring", exited, uid))
	case sessions > 0 && live > 0:
		out = append(out, fmt.Sprintf("%d of uid %s's keys are session keyrings (_ses.<container id>) of %d running containers: each running container holds one; stop the ones that need not run", sessions, uid, live))
	case sessions > 0:
		// A session keyring lives as long as a process holds it: these are
		// running containers (or their leftover processes), not exited
		// ones, which free theirs when their last process exits.
		out = append(out, fmt.Sprintf("%d of uid %s's keys are session keyrings (_ses.<container id>) of running containers: stop the containers of that uid that need not run", sessions, uid))
	}
	if u.keyUser == nil {
		return out
	}
	set, err := keysRaise.Plan(u, AsShown(u))
	if err != nil || len(set) == 0 {
		return out
	}
	need, perKey := keyQuotaNeed(u)
	var now, conf []string
	for _, st := range set {
		now = append(now, fmt.Sprintf("%s=%d", st.Name, st.To))
		conf = append(conf, fmt.Sprintf("%s = %d", st.Name, st.To))
	}
	return append(out,
		fmt.Sprintf("raise the quota now, room for %d keys of ~%d bytes: sysctl -w %s", need, perKey, strings.Join(now, " ")),
		fmt.Sprintf("keep it across reboots: printf '%s\\n' > /etc/sysctl.d/90-enospc-keys.conf", strings.Join(conf, "\\n")),
	)
}

// keyQuotaNeed is the room the key quota is raised to for row u: four
// times today's keys (at least 20000) at today's average size.
func keyQuotaNeed(u Usage) (keys, perKey int64) {
	var used, bytes int64
	switch {
	case u.keyUser != nil:
		used, bytes = u.keyUser.QuotaKeys, u.keyUser.QuotaBytes
	case u.Limit == "keys.count":
		used = u.Used
	default:
		bytes = u.Used
	}
	keys, perKey = max(4*used, 20000), 100
	if used > 0 {
		perKey = max((bytes+used-1)/used, 1)
	}
	return keys, perKey
}

// keysRaise raises the key quota of row u's uid (root's own sysctls for
// uid 0): the count and the bytes together, or the one left low stops the
// next container. Room for keyQuotaNeed's keys at today's average size,
// at least 400000 bytes, never less than now.
var keysRaise = &Raise{
	Risk:    "low: key payload memory, only when used",
	Sysctls: []string{"kernel.keys.maxkeys", "kernel.keys.maxbytes", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"},
	Settings: func(u Usage, cur func(string) (int64, error)) ([]Setting, error) {
		prefix := "kernel.keys."
		if u.Scope == "uid 0" {
			prefix = "kernel.keys.root_"
		}
		curKeys, err := cur(prefix + "maxkeys")
		if err != nil {
			return nil, err
		}
		curBytes, err := cur(prefix + "maxbytes")
		if err != nil {
			return nil, err
		}
		need, perKey := keyQuotaNeed(u)
		var out []Setting
		if keys := max(curKeys, need); keys > curKeys {
			out = append(out, Setting{Name: prefix + "maxkeys", To: keys})
		}
		if bytes := (max(curBytes, need*perKey, 400000) + 9999) / 10000 * 10000; bytes > curBytes {
			out = append(out, Setting{Name: prefix + "maxbytes", To: bytes})
		}
		return out, nil
	},
}

// keyringLeak is the leak.keyrings row of one uid in the making: its
// session keyrings whose container is not running. A keyring is held by a
// container its runtime lists as exited or stopped (a prune removes those),
// or by one no runtime lists while no process of it is left.
type keyringLeak struct {
	u   Usage
	row int // its index among the family's rows
	// cs are the keyrings of exited containers; gone those of containers
	// no runtime lists and no census process ran, looked for again in
	// finishKeyringLeaks.
	cs, gone            []Consumer
	sessions, undecided int
}

// scanKeyringLeak sorts one uid's session keyrings by what holds them; ok
// is false when the uid has no session keyrings.
func scanKeyringLeak(env *Env, ku KeyUser, keys []Key) (*keyringLeak, bool) {
	a := env.attributor()
	inv := a.Inventory()
	l := &keyringLeak{u: Usage{Limit: "leak.keyrings", Scope: "uid " + strconv.Itoa(ku.UID), Max: ku.MaxKeys, Unit: "keys"}}
	for _, k := range keys {
		id := sessionKeyringContainer(k.Description)
		if id == "" || k.Type != "keyring" {
			continue
		}
		l.sessions++
		if a.HasProcesses(id) {
			// Some process of it runs: not a leak, whatever any
			// runtime says.
			continue
		}
		c := Consumer{UID: intp(ku.UID), Name: k.Type + " " + k.Description, Container: id, Count: 1}
		if ctr, ok := inv.Lookup(id); ok {
			switch {
			case ctr.Live:
			case ctr.State == "exited" || ctr.State == "stopped" || ctr.State == "dead":
				a.Consumer(&c)
				l.cs = append(l.cs, c)
			default:
				l.undecided++
			}
			continue
		}
		if !inv.AllAnswered() {
			l.undecided++
			continue
		}
		l.gone = append(l.gone, c)
	}
	return l, l.sessions > 0
}

// finishKeyringLeaks completes the rows of leaks in rows. A container that
// started after the census and the runtimes were asked has a keyring and
// processes neither saw: the processes are looked for again, now, once
// for all uids.
func finishKeyringLeaks(env *Env, rows []Usage, leaks []*keyringLeak) {
	ids := map[string]bool{}
	for _, l := range leaks {
		for _, c := range l.gone {
			ids[c.Container] = true
		}
	}
	var running map[string]bool
	if len(ids) > 0 {
		running = processesNaming(env.Host, ids)
	}
	for _, l := range leaks {
		u, cs := l.u, l.cs
		exited := len(cs)
		for _, c := range l.gone {
			if running[c.Container] {
				continue
			}
			c.State = "gone"
			cs = append(cs, c)
		}
		gone := len(cs) - exited
		u.Used, u.Leaked = int64(len(cs)), int64(len(cs))
		u.setConsumers(cs, maxKeysListed)
		var parts []string
		if exited > 0 {
			parts = append(parts, fmt.Sprintf("%d of exited containers (a prune removes them)", exited))
		}
		if gone > 0 {
			parts = append(parts, fmt.Sprintf("%d of containers no runtime lists and none of whose processes is left", gone))
		}
		if len(cs) > 0 {
			u.floor = Warning
			u.Reason = fmt.Sprintf("%d of %d session keyrings: %s; a keyring outlives its container only while a process still holds it", len(cs), l.sessions, strings.Join(parts, ", "))
		}
		if l.undecided > 0 {
			why := fmt.Sprintf("%d session keyrings of containers with no process seen whose state is unknown (a runtime did not answer or gave no state): not counted", l.undecided)
			u.Reason = strings.TrimPrefix(u.Reason+"; ", "; ") + why
		}
		rows[l.row] = u
	}
}

func leakKeyringsRemedy(u Usage) []string {
	out := []string{}
	exited := 0
	for _, c := range u.Consumers {
		if c.State != "gone" {
			exited++
		}
	}
	if exited > 0 {
		out = append(out, "remove the exited containers that hold them: docker container prune (or ctr task delete / crictl rm for the ids listed)")
	}
	if exited < len(u.Consumers) || u.ConsumersTotal > len(u.Consumers) {
		out = append(out, "find the processes that still hold a gone container's keyring: they outlived their container (a leaked exec or a process moved out of its cgroup); stop them")
	}
	return out
}
