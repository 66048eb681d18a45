package explain

import (
	"regexp/syntax"
	"sync"
)

// A log dense with errors says the same few things over and over, with
// other pids, ids and times: Key gives such messages one key, under which
// `enospc logs` keeps the answer of Label, so that the rules run once
// per kind of message instead of once per line.
//
// The key is exact, not a guess. The model reads a message only through
// the words of its vocabulary, found in one pass (TestModelReadsWordsOnly
// holds that), and the catalog's regexps. The mask replaces every run of digits, and
// every hex id standing alone between punctuation or spaces, with "0";
// a word without digits is found in the masked text exactly where it was
// found in the message, unless it starts or ends with hex letters next to
// punctuation (maskSafeWord), and so is a regexp built of such words and
// of "any characters" (maskSafe). What the mask could change is put in the
// key as it is in the message: whether each sensitive word is there, and
// whether each regexp not shown safe matches.

// sensitiveWords are the model's words that the mask could make or break
// (maskSafeWord false: "errno 28", "(99:", ":0->"), each of them looked up
// in the message itself. They are read from the vocabulary, so that a word
// added to the clues cannot make the key inexact.
var sensitiveWords = sync.OnceValue(func() []string {
	v := vocab()
	var out []string
	for _, w := range v.index.words {
		if !maskSafeWord(w) {
			out = append(out, w)
		}
	}
	return out
})

// Key returns a key under which normalized messages (see Normalize) get
// the same Candidates, ok false when t is not the lower-case ASCII text
// the key is shown exact for.
func Key(t string) (key string, ok bool) {
	b, ok := AppendKey(nil, t)
	return string(b), ok
}

// AppendKey appends the Key of t to b.
func AppendKey(b []byte, t string) ([]byte, bool) {
	if !plainLower(t) {
		return b, false
	}
	p := catalog()
	var found wordSet
	p.keyWords.find(t, &found)
	b = appendMasked(b, t)
	b = append(b, 0)
	for id := range sensitiveWords() {
		b = append(b, bit(found.has(id)))
	}
	for _, ks := range p.unsafe {
		b = append(b, bit(holds(ks.need, &found) && ks.sig.re.MatchString(t)))
	}
	return b, true
}

func bit(ok bool) byte {
	if ok {
		return '1'
	}
	return '0'
}

func isDigit(c byte) bool { return charClass[c]&digit != 0 }
func isHex(c byte) bool   { return charClass[c]&hex != 0 }
func isWord(c byte) bool  { return charClass[c]&word != 0 }

const (
	digit = 1 << iota
	hex
	word
)

// charClass is a table of the classes above, the hot loop of the mask's.
var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case '0' <= c && c <= '9':
			t[c] = digit | hex | word
		case 'a' <= c && c <= 'f':
			t[c] = hex | word
		case 'g' <= c && c <= 'z' || c == '_':
			t[c] = word
		}
	}
	return t
}()

// appendMasked appends t with each hex id that stands alone (a run of hex
// digits with at least one decimal digit, between characters that are not
// word characters) and each other run of digits replaced by "0".
func appendMasked(b []byte, t string) []byte {
	for i := 0; i < len(t); {
		c := t[i]
		if isHex(c) && (i == 0 || !isWord(t[i-1])) {
			j, digit := i, false
			for j < len(t) && isHex(t[j]) {
				digit = digit || isDigit(t[j])
				j++
			}
			if digit && (j == len(t) || !isWord(t[j])) {
				b = append(b, '0')
				i = j
				continue
			}
		}
		if isDigit(c) {
			b = append(b, '0')
			for i < len(t) && isDigit(t[i]) {
				i++
			}
			continue
		}
		b = append(b, c)
		i++
	}
	return b
}

// maskSafeWord reports whether w is found in a lower-case ASCII text
// exactly where it is found in the text masked: w has no digit, and does
// not start with hex letters followed by punctuation (the tail of an id),
// end with hex letters after punctuation (the head of one) or consist of
// hex letters alone.
func maskSafeWord(w string) bool {
	if w == "" {
		return true
	}
	for i := 0; i < len(w); i++ {
		if isDigit(w[i]) {
			return false
		}
	}
	i := 0
	for i < len(w) && isHex(w[i]) {
		i++
	}
	if i == len(w) || (i > 0 && !isWord(w[i])) {
		return false
	}
	j := len(w)
	for j > 0 && isHex(w[j-1]) {
		j--
	}
	return j == len(w) || isWord(w[j-1])
}

// maskSafe reports whether re matches a lower-case ASCII text exactly
// when it matches the text masked: its literals are maskSafeWords, and a
// character that can be a hex digit is only matched by x* where x takes
// every hex digit, so that an id or a number and its "0" are both taken
// whole by the same x*, or by such an x last in the regexp, after which
// the rest of the id does not matter. \B is not safe: it holds inside an
// id, not at "0". atEnd says nothing follows re in the regexp.
func maskSafe(re *syntax.Regexp, underStar, atEnd bool) bool {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary:
		return true
	case syntax.OpLiteral:
		b := make([]byte, 0, len(re.Rune))
		for _, r := range re.Rune {
			c, ok := lowerASCII(r, re.Flags&syntax.FoldCase != 0)
			if !ok {
				return true // never in lower-case ASCII text, masked or not
			}
			b = append(b, c)
		}
		return maskSafeWord(string(b))
	case syntax.OpCharClass:
		n := 0
		for _, c := range []byte("0123456789abcdef") {
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if re.Rune[i] <= rune(c) && rune(c) <= re.Rune[i+1] {
					n++
					break
				}
			}
		}
		return n == 0 || (n == 16 && (underStar || atEnd))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return underStar || atEnd
	case syntax.OpStar:
		sub := re.Sub[0]
		return maskSafe(sub, sub.Op == syntax.OpCharClass || sub.Op == syntax.OpAnyChar || sub.Op == syntax.OpAnyCharNotNL, false)
	case syntax.OpConcat:
		// Words that follow one another are one word: "creat" and "e"
		// of creat(e|ing) are "create", whose edges are not an id's.
		run := []string{""}
		flush := func() bool {
			ok := true
			for _, w := range run {
				ok = ok && maskSafeWord(w)
			}
			run = []string{""}
			return ok
		}
		for i, sub := range re.Sub {
			if n := need(sub); n.exact != nil && len(run)*len(n.exact) <= maxExact && !hasNoWordBoundary(sub) {
				var next []string
				for _, a := range run {
					for _, b := range n.exact {
						next = append(next, a+b)
					}
				}
				run = next
				continue
			}
			if !flush() || !maskSafe(sub, false, atEnd && i == len(re.Sub)-1) {
				return false
			}
		}
		return flush()
	case syntax.OpCapture, syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !maskSafe(sub, false, atEnd) {
				return false
			}
		}
		return true
	case syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		for _, sub := range re.Sub {
			if !maskSafe(sub, false, false) {
				return false
			}
		}
		return true
	}
	return false
}

func hasNoWordBoundary(re *syntax.Regexp) bool {
	if re.Op == syntax.OpNoWordBoundary {
		return true
	}
	for _, sub := range re.Sub {
		if hasNoWordBoundary(sub) {
			return true
		}
	}
	return false
}
