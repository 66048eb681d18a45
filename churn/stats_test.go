package churn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEstimate(t *testing.T) {
	line := func(n int, slope float64, f func(i int) float64) ([]float64, []float64) {
		xs, ys := make([]float64, n), make([]float64, n)
		for i := range xs {
			xs[i] = float64(i * 10)
			ys[i] = 100 + slope*xs[i] + f(i)
		}
		return xs, ys
	}
	zero := func(int) float64 { return 0 }
	r := rand.New(rand.NewPCG(1, 2))
	noise := func(int) float64 { return float64(r.IntN(41) - 20) }
	tests := []struct {
		name     string
		slope    float64
		f        func(int) float64
		leak     bool    // CI above 0
		want     float64 // exact estimate, NaN for "near slope"
		hasSlope bool    // CI holds the true slope
	}{
		{"flat", 0, zero, false, 0, true},
		{"four per cycle", 4, zero, true, 4, true},
		// One sample taken while a slow step still held its container:
		// the median of pairwise slopes does not move.
		{"flat, one slow step", 0, func(i int) float64 {
			if i == 20 {
				return 500
			}
			return 0
		}, false, 0, true},
		{"flat, the last sample slow", 0, func(i int) float64 {
			if i == 30 {
				return 500
			}
			return 0
		}, false, 0, true},
		{"one per cycle, noisy", 1, noise, true, math.NaN(), true},
		{"flat, noisy", 0, noise, false, math.NaN(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs, ys := line(31, tt.slope, tt.f)
			s := Estimate(xs, ys, 0.95)
			if !math.IsNaN(tt.want) && s.PerCycle != tt.want {
				t.Errorf("slope %g, want %g", s.PerCycle, tt.want)
			}
			if math.IsNaN(tt.want) && math.Abs(s.PerCycle-tt.slope) > 0.2 {
				t.Errorf("slope %g, want about %g", s.PerCycle, tt.slope)
			}
			if (s.Lo > 0) != tt.leak {
				t.Errorf("CI [%g, %g]: above 0 = %v, want %v", s.Lo, s.Hi, s.Lo > 0, tt.leak)
			}
			if tt.hasSlope && (s.Lo > tt.slope || s.Hi < tt.slope) {
				t.Errorf("CI [%g, %g] does not hold the true slope %g", s.Lo, s.Hi, tt.slope)
			}
			if s.Lo > s.PerCycle || s.Hi < s.PerCycle {
				t.Errorf("CI [%g, %g] does not hold the estimate %g", s.Lo, s.Hi, s.PerCycle)
			}
		})
	}
}

// The interval's coverage: over many noisy series of a known slope, the
// 95% interval holds it about 95% of the time (not 50%, not 100%).
func TestEstimateCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const runs = 400
	held := 0
	for range runs {
		xs, ys := make([]float64, 25), make([]float64, 25)
		for i := range xs {
			xs[i] = float64(i)
			ys[i] = 2*xs[i] + r.NormFloat64()*3
		}
		if s := Estimate(xs, ys, 0.95); s.Lo <= 2 && s.Hi >= 2 {
			held++
		}
	}
	if f := float64(held) / runs; f < 0.9 || f > 0.99 {
		t.Errorf("the 95%% interval held the slope in %.1f%% of runs", 100*f)
	}
}

func TestEstimateShort(t *testing.T) {
	for _, n := range []int{0, 1} {
		s := Estimate(make([]float64, n), make([]float64, n), 0.95)
		if s.PerCycle != 0 || s.Lo != 0 || s.Hi != 0 || s.N != n {
			t.Errorf("%d points: %+v", n, s)
		}
	}
	// Longer than maxSlopePoints: thinned, still exact on a line.
	n := 3 * maxSlopePoints
	xs, ys := make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i], ys[i] = float64(i), 3*float64(i)
	}
	if s := Estimate(xs, ys, 0.95); s.PerCycle != 3 || s.N != maxSlopePoints {
		t.Errorf("long line: %+v", s)
	}
}

func FuzzEstimate(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 200, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		xs, ys := make([]float64, len(b)), make([]float64, len(b))
		for i, v := range b {
			xs[i], ys[i] = float64(i), float64(v)
		}
		s := Estimate(xs, ys, 0.95)
		if math.IsNaN(s.PerCycle) || math.IsNaN(s.Lo) || math.IsNaN(s.Hi) || s.Lo > s.PerCycle || s.Hi < s.PerCycle {
			t.Fatalf("%v: %+v", b, s)
		}
	})
}
