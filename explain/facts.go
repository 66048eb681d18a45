package explain

import "github.com/enospc/enospc/limits/clue"

// What a message says of itself, read as facts: the errno (by its number,
// its symbolic name and the strerror wordings of libc, Go, Rust, Java,
// Python, Node, .NET and the runtimes), the operation that failed (the
// syscall or library call, named or implied by the tool), the object it
// failed on (a path and what it is), and the program. The limits' clues,
// declared with each limit (limits.Limit.Clues), are written in these
// terms; the words of package limits/clue are the only way the model
// reads a message (see vocabulary).

// facts is what a message says.
type facts struct {
	errno clue.Errno
	op    clue.Op
	obj   clue.Obj
	prog  clue.Prog
	found wordSet // the vocabulary's words found
}

// extract reads the facts of a normalized message in one pass.
func extract(t string) facts {
	var f facts
	v := vocab()
	v.index.find(t, &f.found)
	for _, x := range v.errnos {
		if holdsAny(x.ids, &f.found) {
			f.errno |= x.e
		}
	}
	if f.found.has(v.ids[clue.TooManyOpenFiles]) && !f.found.has(v.ids["too many open files in system"]) {
		f.errno |= clue.EMFILE
	}
	for _, x := range v.ops {
		if holdsAny(x.ids, &f.found) {
			f.op |= x.op
		}
	}
	for _, x := range v.objs {
		if holdsAny(x.ids, &f.found) {
			f.obj |= x.obj
		}
	}
	for _, x := range v.progs {
		if holdsAny(x.ids, &f.found) {
			f.prog |= x.pr
		}
	}
	return f
}

func holdsAny(ids []int, found *wordSet) bool {
	for _, id := range ids {
		if found.has(id) {
			return true
		}
	}
	return false
}
