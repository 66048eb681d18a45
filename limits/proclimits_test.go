package limits

import (
	"strings"
	"testing"
)

func init() {
	// lizrice/containers-from-scratch#6: a runaway re-exec reached the
	// user's RLIMIT_NPROC.
	realMessages["nproc"] = []string{"runtime: failed to create new OS thread (have 5 already; errno=11)\nruntime: may need to increase max user processes (ulimit -u)\nfatal error: newosproc"}
	// The lab (lab/kernel/proclimits_test.go), a uid at RLIMIT_NPROC 24.
	realMessages["nproc"] = append(realMessages["nproc"], "runtime/cgo: pthread_create failed: Resource temporarily unavailable")
	// Elasticsearch's bootstrap check, as docker-compose users report it
	// (e.g. the docker-elk and opensearch READMEs and issues).
	realMessages["mapcount"] = []string{"elasticsearch_1  | [1]: max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]"}
	// Go's net/http accept loop at RLIMIT_NOFILE (EMFILE, not "in system").
	realMessages["files.process"] = []string{"http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 1s",
		// The lab, a process at RLIMIT_NOFILE 64.
		"open /dev/null: too many open files"}
}

func TestParseLimits(t *testing.T) {
	// cat /proc/self/limits on this machine (Debian 12, kernel 6.18).
	in := `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max processes             96233                96233                processes 
Max open files            1048576              1048576              files     
Max locked memory         8388608              8388608              bytes     
`
	r, err := parseLimits([]byte(in))
	if err != nil || r.nproc != 96233 || r.nofile != 1048576 {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = parseLimits([]byte(strings.Replace(in, "96233                96233", "unlimited            unlimited", 1)))
	if err != nil || r.nproc != -1 {
		t.Fatalf("unlimited: %+v %v", r, err)
	}
	for _, bad := range []string{"", "Max processes\n", "Max processes  many  many  processes\nMax open files 1 1 files\n"} {
		if _, err := parseLimits([]byte(bad)); err == nil {
			t.Errorf("parseLimits(%q) accepted", bad)
		}
	}
}

func FuzzParseLimits(f *testing.F) {
	f.Add([]byte("Max processes 10 10 processes\nMax open files 1024 4096 files\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseLimits(b)
		if err == nil && (r.nproc < -1 || r.nofile < -1) {
			t.Fatalf("%+v", r)
		}
	})
}
