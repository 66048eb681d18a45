package logs

import (
	"strings"
	"testing"
	"time"
)

// A line is grouped under the cause explain gives it: the limits named
// without an errno's words are found, and what lies outside the catalog
// gets a group of its own, not a limit's.
func TestScanGroupsByExplainsCause(t *testing.T) {
	in := strings.Join([]string{
		`Oct 19 13:44:52 node-1 kernel: [1694413.644132] nf_conntrack: nf_conntrack: table full, dropping packet`,
		`es_1  | [1]: max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]`,
		`Jun 11 11:04:35 node-1 kernel: neighbour: arp_cache: neighbor table overflow!`,
		`May  8 14:05:27 node-1 kernel: Memory cgroup out of memory: Kill process 24984 (palo_be) score 968 or sacrifice child`,
		`Nov 22 07:00:00 node-1 podman[77]: Error: allocating lock for new container: allocation failed; exceeded num_locks (2048)`,
		`Nov 22 07:00:01 node-1 app[1]: write /sys/fs/cgroup/cpuset/test/cgroup.procs: no space left on device`,
	}, "\n") + "\n"
	s := NewScanner(time.Time{}, now)
	s.Scan(strings.NewReader(in), Source{Name: "mixed.log"})
	rep := s.Report()
	for _, want := range []string{"conntrack", "mapcount", "neighbour", "outside:oom", "outside:locks", "outside:cpuset"} {
		if g := groupOf(rep, want); g == nil || g.Count != 1 {
			t.Errorf("group %s: %+v (all: %+v)", want, g, rep.Groups)
		}
	}
	if rep.Matched != 6 {
		t.Errorf("matched %d, want 6", rep.Matched)
	}
}
