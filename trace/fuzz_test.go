package trace

import "testing"

func FuzzBestCgroup(f *testing.F) {
	f.Add("0::/\n8:pids:/kubepods/pod1/abc\n")
	f.Add("0::/system.slice/docker-abc.scope\n")
	f.Add("::\n1:pids\n")
	f.Fuzz(func(t *testing.T, s string) {
		got := bestCgroup(s)
		if got != "" && !containsLine(s, got) {
			t.Errorf("bestCgroup(%q) = %q, not a path of its lines", s, got)
		}
	})
}

func containsLine(s, path string) bool {
	for i := 0; i+len(path) <= len(s); i++ {
		if s[i:i+len(path)] == path {
			return true
		}
	}
	return false
}

func FuzzParsePidsEvents(f *testing.F) {
	f.Add("max 3\n")
	f.Add("max -1")
	f.Fuzz(func(t *testing.T, s string) {
		_ = parsePidsEvents(s)
	})
}
