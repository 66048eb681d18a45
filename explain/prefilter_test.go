package explain

import (
	"regexp"
	"strings"
	"testing"
)

func TestNeedOf(t *testing.T) {
	for re, want := range map[string]string{
		`(?i)max_user_namespaces`:                                                `[[max_user_namespaces]]`,
		`(?i)mkdir \S*/sys/fs/cgroup/\S*: no space left on device`:               `[[mkdir ] [/sys/fs/cgroup/] [: no space left on device]]`,
		`(?i)clone_new(ns|net|pid)\b.*(ENOSPC|no space left on device)`:          `[[clone_newns clone_newnet clone_newpid] [enospc no space left on device]]`,
		`(?i)(unshare|creat(e|ing) (a )?new namespace)\b.*failed.*no space left`: `[[unshare create a new namespace create new namespace creating a new namespace creating new namespace] [failed] [no space left]]`,
		`ENOSPC`:   `[[]]`,
		`.*`:       `[]`,
		`a|b*`:     `[]`,
		`x[0-9]+y`: `[[x] [0 1 2 3 4 5 6 7 8 9] [y]]`,
	} {
		if got := fmtNeed(needOf(regexp.MustCompile(re))); got != want {
			t.Errorf("%s: %s, want %s", re, got, want)
		}
	}
}

func fmtNeed(n [][]string) string {
	s := "["
	for i, c := range n {
		if i > 0 {
			s += " "
		}
		s += "["
		for j, w := range c {
			if j > 0 {
				s += " "
			}
			s += w
		}
		s += "]"
	}
	return s + "]"
}

// The words are found where strings.Contains finds them, and the
// prefilter never skips a signature that matches: on every message of the
// corpus, and on each message cut at every word.
func TestPrefilterKeepsMatches(t *testing.T) {
	var texts []string
	for _, e := range loadCorpus(t) {
		n := Normalize(e.Message)
		texts = append(texts, n)
		for i := 0; i < len(n); i++ {
			if n[i] == ' ' {
				texts = append(texts, n[:i], n[i+1:])
			}
		}
	}
	checked, matched := 0, 0
	var found []*wordSet
	for _, tx := range texts {
		if !plainLower(tx) {
			found = append(found, nil)
			continue
		}
		var f wordSet
		for _, words := range []*wordIndex{catalog().keyWords, catalog().words} {
			f = wordSet{}
			words.find(tx, &f)
			for id, w := range words.words {
				if f.has(id) != strings.Contains(tx, w) {
					t.Fatalf("%q in %q: found %v", w, tx, f.has(id))
				}
			}
		}
		found = append(found, &f) // of catalog().words
	}
	for _, g := range catalog().groups {
		for i := range g.sigs {
			sig := &g.sigs[i]
			for j, tx := range texts {
				checked++
				if sig.re.MatchString(tx) {
					matched++
					if !sig.may(found[j]) {
						t.Errorf("%s skipped on %q though it matches", sig.re, tx)
					}
				}
			}
		}
	}
	if matched == 0 {
		t.Fatal("no signature matched")
	}
	t.Logf("%d matches in %d tries", matched, checked)
}
