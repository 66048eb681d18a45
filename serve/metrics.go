package serve

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/enospc/enospc/internal/quote"
	"github.com/enospc/enospc/limits"
)

// The metrics of a snapshot. Help texts are the documentation users read
// in Prometheus.
var (
	gaugeUsed         = newGauge("enospc_limit_used", "Usage of a hidden kernel limit in one scope, in the limit's unit (see enospc check).", "limit", "scope")
	gaugeMax          = newGauge("enospc_limit_max", "Maximum of a hidden kernel limit in one scope, in the limit's unit.", "limit", "scope")
	gaugeSeverity     = newGauge("enospc_limit_severity", "Severity of a row: 0 ok, 1 unknown, 2 warning, 3 critical.", "limit", "scope")
	gaugeCollectorOK  = newGauge("enospc_scrape_collector_success", "Whether a family of limits was read without an unknown row.", "collector")
	gaugeCollectorDur = newGauge("enospc_scrape_collector_duration_seconds", "How long a family of limits took to read.", "collector")
	gaugeCheckOK      = newGauge("enospc_check_success", "Whether the last check ran; when it did not, the snapshot served is the one before.")
	gaugeCheckDur     = newGauge("enospc_check_duration_seconds", "How long the last check took.")
	gaugeCheckTime    = newGauge("enospc_check_timestamp_seconds", "When the snapshot served was taken, by the clock of the host checked.")
	gaugeSnapshotTime = newGauge("enospc_snapshot_timestamp_seconds", "When the snapshot served was published.")
	gaugeETA          = newGauge("enospc_limit_eta_seconds", "Time until a row reaches its max at the rate of the node's history (Theil-Sen over the last 6 h); only rows that are rising.", "limit", "scope")
	gaugeRecording    = newGauge("enospc_history_recording", "Whether serve records its checks into --history-dir (0: recording is off, serve's log says why).")
	gaugeUnexported   = newGauge("enospc_rows_unexported", "Rows of the snapshot that could not be exported as series (they are in /api/v1/check).")
)

// gauge is a metric's name and help, which a prometheus.Desc keeps
// private, with its Desc.
type gauge struct {
	name, help string
	desc       *prometheus.Desc
}

func newGauge(name, help string, labels ...string) gauge {
	return gauge{name, help, prometheus.NewDesc(name, help, labels, nil)}
}

// encodeMetrics is the text exposition of a snapshot, less its age.
// Cardinality is bounded: per limit, the TopScopes fullest scopes are
// series of their own and the rest are summed into scope="other". Every
// label value is valid UTF-8 (labelValue) and distinct within its limit
// (a suffix " (2)" on a collision), and a row that still cannot be
// exported is counted in enospc_rows_unexported, never dropped unseen.
func (s *Server) encodeMetrics(sn *snapshot) []byte {
	e := &exposition{fams: map[string]*dto.MetricFamily{}}
	rep := sn.rep
	e.add(gaugeCheckOK, b2f(sn.err == nil))
	e.add(gaugeCheckDur, sn.took.Seconds())
	e.add(gaugeCheckTime, float64(rep.Time.UnixNano())/1e9)
	e.add(gaugeSnapshotTime, float64(sn.at.UnixNano())/1e9)

	var order []string
	byLimit := map[string][]limits.Finding{}
	unknownIn := map[string]bool{}
	for _, f := range rep.Findings {
		if _, ok := byLimit[f.Limit]; !ok {
			order = append(order, f.Limit)
		}
		byLimit[f.Limit] = append(byLimit[f.Limit], f)
		if f.Severity == limits.Unknown {
			unknownIn[f.Limit] = true
		}
	}
	for _, limit := range order {
		rows := slices.Clone(byLimit[limit])
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Ratio() > rows[j].Ratio() })
		scopes := labelSet{}
		var other limits.Finding
		others := 0
		for i, r := range rows {
			if i >= s.opts.TopScopes {
				other.Used += r.Used
				other.Max += r.Max
				other.Severity = max(other.Severity, r.Severity)
				others++
				continue
			}
			e.row(limit, scopes.unique(r.Scope), r)
		}
		if others > 0 {
			e.row(limit, scopes.unique("other"), other)
		}
	}
	collectors := labelSet{}
	for _, fam := range rep.Families {
		ok := true
		for _, l := range fam.Limits {
			if unknownIn[string(l)] {
				ok = false
			}
		}
		name := collectors.unique(fam.Name)
		e.add(gaugeCollectorOK, b2f(ok), name)
		e.add(gaugeCollectorDur, fam.Duration.Seconds(), name)
	}
	if s.rec != nil {
		on, _ := s.rec.recording()
		e.add(gaugeRecording, b2f(on))
	}
	e.add(gaugeUnexported, float64(e.unexported))
	return e.bytes()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// exposition gathers gauges into families, as a registry would, without
// the registry's habit of dropping what it cannot collect.
type exposition struct {
	fams       map[string]*dto.MetricFamily
	unexported int
}

// row adds the series of one row; a row any of whose series fails is
// counted once as unexported.
func (e *exposition) row(limit, scope string, r limits.Finding) {
	ok := e.add(gaugeSeverity, float64(r.Severity), limit, scope)
	if r.Severity != limits.Unknown || r.Max != 0 { // an unknown row may have no numbers to give
		ok = e.add(gaugeUsed, float64(r.Used), limit, scope) && ok
		ok = e.add(gaugeMax, float64(r.Max), limit, scope) && ok
	}
	if h := r.History; h != nil && h.ETASeconds != nil {
		ok = e.add(gaugeETA, *h.ETASeconds, limit, scope) && ok
	}
	if !ok {
		e.unexported++
	}
}

func (e *exposition) add(g gauge, v float64, labels ...string) bool {
	m, err := prometheus.NewConstMetric(g.desc, prometheus.GaugeValue, v, labels...)
	if err != nil {
		return false
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return false
	}
	f := e.fams[g.name]
	if f == nil {
		f = &dto.MetricFamily{Name: &g.name, Help: &g.help, Type: dto.MetricType_GAUGE.Enum()}
		e.fams[g.name] = f
	}
	f.Metric = append(f.Metric, &pb)
	return true
}

func (e *exposition) bytes() []byte {
	names := make([]string, 0, len(e.fams))
	for n := range e.fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, n := range names {
		f := e.fams[n]
		sort.SliceStable(f.Metric, func(i, j int) bool { return labelKey(f.Metric[i]) < labelKey(f.Metric[j]) })
		if err := enc.Encode(f); err != nil {
			// Only an invalid name or value gets here, and every one
			// passed NewConstMetric: count rather than lose them.
			e.unexported += len(f.Metric)
		}
	}
	return b.Bytes()
}

func labelKey(m *dto.Metric) string {
	var k strings.Builder
	for _, l := range m.GetLabel() {
		k.WriteString(l.GetValue())
		k.WriteByte(0)
	}
	return k.String()
}

// labelSet makes label values valid UTF-8 and distinct.
type labelSet map[string]bool

// unique returns labelValue(s), with " (2)", " (3)"... when an earlier
// value of the set maps to the same string.
func (ls labelSet) unique(s string) string {
	v := labelValue(s)
	u := v
	for i := 2; ls[u]; i++ {
		u = fmt.Sprintf("%s (%d)", v, i)
	}
	ls[u] = true
	return u
}

// labelValue makes host text a valid label value (quote.Label).
func labelValue(s string) string { return quote.Label(s) }
