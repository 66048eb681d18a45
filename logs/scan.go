// Package logs finds the errors of hidden limits in logs (journald, syslog,
// kubelet, containerd and dockerd logs, container json logs, rotated .gz
// files) and groups them by cause. It streams: memory stays constant on
// logs of any size, a line longer than MaxLine is cut, and binary data is
// just bytes that match nothing.
package logs

import (
	"bytes"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/enospc/enospc/explain"
)

// MaxLine is the most of one line that is looked at; the rest of a longer
// line is skipped, and the line counted in SourceStat.LongLines.
const MaxLine = 1 << 20

// chunk is how much is read at a time.
const chunk = 4 << 20

// needles are the words of every error phrase explain knows, matched
// without regard to case: a line without one of them cannot point to a
// limit and is not looked at further.
var needles = []string{
	"space left",              // no space left on device
	"quota exceeded",          // disk quota exceeded
	"open files",              // too many open files (in system)
	"temporarily unavailable", // EAGAIN: fork, pthread_create, mkdir
	"cannot allocate memory",  // ENOMEM from fork
	"file watchers",           // Node: System limit for number of file watchers reached
	"native thread",           // Java
	"inotify",                 // inotify resources exhausted, inotify_add_watch
	"enospc", "edquot", "emfile", "enfile", "eagain",
	"file-max",
	"t fork", // can't fork, cannot fork
	"pids",   // pids.max, fork rejected by pids controller
	// Limits named without an errno's words (explain's clues.go).
	"max_map_count", "map failed", // vm.max_map_count, Java's mmap
	"file descriptors",             // Elasticsearch's bootstrap check
	"table full", "table overflow", // conntrack, neighbour
	"buffer space",       // ENOBUFS at a full neighbour table
	"exchange full",      // a bridge's ports
	"assign requested",   // EADDRNOTAVAIL: ephemeral ports
	"ephemeral-storage",  // kubelet's evictions
	"shared memory",      // shmget, /dev/shm
	"unable to allocate", // SLUB's kmem caches
	"num_locks",          // podman's lock slots, outside the catalog
	"out of memory",      // the OOM killer, outside the catalog
}

// The matchers are built on first use: they are half a megabyte of
// tables that every other command would build at start-up for nothing.
var (
	plainMatcher = sync.OnceValue(func() *matcher { return newMatcher(needles) })
	// journald writes a message that is not UTF-8 as an array of byte
	// values, which no word can match: such records are looked at too.
	journalMatcher = sync.OnceValue(func() *matcher { return newMatcher(append(append([]string(nil), needles...), `"message":[`)) })
)

// Needles returns the prefilter's literal patterns, for comparing with
// grep -E on the same set.
func Needles() []string {
	return append([]string(nil), needles...)
}

// Group is every match of one cause.
type Group struct {
	Limit string     `json:"limit"`
	Count int64      `json:"count"`
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
	// Where counts the matches by unit, program, container or pod.
	Where map[string]int64 `json:"where"`
	// Example is the first match, as found (cut to 1000 characters).
	Example       string `json:"example"`
	ExampleSource string `json:"example_source"`
}

