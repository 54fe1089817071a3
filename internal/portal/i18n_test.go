package portal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
	"unicode"

	"golang.org/x/net/html"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/web"
)

// Words a template may show as they are, in every language, and why.
var untranslatedWords = map[string]string{
	"Archipelago": "the product's name",
	"CHATONS":     "the collective's name",
	"Garage":      "the storage software's name",
	"restic":      "the backup program's name",
	"S3":          "the storage protocol's name",
	"English":     "a language picker names each language in itself",
	"Français":    "a language picker names each language in itself",
}

// Elements whose content is code or data, not prose: commands people copy, scripts, styles.
var codeElements = []string{"code", "pre", "kbd", "samp", "script", "style"}

// action matches a template action; the literal test replaces each with a marker.
var action = regexp.MustCompile(`(?s)\{\{.*?\}\}`)

const marker = "\x01"

// TestTemplatesHaveNoLiteralText: every text a person reads on a page — text between tags,
// and the title, placeholder, aria-label, alt and data-label (a table cell's heading on a
// narrow screen) attributes and the value of buttons — comes
// from the catalog (issue 18): a template that writes "Vaults" instead of
// {{t "portal.nav.vaults"}} shows English to a French reader.
func TestTemplatesHaveNoLiteralText(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatal(names, err)
	}
	for _, name := range names {
		src, err := fs.ReadFile(web.Templates, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, lit := range literalTexts(string(src)) {
			t.Errorf("%s: literal text %q is not in the catalog (use {{t \"portal.…\"}})", path.Base(name), lit)
		}
	}
}

// literalTexts are the user-visible texts of a template's source that are not template
// actions nor allowed words.
func literalTexts(src string) []string {
	z := html.NewTokenizer(strings.NewReader(action.ReplaceAllString(src, marker)))
	var out []string
	depth := map[string]int{} // open code elements
	inCode := func() bool {
		for _, n := range depth {
			if n > 0 {
				return true
			}
		}
		return false
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			tok := z.Token()
			if slices.Contains(codeElements, tok.Data) {
				if tt == html.StartTagToken {
					depth[tok.Data]++
				} else if tt == html.EndTagToken {
					depth[tok.Data]--
				}
			}
			if tt == html.EndTagToken {
				continue
			}
			button := tok.Data == "button" || tok.Data == "input" && slices.ContainsFunc(tok.Attr, func(a html.Attribute) bool {
				return a.Key == "type" && (a.Val == "submit" || a.Val == "button" || a.Val == "reset")
			})
			for _, a := range tok.Attr {
				if a.Key == "title" || a.Key == "placeholder" || a.Key == "aria-label" || a.Key == "alt" || a.Key == "data-label" || (a.Key == "value" && button) {
					if s := prose(a.Val); s != "" {
						out = append(out, a.Key+"="+s)
					}
				}
			}
		case html.TextToken:
			if inCode() {
				continue
			}
			if s := prose(string(z.Text())); s != "" {
				out = append(out, s)
			}
		}
	}
}

// prose is what of s a person reads as words: s without template actions, allowed words,
// and anything that is not a letter; "" when no word is left.
func prose(s string) string {
	var words []string
	for _, w := range strings.FieldsFunc(strings.ReplaceAll(s, marker, " "), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\'' && r != '’'
	}) {
		w = strings.Trim(w, "'’")
		if w == "" || untranslatedWords[w] != "" {
			continue
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(s, marker, "…")), " ")
}

// TestLiteralTextDetection: the literal test sees text, labels and titles, and lets
// actions, code, symbols and allowed names through.
func TestLiteralTextDetection(t *testing.T) {
	t.Parallel()
	for src, want := range map[string][]string{
		`<h1>Vaults</h1>`:                                    {"Vaults"},
		`<h1>{{t "portal.nav.vaults"}}</h1>`:                 nil,
		`<button title="Delete it">{{t "x"}}</button>`:       {"title=Delete it"},
		`<input type="submit" value="Save">`:                 {"value=Save"},
		`<input name="x" value="Save">`:                      nil, // a field's value is data
		`<a aria-label="{{t "x"}} {{.Name}}">×</a> · 42 % →`: nil,
		`<code>restic -r s3:… snapshots</code>`:              nil,
		`<p>Archipelago {{.Version}} · restic</p>`:           nil,
		`<p>{{if .X}}yes{{end}}</p>`:                         {"…yes…"},
	} {
		if got := literalTexts(src); !slices.Equal(got, want) {
			t.Errorf("literalTexts(%s) = %q, want %q", src, got, want)
		}
	}
}

