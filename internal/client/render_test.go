package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/i18n"
)

// Tables write sizes and counts the session's language's way, like the portal (« 1,5 Go »,
// « 12 345 »); ids are not grouped; JSON, which scripts read, is the same in every language.
func TestTablesWriteSizesAndNumbersInTheSessionsLanguage(t *testing.T) {
	t.Parallel()
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	rows := []Object{{"id": json.Number("12345"), "name": "photos", "usage_bytes": json.Number("1500000000"), "usage_objects": json.Number("12345")}}
	cols := []Column{{"ID", "id"}, {"NAME", "name"}, {"USAGE", "usage_bytes"}, {"OBJECTS", "usage_objects"}}
	render := func(p *i18n.Printer, format string, v any, cols []Column) string {
		var b bytes.Buffer
		if err := Render(&b, p, format, v, cols); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	fr := render(c.Printer(i18n.French), "table", rows, cols)
	if !strings.Contains(fr, "1,5\u00a0Go") || !strings.Contains(fr, "12\u202f345") || !strings.Contains(fr, "12345 ") || strings.Contains(fr, "GB") {
		t.Errorf("French table:\n%s", fr)
	}
	if d := render(c.Printer(i18n.French), "table", rows[0], nil); !strings.Contains(d, "1,5\u00a0Go") {
		t.Errorf("French describe:\n%s", d)
	}
	en := render(c.Printer(i18n.English), "table", rows, cols)
	if !strings.Contains(en, "1.5 GB") || !strings.Contains(en, "12,345") {
		t.Errorf("English table:\n%s", en)
	}
	if a, b := render(c.Printer(i18n.French), "json", rows, nil), render(nil, "json", rows, nil); a != b {
		t.Errorf("JSON depends on the language:\n%s\n%s", a, b)
	}
}
