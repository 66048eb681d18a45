package serve

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/trace"
)

// With a trace beside it, serve exports its counter and serves the
// failures at /api/v1/failures, the holders hidden unless asked for.
func TestFailures(t *testing.T) {
	rec := trace.NewRecorder(10, 3)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rec.Add(trace.Failure{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", Syscall: "openat", Errno: "ENOSPC", PID: 42, Comm: "containerd", Object: "/run/containerd/fifo/x", Count: 5, First: now, Last: now})
	rec.Add(trace.Failure{Limit: "files.process", Scope: "pid 7 (nginx)", Syscall: "accept4", Errno: "EMFILE", PID: 7, Comm: "nginx", Count: 2, First: now, Last: now})
	rec.Add(trace.Failure{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", Syscall: "openat", Errno: "ENOSPC", PID: 43, Count: 1, First: now, Last: now})
	rec.SetState(trace.TraceState{Running: true, Attach: "tp_btf/sys_exit"})
	_, ts, _ := fixtureServer(t, Options{Failures: rec})

	_, _, body := get(t, ts.URL+"/metrics")
	for _, want := range []string{
		`enospc_syscall_failures_total{errno="ENOSPC",limit="inodes",scope="/run (tmpfs tmpfs)",syscall="openat"} 6`,
		`enospc_syscall_failures_total{errno="EMFILE",limit="files.process",scope="process",syscall="accept4"} 2`,
		"\nenospc_trace_running 1\n",
		"# TYPE enospc_syscall_failures_total counter\n",
		`enospc_limit_used{limit="keys.bytes",scope="uid 1001"} 19926`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, _, body := get(t, ts.URL+"/api/v1/failures")
	var got struct {
		Trace    trace.TraceState `json:"trace"`
		Failures []trace.Failure  `json:"failures"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("/api/v1/failures: %d %v\n%s", code, err, body)
	}
	if len(got.Failures) != 3 || got.Failures[0].PID != 0 || got.Failures[2].Limit != "inodes" || !got.Trace.Running {
		t.Errorf("/api/v1/failures: %+v", got)
	}
	if strings.Contains(body, "nginx") || strings.Contains(body, "containerd/fifo") || strings.Contains(body, `"pid": 42`) {
		t.Errorf("/api/v1/failures shows holders without --expose-holders:\n%s", body)
	}

	_, ts2, _ := fixtureServer(t, Options{Failures: rec, ExposeHolders: true})
	if _, _, body := get(t, ts2.URL+"/api/v1/failures"); !strings.Contains(body, "nginx") {
		t.Errorf("--expose-holders hides the comm:\n%s", body)
	}
	_, ts3, _ := fixtureServer(t, Options{})
	if code, _, _ := get(t, ts3.URL+"/api/v1/failures"); code != 404 {
		t.Errorf("/api/v1/failures without a trace: %d, want 404", code)
	}
}

// Series are bounded: past the cap, new scopes are counted as "other".
func TestFailureSeriesBounded(t *testing.T) {
	rec := trace.NewRecorder(2, 2)
	for _, scope := range []string{"/a (tmpfs a)", "/b (tmpfs b)", "/c (tmpfs c)", "/d (tmpfs d)"} {
		rec.Add(trace.Failure{Limit: "disk", Scope: scope, Syscall: "write", Errno: "ENOSPC", Count: 1})
	}
	m := string(rec.Metrics())
	if n := strings.Count(m, "enospc_syscall_failures_total{"); n != 3 {
		t.Errorf("%d series, want 2 and other:\n%s", n, m)
	}
	if !strings.Contains(m, `scope="other",syscall="write"} 2`) {
		t.Errorf("no other series of 2:\n%s", m)
	}
	if fs, _ := rec.Recent(); len(fs) != 2 || fs[0].Scope != "/d (tmpfs d)" {
		t.Errorf("recent: %+v, want the last two, newest first", fs)
	}
}
