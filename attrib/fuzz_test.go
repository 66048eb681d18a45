package attrib

import (
	"strings"
	"testing"
)

func FuzzParseCgroupPath(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := ParseCgroupPath(path)
		checkRef(t, r)
		if r != ParseCgroupPath(path) {
			t.Errorf("ParseCgroupPath(%q) is not deterministic", path)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{hybridDocker, hybridKube, hybridSession, "0::/\n", "0:: (deleted)\n", ""} {
		f.Add(s)
	}
	for _, tc := range parseCases {
		f.Add("0::" + tc.path + "\n")
		f.Add("11:memory:" + tc.path + "\n1:name=systemd:/\n")
	}
	f.Fuzz(func(t *testing.T, content string) {
		r := ParseProcCgroup(content)
		checkRef(t, r)
		if r == (Ref{}) {
			return
		}
		// The answer is what one line's path says.
		for _, line := range strings.Split(content, "\n") {
			if fields := strings.SplitN(line, ":", 3); len(fields) == 3 && ParseCgroupPath(fields[2]) == r {
				return
			}
		}
		t.Errorf("ParseProcCgroup(%q) = %+v, which no line's path gives", content, r)
	})
}
