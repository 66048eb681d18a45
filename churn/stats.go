package churn

import (
	"math"
	"sort"
)

// Slope is a robust estimate of how much a series grows per cycle.
//
// The estimator is Theil–Sen's: the median of the slopes between every
// pair of samples. A least-squares fit would let one sample taken while a
// slow step still held its container (an fd, a cgroup, a fifo directory
// not yet released) tilt the line; the median of pairwise slopes ignores up
// to 29% of such samples. Its confidence interval is Sen's (1968), from the
// distribution of Kendall's S under no trend: rank-based, so it needs no
// assumption on the noise, and it is exactly [0, 0] for a series that does
// not move. Hand-written because gonum has neither, and it is forty lines.
type Slope struct {
	PerCycle float64
	// Lo and Hi bound PerCycle at the confidence level of Estimate.
	Lo, Hi float64
	// N is how many samples the estimate used.
	N int
}

// maxSlopePoints bounds the pairwise slopes an estimate sorts: a series
// longer than this is thinned to this many samples, evenly spaced, so
// that a week of churn sampled every cycle costs a second, not an hour.
const maxSlopePoints = 1000

// Estimate returns the Theil–Sen slope of y over x with Sen's confidence
// interval at level conf (0.95: z = 1.96). xs must be increasing.
func Estimate(xs, ys []float64, conf float64) Slope {
	n := min(len(xs), len(ys))
	xs, ys = xs[:n], ys[:n]
	if n > maxSlopePoints {
		tx, ty := make([]float64, maxSlopePoints), make([]float64, maxSlopePoints)
		for i := range tx {
			j := i * (n - 1) / (maxSlopePoints - 1)
			tx[i], ty[i] = xs[j], ys[j]
		}
		xs, ys, n = tx, ty, maxSlopePoints
	}
	if n < 2 {
		return Slope{N: n}
	}
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if dx := xs[j] - xs[i]; dx > 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return Slope{N: n}
	}
	sort.Float64s(slopes)
	s := Slope{PerCycle: median(slopes), N: n}
	// Var(S) under no trend, less the ties of y (a series that is flat
	// most of the time is mostly ties).
	nf := float64(n)
	v := nf * (nf - 1) * (2*nf + 5)
	sorted := append([]float64(nil), ys...)
	sort.Float64s(sorted)
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		t := float64(j - i)
		v -= t * (t - 1) * (2*t + 5)
		i = j
	}
	v /= 18
	c := normalQuantile(1-(1-conf)/2) * math.Sqrt(max(v, 0))
	m := float64(len(slopes))
	lo := int(math.Floor((m - c) / 2)) // 1-based rank M1
	hi := int(math.Ceil((m+c)/2)) + 1  // 1-based rank M2+1
	s.Lo = slopes[clampIndex(lo-1, len(slopes))]
	s.Hi = slopes[clampIndex(hi-1, len(slopes))]
	return s
}

func clampIndex(i, n int) int {
	return max(0, min(i, n-1))
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// normalQuantile is the standard normal's quantile function.
func normalQuantile(p float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*p-1)
}
