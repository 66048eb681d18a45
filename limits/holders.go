package limits

// Holders: the consumers of a row, cut to the top few as they are added, and how a row lists them.

import (
	"cmp"
	"slices"

	"github.com/enospc/enospc/census"
)

// holders collects the consumers of one row. With Env.ListedOnly it keeps
// the n biggest, in CutConsumers's order, and counts the others: a row
// over every process of a bad night then holds ten consumers, not five
// thousand. Otherwise it keeps every one.
type holders struct {
	n     int // the row lists n
	cut   bool
	cs    []Consumer
	total int
}

func newHolders(env *Env, n int) holders {
	h := holders{n: n, cut: env.ListedOnly && n > 0}
	if h.cut {
		h.cs = make([]Consumer, 0, n)
	}
	return h
}

// add adds a consumer.
func (h *holders) add(c Consumer) {
	h.total++
	if !h.cut {
		h.cs = append(h.cs, c)
		return
	}
	if len(h.cs) == h.n && !listedBefore(c, h.cs[h.n-1]) {
		return
	}
	i := len(h.cs)
	for i > 0 && listedBefore(c, h.cs[i-1]) {
		i--
	}
	if len(h.cs) < h.n {
		h.cs = append(h.cs, Consumer{})
	}
	copy(h.cs[i+1:], h.cs[i:len(h.cs)-1])
	h.cs[i] = c
}

// addProcess adds a process holding count, charged to uid; the consumer
// is made only if it is kept.
func (h *holders) addProcess(p *census.Process, uid int, count int64) {
	if h.cut && len(h.cs) == h.n && !listedBefore(Consumer{PID: p.PID, Count: count}, h.cs[h.n-1]) {
		h.total++
		return
	}
	h.add(Consumer{PID: p.PID, UID: intp(uid), Comm: p.Comm, Count: count})
}

// listedBefore is CutConsumers's order: the biggest first, then by pid;
// a consumer added later goes after an equal one, as in a stable sort.
func listedBefore(a, b Consumer) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return a.PID < b.PID
}

// clone is a copy of h for a second row, which sorts and cuts its own.
func (h holders) clone() holders {
	h.cs = slices.Clone(h.cs)
	return h
}

// setHolders sets the row's consumers from h.
func (u *Finding) setHolders(h holders) {
	u.setConsumers(h.cs, h.n)
	if h.cut && h.total > len(h.cs) {
		u.ConsumersTotal = h.total
	}
}

// setConsumers keeps every holder for attribution and grouping; the list
// is cut to the n biggest by CutConsumers.
func (u *Finding) setConsumers(cs []Consumer, n int) {
	if cs == nil {
		cs = []Consumer{}
	}
	u.Consumers, u.listMax = cs, n
}

// CutConsumers sorts the holders biggest first and keeps as many as the
// family lists, recording how many there were in ConsumersTotal.
func (u *Finding) CutConsumers() {
	if u.Consumers == nil {
		u.Consumers = []Consumer{}
	}
	if u.listMax <= 0 {
		return
	}
	cs := u.Consumers
	slices.SortStableFunc(cs, func(a, b Consumer) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.PID, b.PID)
	})
	if len(cs) > u.listMax {
		u.ConsumersTotal = len(cs)
		u.Consumers = cs[:u.listMax]
	}
	u.listMax = 0
}

// KeepAllConsumers is CutConsumers without the cut: every holder stays,
// biggest first.
func (u *Finding) KeepAllConsumers() {
	u.listMax = len(u.Consumers)
	u.CutConsumers()
}

// topConsumers is how many holders a row lists.
const topConsumers = 10
