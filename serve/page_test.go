package serve

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/trace"
)

// hostileComm is what a process may call itself: the page must show it as
// text.
const hostileComm = `<img src=x onerror=alert(1)>`

// The page has a "Failures caught" section fed by /api/v1/failures; every
// field the page renders a failure from is in what the API answers, the
// host's strings as JSON-escaped data; without a trace the API answers 404,
// which the page reads as tracing off.
func TestPageFailures(t *testing.T) {
	rec := trace.NewRecorder(200, 10)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rec.Add(trace.Failure{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", Syscall: "openat", Errno: "ENOSPC", PID: 40, Comm: "touch", UID: 1000, Count: 1, First: now, Last: now})
	rec.Add(trace.Failure{Limit: "inotify.instances", Scope: "uid 1000", Syscall: "inotify_init1", Errno: "EMFILE",
		PID: 42, TID: 42, Comm: hostileComm, UID: 1000, Object: "/tmp/" + hostileComm, Count: 3, First: now, Last: now.Add(time.Second),
		Container: "0123456789abcdef0123", ContainerName: "web", Runtime: "containerd", Pod: "web-0", Namespace: "shop", PodUID: "u-1"})
	rec.SetState(trace.TraceState{Running: true, Attach: "tp_btf/sys_exit"})

	_, ts, _ := fixtureServer(t, Options{Failures: rec, ExposeHolders: true})
	code, _, page := get(t, ts.URL+"/")
	for _, want := range []string{`id="failures"`, "Failures caught", `id="failure-rows"`, `id="failures-state"`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("the page (%d) lacks %s", code, want)
		}
	}
	_, _, js := get(t, ts.URL+"/static/app.js")
	for _, want := range []string{`fetch("/api/v1/failures")`, "r.status === 404", "tracing is off", "failuresShown = 50", ".slice(0, failuresShown)"} {
		if !strings.Contains(js, want) {
			t.Errorf("/static/app.js lacks %s", want)
		}
	}
	block := regexp.MustCompile(`(?s)// failure:begin.*// failure:end`).FindString(js)
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bf\.([a-z_]+)`).FindAllStringSubmatch(block, -1) {
		read[m[1]] = true
	}
	if len(read) < 8 {
		t.Fatalf("the page reads %d fields of a failure (%v): the failure:begin/end block is gone?", len(read), read)
	}

	code, _, body := get(t, ts.URL+"/api/v1/failures")
	if code != 200 {
		t.Fatalf("/api/v1/failures: %d %s", code, body)
	}
	if strings.Contains(body, "<img") || !strings.Contains(body, `"comm": "\u003cimg src=x onerror=alert(1)\u003e"`) {
		t.Errorf("/api/v1/failures does not JSON-escape the comm:\n%s", body)
	}
	var got struct {
		Trace    map[string]any   `json:"trace"`
		Failures []map[string]any `json:"failures"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Failures) != 2 || got.Trace["running"] != true {
		t.Fatalf("/api/v1/failures: %s", body)
	}
	newest := got.Failures[0]
	for k := range read {
		if _, ok := newest[k]; !ok {
			t.Errorf("the page reads f.%s, which /api/v1/failures does not give: %v", k, newest)
		}
	}
	for k, want := range map[string]any{"comm": hostileComm, "pid": 42.0, "limit": "inotify.instances", "syscall": "inotify_init1", "errno": "EMFILE", "container_name": "web", "pod": "web-0", "namespace": "shop", "count": 3.0} {
		if newest[k] != want {
			t.Errorf("newest failure: %s = %v, want %v (newest first)", k, newest[k], want)
		}
	}

	// Redacted: the page gets no comm, pid or path, and shows the uid.
	_, ts2, _ := fixtureServer(t, Options{Failures: rec})
	_, _, body = get(t, ts2.URL+"/api/v1/failures")
	if strings.Contains(body, "img src") || strings.Contains(body, `"pid": 42`) {
		t.Errorf("/api/v1/failures without --expose-holders shows the process:\n%s", body)
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if c := got.Failures[0]["comm"]; c != "" || got.Failures[0]["uid"] != 1000.0 {
		t.Errorf("redacted failure: comm %q uid %v, want none and 1000", c, got.Failures[0]["uid"])
	}
	if !read["uid"] || !read["comm"] {
		t.Errorf("the page does not fall back from the comm to the uid: reads %v", read)
	}

	// No trace: 404, tracing off.
	_, ts3, _ := fixtureServer(t, Options{})
	if code, _, _ := get(t, ts3.URL+"/api/v1/failures"); code != 404 {
		t.Errorf("/api/v1/failures without --trace: %d, want the 404 the page reads as tracing off", code)
	}
	if _, _, page := get(t, ts3.URL+"/"); !strings.Contains(page, "Failures caught") {
		t.Errorf("the page without --trace lacks its failures section")
	}
}
