package limits

// Mounts per mount namespace (Documentation/admin-guide/sysctl/fs.rst,
// mount-max).
//
// fs.mount-max (default 100000) bounds the mounts of one mount namespace;
// past it mount(2) fails with ENOSPC, "no space left on device". Mount
// propagation makes it reachable: every container's mounts propagate into
// shared peers, and a runaway bind-mount loop in a privileged pod can
// multiply them.

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"github.com/enospc/enospc/limits/clue"
)

// The IDs of this file's limits.
const (
	Mounts ID = "mounts"
)

var mountsFamily = Family{
	Name: "mounts",
	Limits: []Limit{{
		ID:    Mounts,
		Clues: mountsClues,
		Raise: mountsRaise,
		Title: "mounts per mount namespace (fs.mount-max)",
		Unit:  "mounts",
		Doc:   "Mounts in one mount namespace against fs.mount-max.",
		Signatures: []*Signature{
			NewSignature(`(?i)mount(ing)? .*no space left on device`),
		},
		Remedy: mountsRemedy,
	}},
	Read: readMounts,
}

func readMounts(env *Env) []Finding {
	limit, err := env.Host.SysctlInt("fs.mount-max")
	if err != nil {
		return []Finding{unknown("mounts", "all mount namespaces", "mounts", err)}
	}
	if env.Census == nil {
		return []Finding{unknown("mounts", "all mount namespaces", "mounts", fmt.Errorf("no process census: %v", env.CensusErr))}
	}
	type ns struct {
		pids    []int
		holders holders
	}
	byNS := map[uint64]*ns{}
	var order []uint64
	unseen := 0
	for i := range env.Census.Processes {
		p := &env.Census.Processes[i]
		if p.MntNS == 0 {
			unseen++
			continue
		}
		n := byNS[p.MntNS]
		if n == nil {
			n = &ns{holders: newHolders(env, 3)}
			byNS[p.MntNS] = n
			order = append(order, p.MntNS)
		}
		n.pids = append(n.pids, p.PID)
		n.holders.addProcess(p, p.UID, 1)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	var out []Finding
	for _, id := range order {
		n := byNS[id]
		scope := "mnt ns " + strconv.FormatUint(id, 10)
		var count int64
		var lastErr error
		for _, pid := range n.pids {
			err := env.Host.ViewProc(func(b []byte) error {
				count = int64(bytes.Count(b, []byte("\n")))
				return nil
			}, strconv.Itoa(pid), "mountinfo")
			if err != nil {
				lastErr = err
				continue
			}
			lastErr = nil
			break
		}
		if lastErr != nil {
			u := unknown("mounts", scope, "mounts", lastErr)
			u.NeedsRoot = !env.Root
			out = append(out, u)
			continue
		}
		u := Finding{Limit: "mounts", Scope: scope, Used: count, Max: limit, Unit: "mounts"}
		u.setHolders(n.holders)
		out = append(out, u)
	}
	if unseen > 0 && !env.Root {
		// Other users' namespace links are unreadable: their mount
		// namespaces (containers) are missing from the rows above.
		for i := range out {
			out[i].NeedsRoot = true
		}
		out = append(out, Finding{Limit: "mounts", Scope: "other mount namespaces", Unit: "mounts", Severity: Unknown, NeedsRoot: true,
			Reason: fmt.Sprintf("the mount namespaces of %d processes could not be read; run as root", unseen)})
	}
	return out
}

// mountsRaise doubles fs.mount-max.
var mountsRaise = raiseTo("fs.mount-max", func(u Finding, cur int64) int64 { return cur * 2 }, "low")

func mountsRemedy(u Finding) []string {
	return []string{
		fmt.Sprintf("list the mounts of %s: cat /proc/PID/mountinfo for a pid in it (consumers), and look for repeated bind mounts", u.Scope),
		fmt.Sprintf("raise the limit: sysctl -w fs.mount-max=%d", advised(mountsRaise, u, nil)),
	}
}

// mountsClues are the words and facts of an error message that point to mounts (explain).
var mountsClues = []clue.Clue{
	{Errno: clue.ENOSPC, NotOp: clue.NamedCall, NotObj: clue.ObjCgroup | clue.ObjLog | clue.ObjShm, Prior: 0.1,
		Why: "mount reports fs.mount-max as ENOSPC"},

	{Words: []string{"mount-max", "mount_max"}, Prior: 0.92,
		Why: "the message names fs.mount-max"},
	{Errno: clue.ENOSPC, Op: clue.OpMount, NotObj: clue.ObjCgroup | clue.ObjFifo, NotOp: clue.OpUnshare | clue.OpMkdir | clue.OpWrite, Prior: 0.62,
		Why: "mount returns ENOSPC when a mount namespace reaches fs.mount-max (mount(2))"},
}
