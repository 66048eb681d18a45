package serve

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/limits"
)

// redact returns a copy of a report without what other users put in it,
// for everyone who can reach serve's port (on a node, the pod network):
//
//   - a holder's process id and name (comm), which tell what a user runs;
//   - the name of an object a user owns (a holder with a uid: a key's
//     description, a SysV or POSIX IPC name, a quota holder's name),
//     which is the user's own text;
//   - "pid N (comm)" in a scope, a reason, a remedy or a note. A scope
//     that is one process (files.process, mapcount) becomes "process #k",
//     k its rank among the limit's rows, worst first.
//
// Counts, uids, containers, images, pods and systemd units stay: they are
// what an operator acts on, and the orchestrator shows them anyway.
// --expose-holders serves the report whole.
func redact(rep *check.Report) *check.Report {
	out := *rep
	out.Findings = make([]limits.Finding, len(rep.Findings))
	rank := map[string]int{}
	scopes := map[string]string{} // limit + scope → redacted scope
	for i, f := range rep.Findings {
		if procScope.MatchString(f.Scope) {
			rank[f.Limit]++
			s := fmt.Sprintf("process #%d", rank[f.Limit])
			scopes[f.Limit+"\x00"+f.Scope] = s
			f.Scope = s
		} else {
			f.Scope = redactText(f.Scope)
		}
		f.Reason = redactText(f.Reason)
		f.Remedy = slices.Clone(f.Remedy)
		for j := range f.Remedy {
			f.Remedy[j] = redactText(f.Remedy[j])
		}
		f.Consumers = slices.Clone(f.Consumers)
		for j := range f.Consumers {
			c := &f.Consumers[j]
			c.PID, c.Comm = 0, ""
			if c.UID != nil {
				c.Name = ""
			}
			c.Name = redactText(c.Name)
		}
		out.Findings[i] = f
	}
	out.Notes = slices.Clone(rep.Notes)
	for i := range out.Notes {
		out.Notes[i] = redactText(out.Notes[i])
	}
	out.Groups = slices.Clone(rep.Groups)
	for i := range out.Groups {
		g := &out.Groups[i]
		g.Holdings = slices.Clone(g.Holdings)
		for j := range g.Holdings {
			h := &g.Holdings[j]
			if s, ok := scopes[h.Limit+"\x00"+h.Scope]; ok {
				h.Scope = s
			} else {
				h.Scope = redactText(h.Scope)
			}
		}
	}
	return &out
}

// procScope is a scope that is one process, as limits writes it:
// fmt.Sprintf("pid %d (%s)", pid, comm).
var procScope = regexp.MustCompile(`^pid [0-9]+ \(.*\)$`)

var pidComm = regexp.MustCompile(`pid [0-9]+ \(`)

// redactText replaces each "pid N (comm)" with "a process". A comm is at
// most 15 bytes and may itself hold a ")": the end taken is the first ")"
// within 16 bytes that ends the text or is followed by a space or
// punctuation, else the first ")".
func redactText(s string) string {
	if !strings.Contains(s, "pid ") {
		return s
	}
	var b strings.Builder
	for {
		loc := pidComm.FindStringIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[0]])
		rest := s[loc[1]:]
		end := commEnd(rest)
		if end < 0 {
			b.WriteString(s[loc[0]:loc[1]])
			s = rest
			continue
		}
		b.WriteString("a process")
		s = rest[end+1:]
	}
}

// commEnd is the index of the ")" that closes a comm at the start of s,
// or -1.
func commEnd(s string) int {
	first := -1
	for i := 0; i < len(s) && i <= 16; i++ {
		if s[i] != ')' {
			continue
		}
		if first < 0 {
			first = i
		}
		if i+1 == len(s) || strings.IndexByte(" ,;:.", s[i+1]) >= 0 {
			return i
		}
	}
	return first
}
