package serve

import (
	"context"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/enospc/enospc/limits"
)

var (
	descUsed = prometheus.NewDesc("enospc_limit_used", "Usage of a hidden kernel limit in one scope, in the limit's unit (see enospc check).",
		[]string{"limit", "scope"}, nil)
	descMax = prometheus.NewDesc("enospc_limit_max", "Maximum of a hidden kernel limit in one scope, in the limit's unit.",
		[]string{"limit", "scope"}, nil)
	descSeverity = prometheus.NewDesc("enospc_limit_severity", "Severity of a row: 0 ok, 1 unknown, 2 warning, 3 critical.",
		[]string{"limit", "scope"}, nil)
	descCollectorOK = prometheus.NewDesc("enospc_scrape_collector_success", "Whether a family of limits was read without an unknown row.",
		[]string{"collector"}, nil)
	descCollectorTook = prometheus.NewDesc("enospc_scrape_collector_duration_seconds", "How long a family of limits took to read.",
		[]string{"collector"}, nil)
	descCheckOK   = prometheus.NewDesc("enospc_check_success", "Whether the last check ran.", nil, nil)
	descCheckTook = prometheus.NewDesc("enospc_check_duration_seconds", "How long the last check took.", nil, nil)
	descCheckTime = prometheus.NewDesc("enospc_check_timestamp_seconds", "When the snapshot served was taken.", nil, nil)
)

// collector exports the latest snapshot. Cardinality is bounded: per
// limit, the TopScopes fullest scopes are series of their own and the
// rest are summed into scope="other".
type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUsed, descMax, descSeverity, descCollectorOK, descCollectorTook, descCheckOK, descCheckTook, descCheckTime} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.opts.Timeout)
	defer cancel()
	rep, took, err := c.s.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descCheckOK, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descCheckOK, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descCheckTook, prometheus.GaugeValue, took.Seconds())
	ch <- prometheus.MustNewConstMetric(descCheckTime, prometheus.GaugeValue, float64(rep.Time.UnixNano())/float64(time.Second))

	byLimit := map[string][]limits.Usage{}
	unknownIn := map[string]bool{}
	for _, f := range rep.Findings {
		byLimit[f.Limit] = append(byLimit[f.Limit], f)
		if f.Severity == limits.Unknown {
			unknownIn[f.Limit] = true
		}
	}
	for limit, rows := range byLimit {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Ratio() > rows[j].Ratio() })
		var other limits.Usage
		others := 0
		for i, r := range rows {
			if i >= c.s.opts.TopScopes {
				other.Used += r.Used
				other.Max += r.Max
				other.Severity = max(other.Severity, r.Severity)
				others++
				continue
			}
			emit(ch, limit, r.Scope, r)
		}
		if others > 0 {
			emit(ch, limit, "other", other)
		}
	}
	for _, fam := range rep.Families {
		ok := 1.0
		for _, l := range fam.Limits {
			if unknownIn[l] {
				ok = 0
			}
		}
		ch <- prometheus.MustNewConstMetric(descCollectorOK, prometheus.GaugeValue, ok, fam.Name)
		ch <- prometheus.MustNewConstMetric(descCollectorTook, prometheus.GaugeValue, fam.Duration.Seconds(), fam.Name)
	}
}

func emit(ch chan<- prometheus.Metric, limit, scope string, r limits.Usage) {
	ch <- prometheus.MustNewConstMetric(descSeverity, prometheus.GaugeValue, float64(r.Severity), limit, scope)
	if r.Severity == limits.Unknown && r.Max == 0 {
		return // no numbers to give
	}
	ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(r.Used), limit, scope)
	ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(r.Max), limit, scope)
}
