package explain

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/enospc/enospc/limits/clue"
)

// KernelFailure is a failing syscall the kernel reported, as enospc trace
// -o json prints it (one object a line) and serve --trace serves it at
// /api/v1/failures: the limit enospc named for it, the call, the errno,
// the process.
type KernelFailure struct {
	Limit   string    `json:"limit"`
	Scope   string    `json:"scope"`
	Syscall string    `json:"syscall"`
	Errno   string    `json:"errno"`
	PID     int       `json:"pid"`
	Comm    string    `json:"comm"`
	Count   uint64    `json:"count"`
	Last    time.Time `json:"last"`
}

// maxFailures bounds what ReadFailures keeps: a trace of a busy host can
// print millions of lines.
const maxFailures = 100000

// ReadFailures reads failures as enospc trace -o json prints them (one
// JSON object a line) or as serve's /api/v1/failures serves them (an
// object whose "failures" is a list). Lines that are not a failure are
// skipped and counted; at most maxFailures are kept.
func ReadFailures(r io.Reader) (fs []KernelFailure, skipped int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, _ := br.Peek(1 << 16)
	if t := bytes.TrimSpace(first); bytes.HasPrefix(t, []byte("{")) && bytes.Contains(t, []byte(`"failures"`)) {
		var page struct {
			Failures []KernelFailure `json:"failures"`
		}
		if err := json.NewDecoder(io.LimitReader(br, 256<<20)).Decode(&page); err != nil {
			return nil, 0, fmt.Errorf("failures: %w", err)
		}
		if len(page.Failures) > maxFailures {
			page.Failures = page.Failures[:maxFailures]
		}
		return page.Failures, 0, nil
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var f KernelFailure
		if json.Unmarshal(line, &f) != nil || f.Limit == "" || f.Errno == "" {
			skipped++
			continue
		}
		if len(fs) < maxFailures {
			fs = append(fs, f)
		}
	}
	if err := sc.Err(); err != nil {
		return fs, skipped, fmt.Errorf("failures: %w", err)
	}
	return fs, skipped, nil
}

// errnoNames are the symbolic names trace prints, by the errno sets of
// the model.
var errnoNames = map[string]clue.Errno{
	"ENOSPC": clue.ENOSPC, "EDQUOT": clue.EDQUOT, "EMFILE": clue.EMFILE, "ENFILE": clue.ENFILE,
	"EAGAIN": clue.EAGAIN, "ENOMEM": clue.ENOMEM, "EADDRNOTAVAIL": clue.EADDRNOTAVAIL,
}

// ConfirmByKernel confirms the causes the kernel itself reported: a cause
// is confirmed by a failure of its limit with the errno the message names
// (any, when it names none), the strongest confirmation there is. Those
// causes come first, with the failures as their first evidence.
func (r *Result) ConfirmByKernel(fs []KernelFailure) {
	if len(fs) == 0 || len(r.Causes) == 0 {
		return
	}
	errno := extract(r.Normalized).errno
	type agg struct {
		count         uint64
		last          time.Time
		syscall, comm string
		pid           int
		scope, e      string
	}
	byLimit := map[string]*agg{}
	for _, f := range fs {
		e, known := errnoNames[f.Errno]
		if errno != 0 && (!known || errno&e == 0) {
			continue
		}
		a := byLimit[f.Limit]
		if a == nil {
			a = &agg{}
			byLimit[f.Limit] = a
		}
		a.count += max(f.Count, 1)
		if f.Last.After(a.last) || a.syscall == "" {
			a.last, a.syscall, a.comm, a.pid, a.scope, a.e = f.Last, f.Syscall, f.Comm, f.PID, f.Scope, f.Errno
		}
	}
	confirmed := 0
	for i := range r.Causes {
		c := &r.Causes[i]
		a := byLimit[c.Limit]
		if a == nil {
			continue
		}
		c.Confirmed, c.ByKernel = true, true
		confirmed++
		when := ""
		if !a.last.IsZero() {
			when = " at " + a.last.UTC().Format(time.RFC3339)
		}
		c.Evidence = append([]string{fmt.Sprintf("the kernel refused %d %s for %s %s, the last %s of %s[%d] with %s%s",
			a.count, pluralS(int(a.count), "call"), c.Limit, a.scope, a.syscall, a.comm, a.pid, a.e, when)}, c.Evidence...)
	}
	if confirmed == 0 {
		r.AddNote(fmt.Sprintf("none of the %d failures the kernel reported is of these limits with this errno", len(fs)))
		return
	}
	sort.SliceStable(r.Causes, func(i, j int) bool { return r.Causes[i].ByKernel && !r.Causes[j].ByKernel })
	if strings.Contains(r.Note, "none of these limits is at or near its max") {
		r.Note = ""
	}
	r.AddNote(fmt.Sprintf("%s: confirmed by the failures the kernel reported", r.Causes[0].Limit))
}

func pluralS(n int, one string) string {
	if n == 1 {
		return one
	}
	return one + "s"
}
