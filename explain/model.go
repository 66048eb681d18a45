package explain

import (
	"sort"
	"sync"

	"github.com/enospc/enospc/limits"
	"github.com/enospc/enospc/limits/clue"
)

// The cross-limit reasoning: the facts of a message (facts.go) are matched
// against every limit's clues (declared with the limit, limits.Limit.Clues) and against what lies outside the
// catalog; each limit's confidence is its best clue's prior, a little more
// for each further clue; the catalog's signatures back a limit up; then
// the limits compete:
//   - when the words name something outside the catalog as surely as any
//     limit, that is the answer, and no limit is given at 0.5 or more;
//   - two limits the very same call fails with the same errno for (see
//     sameCall) keep their confidences: only the host tells them apart;
//   - any other limit after the first is given at 0.75 at most: two
//     different limits are not both the cause, and the words rarely say
//     both with confidence.

// Candidate is one limit a message may point to, before the host is asked.
type Candidate struct {
	Limit      string
	Confidence float64
	Evidence   []string
}

// Outside is a cause outside the catalog that the message is worded like a
// hidden limit for, as `explain -o json` prints it.
type Outside struct {
	Kind       string   `json:"kind"`
	Title      string   `json:"title"`
	Confidence float64  `json:"confidence"`
	Evidence   []string `json:"evidence"`
	Remedy     string   `json:"remedy"`
}

// sameCall groups the limits that fail the very same call with the very
// same error, so that no message can tell them apart: which one ran out is
// a fact of the host, which Explain reads when it is the host the error
// came from. add_key's EDQUOT is one quota counted in keys and in bytes;
// mkdir's ENOSPC in the memory hierarchy is one id space held by live,
// dying and leaked cgroups; clone's EAGAIN is pids.max, pid_max,
// RLIMIT_NPROC (nproc) or threads-max; a write's ENOSPC is blocks or
// inodes; a filesystem's EDQUOT is its block or its inode quota;
// unshare's ENOSPC is any user.max_*_namespaces of the kinds it creates.
var sameCall = [][]limits.ID{
	{limits.Userns, limits.Namespaces},
	{limits.KeysCount, limits.KeysBytes, limits.LeakKeyrings},
	{limits.Cgroups, limits.CgroupsDying, limits.LeakCgroups},
	{limits.Pids, limits.Threads, limits.NProc},
	{limits.Disk, limits.Inodes},
	{limits.Quota, limits.QuotaInodes},
}

func sameCallAs(a, b string) bool {
	if a == b {
		return true
	}
	for _, g := range sameCall {
		inA, inB := false, false
		for _, x := range g {
			inA = inA || string(x) == a
			inB = inB || string(x) == b
		}
		if inA && inB {
			return true
		}
	}
	return false
}

// Confidence bounds, stated once.
const (
	further  = 0.03 // each further clue of the same limit
	maxConf  = 0.97 // words never make a limit certain
	otherMax = 0.75 // a limit after the first, not of its call
	blameMax = 0.45 // a limit when the words name something outside the catalog
	sigOnly  = 0.5  // a limit only the catalog's signature points to
	sigBare  = 0.25 // the same, in a message without any errno's words: a mention
	labelMin = 0.3  // Label gives no limit below this: a mention is not an error
)

// compiledClue is a clue with its words as ids of the vocabulary.
type compiledClue struct {
	*clue.Clue
	words, notWords []int
}

type compiledLimit struct {
	limit string
	clues []compiledClue
}

type compiledOutside struct {
	*outside
	clues []compiledClue
}

type ids struct {
	e   clue.Errno
	op  clue.Op
	obj clue.Obj
	pr  clue.Prog
	ids []int
}

// vocabulary is every word the model reads, with the automaton that finds
// them all in one pass, and the clues compiled to its ids.
type vocabulary struct {
	index   *wordIndex
	ids     map[string]int
	errnos  []ids
	ops     []ids
	objs    []ids
	progs   []ids
	limits  []compiledLimit
	outside []compiledOutside
}

var vocab = sync.OnceValue(func() *vocabulary {
	v := &vocabulary{ids: map[string]int{}}
	var words []string
	id := func(w string) int {
		if i, ok := v.ids[w]; ok {
			return i
		}
		v.ids[w] = len(words)
		words = append(words, w)
		return len(words) - 1
	}
	list := func(ws []string) []int {
		var out []int
		for _, w := range ws {
			out = append(out, id(w))
		}
		return out
	}
	for _, x := range clue.ErrnoWords {
		v.errnos = append(v.errnos, ids{e: x.E, ids: list(x.Words)})
	}
	id(clue.TooManyOpenFiles)
	for _, x := range clue.OpWords {
		v.ops = append(v.ops, ids{op: x.Op, ids: list(x.Words)})
	}
	for _, x := range clue.ObjWords {
		v.objs = append(v.objs, ids{obj: x.Obj, ids: list(x.Words)})
	}
	for _, x := range clue.ProgWords {
		v.progs = append(v.progs, ids{pr: x.Prog, ids: list(x.Words)})
	}
	compile := func(cs []clue.Clue) []compiledClue {
		var out []compiledClue
		for i := range cs {
			out = append(out, compiledClue{Clue: &cs[i], words: list(cs[i].Words), notWords: list(cs[i].NotWords)})
		}
		return out
	}
	for _, lc := range catalogClues() {
		v.limits = append(v.limits, compiledLimit{limit: string(lc.limit), clues: compile(lc.clues)})
	}
	for i := range outsideClues {
		v.outside = append(v.outside, compiledOutside{outside: &outsideClues[i], clues: compile(outsideClues[i].clues)})
	}
	v.index = newWordIndex(words)
	return v
})

