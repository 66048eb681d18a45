package history

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/enospc/enospc/chart"
	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

// Report is what `enospc history` shows: the rows a query selected, each
// with its samples and its trend at the last sample.
type Report struct {
	Dir    string      `json:"dir"`
	Since  time.Time   `json:"since"`
	Until  time.Time   `json:"until"`
	Series []RowReport `json:"series"`
	// Skipped is how many damaged parts of the store were passed over
	// (their samples missing).
	Skipped int `json:"skipped,omitempty"`
}

// RowReport is one row of a Report.
type RowReport struct {
	Limit   string        `json:"limit"`
	Scope   string        `json:"scope"`
	Unit    string        `json:"unit"`
	Samples []Sample      `json:"samples"`
	Trend   *limits.Trend `json:"history,omitempty"`
}

// Load reads the rows of a history directory (only: limit IDs, empty for
// all; scope: one scope, empty for all) from since to until, opened
// read-only so that a serve may be writing it.
func Load(dir string, only []string, scope string, since, until time.Time) (*Report, error) {
	for _, id := range only {
		if _, ok := limits.Lookup(limits.ID(id)); !ok {
			return nil, fmt.Errorf("unknown limit %q", id)
		}
	}
	s, err := OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Report(only, scope, since, until)
}

// Report is Load on an open store.
func (s *Store) Report(only []string, scope string, since, until time.Time) (*Report, error) {
	series, err := s.Query(only, scope, since, until)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: s.dir, Since: since.UTC(), Until: until.UTC(), Series: make([]RowReport, 0, len(series)), Skipped: s.Skipped()}
	for _, sr := range series {
		rr := RowReport{Limit: sr.Limit, Scope: sr.Scope, Samples: sr.Samples}
		if l, ok := limits.Lookup(limits.ID(sr.Limit)); ok {
			rr.Unit = l.Unit
		}
		if last, ok := lastUse(sr.Samples); ok {
			rr.Trend = Trend(sr.Samples, last.T, last.Used, last.Max)
		}
		rep.Series = append(rep.Series, rr)
	}
	return rep, nil
}

func lastUse(s []Sample) (Sample, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].HasUse {
			return s[i], true
		}
	}
	return Sample{}, false
}

// WriteCSV writes one line a sample: time (RFC 3339, UTC), limit, scope,
// used, max, severity; used and max are empty for an unknown row. Host
// text (the scope) goes through quote.Terminal: a CSV is read on a
// terminal as often as in a spreadsheet.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"time", "limit", "scope", "used", "max", "severity"})
	for _, sr := range r.Series {
		scope := quote.Terminal(sr.Scope)
		for _, s := range sr.Samples {
			used, mx := "", ""
			if s.HasUse {
				used, mx = strconv.FormatInt(s.Used, 10), strconv.FormatInt(s.Max, 10)
			}
			cw.Write([]string{s.T.UTC().Format(time.RFC3339), sr.Limit, scope, used, mx, s.Severity.String()})
		}
	}
	cw.Flush()
	return cw.Error()
}

// maxChartRows is how many rows one chart of several shows, the fullest.
const maxChartRows = 8

// ErrNothingToPlot is returned by Plot for a report without samples.
var ErrNothingToPlot = errors.New("no samples to plot")

// Plot is the chart of a report. One row: its use and its max over time,
// and, when it is rising, the projection of its trend drawn dashed up to
// its max (or 24 h ahead at most). Several rows: each one's use in percent
// of its max, the maxChartRows fullest at their last sample.
func (r *Report) Plot() (chart.Plot, error) {
	var rows []RowReport
	for _, sr := range r.Series {
		if _, ok := lastUse(sr.Samples); ok {
			rows = append(rows, sr)
		}
	}
	if len(rows) == 0 {
		return chart.Plot{}, ErrNothingToPlot
	}
	if len(rows) == 1 {
		return rowPlot(rows[0]), nil
	}
	ratio := func(rr RowReport) float64 {
		l, _ := lastUse(rr.Samples)
		if l.Max <= 0 {
			return 0
		}
		return float64(l.Used) / float64(l.Max)
	}
	sort.SliceStable(rows, func(i, j int) bool { return ratio(rows[i]) > ratio(rows[j]) })
	p := chart.Plot{Title: "use of each row, in % of its max", XLabel: "time (UTC)", YLabel: "% of max", XTime: true}
	for _, rr := range rows[:min(len(rows), maxChartRows)] {
		s := chart.Series{Name: rr.Limit + " " + rr.Scope}
		for _, smp := range rr.Samples {
			if smp.HasUse && smp.Max > 0 {
				s.Points = append(s.Points, chart.Point{X: unixSeconds(smp.T), Y: 100 * float64(smp.Used) / float64(smp.Max)})
			}
		}
		p.Series = append(p.Series, s)
	}
	return p, nil
}

func rowPlot(rr RowReport) chart.Plot {
	p := chart.Plot{Title: rr.Limit + " " + rr.Scope, XLabel: "time (UTC)", YLabel: rr.Unit, XTime: true}
	used := chart.Series{Name: "used"}
	mx := chart.Series{Name: "max"}
	for _, s := range rr.Samples {
		if s.HasUse {
			used.Points = append(used.Points, chart.Point{X: unixSeconds(s.T), Y: float64(s.Used)})
			mx.Points = append(mx.Points, chart.Point{X: unixSeconds(s.T), Y: float64(s.Max)})
		}
	}
	p.Series = []chart.Series{used, mx}
	last, _ := lastUse(rr.Samples)
	if h := rr.Trend; h != nil && h.RatePerHour > 0 {
		ahead := 24 * time.Hour
		if h.ETASeconds != nil {
			ahead = min(ahead, time.Duration(*h.ETASeconds*float64(time.Second)))
		}
		end := last.T.Add(ahead)
		p.Series = append(p.Series, chart.Series{Name: "projection", Dashed: true, Points: []chart.Point{
			{X: unixSeconds(last.T), Y: float64(last.Used)},
			{X: unixSeconds(end), Y: float64(last.Used) + h.RatePerHour*ahead.Hours()},
		}})
		p.Title += " (" + etaTitle(h) + ")"
	}
	return p
}

func etaTitle(h *limits.Trend) string {
	if h.ETASeconds == nil {
		return "rising"
	}
	return "full in ~" + (time.Duration(*h.ETASeconds) * time.Second).Round(time.Minute).String()
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
