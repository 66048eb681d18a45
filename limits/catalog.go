package limits

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
)

// Catalog is every family: the first ones listed here, then those that
// register themselves from their own file (register, in init).
func Catalog() []Family {
	// The one ordered list of the catalog: a family is in it because it
	// is named here, not because its file registered itself. The order is
	// the order of the report's rows of equal severity and use.
	return []Family{
		filesystemsFamily,
		keysFamily,
		inotifyFamily,
		cgroupsFamily,
		processesFamily,
		filesFamily,
		mountsFamily,
		leaksFamily,
		devicesFamily,
		ipcFamily,
		namespacesFamily,
		networkFamily,
		procLimitsFamily,
		quotaFamily,
	}
}

var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]+(\.[a-z_]+)*$`) })

// Validate rejects a malformed catalog: duplicate or malformed IDs,
// limits without title, doc, unit, error signatures or remedy.
func Validate(fams []Family) error {
	var errs []error
	seen := map[ID]bool{}
	for _, f := range fams {
		if f.Name == "" || f.Read == nil {
			errs = append(errs, fmt.Errorf("family %q: needs a name and a Read", f.Name))
		}
		if len(f.Limits) == 0 {
			errs = append(errs, fmt.Errorf("family %q: no limits", f.Name))
		}
		for _, l := range f.Limits {
			if !idPattern().MatchString(string(l.ID)) {
				errs = append(errs, fmt.Errorf("limit %q: malformed id", l.ID))
			}
			if seen[l.ID] {
				errs = append(errs, fmt.Errorf("limit %q: duplicate id", l.ID))
			}
			seen[l.ID] = true
			if l.Title == "" || l.Doc == "" || l.Unit == "" {
				errs = append(errs, fmt.Errorf("limit %q: needs title, doc and unit", l.ID))
			}
			if len(l.Signatures) == 0 {
				errs = append(errs, fmt.Errorf("limit %q: no error signatures", l.ID))
			}
			for _, s := range l.Signatures {
				if _, err := regexp.Compile(s.String()); err != nil {
					errs = append(errs, fmt.Errorf("limit %q: signature %q: %w", l.ID, s, err))
				}
			}
			if l.Remedy == nil {
				errs = append(errs, fmt.Errorf("limit %q: no remedy", l.ID))
			}
			if len(l.Clues) == 0 {
				errs = append(errs, fmt.Errorf("limit %q: no clues for explain", l.ID))
			}
			for _, c := range l.Clues {
				if !(c.Prior > 0 && c.Prior < 1) || c.Why == "" {
					errs = append(errs, fmt.Errorf("limit %q: a clue needs a prior in (0, 1) and where it comes from", l.ID))
				}
				if c.Errno == 0 && c.Op == 0 && c.Obj == 0 && c.Prog == 0 && c.Words == nil {
					errs = append(errs, fmt.Errorf("limit %q: a clue that holds for every message", l.ID))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Lookup finds a limit by ID.
func Lookup(id ID) (Limit, bool) {
	l, ok := limitsByID()[id]
	return l, ok
}

// limitsByID indexes the catalog once: a check looks up the limit of
// every row it grades warning or worse, hundreds on a bad night. The
// catalog is a fixed list: the index never goes stale.
var limitsByID = sync.OnceValue(func() map[ID]Limit {
	m := map[ID]Limit{}
	for _, f := range Catalog() {
		for _, l := range f.Limits {
			if _, dup := m[l.ID]; !dup {
				m[l.ID] = l
			}
		}
	}
	return m
})
