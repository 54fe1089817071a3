// Package apiref owns the API reference: the OpenAPI document read into what a person
// browses (operations by tag, their parameters, bodies and answers, the schemas), which the
// portal renders as a page from embedded assets alone, so that the footer's "API reference"
// is a page to read rather than raw JSON.
package apiref

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Doc is the reference of one OpenAPI document.
type Doc struct {
	Title, Version string
	Description    template.HTML
	Tags           []Tag
	Schemas        []Schema
}

// Tag is a section of the API: its operations in path order.
type Tag struct {
	Name        string
	Description template.HTML
	Ops         []Op
}

// Op is one operation (a method on a path).
type Op struct {
	Method, Path, ID, Summary string
	Description               template.HTML
	Public                    bool // no authentication needed
	Params                    []Field
	Body                      []Field
	BodyRef                   string // the schema the body is, when it is one of components
	Responses                 []Response
}

// Field is a parameter, or a property of a body or schema.
type Field struct {
	Name, In, Type, Constraints string
	Required                    bool
	Description                 template.HTML
}

// Response is one answer of an operation: its status code and the type of its body.
type Response struct{ Code, Description, Type string }

// Schema is a named schema of the document's components.
type Schema struct {
	Name        string
	Description template.HTML
	Fields      []Field
}

// methodOrder is the order operations of one path are shown in.
var methodOrder = []string{"get", "post", "put", "patch", "delete"}

// Read builds the reference of an OpenAPI 3.1 document (JSON).
func Read(doc []byte) (Doc, error) {
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		return Doc{}, fmt.Errorf("apiref: %w", err)
	}
	info := obj(d["info"])
	out := Doc{Title: str(info["title"]), Version: str(info["version"]), Description: prose(str(info["description"]))}
	tagIndex := map[string]int{}
	for _, t := range arr(d["tags"]) {
		tm := obj(t)
		tagIndex[str(tm["name"])] = len(out.Tags)
		out.Tags = append(out.Tags, Tag{Name: str(tm["name"]), Description: prose(str(tm["description"]))})
	}
	paths := obj(d["paths"])
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item := obj(paths[p])
		for _, m := range methodOrder {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := Op{Method: strings.ToUpper(m), Path: p, ID: str(op["operationId"]), Summary: str(op["summary"]),
				Description: prose(str(op["description"]))}
			if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
				o.Public = true
			}
			for _, prm := range append(arr(item["parameters"]), arr(op["parameters"])...) {
				pm := resolve(d, obj(prm))
				sch := resolve(d, obj(pm["schema"]))
				o.Params = append(o.Params, Field{Name: str(pm["name"]), In: str(pm["in"]), Type: typeOf(sch),
					Constraints: constraints(sch), Required: pm["required"] == true, Description: prose(str(pm["description"]))})
			}
			if rb := resolve(d, obj(op["requestBody"])); rb != nil {
				raw := obj(obj(obj(rb["content"])["application/json"])["schema"])
				o.BodyRef = refName(raw)
				o.Body = fieldsOf(d, resolve(d, raw))
			}
			responses := obj(op["responses"])
			for _, code := range slices.Sorted(maps.Keys(responses)) {
				raw := obj(responses[code])
				r := resolve(d, raw)
				sch := obj(obj(obj(r["content"])["application/json"])["schema"])
				o.Responses = append(o.Responses, Response{Code: code, Description: str(r["description"]), Type: typeOf(sch)})
			}
			tag := "other"
			if ts := arr(op["tags"]); len(ts) > 0 {
				tag = str(ts[0])
			}
			i, ok := tagIndex[tag]
			if !ok {
				i = len(out.Tags)
				tagIndex[tag] = i
				out.Tags = append(out.Tags, Tag{Name: tag})
			}
			out.Tags[i].Ops = append(out.Tags[i].Ops, o)
		}
	}
	schemas := obj(obj(d["components"])["schemas"])
	for _, name := range slices.Sorted(maps.Keys(schemas)) {
		s := obj(schemas[name])
		out.Schemas = append(out.Schemas, Schema{Name: name, Description: prose(str(s["description"])), Fields: fieldsOf(d, s)})
	}
	return out, nil
}

// fieldsOf lists the properties of an object schema (also those of allOf parts).
func fieldsOf(d, s map[string]any) []Field {
	var out []Field
	for _, part := range arr(s["allOf"]) {
		out = append(out, fieldsOf(d, resolve(d, obj(part)))...)
	}
	props := obj(s["properties"])
	required := map[string]bool{}
	for _, r := range arr(s["required"]) {
		required[str(r)] = true
	}
	for _, name := range slices.Sorted(maps.Keys(props)) {
		raw := obj(props[name])
		p := resolve(d, raw)
		out = append(out, Field{Name: name, Type: typeOf(raw), Constraints: constraints(p), Required: required[name],
			Description: prose(str(p["description"]))})
	}
	return out
}

// resolve follows a local $ref ("#/components/…") once; other maps are returned as they are.
func resolve(d, m map[string]any) map[string]any {
	ref := str(m["$ref"])
	if !strings.HasPrefix(ref, "#/") {
		return m
	}
	cur := any(d)
	for _, part := range strings.Split(ref[2:], "/") {
		cur = obj(cur)[part]
	}
	return obj(cur)
}

// refName is the component name a schema refers to, or "".
func refName(m map[string]any) string {
	ref := str(m["$ref"])
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

// typeOf describes a schema's type in a few words: "string", "integer or null",
// "array of Vault", "Vault".
func typeOf(m map[string]any) string {
	if n := refName(m); n != "" {
		return n
	}
	if parts := arr(m["oneOf"]); len(parts) > 0 {
		var names []string
		for _, p := range parts {
			names = append(names, typeOf(obj(p)))
		}
		return strings.Join(names, " or ")
	}
	var types []string
	switch t := m["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, str(x))
		}
	}
	for i, t := range types {
		if t == "array" {
			types[i] = "array of " + typeOf(obj(m["items"]))
		}
	}
	if len(types) == 0 {
		return "any"
	}
	return strings.Join(types, " or ")
}

// constraints lists a schema's limits: enum, lengths, ranges, format, default.
func constraints(m map[string]any) string {
	var c []string
	if e := arr(m["enum"]); len(e) > 0 {
		var vals []string
		for _, v := range e {
			vals = append(vals, fmt.Sprint(v))
		}
		c = append(c, "one of "+strings.Join(vals, ", "))
	}
	for _, k := range []string{"format", "minLength", "maxLength", "minimum", "maximum", "pattern", "default"} {
		if v, ok := m[k]; ok {
			c = append(c, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(c, " · ")
}

var (
	codeSpan  = regexp.MustCompile("`([^`]+)`")
	paragraph = regexp.MustCompile(`\n\s*\n`)
)

// prose renders a description's light Markdown: paragraphs and `code` spans; the rest is
// escaped text.
func prose(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, para := range paragraph.Split(s, -1) {
		esc := template.HTMLEscapeString(strings.Join(strings.Fields(para), " "))
		b.WriteString("<p>" + codeSpan.ReplaceAllString(esc, "<code>$1</code>") + "</p>")
	}
	return template.HTML(b.String())
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }
func str(v any) string         { s, _ := v.(string); return s }
