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

// A table says a status, a trigger and a mode in the session's language (« échoué »,
// « planifié », « aveugle »), and a test's reason through Retell; an unknown value stays
// as it is; JSON keeps the machine values.
func TestTablesSayMachineValuesAndReasonsInTheSessionsLanguage(t *testing.T) {
	t.Parallel()
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	reason := "the canary file \"canary.txt\" is not in snapshot 1a2b3c4d: put a file of that name holding the repository's canary token into the backed-up data"
	rows := []Object{
		{"id": json.Number("7"), "status": "failed", "trigger": "schedule", "mode": "blind", "reason": reason},
		{"id": json.Number("8"), "status": "brand_new", "trigger": "manual", "mode": "full", "reason": ""},
	}
	cols := []Column{{"ID", "id"}, {"STATUS", "status"}, {"TRIGGER", "trigger"}, {"MODE", "mode"}, {"REASON", "reason"}}
	var fr, en, js bytes.Buffer
	if err := Render(&fr, c.Printer(i18n.French), "table", rows, cols); err != nil {
		t.Fatal(err)
	}
	if err := Render(&en, c.Printer(i18n.English), "table", rows, cols); err != nil {
		t.Fatal(err)
	}
	if err := Render(&js, c.Printer(i18n.French), "json", rows, cols); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"échoué", "planifié", "aveugle", "manuel", "complet", "brand_new",
		"le fichier canari \"canary.txt\" n’est pas dans l’instantané 1a2b3c4d"} {
		if !strings.Contains(fr.String(), want) {
			t.Errorf("the French table lacks %q:\n%s", want, fr.String())
		}
	}
	for _, english := range []string{"failed", "schedule", "blind", "manual", "is not in snapshot"} {
		if strings.Contains(fr.String(), english) {
			t.Errorf("the French table still says %q:\n%s", english, fr.String())
		}
	}
	for _, want := range []string{"failed", "schedule", "blind", "is not in snapshot"} {
		if !strings.Contains(en.String(), want) {
			t.Errorf("the English table lacks %q:\n%s", want, en.String())
		}
		if !strings.Contains(js.String(), want) {
			t.Errorf("the JSON lacks the machine value %q:\n%s", want, js.String())
		}
	}
}
