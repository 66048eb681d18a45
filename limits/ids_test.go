package limits

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestIDsInCatalog reads the ID constants the families declare (a const
// of type ID in this package's files) and checks that they and the
// catalog are the same set: a constant for every limit, a limit for every
// constant, each declared once.
func TestIDsInCatalog(t *testing.T) {
	fset := token.NewFileSet()
	consts := map[string]string{} // value -> where
	files, _ := filepath.Glob("*.go")
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ID" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok {
						continue
					}
					val, _ := strconv.Unquote(lit.Value)
					if where, dup := consts[val]; dup {
						t.Errorf("%s: %q declared again (first at %s)", fset.Position(lit.Pos()), val, where)
					}
					consts[val] = fset.Position(lit.Pos()).String()
				}
			}
		}
	}
	catalog := IDs()
	for v, where := range consts {
		if !slices.Contains(catalog, ID(v)) {
			t.Errorf("%s: constant %q names no limit of the catalog", where, v)
		}
	}
	for _, id := range catalog {
		if _, ok := consts[string(id)]; !ok {
			t.Errorf("limit %q has no ID constant", id)
		}
	}
	if len(consts) < 30 {
		t.Errorf("only %d ID constants found: the test no longer reads them", len(consts))
	}
}

// TestIDsUsedOutsideLimits reads the repository's Go code outside this
// package (tests aside): every string literal that stands for a limit ID (compared with
// a Limit or ID field, a case of a switch on one, the value of a Limit
// field, an element of an Only list) must be an ID of the catalog. A
// typo or a renamed limit otherwise fails silently: the row is never
// matched.
func TestIDsUsedOutsideLimits(t *testing.T) {
	known := map[string]bool{}
	for _, id := range IDs() {
		known[string(id)] = true
	}
	isField := func(e ast.Expr, names ...string) bool {
		if s, ok := e.(*ast.SelectorExpr); ok {
			return slices.Contains(names, s.Sel.Name)
		}
		if id, ok := e.(*ast.Ident); ok {
			return slices.Contains(names, id.Name)
		}
		return false
	}
	checked := 0
	fset := token.NewFileSet()
	check := func(lit ast.Expr, path string) {
		b, ok := lit.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return
		}
		v, err := strconv.Unquote(b.Value)
		if err != nil || v == "" {
			return
		}
		checked++
		if !known[v] {
			t.Errorf("%s: %q is used as a limit ID but is none of the catalog's", fset.Position(b.Pos()), v)
		}
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "limits", "testdata", ".git", "node_modules":
				if path != ".." {
					return filepath.SkipDir
				}
			}
			return nil
		}
		// Tests name limits that do not exist on purpose.
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op == token.EQL || n.Op == token.NEQ {
					if isField(n.X, "Limit", "limit", "Cause") {
						check(n.Y, path)
					}
					if isField(n.Y, "Limit", "limit", "Cause") {
						check(n.X, path)
					}
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && isField(n.Tag, "Limit", "limit", "Cause") {
					for _, s := range n.Body.List {
						for _, e := range s.(*ast.CaseClause).List {
							check(e, path)
						}
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "Limit" || k.Name == "limit" || k.Name == "Cause") {
					check(n.Value, path)
				}
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Only" {
					if c, ok := n.Value.(*ast.CompositeLit); ok {
						for _, e := range c.Elts {
							check(e, path)
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d limit IDs used outside limits, each checked against the catalog", checked)
	if checked < 20 {
		t.Errorf("only %d uses found: the scan no longer sees how the code names limits", checked)
	}
}

func TestUIDScope(t *testing.T) {
	for _, uid := range []int{0, 1001, 2147483647} {
		if got, ok := ScopeUID(UIDScope(uid)); !ok || got != uid {
			t.Errorf("ScopeUID(UIDScope(%d)) = %d, %v", uid, got, ok)
		}
	}
	for _, s := range []string{"uid", "uid ", "uid -1", "uid 01", "uid 1 ", "host", "uid 1x", "UID 1"} {
		if uid, ok := ScopeUID(s); ok {
			t.Errorf("ScopeUID(%q) = %d, want none", s, uid)
		}
	}
}