// SourceStat is what was read from one source.
type SourceStat struct {
	Name  string `json:"name"`
	Lines int64  `json:"lines"`
	Bytes int64  `json:"bytes"`
	// LongLines counts the lines over MaxLine, of which only the first
	// MaxLine bytes were looked at.
	LongLines int64  `json:"long_lines,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Report is the result of a scan, as `enospc logs -o json` prints it.
type Report struct {
	Sources []SourceStat `json:"sources"`
	Lines   int64        `json:"lines"`
	Bytes   int64        `json:"bytes"`
	Matched int64        `json:"matched"`
	Groups  []Group      `json:"groups"`
}

// Scanner accumulates groups over sources.
type Scanner struct {
	// Since skips lines whose time is known and earlier.
	Since time.Time
	// Now anchors syslog and klog times, which have no year.
	Now    time.Time
	groups map[string]*Group
	rep    Report
	// cache maps explain.Key to the limit; nil classifies every line
	// afresh.
	cache map[string]string
	mu    sync.Mutex // of cache: the workers classify
}

// NewScanner returns an empty scanner.
func NewScanner(since, now time.Time) *Scanner {
	return &Scanner{Since: since, Now: now, groups: map[string]*Group{}, cache: map[string]string{}}
}

// Source describes where lines come from.
type Source struct {
	Name string
	// Where is the container or pod the whole source belongs to (a
	// container's log file), "" when each line says it.
	Where string
	// Journal marks journalctl's JSON output.
	Journal bool
}

// Scan reads r to its end. A read error ends this source, with the error
// in its stat; what was read counts.
//
// Blocks of the input are matched and their matching lines classified on
// every core at once; the matches are then counted in input order, so
// that the result does not depend on the workers. Memory is a few blocks,
// whatever the input.
func (s *Scanner) Scan(r io.Reader, src Source) {
	st := SourceStat{Name: src.Name}
	m := plainMatcher()
	if src.Journal {
		m = journalMatcher()
	}
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	type job struct {
		seq    int
		buf    []byte
		region []byte
		found  []match
		count  int64 // newlines
		long   int64 // lines over MaxLine
	}
	free := make(chan []byte, workers+2)
	for i := 0; i < workers+2; i++ {
		free <- make([]byte, chunk)
	}
	jobs := make(chan *job, workers)
	done := make(chan *job, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var key []byte // of classify, reused
			for j := range jobs {
				j.count, j.long = countLines(j.region)
				// Only the first match of a limit in a block can be its
				// group's example: the others keep no message, and no
				// part of their line, so that a dense block holds its
				// counts, not its text, until it is counted.
				var first []string
				m.lines(j.region, func(a, b int) {
					line := j.region[a:b]
					if len(line) > MaxLine {
						line = line[:MaxLine]
					}
					var mt match
					var ok bool
					if mt, key, ok = s.match(line, src, key); !ok {
						return
					}
					if slices.Contains(first, mt.limit) {
						mt.rec.msg, mt.rec.where = "", strings.Clone(mt.rec.where)
					} else {
						first = append(first, mt.limit)
					}
					j.found = append(j.found, mt)
				})
				done <- j
			}
		}()
	}
	// The reader: blocks cut at their last newline, the rest carried into
	// the next block.
	var readErr error
	var bytesRead, extraLines int64
	go func() {
		defer close(jobs)
		buf := <-free
		carry, seq := 0, 0
		skipping := false // in the rest of a line longer than a block
		for {
			n, err := fill(r, buf[carry:])
			bytesRead += int64(n)
			data := buf[:carry+n]
			if len(data) == 0 {
				if err != nil && err != io.EOF {
					readErr = err
				}
				free <- buf
				return
			}
			end := bytes.LastIndexByte(data, '\n') + 1
			if err != nil {
				end = len(data) // the last line, without its newline
			}
			region := data[:end]
			next := <-free
			carry = 0
			switch {
			case end == 0:
				// A block without a newline: the head of a long line is
				// looked at once, the rest skipped.
				if skipping {
					region = nil
				} else {
					region = data
					extraLines++
				}
				skipping = true
			case skipping:
				if i := bytes.IndexByte(region, '\n'); i >= 0 {
					region = region[i+1:]
					skipping = false
				} else {
					region = nil
				}
				carry = copy(next, data[end:])
			default:
				carry = copy(next, data[end:])
			}
			if err != nil && len(region) > 0 && region[len(region)-1] != '\n' {
				extraLines++
			}
			jobs <- &job{seq: seq, buf: buf, region: region}
			seq++
			buf = next
			if err != nil {
				if err != io.EOF {
					readErr = err
				}
				free <- buf
				return
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()
	// In order: the matches of block k before those of block k+1.
	pending := map[int]*job{}
	want := 0
	for j := range done {
		pending[j.seq] = j
		for {
			j, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			want++
			st.Lines += j.count
			st.LongLines += j.long
			for _, mt := range j.found {
				s.add(mt, src)
			}
			free <- j.buf
		}
	}
	st.Lines += extraLines
	st.Bytes = bytesRead
	if readErr != nil {
		st.Error = readErr.Error()
	}
	s.rep.Sources = append(s.rep.Sources, st)
	s.rep.Lines += st.Lines
	s.rep.Bytes += st.Bytes
}

// countLines returns the newlines of region, and how many of its lines
// (the last one too, when it has no newline) are longer than MaxLine. A
// long line is a window of MaxLine+1 bytes without a newline, so the
// search steps a window at a time instead of a line at a time.
func countLines(region []byte) (lines, long int64) {
	lines = int64(bytes.Count(region, []byte{'\n'}))
	for p := 0; len(region)-p > MaxLine; { // p starts a line
		i := bytes.LastIndexByte(region[p:p+MaxLine+1], '\n')
		if i >= 0 {
			p += i + 1
			continue
		}
		long++
		j := bytes.IndexByte(region[p:], '\n')
		if j < 0 {
			break
		}
		p += j + 1
	}
	return lines, long
}

// fill reads r into buf until buf is full or r ends. Unlike io.ReadFull
// it passes on io.ErrUnexpectedEOF from r (a truncated gzip stream) rather
// than making one of a short last block.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// match is a line that points to a limit.
type match struct {
	rec   record
	limit string
}

// match looks at one candidate line; it runs on the workers, one line
// each at a time. key is a buffer for classify.
func (s *Scanner) match(raw []byte, src Source, key []byte) (match, []byte, bool) {
	rec := parseLine(raw, src, s.Now)
	if rec.msg == "" {
		return match{}, key, false
	}
	if !s.Since.IsZero() && !rec.time.IsZero() && rec.time.Before(s.Since) {
		return match{}, key, false
	}
	limit, key := s.classify(rec.msg, key)
	return match{rec, limit}, key, limit != ""
}

// add counts a match in its group, in input order.
func (s *Scanner) add(mt match, src Source) {
	rec, limit := mt.rec, mt.limit
	g := s.groups[limit]
	if g == nil {
		ex := rec.msg
		if r := []rune(ex); len(r) > 1000 {
			ex = string(r[:1000]) + "…"
		}
		g = &Group{Limit: limit, Where: map[string]int64{}, Example: strings.ToValidUTF8(ex, "?"), ExampleSource: src.Name}
		s.groups[limit] = g
	}
	g.Count++
	s.rep.Matched++
	if !rec.time.IsZero() {
		t := rec.time.UTC()
		if g.First == nil || t.Before(*g.First) {
			g.First = &t
		}
		if g.Last == nil || t.After(*g.Last) {
			g.Last = &t
		}
	}
	where := src.Where
	if rec.where != "" {
		where = rec.where
	}
	if where == "" {
		where = src.Name
	}
	if len(g.Where) < 100 || g.Where[where] > 0 {
		g.Where[where]++
	}
}

// The cache of classify: at most cacheSize keys of at most maxKey bytes,
// cleared when full, so a few MiB at most.
const (
	cacheSize = 1024
	maxKey    = 2 << 10
)

// classify returns the cause explain gives a message (explain.Label: a
// limit ID, or "outside:" and what the message names outside the
// catalog), "" for none. A log
// dense with errors repeats a few kinds of message with other numbers and
// ids: the answer is kept under explain.Key, which is the same only for
// messages that get the same answer.
//
// key is a buffer for the key, returned for the next call.
func (s *Scanner) classify(msg string, key []byte) (string, []byte) {
	t := explain.Normalize(msg)
	key, ok := explain.AppendKey(key[:0], t)
	ok = ok && len(key) <= maxKey && s.cache != nil
	if ok {
		s.mu.Lock()
		limit, hit := s.cache[string(key)]
		s.mu.Unlock()
		if hit {
			return limit, key
		}
	}
	limit := explain.Label(t)
	if ok {
		s.mu.Lock()
		if len(s.cache) >= cacheSize {
			clear(s.cache)
		}
		s.cache[string(key)] = limit
		s.mu.Unlock()
	}
	return limit, key
}

// Report returns the groups, the biggest first.
func (s *Scanner) Report() *Report {
	rep := s.rep
	rep.Groups = make([]Group, 0, len(s.groups))
	for _, g := range s.groups {
		rep.Groups = append(rep.Groups, *g)
	}
	sort.Slice(rep.Groups, func(i, j int) bool {
		if rep.Groups[i].Count != rep.Groups[j].Count {
			return rep.Groups[i].Count > rep.Groups[j].Count
		}
		return rep.Groups[i].Limit < rep.Groups[j].Limit
	})
	if rep.Sources == nil {
		rep.Sources = []SourceStat{}
	}
	return &rep
}
