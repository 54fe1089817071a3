package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/problem"
)

// sourceMessages walks the Go source of internal/ and cmd/ (tests excluded) and collects
// every constant English message an API error can carry: the formats given to
// problem.Invalid / problem.Conflict and to this package's Invalid, Conflict, Forbidden,
// Unavailable and Unauthenticated; "<what> not found" for NotFound("<what>"); the constant
// Problem of a problem error literal (FieldError, ConflictError, RefusedError,
// ForbiddenError, ThrottledError, NotFoundError, whatever package aliases them), the
// constant Message of an api Error literal, and problem.Word("…") arguments. It returns
// each message with the first place it is used.
func sourceMessages(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, root := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			inAPI := f.Name.Name == "api" && filepath.Base(filepath.Dir(path)) == "api"
			add := func(e ast.Expr, suffix string) {
				if s, ok := constString(e); ok && s != "" {
					s += suffix
					if _, seen := out[s]; !seen {
						out[s] = fset.Position(e.Pos()).String()
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CallExpr:
					name, pkg := callee(x.Fun)
					switch {
					case pkg == "problem" && (name == "Invalid" || name == "Conflict") && len(x.Args) >= 2:
						add(x.Args[1], "")
					case pkg == "problem" && name == "NotFound" && len(x.Args) == 1:
						add(x.Args[0], " not found")
					case pkg == "problem" && name == "Word" && len(x.Args) == 1:
						add(x.Args[0], "")
					case inAPI && pkg == "" && (name == "Invalid" || name == "Conflict") && len(x.Args) >= 2:
						add(x.Args[1], "")
					case inAPI && pkg == "" && (name == "Forbidden" || name == "Unavailable" || name == "Unauthenticated") && len(x.Args) >= 1:
						add(x.Args[0], "")
					case inAPI && pkg == "" && name == "NotFound" && len(x.Args) == 1:
						add(x.Args[0], " not found")
					case inAPI && pkg == "" && name == "loadByID" && len(x.Args) >= 3:
						add(x.Args[2], "") // the noun of "%s %s not found" (notFoundAs)
					case inAPI && pkg == "" && (name == "federationObject" && len(x.Args) >= 3):
						add(x.Args[2], "")
					case inAPI && pkg == "" && name == "notFoundAs" && len(x.Args) >= 2:
						add(x.Args[1], "")
					}
				case *ast.CompositeLit:
					name, _ := callee(x.Type)
					// map[string]problem.ConflictError{"k": {Problem: "…"}}: the elements' type is elided.
					var elem ast.Expr
					switch tt := x.Type.(type) {
					case *ast.MapType:
						elem = tt.Value
					case *ast.ArrayType:
						elem = tt.Elt
					}
					if en, _ := callee(elem); elem != nil && slices.Contains(problemTypes, en) {
						for _, el := range x.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok {
								el = kv.Value
							}
							if lit, ok := el.(*ast.CompositeLit); ok && lit.Type == nil {
								for _, f := range lit.Elts {
									if kv, ok := f.(*ast.KeyValueExpr); ok {
										if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Problem" {
											add(kv.Value, "")
										}
									}
								}
							}
						}
						return true
					}
					field := ""
					switch {
					case slices.Contains(problemTypes, name):
						field = "Problem"
					case inAPI && name == "Error":
						field = "Message"
					default:
						return true
					}
					for _, el := range x.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == field {
								add(kv.Value, "")
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
	}
	return out
}

// callee names a function or type: Invalid → ("Invalid", ""), problem.Invalid →
// ("Invalid", "problem"), &x.T{} → ("T", "x").
func callee(e ast.Expr) (name, pkg string) {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name, ""
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			return x.Sel.Name, id.Name
		}
	}
	return "", ""
}

// constString evaluates a string literal or a + of string literals.
func constString(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(x.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		a, ok1 := constString(x.X)
		b, ok2 := constString(x.Y)
		return a + b, ok1 && ok2
	case *ast.ParenExpr:
		return constString(x.X)
	}
	return "", false
}

// problemTypes are the error types of internal/problem that carry a Problem sentence.
var problemTypes = []string{"FieldError", "ConflictError", "RefusedError", "ForbiddenError", "ThrottledError", "NotFoundError"}

var verbRE = regexp.MustCompile(`%[-+# 0-9.*]*[a-zA-Z%]`)

// Every constant message an API error can carry has its French translation in the
// catalog's api section, with the same formatting verbs in the same order (a translation
// that drops a %d loses information; one that swaps %s and %d prints garbage). Run with
// ARCHIPELAGO_MISSING_MESSAGES=FILE to write the missing ones to FILE, one a line.
func TestEveryAPIMessageHasAFrenchTranslation(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	msgs := sourceMessages(t)
	if len(msgs) < 150 {
		t.Fatalf("found only %d messages in the source: the walk is broken", len(msgs))
	}
	fr := cat.Printer(i18n.French)
	var missing []string
	for m, where := range msgs {
		id := problem.CatalogSection + m
		if !cat.Has(i18n.French, id) || !cat.Has(i18n.English, id) {
			missing = append(missing, m)
			t.Errorf("%s: %q has no French translation (add it under api: in internal/i18n/locales/en.yaml and fr.yaml)", where, m)
			continue
		}
		tr := fr.T(id)
		if !slices.Equal(verbRE.FindAllString(m, -1), verbRE.FindAllString(tr, -1)) {
			t.Errorf("%s: the French %q does not use the verbs of %q in their order", where, tr, m)
		}
		if tr == m && verbRE.ReplaceAllString(m, "") != "" && strings.ContainsAny(m, "aeiou ") && !untranslated[m] {
			t.Errorf("%s: %q is 'translated' as itself", where, m)
		}
	}
	if path := os.Getenv("ARCHIPELAGO_MISSING_MESSAGES"); path != "" {
		sort.Strings(missing)
		if err := os.WriteFile(path, []byte(strings.Join(missing, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// untranslated are messages French writes as English does (names, codes).
var untranslated = map[string]bool{"vault_id": true}
