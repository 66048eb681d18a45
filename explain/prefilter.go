package explain

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"

	"github.com/enospc/enospc/limits"
)

// The catalog's signatures are about 140 case-blind regexps, and running
// each on every message was nearly all the time `enospc logs` spent on a
// log dense with errors. A signature is tried only when the message holds
// the words any match of it must hold: a necessary condition read from
// the regexp's syntax, so the answer is the same, only sooner.

// signature is one regexp of the catalog with its prefilter.
type signature struct {
	re *regexp.Regexp
	// need is a conjunction of disjunctions of words (ids in
	// prefilters.words): a match holds, for every clause, one of its
	// words. It holds only on lower-case ASCII text (see plainLower).
	need [][]int
}

// signatureGroup is the signatures of one limit, tried in order until one
// matches.
type signatureGroup struct {
	limit string
	sigs  []signature
}

// prefilters are the catalog's signatures with their words, and the
// automaton that finds all those words in one pass.
type prefilters struct {
	groups []signatureGroup
	words  *wordIndex
	// For Key (see key.go): the signatures the mask could change, with
	// their words in keyWords, which begin with the sensitiveWords. A
	// small automaton is a fast one.
	unsafe   []keySignature
	keyWords *wordIndex
}

type keySignature struct {
	sig  *signature
	need [][]int // ids in keyWords
}

var catalog = sync.OnceValue(func() *prefilters {
	p := &prefilters{}
	ids := map[string]int{}
	var words []string
	id := func(w string) int {
		if i, ok := ids[w]; ok {
			return i
		}
		ids[w] = len(words)
		words = append(words, w)
		return len(words) - 1
	}
	for _, f := range limits.Catalog() {
		for _, l := range f.Limits {
			g := signatureGroup{limit: string(l.ID)}
			for _, ls := range l.Signatures {
				sig := signature{re: ls.Regexp()}
				for _, clause := range needOf(sig.re) {
					var c []int
					for _, w := range clause {
						c = append(c, id(w))
					}
					sig.need = append(sig.need, c)
				}
				g.sigs = append(g.sigs, sig)
			}
			p.groups = append(p.groups, g)
		}
	}
	p.words = newWordIndex(words)
	keyIDs := map[string]int{}
	keyWords := append([]string(nil), sensitiveWords()...)
	for i, w := range keyWords {
		keyIDs[w] = i
	}
	for gi := range p.groups {
		for i := range p.groups[gi].sigs {
			sig := &p.groups[gi].sigs[i]
			sre, err := syntax.Parse(sig.re.String(), syntax.Perl)
			if err == nil && maskSafe(sre.Simplify(), false, true) {
				continue
			}
			ks := keySignature{sig: sig}
			for _, clause := range sig.need {
				var c []int
				for _, id := range clause {
					w := words[id]
					if _, ok := keyIDs[w]; !ok {
						keyIDs[w] = len(keyWords)
						keyWords = append(keyWords, w)
					}
					c = append(c, keyIDs[w])
				}
				ks.need = append(ks.need, c)
			}
			p.unsafe = append(p.unsafe, ks)
		}
	}
	p.keyWords = newWordIndex(keyWords)
	return p
})

// may reports whether the signature can match a text holding the words
// found; nil found (a text the prefilter does not hold for) tries every
// signature.
func (s *signature) may(found *wordSet) bool {
	return found == nil || holds(s.need, found)
}

