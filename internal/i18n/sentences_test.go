package i18n

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Every sentence the verifier writes for people — a level's summary, a test's reason, the
// "what" before an error, a postponement, an attribution — has its format in the verify
// section of the domain catalogs, so that Retell says it in French. The sentences are
// found in internal/verify's code: each fmt.Sprintf format and each concatenation of
// literal text with values (the values become %s), and each plain literal that is a
// sentence. What is not said to people (SQL, log and error messages, keys, restic's
// arguments) is skipped by its shape, and the few remaining exceptions are listed in
// notSaidToPeople with their reason. A new sentence without its French format fails here,
// naming its file and line.
func TestEveryVerifierSentenceHasAFrenchFormat(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	found := verifierSentences(t, filepath.Join("..", "verify"))
	if len(found) < 60 {
		t.Fatalf("found only %d verifier sentences: the walk no longer sees them", len(found))
	}
	keys := map[string]bool{}
	for _, id := range c.IDs(French) {
		if f, ok := strings.CutPrefix(id, "verify."); ok {
			keys[f] = true
		}
	}
	var missing []string
	used := map[string]bool{}
	for _, s := range found {
		if reason, ok := notSaidToPeople[s.format]; ok {
			used[s.format] = true
			_ = reason
			continue
		}
		if f := strings.ReplaceAll(s.format, "%s%s", "%s"); !keys[f] && !keys["%s: "+f] { // a list and its tail are one argument; a hint follows "what: "
			missing = append(missing, s.where+": "+strconv.Quote(s.format))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d verifier sentences have no format in locales/domain.fr.yaml (verify:), so they stay in English for a French reader; add each, as it is, to domain.en.yaml and its translation to domain.fr.yaml (or, if it never reaches a person, to notSaidToPeople with the reason):\n%s",
			len(missing), strings.Join(missing, "\n"))
	}
	for f := range notSaidToPeople {
		if !used[f] {
			t.Errorf("notSaidToPeople lists %q, which the verifier no longer writes: remove it", f)
		}
	}
}

// notSaidToPeople: texts of internal/verify that look like sentences but never reach a
// person as such, each with why.
var notSaidToPeople = map[string]string{
	"\n… output cut at 1 MiB …\n":                        "in the run's raw output log, with restic's own words (shown as they are)",
	"upload time of the newest object under snapshots/":  "the freshness level's basis, in its details (JSON, for operators)",
	"time of the newest snapshot (restic snapshots)":     "the freshness level's basis, in its details (JSON, for operators)",
	"comparing with the last test":                       "a running level's phase: the portal says it with its page words (verify.Phases, internal/portal/jswords.go)",
	"restic check":                                       "a running level's phase (verify.Phases, the portal's page words)",
	"hashing objects":                                    "a running level's phase (verify.Phases, the portal's page words)",
	"listing snapshots":                                  "a running level's phase (verify.Phases, the portal's page words)",
	"reading the canary":                                 "a running level's phase (verify.Phases, the portal's page words)",
	"restoring a sample":                                 "a running level's phase (verify.Phases, the portal's page words)",
	"full restore":                                       "a running level's phase (verify.Phases, the portal's page words)",
	"its %d bytes hash to %s":                            "a damaged object's technical detail, in the level's details (JSON)",
	"it was %d bytes when last hashed, it is %d now; %s": "a damaged object's technical detail, in the level's details (JSON)",
	"the object is empty":                                "a damaged object's technical detail, in the level's details (JSON)",
}

type sentence struct{ where, format string }

var (
	sentenceWord = regexp.MustCompile(`[A-Za-z]{2,}[^%]* [A-Za-z]{2,}`)
	sqlText      = regexp.MustCompile(`\b(SELECT|UPDATE|INSERT|DELETE|WHERE|FROM|RETURNING|COALESCE|JOIN|CASE|ILIKE|ANY|IS NULL)\b|\b[a-z]{1,2}\.[a-z_]+_id\b`)
)

