package churn

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/enospc/enospc/chart"
)

// Plot is the chart of one series: its use by cycle against its max, and
// the projection at the estimated rate until the two meet, as the /run
// plot of containerd#2421 showed the inodes climbing to the top.
func (s *Series) Plot() chart.Plot {
	used := chart.Series{Name: "used (" + s.Unit + ")"}
	maxes := chart.Series{Name: "max", Dashed: true}
	for _, p := range s.Points {
		used.Points = append(used.Points, chart.Point{X: float64(p.Cycle), Y: float64(p.Used)})
		if p.Max > 0 {
			maxes.Points = append(maxes.Points, chart.Point{X: float64(p.Cycle), Y: float64(p.Max)})
		}
	}
	p := chart.Plot{
		Title:  fmt.Sprintf("%s %s: %.4g per cycle [%.4g, %.4g]", s.Limit, s.Scope, s.Slope.PerCycle, s.Slope.Lo, s.Slope.Hi),
		XLabel: "cycle", YLabel: s.Unit,
		Series: []chart.Series{used},
	}
	if last := s.Points[len(s.Points)-1]; s.Exhaustion > 0 && last.Max > 0 {
		end := float64(last.Cycle) + float64(s.Exhaustion)
		p.Series = append(p.Series, chart.Series{Name: "projected", Dashed: true, Points: []chart.Point{
			{X: float64(last.Cycle), Y: float64(last.Used)}, {X: end, Y: float64(last.Used) + s.Slope.PerCycle*float64(s.Exhaustion)}}})
		maxes.Points = append(maxes.Points, chart.Point{X: end, Y: float64(last.Max)})
	}
	if len(maxes.Points) > 0 {
		p.Series = append(p.Series, maxes)
	}
	return p
}

// WritePlots writes a chart of every leaking series into dir as format
// ("png" or "svg") and returns the files written.
func (r *Result) WritePlots(dir, format string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	var files []string
	n := 0
	for _, s := range r.Series {
		if !s.Leaking {
			continue
		}
		n++
		name := filepath.Join(dir, fmt.Sprintf("churn-%02d-%s.%s", n, fileSafe(s.Limit), format))
		f, err := os.Create(name)
		if err != nil {
			return files, err
		}
		err = chart.Render(f, s.Plot(), format, 0, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, fmt.Errorf("plot %s: %w", name, err)
		}
		files = append(files, name)
	}
	return files, nil
}

// fileSafe keeps a limit ID's letters, digits, dots and dashes.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