// holds reports whether every clause has a word found.
func holds(need [][]int, found *wordSet) bool {
	for _, clause := range need {
		ok := false
		for _, w := range clause {
			if found.has(w) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// wordSet holds the ids of the words found in a text: a value, not a
// slice, so that finding them allocates nothing.
type wordSet [maxWords / 64]uint64

// maxWords bounds the words of a wordIndex (376 for the catalog today).
const maxWords = 1024

func (s *wordSet) has(id int) bool { return s[id/64]&(1<<(id%64)) != 0 }

// wordIndex finds a set of words in a text in one pass: an Aho-Corasick
// automaton on the bytes the words use (every other byte is one class).
type wordIndex struct {
	words  []string
	class  [256]uint16
	nclass int
	// next maps state*nclass + class to the next state times nclass
	// (its row), with hasOut set when a word ends there: the hot loop
	// looks no further otherwise.
	next []uint32
	out  [][]uint16 // state -> ids of the words that end there
}

const hasOut = 1 << 31

func newWordIndex(words []string) *wordIndex {
	if len(words) > maxWords {
		panic("explain: too many words for one wordIndex")
	}
	x := &wordIndex{words: words, nclass: 1}
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			if x.class[w[i]] == 0 {
				x.class[w[i]] = uint16(x.nclass)
				x.nclass++
			}
		}
	}
	// The trie; 0 is "no edge" until the failure links fill it.
	x.next = make([]uint32, x.nclass)
	x.out = make([][]uint16, 1)
	for id, w := range words {
		st := 0
		for i := 0; i < len(w); i++ {
			c := int(x.class[w[i]])
			if x.next[st*x.nclass+c] == 0 {
				x.next = append(x.next, make([]uint32, x.nclass)...)
				x.out = append(x.out, nil)
				x.next[st*x.nclass+c] = uint32(len(x.out) - 1)
			}
			st = int(x.next[st*x.nclass+c])
		}
		x.out[st] = append(x.out[st], uint16(id))
	}
	fail := make([]uint32, len(x.out))
	var queue []uint32
	for c := 0; c < x.nclass; c++ {
		if s := x.next[c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := int(queue[0])
		queue = queue[1:]
		x.out[st] = append(x.out[st], x.out[fail[st]]...)
		for c := 0; c < x.nclass; c++ {
			s := x.next[st*x.nclass+c]
			if s == 0 {
				x.next[st*x.nclass+c] = x.next[int(fail[st])*x.nclass+c]
				continue
			}
			fail[s] = x.next[int(fail[st])*x.nclass+c]
			queue = append(queue, s)
		}
	}
	for i, s := range x.next {
		x.next[i] = s * uint32(x.nclass)
		if len(x.out[s]) > 0 {
			x.next[i] |= hasOut
		}
	}
	return x
}

// find sets in found the words that t holds.
func (x *wordIndex) find(t string, found *wordSet) {
	next, class := x.next, &x.class
	row := uint32(0)
	for i := 0; i < len(t); i++ {
		s := next[row+uint32(class[t[i]])]
		row = s &^ hasOut
		if s&hasOut != 0 {
			for _, id := range x.out[row/uint32(x.nclass)] {
				found[id/64] |= 1 << (id % 64)
			}
		}
	}
}

// plainLower reports whether t is ASCII without upper case, the text
// Normalize makes of nearly every message: there a case-blind literal
// matches exactly where its lower-case spelling is found. Other text
// (the Kelvin sign folds to k, the long s to s) skips the prefilter.
func plainLower(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// needOf reads the prefilter of re; a regexp it cannot read needs nothing.
func needOf(re *regexp.Regexp) [][]string {
	sre, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	n := need(sre.Simplify())
	if n.exact != nil {
		return clauses(nil, n.exact)
	}
	return n.all
}

// maxExact bounds the sets of strings spelled out for a subexpression.
const maxExact = 16

// needInfo is what a subexpression tells of the text it matches, on
// lower-case ASCII text: exact, when not nil, is every string it can
// match; otherwise all is a conjunction of disjunctions its match holds.
// An empty exact set matches nothing.
type needInfo struct {
	exact []string
	all   [][]string
}

// clauses adds set as a clause, unless it contains "" (which needs
// nothing).
func clauses(all [][]string, set []string) [][]string {
	for _, s := range set {
		if s == "" {
			return all
		}
	}
	return append(all, set)
}

func (n needInfo) conj() [][]string {
	if n.exact != nil {
		return clauses(nil, n.exact)
	}
	return n.all
}

func need(re *syntax.Regexp) needInfo {
	switch re.Op {
	case syntax.OpNoMatch:
		return needInfo{exact: []string{}}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Assertions only narrow the matches: ignoring them keeps the
		// condition necessary.
		return needInfo{exact: []string{""}}
	case syntax.OpLiteral:
		var b strings.Builder
		for _, r := range re.Rune {
			c, ok := lowerASCII(r, re.Flags&syntax.FoldCase != 0)
			if !ok {
				return needInfo{exact: []string{}} // never in lower-case ASCII text
			}
			b.WriteByte(c)
		}
		return needInfo{exact: []string{b.String()}}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < 0x80; r++ {
				if 'A' <= r && r <= 'Z' {
					continue
				}
				if set = append(set, string(rune(r))); len(set) > maxExact {
					return needInfo{}
				}
			}
		}
		if set == nil {
			set = []string{}
		}
		return needInfo{exact: set}
	case syntax.OpCapture:
		return need(re.Sub[0])
	case syntax.OpQuest:
		n := need(re.Sub[0])
		if n.exact != nil && len(n.exact) < maxExact {
			return needInfo{exact: append(append([]string{}, n.exact...), "")}
		}
		return needInfo{}
	case syntax.OpStar:
		return needInfo{}
	case syntax.OpPlus:
		return needInfo{all: need(re.Sub[0]).conj()}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return needInfo{}
		}
		return needInfo{all: need(re.Sub[0]).conj()}
	case syntax.OpConcat:
		// Runs of exact children are spelled out together (their
		// cross product), the rest add their own clauses.
		var all [][]string
		run := []string{""}
		exact := true
		flush := func() {
			all = clauses(all, run)
			run = []string{""}
		}
		for _, sub := range re.Sub {
			n := need(sub)
			if n.exact != nil && len(run)*len(n.exact) <= maxExact {
				var next []string
				for _, a := range run {
					for _, b := range n.exact {
						next = append(next, a+b)
					}
				}
				if next == nil {
					next = []string{}
				}
				run = next
				continue
			}
			exact = false
			flush()
			if n.exact != nil {
				run = n.exact
				continue
			}
			all = append(all, n.all...)
		}
		if exact {
			return needInfo{exact: run}
		}
		flush()
		return needInfo{all: all}
	case syntax.OpAlternate:
		var exact []string
		allExact := true
		for _, sub := range re.Sub {
			n := need(sub)
			if n.exact == nil {
				allExact = false
				break
			}
			exact = append(exact, n.exact...)
		}
		if allExact && len(exact) <= maxExact {
			if exact == nil {
				exact = []string{}
			}
			return needInfo{exact: exact}
		}
		// One clause: each alternative's best single clause.
		union := []string{}
	alts:
		for _, sub := range re.Sub {
			conj := need(sub).conj()
			for _, c := range conj {
				if len(c) == 0 {
					continue alts // this alternative never matches
				}
			}
			c := best(conj)
			if c == nil {
				return needInfo{}
			}
			union = append(union, c...)
		}
		return needInfo{all: [][]string{union}}
	}
	// Any character, and whatever else: no condition.
	return needInfo{}
}

// best is the clause whose shortest string is longest, nil for none.
func best(all [][]string) []string {
	var out []string
	score := 0
	for _, c := range all {
		m := len(c[0])
		for _, s := range c {
			m = min(m, len(s))
		}
		if m > score {
			out, score = c, m
		}
	}
	return out
}

// lowerASCII is the lower-case ASCII letter that r matches in lower-case
// ASCII text, ok false when it matches none.
func lowerASCII(r rune, fold bool) (byte, bool) {
	if !fold {
		if r < 0x80 && !('A' <= r && r <= 'Z') {
			return byte(r), true
		}
		return 0, false
	}
	for f := r; ; {
		if f < 0x80 && !('A' <= f && f <= 'Z') {
			return byte(f), true
		}
		if f = unicode.SimpleFold(f); f == r {
			return 0, false
		}
	}
}