// TestEveryTextKeyIsInTheCatalog: every catalog key a template or the portal's Go code uses
// exists in every language (with internal/i18n's completeness test: no text goes
// untranslated, and none shows as its bare key).
func TestEveryTextKeyIsInTheCatalog(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{} // key → where
	// Templates: {{t "key" …}} and {{n "key" …}}.
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		src, err := fs.ReadFile(web.Templates, name)
		if err != nil {
			t.Fatal(err)
		}
		tr := parse.New(name)
		tr.Mode = parse.SkipFuncCheck
		trees := map[string]*parse.Tree{}
		if _, err := tr.Parse(string(src), "{{", "}}", trees); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, tr := range trees {
			walkKeys(tr.Root, func(key string) { used[key] = path.Base(name) })
		}
	}
	// Go code: every string literal that is a whole portal key.
	keyLit := regexp.MustCompile(`^portal\.[a-z0-9_.-]*[a-z0-9_-]$`)
	fset := token.NewFileSet()
	files, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, pkg := range files {
		for fname, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.BasicLit:
					if s, err := strconv.Unquote(x.Value); err == nil && x.Kind == token.STRING && keyLit.MatchString(s) {
						used[s] = fname
					}
				case *ast.CompositeLit: // confirmAsk{Kind: "…"}
					if id, ok := x.Type.(*ast.Ident); ok && id.Name == "confirmAsk" {
						for _, e := range x.Elts {
							if kv, ok := e.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Kind" {
								if lit, ok := kv.Value.(*ast.BasicLit); ok {
									s, _ := strconv.Unquote(lit.Value)
									kinds[s] = true
									if !slices.Contains(confirmKinds, s) {
										t.Errorf("%s: confirmation kind %q is not in confirmKinds", fname, s)
									}
								}
							}
						}
					}
				}
				return true
			})
		}
	}
	if len(kinds) == 0 {
		t.Fatal("no confirmation kinds found in the Go code")
	}
	// Keys built at run time.
	for _, k := range confirmKinds {
		for _, part := range []string{"title", "lead", "button"} {
			used["portal.confirm."+k+"."+part] = "confirm.go"
		}
	}
	for _, role := range []identity.Role{identity.RoleAdmin, identity.RoleViewer} {
		used["portal.role."+string(role)] = "account.html"
	}
	for _, st := range []string{islands.StatusUnknown, islands.StatusHealthy, islands.StatusDegraded, islands.StatusUnavailable, islands.StatusUnreachable} {
		used["portal.islands.status."+st] = "islands.go"
	}
	if len(used) < 50 {
		t.Fatalf("only %d keys found: the scan is broken", len(used))
	}
	for key, where := range used {
		for _, l := range i18n.Langs {
			if !cat.Has(l, key) {
				t.Errorf("%s uses %q, missing from the %s catalog", where, key, l)
			}
		}
	}
}

// walkKeys calls found with the key of every t and n call under n.
func walkKeys(n parse.Node, found func(string)) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			walkKeys(c, found)
		}
	case *parse.ActionNode:
		walkKeys(x.Pipe, found)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			walkKeys(c, found)
		}
	case *parse.CommandNode:
		if len(x.Args) >= 2 {
			if id, ok := x.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "t" || id.Ident == "n") {
				if s, ok := x.Args[1].(*parse.StringNode); ok {
					found(s.Text)
				}
			}
		}
		for _, a := range x.Args {
			walkKeys(a, found)
		}
	case *parse.IfNode:
		walkKeys(x.Pipe, found)
		walkKeys(x.List, found)
		walkKeys(x.ElseList, found)
	case *parse.RangeNode:
		walkKeys(x.Pipe, found)
		walkKeys(x.List, found)
		walkKeys(x.ElseList, found)
	case *parse.WithNode:
		walkKeys(x.Pipe, found)
		walkKeys(x.List, found)
		walkKeys(x.ElseList, found)
	case *parse.TemplateNode:
		walkKeys(x.Pipe, found)
	}
}
