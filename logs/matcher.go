package logs

// matcher finds, in one pass over a block, the lines that hold any of a
// set of words, ignoring ASCII case: an Aho-Corasick automaton compiled to
// a full transition table, so that each byte costs one table load. It is
// the hot path of `enospc logs` (see BenchmarkScan and scripts/bench-logs).
type matcher struct {
	next [][256]uint16 // state -> byte -> state
	out  []bool        // state ends a word
}

func newMatcher(words []string) *matcher {
	m := &matcher{next: make([][256]uint16, 1), out: make([]bool, 1)}
	lower := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	// The trie, on lower-cased words; 0 in next means "no edge" until the
	// failure links fill it.
	for _, w := range words {
		st := 0
		for i := 0; i < len(w); i++ {
			c := lower(w[i])
			if m.next[st][c] == 0 {
				m.next = append(m.next, [256]uint16{})
				m.out = append(m.out, false)
				m.next[st][c] = uint16(len(m.next) - 1)
			}
			st = int(m.next[st][c])
		}
		m.out[st] = true
	}
	// Breadth first: each state's missing edges follow its failure link.
	fail := make([]uint16, len(m.next))
	var queue []uint16
	for c := 0; c < 256; c++ {
		if s := m.next[0][c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if m.out[fail[st]] {
			m.out[st] = true
		}
		for c := 0; c < 256; c++ {
			s := m.next[st][c]
			if s == 0 {
				m.next[st][c] = m.next[fail[st]][c]
				continue
			}
			fail[s] = m.next[fail[st]][c]
			queue = append(queue, s)
		}
	}
	// Upper case goes where lower case goes.
	for st := range m.next {
		for c := 'A'; c <= 'Z'; c++ {
			m.next[st][c] = m.next[st][c+'a'-'A']
		}
	}
	return m
}

// lines calls fn with the start and end (exclusive, without the newline)
// of each line of data that holds a word, in order, once per line.
func (m *matcher) lines(data []byte, fn func(start, end int)) {
	next, out := m.next, m.out
	st := uint16(0)
	start := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			st, start = 0, i+1
			continue
		}
		st = next[st][c]
		if !out[st] {
			continue
		}
		end := i
		for end < len(data) && data[end] != '\n' {
			end++
		}
		fn(start, end)
		st, start, i = 0, end+1, end
	}
}