// holds reports whether the clue holds for the facts.
func (c *compiledClue) holds(f *facts) bool {
	switch {
	case c.Errno != 0 && f.errno&c.Errno == 0,
		c.Op != 0 && f.op&c.Op == 0,
		c.Obj != 0 && f.obj&c.Obj == 0,
		c.Prog != 0 && f.prog&c.Prog == 0,
		c.words != nil && !holdsAny(c.words, &f.found),
		f.errno&c.NotErrno != 0, f.op&c.NotOp != 0, f.obj&c.NotObj != 0,
		holdsAny(c.notWords, &f.found):
		return false
	}
	return true
}

// score is the confidence the clues give, with their evidence: the best
// clue's prior, and a little more for each further clue that holds.
func score(cs []compiledClue, f *facts) (float64, []string) {
	best, n := 0.0, 0
	var why []string
	var priors []float64
	for i := range cs {
		if !cs[i].holds(f) {
			continue
		}
		n++
		priors = append(priors, cs[i].Prior)
		why = append(why, cs[i].Why)
		best = max(best, cs[i].Prior)
	}
	if n == 0 {
		return 0, nil
	}
	// The strongest clue's reason first.
	sort.SliceStable(why, func(i, j int) bool { return priors[i] > priors[j] })
	return min(best+further*float64(n-1), maxConf), why
}

// Candidates ranks the limits a normalized message (see Normalize) points
// to, most likely first. Messages that name no error the catalog knows
// give none.
func Candidates(t string) []Candidate {
	c, _ := Assess(t)
	return c
}

// Assess is Candidates, and what the message names outside the catalog
// when it is worded like a hidden limit but names something else (nil
// otherwise); then no candidate is given at 0.5 or more.
func Assess(t string) ([]Candidate, *Outside) {
	if !plainLower(t) {
		return candidates(t, nil)
	}
	var found wordSet
	catalog().words.find(t, &found)
	return candidates(t, &found)
}

// Label is the cause explain gives a normalized message, from its words
// alone: a limit ID, "outside:" and the kind of cause outside the catalog,
// or "" for none.
func Label(t string) string {
	c, o := Assess(t)
	switch {
	case o != nil:
		return "outside:" + o.Kind
	case len(c) > 0 && c[0].Confidence >= labelMin:
		return c[0].Limit
	}
	return ""
}

// candidates is Assess, with the signatures prefiltered by the words
// found in t, or all tried when found is nil.
func candidates(t string, found *wordSet) ([]Candidate, *Outside) {
	f := extract(t)
	v := vocab()
	scores := map[string]*Candidate{}
	for i := range v.limits {
		l := &v.limits[i]
		if conf, why := score(l.clues, &f); conf > 0 {
			scores[l.limit] = &Candidate{Limit: l.limit, Confidence: conf, Evidence: why}
		}
	}
	// The catalog's own signatures back a candidate up, or add one the
	// clues do not know (but for the generic ENOSPC signatures of disk
	// and inodes, which the clues weigh).
	for _, g := range catalog().groups {
		for i := range g.sigs {
			if sig := &g.sigs[i]; !sig.may(found) || !sig.re.MatchString(t) {
				continue
			}
			why := "matches the catalog's signature for " + g.limit
			if c := scores[g.limit]; c != nil {
				c.Confidence = min(c.Confidence+further, maxConf)
				c.Evidence = append(c.Evidence, why)
			} else if g.limit != "disk" && g.limit != "inodes" {
				conf := sigOnly
				if f.errno == 0 {
					conf = sigBare
				}
				scores[g.limit] = &Candidate{Limit: g.limit, Confidence: conf, Evidence: []string{why}}
			}
			break
		}
	}
	out := make([]Candidate, 0, len(scores))
	best := 0.0
	for _, c := range scores {
		out = append(out, *c)
		best = max(best, c.Confidence)
	}
	var o *Outside
	for i := range v.outside {
		x := &v.outside[i]
		if conf, why := score(x.clues, &f); conf > 0 && conf >= best && (o == nil || conf > o.Confidence) {
			o = &Outside{Kind: x.kind, Title: x.title, Confidence: conf, Evidence: why, Remedy: x.remedy}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].Limit < out[j].Limit
	})
	for i := range out {
		switch {
		case o != nil:
			out[i].Confidence = min(out[i].Confidence, blameMax)
		case i > 0 && !sameCallAs(out[0].Limit, out[i].Limit):
			out[i].Confidence = min(out[i].Confidence, otherMax)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Confidence > out[j].Confidence })
	return out, o
}
