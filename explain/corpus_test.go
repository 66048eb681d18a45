package explain

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// corpusEntry is one labelled message of testdata/explain/corpus.jsonl:
// captured by the lab or quoted from a public report, with its true cause.
type corpusEntry struct {
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Source  string `json:"source"`
	Note    string `json:"note"`
}

func loadCorpus(t testing.TB) []corpusEntry {
	f, err := os.Open("../testdata/explain/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var e corpusEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("corpus line %d: %v", n, err)
		}
		if e.Message == "" || e.Cause == "" || e.Source == "" {
			t.Fatalf("corpus line %d: message, cause and source are required", n)
		}
		out = append(out, e)
	}
	return out
}

// sameCall groups the limits that fail the very same call with the very
// same error, so that no message can tell them apart: which one ran out is
// a fact of the host, which Explain reads when it is the host the error
// came from. add_key's EDQUOT is one quota counted in keys and in bytes;
// mkdir's ENOSPC in the memory hierarchy is one id space held by live,
// dying and leaked cgroups; clone's EAGAIN is pids.max, pid_max,
// RLIMIT_NPROC (nproc) or threads-max; a write's ENOSPC is blocks or inodes.
var sameCall = [][]string{
	{"keys.count", "keys.bytes", "leak.keyrings"},
	{"cgroups", "cgroups.dying", "leak.cgroups"},
	{"pids", "threads", "nproc"},
	{"disk", "inodes"},
}

func sameCallAs(a, b string) bool {
	for _, g := range sameCall {
		inA, inB := false, false
		for _, x := range g {
			inA = inA || x == a
			inB = inB || x == b
		}
		if inA && inB {
			return true
		}
	}
	return a == b
}

// TestCorpusAccuracy scores explain's top cause, from the message alone,
// against the true cause of every message of the corpus:
//   - strict top-1 (the very limit) is printed, and must stay at 85% or
//     more;
//   - top-1 up to what the message can tell (sameCall) must be 95% or
//     more;
//   - the true cause must always be among the candidates, so that checking
//     them on the host finds it;
//   - the corpus must hold real full disks and real quotas, so that a tool
//     answering "a hidden limit" every time fails (quota is in no group).
func TestCorpusAccuracy(t *testing.T) {
	corpus := loadCorpus(t)
	perCause := map[string]int{}
	strict, told := 0, 0
	for _, e := range corpus {
		perCause[e.Cause]++
		cands := Candidates(Normalize(e.Message))
		got := "(none)"
		if len(cands) > 0 {
			got = cands[0].Limit
		}
		listed := false
		for _, c := range cands {
			listed = listed || c.Limit == e.Cause
		}
		switch {
		case got == e.Cause:
			strict++
			told++
			continue
		case sameCallAs(got, e.Cause):
			told++
			t.Logf("same call: want %s, got %s (%s)", e.Cause, got, e.Source)
		default:
			t.Logf("miss: want %s, got %s (%s)\n    %.200s", e.Cause, got, e.Source, e.Message)
		}
		if !listed {
			t.Errorf("%s is not even a candidate for %.120q (%s)", e.Cause, e.Message, e.Source)
		}
	}
	n := float64(len(corpus))
	t.Logf("top-1 accuracy: %.1f%% strict (%d of %d), %.1f%% up to what the message can tell; per cause %v",
		100*float64(strict)/n, strict, len(corpus), 100*float64(told)/n, perCause)
	if perCause["disk"] < 5 || perCause["quota"] < 3 {
		t.Errorf("the corpus needs real full disks (%d) and real quotas (%d)", perCause["disk"], perCause["quota"])
	}
	if float64(told)/n < 0.95 {
		t.Errorf("top-1 accuracy up to what the message can tell: %.1f%%, below 95%%", 100*float64(told)/n)
	}
	if float64(strict)/n < 0.85 {
		t.Errorf("strict top-1 accuracy %.1f%% fell below 85%%", 100*float64(strict)/n)
	}
}
