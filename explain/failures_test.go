package explain

import (
	"strings"
	"testing"
)

func TestReadFailures(t *testing.T) {
	lines := `{"limit":"inodes","scope":"/run (tmpfs tmpfs)","syscall":"openat","errno":"ENOSPC","pid":7,"comm":"touch","count":3,"last":"2026-12-06T10:00:00Z"}
not json
{"limit":"","errno":"ENOSPC"}

{"limit":"inotify.instances","scope":"uid 1000","syscall":"inotify_init1","errno":"EMFILE","pid":8,"comm":"tail","count":1}
` + strings.Repeat("x", 2<<20) + "\n"
	fs, skipped, err := ReadFailures(strings.NewReader(lines))
	if err == nil {
		t.Errorf("a line over 1 MiB: no error (%d failures)", len(fs))
	}
	if len(fs) != 2 || skipped != 2 || fs[0].Count != 3 || fs[1].Limit != "inotify.instances" {
		t.Errorf("JSON lines: %+v, %d skipped", fs, skipped)
	}
	page := `{"failures":[{"limit":"pids","scope":"/sys/fs/cgroup/pids/x","syscall":"clone","errno":"EAGAIN","pid":9,"comm":"sh","count":5}],"trace":{"running":true}}`
	fs, skipped, err = ReadFailures(strings.NewReader(page))
	if err != nil || len(fs) != 1 || fs[0].Limit != "pids" || skipped != 0 {
		t.Errorf("serve's page: %+v, %d, %v", fs, skipped, err)
	}
}

func TestConfirmByKernel(t *testing.T) {
	fs := []KernelFailure{
		{Limit: "inodes", Scope: "/run (tmpfs tmpfs)", Syscall: "openat", Errno: "ENOSPC", PID: 7, Comm: "touch\x1b[2J", Count: 3},
		{Limit: "keys.count", Scope: "uid 1000", Syscall: "add_key", Errno: "EDQUOT", PID: 8, Comm: "runc", Count: 1},
	}
	res, err := Explain(t.Context(), nil, "dd: error writing '/run/x': No space left on device", Options{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Causes[0].Limit == "inodes" {
		t.Fatalf("the words alone already rank inodes first: the test shows nothing")
	}
	res.ConfirmByKernel(fs)
	c := res.Causes[0]
	if c.Limit != "inodes" || !c.ByKernel || !c.Confirmed || !strings.Contains(c.Evidence[0], "the kernel refused 3 calls for inodes") {
		t.Errorf("first cause %+v, want inodes confirmed by the kernel", c)
	}
	for _, c := range res.Causes[1:] {
		if c.ByKernel {
			t.Errorf("%s confirmed by a failure of another limit or errno", c.Limit)
		}
	}
	// The errno must be the message's: an EDQUOT failure of the key quota
	// does not confirm a message that says ENOSPC.
	res, _ = Explain(t.Context(), nil, "unable to create session key: no space left on device", Options{Offline: true})
	res.ConfirmByKernel(fs[1:])
	for _, c := range res.Causes {
		if c.ByKernel {
			t.Errorf("%s confirmed by a failure with another errno", c.Limit)
		}
	}
}

func FuzzReadFailures(f *testing.F) {
	f.Add([]byte(`{"limit":"inodes","errno":"ENOSPC","count":1}` + "\n"))
	f.Add([]byte(`{"failures":[{"limit":"pids","errno":"EAGAIN"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, _, _ := ReadFailures(strings.NewReader(string(b)))
		if len(fs) > maxFailures {
			t.Fatalf("%d failures kept", len(fs))
		}
		res := &Result{Normalized: Normalize(string(b)), Causes: []Cause{{Limit: "inodes"}, {Limit: "disk"}}}
		res.ConfirmByKernel(fs)
	})
}
