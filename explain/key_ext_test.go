package explain_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/enospc/enospc/explain"
	"github.com/enospc/enospc/logs"
)

// Candidates with the prefilter gives what it gave without, and messages
// with the same Key get the same Candidates: on the corpus, on variants of
// it with other numbers and ids, and on logs.DenseLog and logs.SyntheticLog.
func TestKeyExact(t *testing.T) {
	var msgs []string
	f, err := os.Open("../testdata/explain/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Message string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, e.Message)
	}
	corpus := len(msgs)
	r := rand.New(rand.NewPCG(5, 6))
	digits := regexp.MustCompile(`[0-9]+`)
	ids := regexp.MustCompile(`\b[0-9a-f]*[0-9][0-9a-f]*\b`)
	for i := 0; i < corpus; i++ {
		for range 8 {
			m := digits.ReplaceAllStringFunc(msgs[i], func(string) string { return randFrom(r, "0123456789", 1+r.IntN(6)) })
			m = ids.ReplaceAllStringFunc(m, func(string) string { return randFrom(r, "0123456789", 1) + randFrom(r, "0123456789abcdef", r.IntN(40)) })
			msgs = append(msgs, m)
		}
	}
	for _, data := range [][]byte{logs.DenseLog(512 << 10), logs.SyntheticLog(256<<10, 1)} {
		for _, line := range bytes.Split(data, []byte("\n")) {
			msgs = append(msgs, string(line))
		}
	}
	byKey := map[string][]explain.Candidate{}
	keyed := 0
	for _, m := range msgs {
		n := explain.Normalize(m)
		want := explain.CandidatesUnfiltered(n)
		got := explain.Candidates(n)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("prefilter changes the candidates of %q:\n%+v\nwant %+v", n, got, want)
		}
		k, ok := explain.Key(n)
		if !ok {
			continue
		}
		keyed++
		if prev, seen := byKey[k]; seen && !reflect.DeepEqual(prev, want) {
			t.Fatalf("key %q: %+v and %+v (%q)", k, prev, want, n)
		}
		byKey[k] = want
	}
	if keyed < len(msgs)*9/10 {
		t.Errorf("only %d of %d messages have a key", keyed, len(msgs))
	}
	t.Logf("%d messages (%d of the corpus), %d with a key, %d keys", len(msgs), corpus, keyed, len(byKey))
}

func randFrom(r *rand.Rand, alphabet string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}
