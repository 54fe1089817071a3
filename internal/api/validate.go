package api

import (
	"bytes"
	"encoding/json"

	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/problem"
)

// maxEcho bounds how much of a refused input a message repeats.
const maxEcho = 100

// bodySchemas holds the request body schema of every POST, PUT and PATCH operation of the
// OpenAPI document, so that request bodies are checked against the document itself: types,
// maxLength (every string property has one), date-times and unknown properties. The domain
// still validates meaning (ranges, formats of names); this layer refuses what the contract
// excludes before a handler runs, naming the field.
type bodySchemas struct {
	root   map[string]any // the whole document, for $ref
	routes []bodyRoute
}

type bodyRoute struct {
	method   string
	segments []string // "{…}" matches one segment
	schema   map[string]any
}

func newBodySchemas(doc []byte) (*bodySchemas, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	b := &bodySchemas{root: root}
	paths, _ := root["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for _, method := range []string{"post", "put", "patch"} {
			op, _ := ops[method].(map[string]any)
			body := dig(op, "requestBody")
			if body != nil {
				body = b.resolve(body) // a requestBody may be a $ref to components/requestBodies
			}
			schema := dig(body, "content", "application/json", "schema")
			if schema == nil {
				continue
			}
			b.routes = append(b.routes, bodyRoute{method: strings.ToUpper(method),
				segments: strings.Split(strings.Trim(path, "/"), "/"), schema: schema})
		}
	}
	// Literal segments win over parameters: sort routes by how many literals they hold.
	slices.SortStableFunc(b.routes, func(x, y bodyRoute) int { return literals(y.segments) - literals(x.segments) })
	return b, nil
}

func literals(segs []string) int {
	n := 0
	for _, s := range segs {
		if !strings.HasPrefix(s, "{") {
			n++
		}
	}
	return n
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		if m == nil {
			return nil
		}
		m, _ = m[k].(map[string]any)
	}
	return m
}

// schemaFor returns the body schema of method and path (nil when the document has none).
func (b *bodySchemas) schemaFor(method, path string) map[string]any {
	segs := strings.Split(strings.Trim(path, "/"), "/")
outer:
	for _, rt := range b.routes {
		if rt.method != method || len(rt.segments) != len(segs) {
			continue
		}
		for i, s := range rt.segments {
			if !strings.HasPrefix(s, "{") && s != segs[i] || segs[i] == "" {
				continue outer
			}
		}
		return rt.schema
	}
	return nil
}

// CheckBody is middleware checking JSON request bodies of POST, PUT and PATCH against
// the OpenAPI document (see bodySchemas); a body that breaks it is answered 400 naming the
// field, before any handler runs. Bodies that are not JSON are left to Decode.
func (a *API) CheckBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		schema := a.bodies.schemaFor(r.Method, r.URL.Path)
		if schema == nil {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			a.Fail(w, r, decodeError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		if len(bytes.TrimSpace(raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var v any
			if dec.Decode(&v) == nil { // malformed JSON is Decode's to explain
				if e := a.bodies.check("", schema, v); e != nil {
					a.Fail(w, r, e)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (b *bodySchemas) resolve(s map[string]any) map[string]any {
	for range 10 {
		ref, ok := s["$ref"].(string)
		if !ok {
			break
		}
		var next map[string]any = b.root
		for _, k := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			next = dig(next, k)
		}
		if next == nil {
			break
		}
		s = next
	}
	return s
}

// flat merges allOf into one schema (properties united; closed when any part is closed).
func (b *bodySchemas) flat(s map[string]any) map[string]any {
	s = b.resolve(s)
	parts, ok := s["allOf"].([]any)
	if !ok {
		return s
	}
	out := map[string]any{}
	props := map[string]any{}
	for k, v := range s {
		if k != "allOf" {
			out[k] = v
		}
	}
	if p, ok := s["properties"].(map[string]any); ok {
		for k, v := range p {
			props[k] = v
		}
	}
	for _, part := range parts {
		pm, _ := part.(map[string]any)
		pm = b.flat(pm)
		for k, v := range pm {
			switch k {
			case "properties":
				for pk, pv := range v.(map[string]any) {
					props[pk] = pv
				}
			case "additionalProperties":
				if v == false {
					out[k] = false
				}
			default:
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	out["properties"] = props
	return out
}

func types(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if str, ok := x.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

func join(field, name string) string {
	if field == "" {
		return name
	}
	return field + "." + name
}

// check validates v against schema s; field is the dotted path of v ("" for the body).
func (b *bodySchemas) check(field string, s map[string]any, v any) *Error {
	s = b.flat(s)
	ts := types(s)
	allows := func(t string) bool { return len(ts) == 0 || slices.Contains(ts, t) }
	if v == nil {
		return nil // null: absent, for the handler to judge
	}
	switch x := v.(type) {
	case string:
		if !allows("string") {
			return typeError(field, ts, "a string")
		}
		if max, ok := s["maxLength"].(float64); ok {
			if n := utf8.RuneCountInString(x); n > int(max) {
				return Invalid(field, "must be at most %d characters long (this one has %d)", int(max), n)
			}
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, x); err != nil {
				return Invalid(field, "must be a date and time in RFC 3339 form, such as 2026-01-02T15:04:05Z (not %q)", problem.Truncate(x, 40))
			}
		}
	case json.Number:
		switch {
		case allows("integer") && !slices.Contains(ts, "number"):
			if _, err := strconv.ParseInt(x.String(), 10, 64); err != nil {
				return Invalid(field, "must be a whole number between -9223372036854775808 and 9223372036854775807, written without a fraction or exponent")
			}
		case allows("number"):
		default:
			return typeError(field, ts, "a number")
		}
	case bool:
		if !allows("boolean") {
			return typeError(field, ts, "true or false")
		}
	case []any:
		if !allows("array") {
			return typeError(field, ts, "an array")
		}
		if items, ok := s["items"].(map[string]any); ok {
			for _, it := range x {
				if e := b.check(field, items, it); e != nil {
					return e
				}
			}
		}
	case map[string]any:
		if !allows("object") {
			return typeError(field, ts, "an object")
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					name := problem.Truncate(k, maxEcho) // the key alone, as the JSON decoder names it
					return &Error{Status: http.StatusBadRequest, Code: CodeUnknownField, Field: name,
						Message: fmt.Sprintf("unknown field %q", name), Format: "unknown field %q", Args: []any{name}}
				}
				if ap, ok := s["additionalProperties"].(map[string]any); ok {
					ps = ap
				} else {
					continue
				}
			}
			if e := b.check(join(field, k), ps, x[k]); e != nil {
				return e
			}
		}
	}
	return nil
}

// typeError refuses a value of the wrong JSON type, saying what is expected.
func typeError(field string, want []string, got string) *Error {
	var names []string
	for _, t := range want {
		if t != "null" {
			names = append(names, jsonKind(t))
		}
	}
	var what any = strings.Join(names, " or ") // several kinds stay in English
	if len(names) == 1 {
		what = problem.Word(names[0])
	}
	if field == "" {
		e := Invalid("", "the body must be %s, not %s", what, problem.Word(got))
		e.Code = CodeMalformedJSON
		return e
	}
	return Invalid(field, "must be %s, not %s", what, problem.Word(got))
}
