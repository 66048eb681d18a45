package explain

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
)

func TestAppendMasked(t *testing.T) {
	for in, want := range map[string]string{
		"mkdir /sys/fs/cgroup/memory/pod12ab/3f9e0c: no space left on device": "mkdir /sys/fs/cgroup/memory/pod0ab/0: no space left on device",
		"id=deadbeef1 errno=28 clone3 face 12face x12y":                       "id=0 errno=0 clone0 face 0 x0y",
		"abc1_ 1abc a1b2c3d4-e5f6 0x1f":                                       "abc0_ 0 0-0 0x0f",
	} {
		if got := string(appendMasked(nil, in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestMaskSafeWord(t *testing.T) {
	for w, want := range map[string]bool{
		"no space left on device": true, "errno=28": false, "face": false, "fd ": false,
		" fd": false, "fds": true, "x_fd": true, "add_key": true, "/dev/shm": true, "c:": false,
	} {
		if got := maskSafeWord(w); got != want {
			t.Errorf("%q: %v, want %v", w, got, want)
		}
	}
}

// The model reads a message only through the words of its vocabulary,
// found by the one-pass automaton (extract), and through the catalog's
// signatures: the premise of Key. Every use of t in facts.go, clues.go and
// model.go is checked; and every word of the vocabulary the mask could
// change is among the words the key looks up in the message itself.
func TestModelReadsWordsOnly(t *testing.T) {
	fset := token.NewFileSet()
	for _, name := range []string{"facts.go", "clues.go", "model.go"} {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return false
			}
			defer func() { stack = append(stack, n) }()
			id, ok := n.(*ast.Ident)
			if !ok || id.Name != "t" || len(stack) == 0 {
				return true
			}
			switch p := stack[len(stack)-1].(type) {
			case *ast.Field:
			case *ast.CallExpr:
				switch name := callName(p.Fun); name {
				case "extract", "candidates", "plainLower", "Assess", "sig.re.MatchString", "v.index.find", "catalog().words.find":
				default:
					if !strings.HasSuffix(name, ".words.find") {
						t.Errorf("%s: the message is read by %s", fset.Position(id.Pos()), name)
					}
				}
			default:
				t.Errorf("%s: the message is used as %T", fset.Position(id.Pos()), p)
			}
			return true
		})
	}
	v := vocab()
	if len(v.index.words) < 300 {
		t.Fatalf("only %d words in the vocabulary", len(v.index.words))
	}
	for _, w := range v.index.words {
		if w != strings.ToLower(w) {
			t.Errorf("%q: the vocabulary is lower case, as Normalize makes the message", w)
		}
		if !maskSafeWord(w) && !slices.Contains(sensitiveWords(), w) {
			t.Errorf("%q: the mask can change whether it is found, and the key does not look it up", w)
		}
	}
}

func callName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return callName(e.X) + "." + e.Sel.Name
	}
	return "?"
}

func TestUnsafeSignatures(t *testing.T) {
	n := 0
	for _, g := range catalog().groups {
		n += len(g.sigs)
	}
	for _, s := range catalog().unsafe {
		t.Logf("evaluated for the key: %s", s.sig.re)
	}
	t.Logf("%d words for the key", len(catalog().keyWords.words))
	t.Logf("%d of %d signatures evaluated for the key", len(catalog().unsafe), n)
}

func TestMaskSafe(t *testing.T) {
	for re, want := range map[string]bool{
		`(?i)mkdir \S*/sys/fs/cgroup/\S*: no space left on device`: true,
		`(?i)too many open files($|[^ ]| [^i])`:                    true,  // the class is last
		`(?i)too many open files[^ ]x`:                             false, // it is not
		`(?i)limit \d+ reached`:                                    false, // "12ab" is "0" masked
		`(?i)errno[ =]28`:                                          false,
		`(?i)creat(e|ing) (a )?new namespace`:                      true,
		`(?i)a\Bb`:                                                 false,
		`(?i)id=\S+ x`:                                             false,
	} {
		sre, err := syntax.Parse(re, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := maskSafe(sre.Simplify(), false, true); got != want {
			t.Errorf("%s: %v, want %v", re, got, want)
		}
	}
}

// normalizePlain gives what the whole of Normalize gives, on every
// message it takes.
func TestNormalizePlain(t *testing.T) {
	msgs := []string{"", " ", ",,", "A,B\tC\r\nD\v\fE  ", "Mkdir /x: No space, left", "a\x00b\x1fc\x7f"}
	for _, e := range loadCorpus(t) {
		msgs = append(msgs, e.Message)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			const alphabet = " ,\t\n\r\v\fAaZz0:/-\"'}"
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		msgs = append(msgs, string(b))
	}
	plain := 0
	for _, m := range msgs {
		if got, ok := normalizePlain(m); ok {
			plain++
			if want := normalize(m); got != want {
				t.Errorf("%q: %q, want %q", m, got, want)
			}
		}
	}
	if plain < len(msgs)/2 {
		t.Errorf("only %d of %d messages plain", plain, len(msgs))
	}
}
