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
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/enospc/enospc/host"
	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	KeysBytes    ID = "keys.bytes"
	KeysCount    ID = "keys.count"
	LeakKeyrings ID = "leak.keyrings"
)

var keysFamily = Family{
	Name: "keyrings",
	Limits: []Limit{
		{
			ID:    KeysCount,
			Clues: keysCountClues,
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
			ID:    KeysBytes,
			Clues: keysBytesClues,
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
			ID:    LeakKeyrings,
			Clues: leakKeyringsClues,
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

func readKeys(env *Env) []Finding {
	if env.AllKeys {
		return readKeysWithin(env, math.MaxInt64)
	}
	return readKeysWithin(env, keysWalkBudget)
}

// readKeysWithin is readKeys with budget keys to walk for the per-uid
// listings.
//
// Long on purpose: the budgeted walk of the keys, uid by uid, fullest first, with the reason each uid left out gets; one loop reads best as one.
func readKeysWithin(env *Env, budget int64) []Finding {
	b, err := env.Host.ReadProc("key-users")
	if err != nil {
		return []Finding{
			unknown("keys.count", "all users", "keys", err),
			unknown("keys.bytes", "all users", "bytes", err),
		}
	}
	users, parseErr := parseKeyUsers(bytes.NewReader(b))
	if parseErr != nil && len(users) == 0 {
		return []Finding{
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
	var out []Finding
	var leaks []*keyringLeak
	for _, ku := range users {
		scope := UIDScope(ku.UID)
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
		count := Finding{Limit: "keys.count", Scope: scope, Used: ku.QuotaKeys, Max: ku.MaxKeys, Unit: "keys",
			Consumers: consumers, NeedsRoot: needsRoot}
		bytesRow := Finding{Limit: "keys.bytes", Scope: scope, Used: ku.QuotaBytes, Max: ku.MaxBytes, Unit: "bytes",
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

func keysRemedy(u Finding) []string {
	uid := strings.TrimPrefix(u.Scope, "uid ")
	sessions, live, exited := 0, 0, 0
	for _, c := range u.Consumers {
		if !c.IsSessionKeyring() {
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
func keyQuotaNeed(u Finding) (keys, perKey int64) {
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
	Settings: func(u Finding, cur func(string) (int64, error)) ([]Setting, error) {
		prefix := "kernel.keys."
		if uid, ok := ScopeUID(u.Scope); ok && uid == 0 {
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

// keysCountClues are the words and facts of an error message that point to keys.count (explain).
var keysCountClues = []clue.Clue{
	{Errno: clue.EDQUOT, Op: clue.OpKeyring, Prior: 0.8,
		Why: "add_key and keyctl return EDQUOT at the uid's key quota; runc and crun create a session keyring per container (kernel.keys.maxkeys)"},
	{Words: []string{"maxkeys", "root_maxkeys"}, Prior: 0.9,
		Why: "the message names kernel.keys.maxkeys or the keys it counts"},
}

// keysBytesClues are the words and facts of an error message that point to keys.bytes (explain).
var keysBytesClues = []clue.Clue{
	{Errno: clue.EDQUOT, Op: clue.OpKeyring, Prior: 0.75,
		Why: "the same quota counts bytes (kernel.keys.maxbytes), often the first to run out"},
	{Words: []string{"maxbytes", "root_maxbytes", "key byte usage"}, Prior: 0.9,
		Why: "the message names kernel.keys.maxbytes or the key bytes it counts"},
}

// leakKeyringsClues are the words and facts of an error message that point to leak.keyrings (explain).
var leakKeyringsClues = []clue.Clue{
	{Errno: clue.EDQUOT, Op: clue.OpKeyring, Prior: 0.4,
		Why: "keyrings of containers that no longer run fill the quota"},
}
