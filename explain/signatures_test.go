package explain

import (
	"strings"
	"testing"

	"github.com/enospc/enospc/limits"
)

// TestCatalogCarriesTheWordings: every message of the corpus the catalog's
// signatures were written from (its first firstModelEntry lines) matches a
// signature of its true cause (or of a limit the same call fails with):
// the catalog carries the wordings of the tools. The messages added with
// the model of facts are explained by the clues (clues.go), which are to
// move into the limits' declarations: for them the share the signatures
// alone cover is printed, not held.
func TestCatalogCarriesTheWordings(t *testing.T) {
	covered, later := 0, 0
	for i, e := range loadCorpus(t) {
		if strings.HasPrefix(e.Cause, "outside:") {
			continue
		}
		norm := Normalize(e.Message)
		matched := false
		for _, f := range limits.Catalog() {
			for _, l := range f.Limits {
				if !sameCallAs(string(l.ID), e.Cause) {
					continue
				}
				for _, re := range l.Signatures {
					matched = matched || re.MatchString(norm) || re.MatchString(e.Message)
				}
			}
		}
		if i >= firstModelEntry {
			later++
			if matched {
				covered++
			}
			continue
		}
		if !matched {
			t.Errorf("no catalog signature of %s matches %.160q (%s)", e.Cause, norm, e.Source)
		}
	}
	t.Logf("the catalog's signatures alone match %d of the %d later messages of limits", covered, later)
}
