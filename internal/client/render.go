package client

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/quota"
)

// Formats are the output formats of -o.
var Formats = []string{"table", "json", "yaml"}

// Column is one column of a table: a header and the object's field (dotted for nested
// objects, e.g. "last.status"). Fields ending in _bytes print as SI sizes, *_at as times.
type Column struct {
	Header string
	Field  string
}

// Render writes v (an Object or a []Object) in format. For tables, columns choose what is
// shown; an Object without columns is printed as one "field: value" line per field. Tables
// write sizes and counts in p's language (« 1,5 Go », « 12 345 »; a nil p is English, whose
// sizes keep the API's "1.5 GB"); JSON and YAML, which scripts read, never change.
func Render(w io.Writer, p *i18n.Printer, format string, v any, columns []Column) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(normalize(v))
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(normalize(v)); err != nil {
			return err
		}
		return enc.Close()
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		switch t := v.(type) {
		case []Object:
			hdr := make([]string, len(columns))
			for i, c := range columns {
				hdr[i] = c.Header
			}
			fmt.Fprintln(tw, strings.Join(hdr, "\t"))
			for _, o := range t {
				row := make([]string, len(columns))
				for i, c := range columns {
					row[i] = cell(p, c.Field, Field(o, c.Field))
				}
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
		case Object:
			describe(tw, p, "", t)
		default:
			return fmt.Errorf("cannot print %T as a table", v)
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q (want %s)", format, strings.Join(Formats, ", "))
}

// describe prints an object's fields, sorted, nested objects indented.
func describe(w io.Writer, p *i18n.Printer, indent string, o Object) {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := o[k].(type) {
		case map[string]any:
			fmt.Fprintf(w, "%s%s:\n", indent, k)
			describe(w, p, indent+"  ", v)
		case []any:
			if len(v) == 0 {
				fmt.Fprintf(w, "%s%s:\t[]\n", indent, k)
				continue
			}
			fmt.Fprintf(w, "%s%s:\n", indent, k)
			for i, e := range v {
				if m, ok := e.(map[string]any); ok {
					fmt.Fprintf(w, "%s  [%d]\n", indent, i)
					describe(w, p, indent+"    ", m)
				} else {
					fmt.Fprintf(w, "%s  - %s\n", indent, cell(p, "", e))
				}
			}
		default:
			fmt.Fprintf(w, "%s%s:\t%s\n", indent, k, cell(p, k, v))
		}
	}
}

// Field reads a dotted field of an object; nil when absent.
func Field(o Object, path string) any {
	var cur any = o
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// countFields are the suffixes of the fields that hold counts, grouped the language's way
// in tables (ids, ports and sequence numbers are not).
var countFields = []string{"_objects", "_count", "_files", "objects", "files", "count"}

// machineFields are the columns holding a machine value, said in words in a table
// (client.value.<field>.<value>; an unknown value is shown as it is).
var machineFields = map[string]bool{"status": true, "trigger": true, "mode": true}

// cell formats one value for a table in p's language.
func cell(p *i18n.Printer, field string, v any) string {
	switch t := v.(type) {
	case nil:
		return "-"
	case json.Number:
		if strings.HasSuffix(field, "_bytes") {
			if n, err := t.Int64(); err == nil {
				if p.Lang() == i18n.English {
					return quota.Bytes(n) // as the API's texts and the portal write it
				}
				return p.Bytes(n)
			}
		}
		for _, suffix := range countFields {
			if n, err := t.Int64(); err == nil && strings.HasSuffix(field, suffix) {
				return p.Number(n)
			}
		}
		return t.String()
	case string:
		if strings.HasSuffix(field, "_at") {
			if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
				return ts.UTC().Format("2006-01-02 15:04Z")
			}
		}
		if t == "" {
			return "-"
		}
		if machineFields[field] {
			id := "client.value." + field + "." + t
			if w := p.T(id); w != id {
				return w // a status, trigger or mode in words
			}
		}
		if field == "reason" {
			t = p.Retell(t) // a test's reason, stored in English
		}
		return strings.ReplaceAll(t, "\n", " ")
	case bool:
		return strconv.FormatBool(t)
	default:
		b, _ := json.Marshal(t)
		return string(b)
	}
}

// normalize turns json.Number into int64/float64 so YAML prints numbers, not strings.
func normalize(v any) any {
	switch t := v.(type) {
	case []Object:
		out := make([]any, len(t))
		for i, o := range t {
			out[i] = normalize(o)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	}
	return v
}
