package history

import "time"

// Episode is a time a row was at or near its max: from the first to the
// last of consecutive samples at or above the threshold.
type Episode struct {
	Scope string    `json:"scope"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	// Peak is the highest use of the episode, of Max.
	Peak int64 `json:"peak"`
	Max  int64 `json:"max"`
	// Full is true when the row reached its max, first at FullFrom.
	Full     bool      `json:"full"`
	FullFrom time.Time `json:"full_from,omitzero"`
}

// Episodes are the times limit's rows were at or above ratio of their max
// between since and until, oldest first.
func (s *Store) Episodes(limit string, since, until time.Time, ratio float64) ([]Episode, error) {
	series, err := s.Query([]string{limit}, "", since, until)
	if err != nil {
		return nil, err
	}
	var out []Episode
	for _, sr := range series {
		out = append(out, episodes(sr, ratio)...)
	}
	return out, nil
}

func episodes(sr Series, ratio float64) []Episode {
	var out []Episode
	var cur *Episode
	for _, smp := range sr.Samples {
		if !smp.HasUse {
			continue // an unknown sample neither starts nor ends one
		}
		near := smp.Max > 0 && float64(smp.Used) >= ratio*float64(smp.Max)
		switch {
		case near && cur == nil:
			out = append(out, Episode{Scope: sr.Scope, From: smp.T, To: smp.T, Peak: smp.Used, Max: smp.Max})
			cur = &out[len(out)-1]
			if smp.Used >= smp.Max {
				cur.Full, cur.FullFrom = true, smp.T
			}
		case near:
			cur.To = smp.T
			if smp.Used > cur.Peak {
				cur.Peak, cur.Max = smp.Used, smp.Max
			}
			if !cur.Full && smp.Used >= smp.Max {
				cur.Full, cur.FullFrom = true, smp.T
			}
		default:
			cur = nil
		}
	}
	return out
}
