package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func samplePlot(name string) Plot {
	var used, max, proj []Point
	t0 := 1.7e9
	for i := 0; i < 100; i++ {
		x := t0 + float64(i)*60
		used = append(used, Point{x, float64(i * 10)})
		max = append(max, Point{x, 2000})
	}
	proj = []Point{{t0 + 99*60, 990}, {t0 + 200*60, 2000}}
	return Plot{
		Title: "inodes of " + name, XLabel: "time (UTC)", YLabel: "inodes", XTime: true,
		Series: []Series{{Name: name, Points: used}, {Name: "max", Points: max}, {Name: "projection", Points: proj, Dashed: true}},
	}
}

// hostile is a name a user can give a mount point or a cgroup: markup,
// terminal escapes, invalid UTF-8, bidi controls, and far too long.
const hostile = "</text><script>alert(1)</script>\x1b]0;pwn\x07\xff\xfe\u202e&amp;\"'" + "\n" +
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestRenderPNG(t *testing.T) {
	for _, tc := range []struct {
		w, h         float64
		wantW, wantH int
	}{
		{0, 0, DefaultWidth * PNGDPI / 72, DefaultHeight * PNGDPI / 72},
		{300, 150, 400, 200},
	} {
		var b bytes.Buffer
		if err := Render(&b, samplePlot(hostile), "png", tc.w, tc.h); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatalf("not a PNG: %v", err)
		}
		if got := img.Bounds().Size(); got.X != tc.wantW || got.Y != tc.wantH {
			t.Errorf("%vx%v points: image is %v, want %dx%d", tc.w, tc.h, got, tc.wantW, tc.wantH)
		}
	}
}

func TestRenderSVG(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, samplePlot(hostile), "svg", 400, 200); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "<svg") {
		t.Fatalf("no <svg> element in %.200q", out)
	}
	if strings.Contains(out, "<script") || strings.Contains(out, "\x1b") {
		t.Errorf("hostile name reached the SVG raw")
	}
	if !utf8.ValidString(out) {
		t.Errorf("SVG is not valid UTF-8")
	}
	texts := parseSVG(t, out)
	var legend string
	for _, s := range texts {
		if strings.Contains(s, "script") {
			legend = s
		}
	}
	if legend == "" {
		t.Fatalf("hostile series name not shown in the legend; texts: %q", texts)
	}
	if n := utf8.RuneCountInString(legend); n > maxName {
		t.Errorf("legend %q is %d characters, want at most %d", legend, n, maxName)
	}
	if !strings.Contains(legend, `\x1b`) {
		t.Errorf("escape not shown as \\x1b in %q", legend)
	}
	for _, want := range []string{"max", "projection"} {
		found := false
		for _, s := range texts {
			found = found || s == want
		}
		if !found {
			t.Errorf("legend %q missing; texts: %q", want, texts)
		}
	}
}

// parseSVG parses the document as XML, returning the character data of
// its <text> elements.
func parseSVG(t *testing.T, doc string) []string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var texts []string
	inText := false
	sawSVG := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			sawSVG = sawSVG || tok.Name.Local == "svg"
			inText = tok.Name.Local == "text"
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		}
	}
	if !sawSVG {
		t.Fatal("no svg element")
	}
	return texts
}

func TestRenderRejects(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, samplePlot("x"), "pdf", 0, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("pdf: err %v, want ErrFormat", err)
	}
	for _, wh := range [][2]float64{{-1, 100}, {100, math.NaN()}, {MaxSide + 1, 100}, {100, 1}} {
		if err := Render(&b, samplePlot("x"), "svg", wh[0], wh[1]); err == nil {
			t.Errorf("size %v accepted", wh)
		}
	}
	if b.Len() != 0 {
		t.Errorf("rejected calls wrote %d bytes", b.Len())
	}
}

func TestRenderEmptyAndNonFinite(t *testing.T) {
	p := Plot{Title: "nothing", Series: []Series{
		{Name: "nan", Points: []Point{{math.NaN(), 1}, {1, math.Inf(1)}}},
		{Name: "empty"},
	}}
	for _, f := range []string{"png", "svg"} {
		var b bytes.Buffer
		if err := Render(&b, p, f, 200, 100); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f == "svg" {
			texts := parseSVG(t, b.String())
			if !strings.Contains(strings.Join(texts, " "), "no samples") {
				t.Errorf("empty plot does not say so: %q", texts)
			}
		}
	}
}

func FuzzRenderSVG(f *testing.F) {
	f.Add(hostile, "t", 1.0, 2.0)
	f.Fuzz(func(t *testing.T, name, title string, x, y float64) {
		p := Plot{Title: title, Series: []Series{{Name: name, Points: []Point{{x, y}, {x + 1, y * 2}}}}}
		var b bytes.Buffer
		if err := Render(&b, p, "svg", 100, 100); err != nil {
			t.Fatal(err)
		}
		parseSVG(t, b.String())
	})
}
