package check

import (
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/limits"
)

func TestGradeTrend(t *testing.T) {
	eta := func(d time.Duration) *float64 { v := d.Seconds(); return &v }
	for _, tc := range []struct {
		name   string
		sev    limits.Severity
		trend  *limits.Trend
		want   limits.Severity
		reason string // in the reason when graded up
	}{
		{"none", limits.OK, nil, limits.OK, ""},
		{"flat", limits.OK, &limits.Trend{}, limits.OK, ""},
		{"2 days", limits.OK, &limits.Trend{RatePerHour: 10, ETASeconds: eta(48 * time.Hour)}, limits.OK, ""},
		{"20 h", limits.OK, &limits.Trend{RatePerHour: 2520, ETASeconds: eta(20 * time.Hour)}, limits.Warning, "full in ~20 h at +42 inodes/min: exhausted within 24 h"},
		{"3 h", limits.Warning, &limits.Trend{RatePerHour: 2520, ETASeconds: eta(3 * time.Hour)}, limits.Critical, "full in ~3 h at +42 inodes/min: exhausted within 4 h"},
		{"20 h critical stays", limits.Critical, &limits.Trend{RatePerHour: 1, ETASeconds: eta(20 * time.Hour)}, limits.Critical, ""},
		{"unknown stays", limits.Unknown, &limits.Trend{RatePerHour: 1, ETASeconds: eta(time.Hour)}, limits.Unknown, ""},
	} {
		u := limits.Finding{Limit: "inodes", Unit: "inodes", Severity: tc.sev, History: tc.trend}
		GradeTrend(&u)
		if u.Severity != tc.want {
			t.Errorf("%s: severity %v, want %v", tc.name, u.Severity, tc.want)
		}
		if tc.reason != "" && !strings.Contains(u.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want %q", tc.name, u.Reason, tc.reason)
		}
		if tc.reason == "" && u.Reason != "" {
			t.Errorf("%s: reason %q, want none", tc.name, u.Reason)
		}
	}
}

func TestTrendWords(t *testing.T) {
	eta := 80.0 * 60
	for _, tc := range []struct {
		unit string
		tr   limits.Trend
		want string
	}{
		{"inodes", limits.Trend{RatePerHour: 2520, ETASeconds: &eta}, "full in ~80 min at +42 inodes/min"},
		{"keys", limits.Trend{RatePerHour: 3}, "+3 keys/h"},
		{"watches", limits.Trend{RatePerHour: -300}, "falling at -5 watches/min"},
		{"bytes", limits.Trend{RatePerHour: 3 * 3600 << 20}, "+3 MiB/s"},
		{"pids", limits.Trend{}, "flat"},
	} {
		if got := TrendWords(limits.Finding{Unit: tc.unit, History: &tc.tr}); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.tr, got, tc.want)
		}
	}
}
