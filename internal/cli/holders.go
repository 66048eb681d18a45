package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/enospc/enospc/attrib"
	"github.com/enospc/enospc/check"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

// holdersListed is how many holders a warning or critical row details.
const holdersListed = 5

// holders summarises a row's consumers in one short cell.
func holders(f limits.Finding) string {
	if len(f.Consumers) == 0 {
		return ""
	}
	total := max(f.ConsumersTotal, len(f.Consumers))
	sessions, states := 0, map[string]int{}
	for _, c := range f.Consumers {
		if c.IsSessionKeyring() {
			sessions++
			if c.State != "" {
				states[c.State]++
			}
		}
	}
	if sessions > 0 && (strings.HasPrefix(f.Limit, "keys.") || f.Limit == "leak.keyrings") {
		s := fmt.Sprintf("%d keys, %d of them container session keyrings", total, sessions)
		if len(states) > 0 {
			var parts []string
			for _, st := range []string{"running", "ready", "paused", "restarting", "created", "exited", "stopped", "dead", "gone", "unknown"} {
				if n := states[st]; n > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", n, st))
				}
			}
			s += " (" + strings.Join(parts, ", ") + ")"
		}
		return s
	}
	var parts []string
	for i, c := range f.Consumers {
		if i == 3 {
			break
		}
		name := c.ContainerName
		if name == "" && c.Container != "" {
			name = attrib.ShortID(c.Container)
		}
		switch {
		case c.PID != 0 && name != "":
			parts = append(parts, fmt.Sprintf("%s[%d]@%s %d", c.Comm, c.PID, name, c.Count))
		case c.PID != 0:
			parts = append(parts, fmt.Sprintf("%s[%d] %d", c.Comm, c.PID, c.Count))
		case c.Name != "":
			parts = append(parts, c.Name)
		}
	}
	s := quote.Terminal(strings.Join(parts, ", "))
	if total > len(parts) {
		s = fmt.Sprintf("%d: %s, …", total, s)
	}
	if r := []rune(s); len(r) > 90 {
		s = string(r[:89]) + "…"
	}
	return s
}

// writeHolders details the biggest holders of a row that needs action:
// everything known of each, container and pod included.
func writeHolders(w io.Writer, f limits.Finding) {
	for i, c := range f.Consumers {
		if i == holdersListed {
			fmt.Fprintf(w, "          · … %d more (-o json lists %d)\n", max(f.ConsumersTotal, len(f.Consumers))-i, len(f.Consumers))
			break
		}
		fmt.Fprintf(w, "          · %s\n", quote.Terminal(describeConsumer(c, consumerUnit(f))))
	}
}

// consumerUnit is what a row's consumer counts count: the row's unit but
// for keys.bytes (keys are listed) and mounts (processes of the
// namespace).
func consumerUnit(f limits.Finding) string {
	switch f.Limit {
	case "keys.bytes":
		return "keys"
	case "mounts":
		return "processes"
	}
	return f.Unit
}

// describeConsumer is one holder in words: "200 watches  node[4242]
// container 3f2a1b9c0d4e web (nginx:1.25, containerd, running)  pod
// shop/web-7d9 (burstable)".
func describeConsumer(c limits.Consumer, unit string) string {
	var b strings.Builder
	if c.Count == 1 && strings.HasSuffix(unit, "s") {
		unit = strings.TrimSuffix(unit, "s")
	}
	fmt.Fprintf(&b, "%s %s", human(c.Count, unit), unit)
	switch {
	case c.PID != 0:
		fmt.Fprintf(&b, "  %s[%d]", c.Comm, c.PID)
	case c.Container != "" && strings.HasSuffix(c.Name, limits.SessionKeyring(c.Container)):
		// The container's id follows: the keyring's name in short.
		fmt.Fprintf(&b, "  keyring _ses.%s", attrib.ShortID(c.Container))
	case c.Name != "":
		fmt.Fprintf(&b, "  %s", c.Name)
	}
	if c.UID != nil && c.PID != 0 {
		fmt.Fprintf(&b, " uid %d", *c.UID)
	}
	if c.Container != "" {
		fmt.Fprintf(&b, "  container %s", attrib.ShortID(c.Container))
		if c.ContainerName != "" {
			fmt.Fprintf(&b, " %s", c.ContainerName)
		}
		var about []string
		for _, s := range []string{c.Image, c.Runtime, c.State} {
			if s != "" {
				about = append(about, s)
			}
		}
		if len(about) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(about, ", "))
		}
	}
	switch {
	case c.Pod != "":
		fmt.Fprintf(&b, "  pod %s/%s", c.Namespace, c.Pod)
	case c.PodUID != "":
		fmt.Fprintf(&b, "  pod uid %s", c.PodUID)
	}
	if c.QoS != "" {
		fmt.Fprintf(&b, " (%s)", c.QoS)
	}
	if c.Unit != "" {
		fmt.Fprintf(&b, "  unit %s", c.Unit)
	}
	return b.String()
}

// writeGroups prints what each container or pod holds across limits.
func writeGroups(w io.Writer, rep *check.Report) {
	title := strings.ToUpper(rep.By)
	fmt.Fprintf(w, "\nby %s: what each holds, biggest share first\n", rep.By)
	if len(rep.Groups) == 0 {
		fmt.Fprintf(w, "  no holder is in a %s\n", rep.By)
		return
	}
	fmt.Fprintf(w, "%-40s  %-18s  %-22s  %10s  %10s  %6s\n", title, "LIMIT", "SCOPE", "HELD", "IN USE", "SHARE")
	for _, g := range rep.Groups {
		name := g.Key
		switch {
		case rep.By == "container" && g.ContainerName != "":
			name = attrib.ShortID(g.Container) + " " + g.ContainerName
			if g.Pod != "" {
				name += " (" + g.Namespace + "/" + g.Pod + ")"
			}
		case rep.By == "container":
			name = attrib.ShortID(g.Container)
		}
		name = quote.Terminal(name)
		if r := []rune(name); len(r) > 40 {
			name = string(r[:39]) + "…"
		}
		for i, h := range g.Holdings {
			if i == 5 {
				fmt.Fprintf(w, "%-40s  … %d more\n", "", len(g.Holdings)-i)
				break
			}
			label := name
			if i > 0 {
				label = ""
			}
			scope := keepTail(quote.Terminal(h.Scope), 22)
			fmt.Fprintf(w, "%-40s  %-18s  %-22s  %10s  %10s  %5.1f%%\n", label, h.Limit, scope, human(h.Held, h.Unit), human(h.Used, h.Unit), 100*h.Share)
		}
	}
}
