package api_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/apptest"
)

func loadSchemaDoc(t *testing.T) api.SchemaDoc {
	t.Helper()
	d, err := api.LoadSchemaDoc()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bodyOperation is one POST, PUT or PATCH operation with a JSON body.
type bodyOperation struct {
	method, path string
	schema       map[string]any
}

func bodyOperations(d api.SchemaDoc) []bodyOperation {
	var ops []bodyOperation
	for path, item := range d.Get(d.Root(), "paths") {
		for _, m := range []string{"post", "put", "patch"} {
			body := d.Get(item.(map[string]any), m, "requestBody")
			if body != nil {
				body = d.Flat(body) // a requestBody may be a $ref to components/requestBodies
			}
			s := d.Get(body, "content", "application/json", "schema")
			if s != nil {
				ops = append(ops, bodyOperation{strings.ToUpper(m), path, s})
			}
		}
	}
	slices.SortFunc(ops, func(a, b bodyOperation) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	return ops
}

// property is a property of a request body: its dotted path and its schema.
type property struct {
	path   []string
	schema map[string]any
}

func properties(d api.SchemaDoc, prefix []string, s map[string]any) []property {
	var out []property
	s = d.Flat(s)
	for name, ps := range d.Get(s, "properties") {
		p := property{append(slices.Clone(prefix), name), d.Flat(ps.(map[string]any))}
		out = append(out, p)
		if slices.Contains(api.SchemaTypes(p.schema), "object") {
			out = append(out, properties(d, p.path, p.schema)...)
		}
	}
	slices.SortFunc(out, func(a, b property) int { return strings.Compare(strings.Join(a.path, "."), strings.Join(b.path, ".")) })
	return out
}

// nest wraps v in the objects of path: ["a","b"] → {"a":{"b":v}}.
func nest(path []string, v any) map[string]any {
	out := map[string]any{path[len(path)-1]: v}
	for i := len(path) - 2; i >= 0; i-- {
		out = map[string]any{path[i]: out}
	}
	return out
}

// wrongValue is a JSON value of a type the schema does not allow (nil when it allows all).
func wrongValue(types []string) any {
	for _, v := range []any{"not-the-right-type", 12345, true, []any{1}, map[string]any{"x": 1}} {
		kind := map[string]string{"string": "string", "int": "integer", "bool": "boolean"}[fmt.Sprintf("%T", v)]
		switch v.(type) {
		case []any:
			kind = "array"
		case map[string]any:
			kind = "object"
		}
		if !slices.Contains(types, kind) && !(kind == "integer" && slices.Contains(types, "number")) {
			return v
		}
	}
	return nil
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryStringPropertyHasAMaxLength: the document bounds every string it describes.
func TestEveryStringPropertyHasAMaxLength(t *testing.T) {
	t.Parallel()
	d := loadSchemaDoc(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if slices.Contains(api.SchemaTypes(x), "string") && x["maxLength"] == nil {
				t.Errorf("%s: a string without maxLength", where)
			}
			for k, c := range x {
				walk(where+"/"+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s/%d", where, i), c)
			}
		}
	}
	walk("#", d.Root())
}

// TestEveryBodyPropertyIsCheckedAgainstTheDocument walks every POST, PUT and PATCH
// operation of the OpenAPI document and sends, for every property of its body, a value of
// the wrong type, a malformed date-time, a string one character longer than its maxLength,
// and an unknown property: each must be answered 4xx in the error shape naming the field,
// with a message that does not echo more than 100 characters of the input.
func TestEveryBodyPropertyIsCheckedAgainstTheDocument(t *testing.T) {
	env, f := apptest.Parallel(t)
	d := loadSchemaDoc(t)
	ops := bodyOperations(d)
	if len(ops) < 20 {
		t.Fatalf("only %d operations with a body: is the document read?", len(ops))
	}
	for _, op := range ops {
		path := pathParam.ReplaceAllString(op.path, "1")
		send := func(what, field string, body any) {
			t.Helper()
			res := env.Do(apptest.Req{Method: op.method, Path: path, Token: f.FedAdmin.Access, Body: body})
			if res.Status < 400 || res.Status > 499 {
				t.Errorf("%s %s, %s: status %d, want 4xx\n%.300s", op.method, op.path, what, res.Status, res.Body)
				return
			}
			if got := res.ErrorField(); got != field {
				t.Errorf("%s %s, %s: error names field %q, want %q\n%.300s", op.method, op.path, what, got, field, res.Body)
			}
			var e struct{ Error struct{ Message string } }
			res.Decode(t, &e)
			if utf8.RuneCountInString(e.Error.Message) > 300 {
				t.Errorf("%s %s, %s: a %d-character message echoes the input", op.method, op.path, what, len(e.Error.Message))
			}
		}
		if d.Flat(op.schema)["additionalProperties"] != false {
			t.Errorf("%s %s: the body schema does not say additionalProperties: false", op.method, op.path)
		}
		send("an unknown property", "no_such_property", map[string]any{"no_such_property": 1})
		for _, p := range properties(d, nil, op.schema) {
			field := strings.Join(p.path, ".")
			types := api.SchemaTypes(p.schema)
			if v := wrongValue(types); v != nil {
				send(fmt.Sprintf("%s as %T", field, v), field, nest(p.path, v))
			}
			if p.schema["format"] == "date-time" {
				send(field+" not a date", field, nest(p.path, "next tuesday"))
			}
			if max, ok := p.schema["maxLength"].(float64); ok {
				send(field+" too long", field, nest(p.path, strings.Repeat("é", int(max)+1)))
			}
			if slices.Contains(types, "integer") {
				send(field+" in exponent form", field, nest(p.path, json.RawMessage("9e+18")))
			}
		}
	}
}
