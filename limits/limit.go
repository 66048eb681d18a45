// Package limits is the catalog of hidden kernel limits that make container
// hosts fail with "no space left on device", "disk quota exceeded" and their
// relatives while the disk has room. One file is one family of limits: its
// IDs, what each limit is, the errors it produces, how usage and maximum are
// read from the host, and how to fix it.
package limits

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/enospc/enospc/limits/clue"
)

// Severity of one usage row. The order is the order of badness used to sort
// output; Unknown ranks below Warning because it is not known to be bad.
type Severity int

const (
	OK Severity = iota
	Unknown
	Warning
	Critical
)

var severityNames = [...]string{"ok", "unknown", "warning", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n == name {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", name)
}

// Consumer is a holder of some of a limit's usage: a process, a uid, a
// keyring, a leaked directory. Fields are set as far as they are known.
type Consumer struct {
	// quota is a quota row's quota, for its remedy (not in the JSON).
	quota *quotaInfo

	PID  int    `json:"pid,omitempty"`
	UID  *int   `json:"uid,omitempty"`
	Comm string `json:"comm,omitempty"`
	Name string `json:"name,omitempty"` // keyring name, path
	// The container behind the holder: its full id, name, image, the
	// runtime that runs it and that runtime's word for its state
	// ("running", "exited", ...; "gone" when no runtime lists it and none
	// of its processes is left).
	Container     string `json:"container,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	Runtime       string `json:"runtime,omitempty"`
	State         string `json:"state,omitempty"`
	// The Kubernetes pod: name, namespace, uid and QoS class.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	QoS       string `json:"qos,omitempty"`
	// Unit is the systemd unit of a holder outside containers.
	Unit  string `json:"unit,omitempty"`
	Count int64  `json:"count"`
}

// Trend is how a row moved in the node's recorded history.
type Trend struct {
	// RatePerHour is the row's robust slope (Theil–Sen) over the last
	// hours, in its unit per hour.
	RatePerHour float64 `json:"rate_per_hour"`
	// ETASeconds is the time until used reaches max at that rate; null
	// when the row is flat or falling, or has no max.
	ETASeconds *float64 `json:"eta_seconds"`
	// Peak is the highest use of the last 24 hours, first reached at
	// PeakAt.
	Peak   int64     `json:"peak"`
	PeakAt time.Time `json:"peak_at"`
}

// Finding is one row of `enospc check`: one limit in one scope.
type Finding struct {
	Limit    string   `json:"limit"`
	Scope    string   `json:"scope"`
	Used     int64    `json:"used"`
	Max      int64    `json:"max"`
	Unit     string   `json:"unit"`
	Severity Severity `json:"severity"`
	// Reason says why the row is unknown, or what else raised its severity.
	Reason    string     `json:"reason,omitempty"`
	Consumers []Consumer `json:"consumers"`
	// ConsumersTotal is the number of consumers before the list was cut to
	// the top ones.
	ConsumersTotal int      `json:"consumers_total,omitempty"`
	Remedy         []string `json:"remedy"`
	// NeedsRoot marks rows whose usage or holders are incomplete because
	// enospc ran without root.
	NeedsRoot bool `json:"needs_root,omitempty"`
	// Leaked is the number of leaked objects (directories, keyrings,
	// cgroups) behind a leak.* row.
	Leaked int64 `json:"leaked,omitempty"`
	// History is the row's trend from the node's recorded history (serve
	// --history-dir); nil without one.
	History *Trend `json:"history,omitempty"`

	// listMax is how many consumers the row lists once attributed (0:
	// all); the full list is kept until then, for grouping by container.
	listMax int

	// floor is a severity the family asserts whatever the ratio (a leak
	// that is what fills a filesystem).
	floor Severity
	// zeroIsFull marks a configured limit whose max may be 0 (pids.max,
	// cgroup.max.descendants): then nothing more fits, and the row is full.
	zeroIsFull bool
	// keyUser is the /proc/key-users line behind a keys.* row, for the
	// remedy that must size both key sysctls together.
	keyUser *KeyUser
	// mountPoint is the filesystem of a disk or inodes row, for its
	// remedy: the scope cannot be split back into it when the mount point
	// itself holds " (".
	mountPoint string
}

// Ratio is Used/Max, 0 when Max is not positive (1 for a configured limit
// of 0).
func (u Finding) Ratio() float64 {
	if u.Max == 0 && u.zeroIsFull {
		return 1
	}
	if u.Max <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Max)
}

// Limit is one entry of the catalog.
type Limit struct {
	ID    ID
	Title string
	// Doc explains the limit to an operator: what it counts, where it lives
	// in the kernel, why containers hit it.
	Doc string
	// Signatures match the error messages this limit produces.
	Signatures []*Signature
	// Unit of Used and Max.
	Unit string
	// Remedy returns what an operator can do about an exhausted row.
	Remedy func(Finding) []string
	// Clues are what in an error message points to this limit, for
	// explain: the errno, the call, the object and the words, each with
	// the share of the field's reports where they meant this limit.
	Clues []clue.Clue
	// Raise, when a sysctl raises the limit, is the rule that gives
	// both Remedy's advice and fix's plan their numbers.
	Raise *Raise
}

// Family is one file of the catalog: limits read together.
type Family struct {
	Name   string
	Limits []Limit
	// Read returns the family's rows. A row that cannot be read is an
	// Unknown row with a reason; Read never fails as a whole.
	Read func(*Env) []Finding
}

// Thresholds are fractions of a limit's max.
type Thresholds struct {
	Warn, Crit float64
}

// DefaultThresholds are the warning and critical fractions of max.
var DefaultThresholds = Thresholds{Warn: 0.80, Crit: 0.95}

// Signature is a pattern of the error messages a limit produces, compiled
// when it is first used: a check never matches a message, and compiling
// the catalog's patterns was half of the start-up of every command.
type Signature struct {
	pattern string
	once    sync.Once
	re      *regexp.Regexp
}

// NewSignature is a signature of pattern, which must compile (Validate
// says when it does not).
func NewSignature(pattern string) *Signature { return &Signature{pattern: pattern} }

// Regexp is the compiled signature.
func (s *Signature) Regexp() *regexp.Regexp {
	s.once.Do(func() { s.re = regexp.MustCompile(s.pattern) })
	return s.re
}

// MatchString reports whether the message t matches.
func (s *Signature) MatchString(t string) bool { return s.Regexp().MatchString(t) }

// String is the pattern.
func (s *Signature) String() string { return s.pattern }

// Grade sets the severity of a row from its ratio, its floor and its
// reason. Unknown rows stay unknown.
func (u *Finding) Grade(t Thresholds) {
	if u.Severity == Unknown {
		return
	}
	s := OK
	limited := u.Max > 0 || (u.Max == 0 && u.zeroIsFull)
	switch r := u.Ratio(); {
	case limited && r >= t.Crit:
		s = Critical
	case limited && r >= t.Warn:
		s = Warning
	}
	if u.floor > s {
		s = u.floor
	}
	u.Severity = s
}
