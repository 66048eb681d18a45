// Package deploy holds what runs enospc on a cluster (deploy/kubernetes,
// deploy/prometheus, deploy/grafana, deploy/node-problem-detector,
// deploy/Dockerfile) and builds the one file derived from code: the
// node-problem-detector log monitor, whose patterns are the limit catalog's
// error signatures. `go run ./deploy/gen` rewrites it; deploy_test.go fails
// when the committed file is stale.
package deploy

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/enospc/enospc/limits"
)

// LogMonitorFile is the generated file, relative to this directory.
const LogMonitorFile = "node-problem-detector/enospc-log-monitor.json"

// LogMonitor is node-problem-detector's system-log-monitor configuration
// (pkg/systemlogmonitor.MonitorConfig and its embedded WatcherConfig), as
// far as enospc fills it.
type LogMonitor struct {
	Plugin       string            `json:"plugin"`
	PluginConfig map[string]string `json:"pluginConfig"`
	LogPath      string            `json:"logPath"`
	Lookback     string            `json:"lookback"`
	// BufferSize is how many lines a pattern is matched against: NPD joins
	// them with "\n" and the pattern must match up to the end of the last.
	BufferSize       int              `json:"bufferSize"`
	Source           string           `json:"source"`
	MetricsReporting bool             `json:"metricsReporting"`
	Conditions       []NPDCondition   `json:"conditions"`
	Rules            []LogMonitorRule `json:"rules"`
}

// NPDCondition is a node condition's default state.
type NPDCondition struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// LogMonitorRule is one rule: a temporary rule makes a node event, a
// permanent one sets Condition.
type LogMonitorRule struct {
	Type      string `json:"type"`
	Condition string `json:"condition,omitempty"`
	Reason    string `json:"reason"`
	Pattern   string `json:"pattern"`
}

// ReasonPrefix starts every rule's reason: HiddenLimit_<limit id>.
const ReasonPrefix = "HiddenLimit_"

// NewLogMonitor builds the log monitor of the catalog's families for the
// journald entries whose SYSLOG_IDENTIFIER is ident ("kernel" for the
// kernel's messages; NPD's journald watcher takes exactly one): one
// temporary rule per limit, HiddenLimit_<id>, whose pattern is the OR of the
// limit's signatures.
//
// The buffer is one line, so a rule sees one message at a time, as the
// signatures were written for (enospc explain and logs match them against
// one message): a pattern cannot match across two log lines, and a line is
// not matched again when the next ones arrive. NPD anchors every pattern
// at the end of the buffer (it appends \z), hence the trailing (?s:.*): the
// signature may be anywhere in the message, as with regexp.MatchString.
// Each signature keeps its own group, so that its flags ((?i)) stay its own.
func NewLogMonitor(fams []limits.Family, ident string) LogMonitor {
	source := "enospc-log-monitor"
	if ident != "kernel" {
		source += "-" + ident
	}
	m := LogMonitor{
		Plugin:           "journald",
		PluginConfig:     map[string]string{"source": ident},
		LogPath:          "/var/log/journal",
		Lookback:         "5m",
		BufferSize:       1,
		Source:           source,
		MetricsReporting: true,
		Conditions:       []NPDCondition{},
		Rules:            []LogMonitorRule{},
	}
	for _, f := range fams {
		for _, l := range f.Limits {
			m.Rules = append(m.Rules, LogMonitorRule{
				Type:    "temporary",
				Reason:  ReasonPrefix + string(l.ID),
				Pattern: Pattern(l),
			})
		}
	}
	return m
}

// Pattern is the NPD pattern of one limit: (?:(?:sig1)|(?:sig2)|...)(?s:.*).
func Pattern(l limits.Limit) string {
	var b strings.Builder
	b.WriteString("(?:")
	seen := map[string]bool{}
	for _, s := range l.Signatures {
		src := s.String()
		if seen[src] {
			continue
		}
		if len(seen) > 0 {
			b.WriteByte('|')
		}
		seen[src] = true
		b.WriteString("(?:" + src + ")")
	}
	b.WriteString(")(?s:.*)")
	return b.String()
}

// LogMonitorJSON is the file's content: indented JSON, HTML characters
// unescaped so that the patterns read as written, and a final newline.
func LogMonitorJSON(ident string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(NewLogMonitor(limits.Catalog(), ident)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
