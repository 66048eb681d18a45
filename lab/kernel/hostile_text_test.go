//go:build lab

package kernel

// A user's key descriptions on root's terminal: one uid adds keys whose
// descriptions clear the screen, print a verdict, set the window title,
// reverse text, and (with a newline) forge a /proc/keys line that puts a
// session keyring in another uid's name. enospc check must show the first
// ones escaped, and not believe the forged line.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/lab/labkit"
)

// The uids of this test: the forger and the uid it forges a key for.
const (
	hostileUID = 260001
	victimUID  = 260002
)

const (
	hostileClearKey = "\x1b[2J\x1b[HALL LIMITS OK\x1b]0;owned\x07"
	hostileBidiKey  = "a\u202eb"
	// forgedContainer is the container id of the forged session keyring.
	forgedContainer = "abababababababababababababababababababababababababababababababab"
)

var _ = func() bool {
	helperModes["hostile-keys"] = helperHostileKeys
	helperModes["victim-keyring"] = helperVictimKeyring
	return true
}()

// helperHostileKeys joins a session keyring of its own and adds the
// hostile keys to it, every one viewable by all (so that the victim's view
// of /proc/keys shows them too). They go when the helper exits: its
// session keyring is their only link.
func helperHostileKeys() helperReport {
	runtime.LockOSThread() // the session keyring belongs to this thread
	ring, err := unix.KeyctlJoinSessionKeyring("enospc-lab-hostile-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		return helperReport{Fatal: "join session keyring: " + err.Error()}
	}
	forged := fmt.Sprintf("evil\n%08x I--Q---     1 perm 3f010000 %5d %5d keyring   _ses.%s", ring+1, victimUID, victimUID, forgedContainer)
	for _, desc := range []string{hostileClearKey, hostileBidiKey, forged} {
		id, err := unix.AddKey("user", desc, []byte{1}, ring)
		if err != nil {
			return helperReport{Fatal: fmt.Sprintf("add_key %q: %v", desc, err)}
		}
		// Possessor all, user view, other view.
		if err := unix.KeyctlSetperm(id, 0x3f010001); err != nil {
			return helperReport{Fatal: fmt.Sprintf("setperm %q: %v", desc, err)}
		}
	}
	return helperReport{Count: 3}
}

// helperVictimKeyring holds a session keyring, so that its uid has a line
// in /proc/key-users and a row of its own.
func helperVictimKeyring() helperReport {
	runtime.LockOSThread()
	if _, err := unix.KeyctlJoinSessionKeyring("enospc-lab-victim-" + strconv.Itoa(os.Getpid())); err != nil {
		return helperReport{Fatal: "join session keyring: " + err.Error()}
	}
	return helperReport{Count: 1}
}

func TestHostileKeyDescriptions(t *testing.T) {
	bin := helperBinary(t)
	startHelper(t, bin, "victim-keyring", victimUID)
	startHelper(t, bin, "hostile-keys", hostileUID)
	only := "--only=keys.count,keys.bytes,leak.keyrings"

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(labkit.Bin(), append([]string{"check", "--all", only}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("enospc check: %v", err)
			}
		}
		if stderr.Len() > 0 {
			t.Errorf("enospc check %s: stderr: %q", strings.Join(args, " "), stderr.String())
		}
		out := stdout.String()
		for _, r := range out {
			if r < 0x20 && r != '\n' || r == 0x7f || r == '\u202e' {
				t.Errorf("enospc check %s holds a raw %U:\n%q", strings.Join(args, " "), r, out)
				break
			}
		}
		return out
	}

	// The table, as root's terminal gets it.
	table := run()
	for _, want := range []string{`\x1b[2J\x1b[HALL LIMITS OK\x1b]0;owned\x07`, `a\u202eb`} {
		if !strings.Contains(table, want) {
			t.Errorf("the table does not show %s:\n%s", want, table)
		}
	}

	// The report: the descriptions as data, the forged line not believed.
	var rep check.Report
	if err := json.Unmarshal([]byte(run("-o", "json")), &rep); err != nil {
		t.Fatalf("enospc check -o json: %v", err)
	}
	forger := labkit.Find(t, &rep, "keys.count", labkit.ScopeIs("uid "+strconv.Itoa(hostileUID)))
	var names []string
	for _, c := range forger.Consumers {
		names = append(names, c.Name)
	}
	if !strings.Contains(strings.Join(names, "\n"), "user "+hostileClearKey) {
		t.Errorf("uid %d's keys in the report: %q, want the description as it is", hostileUID, names)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "user evil") {
			t.Errorf("uid %d: the cut line of the forging key is listed: %q", hostileUID, n)
		}
	}
	victim := labkit.Find(t, &rep, "keys.count", labkit.ScopeIs("uid "+strconv.Itoa(victimUID)))
	for _, c := range victim.Consumers {
		if strings.Contains(c.Name, forgedContainer) || c.Container == forgedContainer {
			t.Errorf("uid %d: the forged keyring is listed: %+v", victimUID, c)
		}
	}
	if !strings.Contains(victim.Reason, "not listed") {
		t.Errorf("uid %d's row does not say lines were not listed: %q", victimUID, victim.Reason)
	}
	for _, f := range rep.Findings {
		if f.Limit == "leak.keyrings" && f.Scope == "uid "+strconv.Itoa(victimUID) {
			t.Errorf("a leak.keyrings row for the victim: %+v", f)
		}
	}
}
