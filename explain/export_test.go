package explain

// CandidatesUnfiltered is Candidates trying every signature, as it did
// before the prefilter.
func CandidatesUnfiltered(t string) []Candidate { return candidates(t, nil) }
