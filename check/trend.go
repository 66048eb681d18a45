package check

import (
	"fmt"
	"math"
	"time"

	"github.com/enospc/enospc/limits"
)

// Exhaustion horizons: a row whose trend reaches its max within
// TrendCrit is critical, within TrendWarn at least a warning, however low
// its use is now.
const (
	TrendWarn = 24 * time.Hour
	TrendCrit = 4 * time.Hour
)

// GradeTrend raises a row's severity by its trend (u.History), and says
// why in its reason.
func GradeTrend(u *limits.Finding) {
	h := u.History
	if h == nil || h.ETASeconds == nil || u.Severity == limits.Unknown {
		return
	}
	eta := time.Duration(*h.ETASeconds * float64(time.Second))
	s := u.Severity
	switch {
	case eta <= TrendCrit:
		s = limits.Critical
	case eta <= TrendWarn && s < limits.Warning:
		s = limits.Warning
	}
	if s == u.Severity {
		return
	}
	u.Severity = s
	why := fmt.Sprintf("%s: exhausted within %s at this rate", TrendWords(*u), map[bool]string{true: "4 h", false: "24 h"}[s == limits.Critical])
	if u.Reason != "" {
		why = u.Reason + "; " + why
	}
	u.Reason = why
}

// TrendWords says a row's trend in words: "full in ~3 h at +42
// inodes/min", "+3 keys/h", "flat", "falling at -5 watches/min"; empty
// without a trend.
func TrendWords(u limits.Finding) string {
	h := u.History
	if h == nil {
		return ""
	}
	rate := rateWords(h.RatePerHour, u.Unit)
	switch {
	case h.ETASeconds != nil:
		return fmt.Sprintf("full in ~%s at %s", durationWords(*h.ETASeconds), rate)
	case h.RatePerHour == 0:
		return "flat"
	case h.RatePerHour < 0:
		return "falling at " + rate
	}
	return rate
}

// rateWords prints a rate per hour in the largest time unit that keeps
// it at least 1: "+42 inodes/min" rather than "+2520 inodes/h".
func rateWords(perHour float64, unit string) string {
	v, per := perHour, "h"
	if math.Abs(v) >= 60*60 {
		v, per = v/3600, "s"
	} else if math.Abs(v) >= 60 {
		v, per = v/60, "min"
	}
	if unit == "bytes" {
		return fmt.Sprintf("%s/%s", signedBytes(v), per)
	}
	if unit == "" {
		unit = "a"
	}
	return fmt.Sprintf("%+.3g %s/%s", v, unit, per)
}

func signedBytes(v float64) string {
	sign := "+"
	if v < 0 {
		sign, v = "-", -v
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%s%.3g %s", sign, v, units[i])
}

// durationWords rounds a time to what a reader needs: "40 s", "12 min",
// "3 h", "2 d".
func durationWords(sec float64) string {
	switch {
	case sec < 90:
		return fmt.Sprintf("%.0f s", sec)
	case sec < 90*60:
		return fmt.Sprintf("%.0f min", sec/60)
	case sec < 48*3600:
		return fmt.Sprintf("%.0f h", sec/3600)
	}
	return fmt.Sprintf("%.0f d", sec/86400)
}
