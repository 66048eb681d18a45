package check

import (
	"sort"

	"github.com/enospc/enospc/limits"
)

// Group is what one container or one pod holds across every limit:
// "this pod holds 61% of uid 0's inotify watches".
type Group struct {
	// Key is the container id, or "namespace/pod" (the pod uid when only
	// the cgroup path named the pod).
	Key           string    `json:"key"`
	Container     string    `json:"container,omitempty"`
	ContainerName string    `json:"container_name,omitempty"`
	Image         string    `json:"image,omitempty"`
	Runtime       string    `json:"runtime,omitempty"`
	State         string    `json:"state,omitempty"`
	Pod           string    `json:"pod,omitempty"`
	Namespace     string    `json:"namespace,omitempty"`
	PodUID        string    `json:"pod_uid,omitempty"`
	Holdings      []Holding `json:"holdings"`
	// Worst is the biggest share over the holdings, for sorting.
	Worst float64 `json:"worst_share"`
}

// Holding is a group's part of one row.
type Holding struct {
	Limit    string          `json:"limit"`
	Scope    string          `json:"scope"`
	Held     int64           `json:"held"`
	Used     int64           `json:"used"`
	Max      int64           `json:"max"`
	Unit     string          `json:"unit"`
	Severity limits.Severity `json:"severity"`
	// Share is Held/Used: the group's part of what is in use.
	Share float64 `json:"share"`
	// Holders is how many of the row's consumers are the group's.
	Holders int `json:"holders"`
}

// countsInRowUnit reports whether a row's consumer counts are in the row's
// own unit, so that they add up to a share of it. keys.bytes lists keys,
// mounts lists the processes of a mount namespace.
func countsInRowUnit(limit string) bool {
	switch limit {
	case "keys.bytes", "mounts":
		return false
	}
	return true
}

// GroupHoldings groups the consumers of every row by container or pod,
// before the consumer lists are cut to their top holders. Consumers of
// no container (or no pod) are left out.
func GroupHoldings(rows []limits.Finding, by string) []Group {
	groups := map[string]*Group{}
	for _, u := range rows {
		if !countsInRowUnit(u.Limit) || u.Used <= 0 {
			continue
		}
		held := map[string]*Holding{}
		for _, c := range u.Consumers {
			key := groupKey(c, by)
			if key == "" {
				continue
			}
			g := groups[key]
			if g == nil {
				g = &Group{Key: key, Holdings: []Holding{}}
				if by == "container" {
					g.Container, g.ContainerName, g.Image, g.Runtime, g.State = c.Container, c.ContainerName, c.Image, c.Runtime, c.State
				}
				g.Pod, g.Namespace, g.PodUID = c.Pod, c.Namespace, c.PodUID
				groups[key] = g
			}
			h := held[key]
			if h == nil {
				h = &Holding{Limit: u.Limit, Scope: u.Scope, Used: u.Used, Max: u.Max, Unit: u.Unit, Severity: u.Severity}
				held[key] = h
			}
			h.Held += c.Count
			h.Holders++
		}
		for key, h := range held {
			h.Share = float64(h.Held) / float64(h.Used)
			g := groups[key]
			g.Holdings = append(g.Holdings, *h)
			g.Worst = max(g.Worst, h.Share)
		}
	}
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		sort.Slice(g.Holdings, func(i, j int) bool {
			a, b := g.Holdings[i], g.Holdings[j]
			if a.Severity != b.Severity {
				return a.Severity > b.Severity
			}
			if a.Share != b.Share {
				return a.Share > b.Share
			}
			return a.Limit+a.Scope < b.Limit+b.Scope
		})
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Holdings[0], out[j].Holdings[0]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if out[i].Worst != out[j].Worst {
			return out[i].Worst > out[j].Worst
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func groupKey(c limits.Consumer, by string) string {
	if by == "container" {
		return c.Container
	}
	switch {
	case c.Pod != "":
		return c.Namespace + "/" + c.Pod
	case c.PodUID != "":
		return c.PodUID
	}
	return ""
}