// verifierSentences walks the package's non-test files.
func verifierSentences(t *testing.T, dir string) []sentence {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []sentence
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		skip := map[ast.Node]bool{} // inside something already taken, or not said to people
		add := func(n ast.Node, format string) {
			if !sentenceWord.MatchString(format) || sqlText.MatchString(format) {
				return
			}
			pos := fset.Position(n.Pos())
			out = append(out, sentence{where: filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line), format: format})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil || skip[n] {
				return false
			}
			switch x := n.(type) {
			case *ast.ImportSpec, *ast.Field: // paths and struct tags
				return false
			case *ast.KeyValueExpr:
				skip[x.Key] = true // map keys (Details' names)
				if id, ok := x.Key.(*ast.Ident); ok && id.Name == "Problem" {
					return false // an API message (internal/api's TestEveryAPIMessageHasAFrenchTranslation)
				}
				if k, ok := x.Key.(*ast.BasicLit); ok && k.Value == `"trace"` {
					return false // an attempt's trace, for operators
				}
			case *ast.CallExpr:
				if notForPeople(x) {
					return false
				}
				if isSprintf(x) {
					if format, ok := literalFormat(x.Args[0]); ok {
						add(x, format)
						skip[x.Args[0]] = true
					}
				}
			case *ast.BinaryExpr:
				if x.Op == token.ADD {
					if format, ok := concatFormat(x); ok {
						add(x, format)
						markConcat(x, skip)
						return true
					}
				}
			case *ast.BasicLit:
				if x.Kind == token.STRING {
					if s, err := strconv.Unquote(x.Value); err == nil {
						add(x, s)
					}
				}
			}
			return true
		})
	}
	return out
}

// notForPeople: calls whose string arguments are logs, errors, SQL or program arguments.
func notForPeople(c *ast.CallExpr) bool {
	name := ""
	switch fn := c.Fun.(type) {
	case *ast.SelectorExpr:
		name = fn.Sel.Name
		if id, ok := fn.X.(*ast.Ident); ok && (id.Name == "errors" || id.Name == "slog" || id.Name == "problem") {
			return true
		}
		if id, ok := fn.X.(*ast.Ident); ok && id.Name == "fmt" && name == "Errorf" {
			return true
		}
	case *ast.Ident:
		name = fn.Name
	}
	switch name {
	case "Debug", "Info", "Warn", "Error", "Log", "DebugContext", "InfoContext", "WarnContext", "ErrorContext",
		"Exec", "Query", "QueryRow", "Prepare", "SendBatch", "Queue", "Fatal", "Fatalf", "Errorf", "Skip", "Wrap":
		return true
	}
	return false
}

func isSprintf(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Sprintf" || len(c.Args) == 0 {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == "fmt"
}

// literalFormat is a format built of literals only ("a" + "b").
func literalFormat(e ast.Expr) (string, bool) {
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
		l, ok1 := literalFormat(x.X)
		r, ok2 := literalFormat(x.Y)
		return l + r, ok1 && ok2
	case *ast.ParenExpr:
		return literalFormat(x.X)
	}
	return "", false
}

// concatFormat is a concatenation's format: literal text as it is, every other operand %s
// (a Sprintf operand keeps its own format, as the sentence is one text).
func concatFormat(b *ast.BinaryExpr) (string, bool) {
	lit := false
	var walk func(e ast.Expr) string
	walk = func(e ast.Expr) string {
		switch x := e.(type) {
		case *ast.BinaryExpr:
			if x.Op == token.ADD {
				return walk(x.X) + walk(x.Y)
			}
		case *ast.BasicLit:
			if x.Kind == token.STRING {
				if s, err := strconv.Unquote(x.Value); err == nil {
					lit = true
					return strings.ReplaceAll(s, "%", "%%")
				}
			}
		case *ast.ParenExpr:
			return walk(x.X)
		}
		return "%s"
	}
	f := walk(b)
	return f, lit
}

func markConcat(b *ast.BinaryExpr, skip map[ast.Node]bool) {
	ast.Inspect(b, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BasicLit:
			skip[x] = true
		case *ast.BinaryExpr:
			if x != b {
				skip[x] = true
			}
		}
		return true
	})
}
