package history

import (
	"math"
	"slices"
	"time"

	"github.com/enospc/enospc/limits"
)

const (
	// RateWindow is how far back a row's rate is measured.
	RateWindow = 6 * time.Hour
	// PeakWindow is how far back a row's peak is looked for.
	PeakWindow = 24 * time.Hour
	// MinSamples and MinSpan are what a rate needs: fewer samples, or
	// samples closer together, give no rate (and no ETA).
	MinSamples = 6
	MinSpan    = time.Minute
	// maxRatePoints bounds the Theil–Sen estimate's cost: the samples of
	// the window are thinned to at most this many, evenly in time, so
	// that a row costs at most maxRatePoints²/2 slopes whatever the
	// interval.
	maxRatePoints = 32
)

// Trend computes a row's trend at now from its samples (oldest first),
// with (now, used) as its latest sample when the row is read now: the
// slope by Theil–Sen over RateWindow (the median of the slopes between
// every pair of samples, which a few outliers cannot swing), the time
// until max at that slope (nil when flat, falling, or without a max), and
// the peak of PeakWindow. It returns nil when there is no rate nor peak
// to give (no sample with a use).
func Trend(samples []Sample, now time.Time, used, max int64) *limits.Trend {
	pts := make([]Sample, 0, len(samples)+1)
	for _, s := range samples {
		if s.HasUse && !s.T.After(now) {
			pts = append(pts, s)
		}
	}
	if n := len(pts); n == 0 || pts[n-1].T.Before(now) {
		pts = append(pts, Sample{T: now, HasUse: true, Used: used, Max: max})
	}
	tr := &limits.Trend{}
	for _, p := range pts {
		if now.Sub(p.T) <= PeakWindow && (tr.PeakAt.IsZero() || p.Used > tr.Peak) {
			tr.Peak, tr.PeakAt = p.Used, p.T.UTC()
		}
	}
	i := 0
	for i < len(pts) && now.Sub(pts[i].T) > RateWindow {
		i++
	}
	win := pts[i:]
	if len(win) < MinSamples || win[len(win)-1].T.Sub(win[0].T) < MinSpan {
		return tr
	}
	perSec := theilSen(thin(win, maxRatePoints))
	tr.RatePerHour = perSec * 3600
	if perSec > 0 && max > 0 {
		eta := math.Max(0, float64(max-used)/perSec)
		tr.ETASeconds = &eta
	}
	return tr
}

// thin keeps at most n of pts, the first and last among them, evenly
// spaced by index.
func thin(pts []Sample, n int) []Sample {
	if len(pts) <= n {
		return pts
	}
	out := make([]Sample, n)
	for k := range n {
		out[k] = pts[k*(len(pts)-1)/(n-1)]
	}
	return out
}

// theilSen is the median slope, per second, over every pair of samples.
func theilSen(pts []Sample) float64 {
	slopes := make([]float64, 0, len(pts)*(len(pts)-1)/2)
	for a := range pts {
		for b := a + 1; b < len(pts); b++ {
			dt := pts[b].T.Sub(pts[a].T).Seconds()
			if dt > 0 {
				slopes = append(slopes, float64(pts[b].Used-pts[a].Used)/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	slices.Sort(slopes)
	m := len(slopes) / 2
	if len(slopes)%2 == 1 {
		return slopes[m]
	}
	return (slopes[m-1] + slopes[m]) / 2
}

// Annotate gives every row of a check taken at now its trend from the
// store: rows the history has nothing of are left without one.
func (s *Store) Annotate(now time.Time, rows []limits.Finding) error {
	// The rate needs RateWindow at full resolution; the peak, from the
	// coarse samples before that, loses nothing: each is its window's
	// highest use at the time it was reached.
	series, err := s.query(nil, "", now.Add(-RateWindow), now.Add(-PeakWindow), now, true)
	if err != nil {
		return err
	}
	byKey := make(map[[2]string][]Sample, len(series))
	for _, sr := range series {
		byKey[[2]string{sr.Limit, sr.Scope}] = sr.Samples
	}
	for i := range rows {
		r := &rows[i]
		smp, ok := byKey[[2]string{r.Limit, r.Scope}]
		if !ok || r.Severity == limits.Unknown {
			continue
		}
		r.History = Trend(smp, now, r.Used, r.Max)
	}
	return nil
}
