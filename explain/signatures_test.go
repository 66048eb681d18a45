package explain

import (
	"testing"

	"github.com/enospc/enospc/limits"
)

// TestCatalogCarriesTheWordings: every message of the corpus matches a
// catalog signature of its true cause (or of a limit the same call fails
// with): the catalog carries the wordings of the tools, not only explain's
// rules.
func TestCatalogCarriesTheWordings(t *testing.T) {
	for _, e := range loadCorpus(t) {
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
		if !matched {
			t.Errorf("no catalog signature of %s matches %.160q (%s)", e.Cause, norm, e.Source)
		}
	}
}
