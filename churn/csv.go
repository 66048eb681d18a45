package churn

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// StepsHeader is the steps CSV's header: one row per attempt of a step,
// the columns of containerd#2421's loop (cycle, time, the step, its exit
// status and time taken, the error) with the attempt number, 0 for the
// first, so that retries are counted as that loop counted them.
var StepsHeader = []string{"cycle", "time", "step", "attempt", "exit_status", "duration_s", "error"}

// SamplesHeader is the samples CSV's header: one row per series per
// sample.
var SamplesHeader = []string{"cycle", "time", "limit", "scope", "used", "max", "unit"}

type stepRecord struct {
	cycle   int
	time    time.Time
	step    string
	attempt int
	took    time.Duration
	err     error
}

type stepWriter struct {
	w   *csv.Writer
	buf *bufio.Writer
}

func newStepWriter(w io.Writer) *stepWriter {
	buf := bufio.NewWriter(w)
	sw := &stepWriter{w: csv.NewWriter(buf), buf: buf}
	sw.w.Write(StepsHeader)
	return sw
}

func (s *stepWriter) write(r stepRecord) {
	status, msg := "0", ""
	if r.err != nil {
		status, msg = "1", cell(r.err.Error())
	}
	s.w.Write([]string{strconv.Itoa(r.cycle), unixTime(r.time), r.step, strconv.Itoa(r.attempt), status,
		strconv.FormatFloat(r.took.Seconds(), 'f', 6, 64), msg})
}

func (s *stepWriter) flush() error {
	s.w.Flush()
	if err := s.w.Error(); err != nil {
		return err
	}
	return s.buf.Flush()
}

type sampleRecord struct {
	cycle        int
	time         time.Time
	limit, scope string
	unit         string
	used, max    int64
}

type sampleWriter struct {
	w   *csv.Writer
	buf *bufio.Writer
}

func newSampleWriter(w io.Writer) *sampleWriter {
	buf := bufio.NewWriter(w)
	sw := &sampleWriter{w: csv.NewWriter(buf), buf: buf}
	sw.w.Write(SamplesHeader)
	return sw
}

func (s *sampleWriter) write(r sampleRecord) {
	s.w.Write([]string{strconv.Itoa(r.cycle), unixTime(r.time), r.limit, cell(r.scope),
		strconv.FormatInt(r.used, 10), strconv.FormatInt(r.max, 10), r.unit})
}

func (s *sampleWriter) flush() error {
	s.w.Flush()
	if err := s.w.Error(); err != nil {
		return err
	}
	return s.buf.Flush()
}

func unixTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// cell makes host text one CSV cell that a spreadsheet reads as text:
// valid UTF-8, one line, and no leading character a spreadsheet takes for
// a formula.
func cell(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		s = "'" + s
	}
	return s
}
