package problem_test

import (
	"testing"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/problem"
)

// Localize says a message in the printer's language: the translated format applied to the
// same arguments (Words translated, names left alone), a literal sentence looked up as it
// is, English when the catalog has no translation or there is no printer.
func TestLocalize(t *testing.T) {
	t.Parallel()
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	fr, en := cat.Printer(i18n.French), cat.Printer(i18n.English)
	e := problem.Invalid("quota_bytes", "must be an integer from %d to %d", 1, 10)
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"format fr", problem.Localize(fr, e.Problem, e.Format, e.Args), "doit être un entier de 1 à 10"},
		{"format en", problem.Localize(en, e.Problem, e.Format, e.Args), "must be an integer from 1 to 10"},
		{"no printer", problem.Localize(nil, e.Problem, e.Format, e.Args), "must be an integer from 1 to 10"},
		{"literal fr", problem.Localize(fr, "is required", "", nil), "est obligatoire"},
		{"words fr", problem.Localize(fr, "", "must be %s, not %s", []any{problem.Word("a string"), "a thing"}), "doit être une chaîne, pas a thing"},
		{"unknown fr", problem.Localize(fr, "", "no such sentence %d", []any{3}), "no such sentence 3"},
		{"unknown literal fr", problem.Localize(fr, "no such sentence", "", nil), "no such sentence"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if e.Problem != "must be an integer from 1 to 10" || e.Error() != "quota_bytes: must be an integer from 1 to 10" {
		t.Errorf("the English error changed: %q", e.Error())
	}
}
