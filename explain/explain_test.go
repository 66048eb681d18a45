package explain

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/enospc/enospc/history"
	"github.com/enospc/enospc/host"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		// kubelet quoting runc quoting the process, in a JSON log record.
		`{"log":"Error: failed to start container \"app\": Error response from daemon: OCI runtime create failed: container_linux.go:345: starting container process caused \"process_linux.go:424: container init caused \\\"join session keyring: create session key: disk quota exceeded\\\"\": unknown\n","stream":"stderr","time":"2026-11-22T08:00:00Z"}`: `error: failed to start container "app": error response from daemon: oci runtime create failed: container_linux.go:345: starting container process caused "process_linux.go:424: container init caused "join session keyring: create session key: disk quota exceeded"": unknown`,
		// Split over lines by a terminal.
		"mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod1:\n   no space left\n on device": "mkdir /sys/fs/cgroup/memory/kubepods/burstable/pod1: no space left on device",
		// Invalid UTF-8 and CSV.
		"ctr:,OCI,runtime,create,failed:,no,space,left,on,device\xff": "ctr: oci runtime create failed: no space left on device",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%.60q)\n got %q\nwant %q", in, got, want)
		}
	}
	if got := Normalize(strings.Repeat("x", 10<<20)); len(got) > maxMessage {
		t.Errorf("a 10 MB message normalizes to %d bytes", len(got))
	}
}

// On the Jenkins fixture host, the seed's message is confirmed: keys.bytes
// at 99.6% of maxbytes for uid 1001, with its remedy.
func TestExplainConfirmsOnHost(t *testing.T) {
	dir := "../testdata/hosts/jenkins-keyring"
	h := host.New(dir+"/proc", dir+"/sys", dir+"/root")
	h.Now = func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) }
	h.StatfsFunc = func(string) (host.Statfs, error) { return host.Statfs{}, nil }
	msg := `OCI runtime create failed: container_linux.go:345: starting container process caused "process_linux.go:424: container init caused \"join session keyring: create session key: disk quota exceeded\"": unknown`
	res, err := Explain(context.Background(), h, msg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Checked || len(res.Causes) == 0 {
		t.Fatalf("%+v", res)
	}
	top := res.Causes[0]
	if top.Limit != "keys.bytes" || !top.Confirmed || len(top.Remedy) == 0 || len(top.Rows) == 0 || top.Rows[0].Scope != "uid 1001" {
		t.Fatalf("top cause on the host where keys.bytes is full: %+v", top)
	}
	for _, c := range res.Causes[1:] {
		if c.Limit == "keys.count" && c.Confirmed {
			t.Errorf("keys.count (243 of 1000000) confirmed: %+v", c)
		}
	}
	// Offline, the same message ranks keys.count first, unconfirmed.
	off, err := Explain(context.Background(), h, msg, Options{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if off.Checked || off.Causes[0].Limit != "keys.count" || off.Causes[0].Confirmed {
		t.Fatalf("offline: %+v", off.Causes[0])
	}
}

func TestExplainNothingKnown(t *testing.T) {
	res, err := Explain(context.Background(), host.New("/nonexistent", "/x", "/x"), "everything is fine", Options{})
	if err != nil || len(res.Causes) != 0 || res.Note == "" {
		t.Fatalf("%+v %v", res, err)
	}
}

func FuzzNormalizeCandidates(f *testing.F) {
	f.Add(`{"log":"a \\\"b\\\" no space left on device\n"}`)
	f.Add("\xff\x00 disk quota exceeded keyring")
	f.Add("write /sys/fs/cgroup/cpuset/x/cgroup.procs: no space left on device")
	f.Add("accept4: too many open files (os error 24) errno=28 (99: ")
	f.Fuzz(func(t *testing.T, msg string) {
		n := Normalize(msg)
		cands, out := Assess(n)
		for _, c := range cands {
			if c.Confidence <= 0 || c.Confidence > 1 || c.Limit == "" {
				t.Fatalf("candidate %+v", c)
			}
			if out != nil && c.Confidence >= 0.5 {
				t.Fatalf("outside %s, yet %s at %.2f", out.Kind, c.Limit, c.Confidence)
			}
		}
		if out != nil && (out.Confidence <= 0 || out.Confidence > 1 || out.Kind == "") {
			t.Fatalf("outside %+v", out)
		}
		if l := Label(n); (out != nil) != strings.HasPrefix(l, "outside:") || (l == "") != (out == nil && (len(cands) == 0 || cands[0].Confidence < labelMin)) {
			t.Fatalf("Label %q for %+v, %+v", l, cands, out)
		}
	})
}

// A cause not near its max now that the history saw full is confirmed as
// past, ranked first, with when and for how long.
func TestExplainConfirmsPast(t *testing.T) {
	dir := "../testdata/hosts/jenkins-keyring"
	h := host.New(dir+"/proc", dir+"/sys", dir+"/root")
	h.Now = func() time.Time { return time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC) }
	h.StatfsFunc = func(string) (host.Statfs, error) {
		return host.Statfs{BlockSize: 4096, Blocks: 1000, BlocksFree: 500, BlocksAvail: 500, Files: 1000, FilesFree: 900}, nil
	}
	from := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	past := func(limit string) ([]history.Episode, error) {
		if limit != "inodes" {
			return nil, nil
		}
		return []history.Episode{{Scope: "/run (tmpfs tmpfs)", From: from, To: from.Add(4 * time.Minute), Peak: 1000, Max: 1000, Full: true, FullFrom: from}}, nil
	}
	res, err := Explain(context.Background(), h, "mkdir /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc: no space left on device", Options{Past: past})
	if err != nil {
		t.Fatal(err)
	}
	top := res.Causes[0]
	if top.Limit != "inodes" || top.Confirmed || len(top.Past) != 1 {
		t.Fatalf("top cause %+v, want inodes confirmed as past", top)
	}
	want := "full on /run (tmpfs tmpfs) from 2026-11-22T03:00:00Z for 4m0s"
	if !strings.Contains(res.Note, want) || !strings.Contains(strings.Join(top.Remedy, " "), want) {
		t.Errorf("note %q, remedy %q: want %q", res.Note, top.Remedy, want)
	}
}
