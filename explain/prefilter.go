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
	// need is a conjunction of disjunctions: a match holds, for every
	// clause, one of its strings. It holds only on lower-case ASCII text
	// (see plainLower); nil needs nothing.
	need [][]string
}

// signatureGroup is the signatures of one limit, tried in order until one
// matches.
type signatureGroup struct {
	limit string
	sigs  []signature
}

var signatures = sync.OnceValue(func() []signatureGroup {
	var out []signatureGroup
	for _, f := range limits.Catalog() {
		for _, l := range f.Limits {
			g := signatureGroup{limit: l.ID}
			for _, re := range l.Signatures {
				g.sigs = append(g.sigs, signature{re: re, need: needOf(re)})
			}
			out = append(out, g)
		}
	}
	return out
})

// may reports whether the signature can match t; t is plainLower when
// prefiltered is true, otherwise every signature is tried.
func (s *signature) may(t string, prefiltered bool) bool {
	if !prefiltered {
		return true
	}
	for _, clause := range s.need {
		ok := false
		for _, w := range clause {
			if strings.Contains(t, w) {
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
