package explain

// CandidatesUnfiltered is Candidates trying every signature, as it did
// before the prefilter.
func CandidatesUnfiltered(t string) []Candidate {
	c, _ := candidates(t, nil)
	return c
}

// LabelUnfiltered is Label trying every signature.
func LabelUnfiltered(t string) string {
	c, o := candidates(t, nil)
	switch {
	case o != nil:
		return "outside:" + o.Kind
	case len(c) > 0 && c[0].Confidence >= labelMin:
		return c[0].Limit
	}
	return ""
}
