// Package chart draws a limit's use over time (or over cycles) as a PNG or
// SVG image, on gonum.org/v1/plot.
//
// Series names come from the host (mount points, cgroup paths, user names)
// and are hostile: Render shows them through quote.Terminal and cuts them
// short, so a name cannot break the SVG markup or fill the image.
package chart

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/enospc/enospc/internal/quote"
)

// Point is one sample. X is unix seconds when Plot.XTime is set, otherwise
// a count (container cycles, for example).
type Point struct{ X, Y float64 }

// Series is one line of the plot. A Dashed series is drawn dashed: a
// projection ahead of the samples, for example.
type Series struct {
	Name   string
	Points []Point
	Dashed bool
}

// Plot is what Render draws.
type Plot struct {
	Title, XLabel, YLabel string
	// XTime shows X as UTC time (X in unix seconds).
	XTime  bool
	Series []Series
}

const (
	// DefaultWidth and DefaultHeight are the size Render uses for a zero
	// width or height, in points (1/72 inch).
	DefaultWidth  = 720
	DefaultHeight = 360
	// MaxSide bounds either side, in points: a PNG's memory grows with the
	// square of it.
	MaxSide = 4000
	// PNGDPI is the resolution of PNG output: a PNG is width*PNGDPI/72
	// pixels wide.
	PNGDPI = 96
	// maxName is how many characters of a series name or title are shown.
	maxName = 60
)

// ErrFormat is returned for a format other than "png" or "svg".
var ErrFormat = errors.New(`format must be "png" or "svg"`)

// Render writes p to w as "png" or "svg", width and height in points (0
// for the defaults). Points whose X or Y is NaN or infinite are left out;
// a series with no point left is not drawn.
func Render(w io.Writer, p Plot, format string, width, height float64) error {
	if format != "png" && format != "svg" {
		return fmt.Errorf("chart format %q: %w", quote.Terminal(format), ErrFormat)
	}
	wd, err := side(width, DefaultWidth)
	if err != nil {
		return fmt.Errorf("chart width: %w", err)
	}
	ht, err := side(height, DefaultHeight)
	if err != nil {
		return fmt.Errorf("chart height: %w", err)
	}
	pl, err := build(p)
	if err != nil {
		return err
	}
	var c vg.CanvasWriterTo
	if format == "png" {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(wd, ht), vgimg.UseDPI(PNGDPI))}
	} else {
		c = vgsvg.New(wd, ht)
	}
	pl.Draw(draw.New(c))
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("write %s chart: %w", format, err)
	}
	return nil
}

func side(v, def float64) (vg.Length, error) {
	switch {
	case v == 0:
		return vg.Length(def), nil
	case math.IsNaN(v) || v < 16 || v > MaxSide:
		return 0, fmt.Errorf("%v points is not within 16..%d", v, MaxSide)
	}
	return vg.Length(v), nil
}

func build(p Plot) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = label(p.Title)
	pl.X.Label.Text = label(p.XLabel)
	pl.Y.Label.Text = label(p.YLabel)
	minX, maxX, minY := math.Inf(1), math.Inf(-1), math.Inf(1)
	for _, s := range p.Series {
		for _, pt := range s.Points {
			if finite(pt.X) && finite(pt.Y) {
				minX, maxX, minY = math.Min(minX, pt.X), math.Max(maxX, pt.X), math.Min(minY, pt.Y)
			}
		}
	}
	if p.XTime {
		format := "01-02\n15:04"
		if maxX-minX < 3600 {
			format = "15:04:05"
		}
		pl.X.Tick.Marker = plot.TimeTicks{Format: format}
	}
	// Use is read against zero: a line near its max must not look far
	// from it because the axis starts just under the data.
	if minY >= 0 {
		pl.Y.Min = 0
	}
	pl.Add(plotter.NewGrid())
	pl.Legend.Top = true
	pl.Legend.Left = true
	drawn := 0
	for i, s := range p.Series {
		xys := make(plotter.XYs, 0, len(s.Points))
		for _, pt := range s.Points {
			if finite(pt.X) && finite(pt.Y) {
				xys = append(xys, plotter.XY{X: pt.X, Y: pt.Y})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("chart series %d: %w", i, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pl.Add(line)
		if s.Name != "" {
			pl.Legend.Add(label(s.Name), line)
		}
		drawn++
	}
	if drawn == 0 {
		// An empty plot still says why it is empty rather than drawing
		// axes around nothing.
		pl.Title.Text = label(p.Title + " (no samples)")
		pl.X.Min, pl.X.Max, pl.Y.Min, pl.Y.Max = 0, 1, 0, 1
		pl.HideAxes()
		pl.Title.TextStyle.Color = color.Gray{Y: 0x60}
	}
	return pl, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// label makes a host string safe to draw and short enough to fit.
func label(s string) string {
	s = quote.Terminal(s)
	if utf8.RuneCountInString(s) <= maxName {
		return s
	}
	r := []rune(s)
	return string(r[:maxName-1]) + "…"
}
