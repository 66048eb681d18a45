package limits

// ID names a limit: the "limit" of every row of check -o json, the
// argument of --only. Each family declares the IDs of its limits as
// constants of this type beside the limits themselves; the catalog is the
// list of them all (IDs), and a test checks that every ID the code outside
// this package names is one of them.
type ID string

// String returns the ID as printed.
func (id ID) String() string { return string(id) }

// IDs are the IDs of every limit of the catalog, in its order.
func IDs() []ID {
	var out []ID
	for _, f := range Catalog() {
		for _, l := range f.Limits {
			out = append(out, l.ID)
		}
	}
	return out
}
