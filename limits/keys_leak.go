package limits

// leak.keyrings: session keyrings held by containers that no longer run.

import (
	"fmt"
	"strings"
)

// keyringLeak is the leak.keyrings row of one uid in the making: its
// session keyrings whose container is not running. A keyring is held by a
// container its runtime lists as exited or stopped (a prune removes those),
// or by one no runtime lists while no process of it is left.
type keyringLeak struct {
	u   Finding
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
	l := &keyringLeak{u: Finding{Limit: "leak.keyrings", Scope: UIDScope(ku.UID), Max: ku.MaxKeys, Unit: "keys"}}
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
func finishKeyringLeaks(env *Env, rows []Finding, leaks []*keyringLeak) {
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

func leakKeyringsRemedy(u Finding) []string {
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
