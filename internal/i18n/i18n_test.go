package i18n

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Every message of one language exists in the other, is not empty, and uses the same
// template fields (a translation that drops {{.Name}} loses information).
func TestCatalogsAreCompleteInEveryLanguage(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	flat := map[Lang]map[string]string{}
	files, err := catalogFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range Langs {
		flat[l] = map[string]string{}
		for _, name := range files[l] {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := yaml.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			flatten("", raw, flat[l])
		}
	}
	fields := regexp.MustCompile(`\{\{\s*\.(\w+)`)
	for _, l := range Langs {
		for _, other := range Langs {
			if l == other {
				continue
			}
			for _, id := range c.IDs(l) {
				if !c.Has(other, id) {
					t.Errorf("%q is in the %s catalog but not in the %s one", id, l, other)
				}
			}
		}
	}
	for key, en := range flat[English] {
		fr, ok := flat[French][key]
		if !ok {
			continue // reported above (by message id)
		}
		if en == "" || fr == "" {
			t.Errorf("%q is empty in a catalog: en %q, fr %q", key, en, fr)
		}
		names := func(s string) []string {
			var out []string
			for _, m := range fields.FindAllStringSubmatch(s, -1) {
				if m[1] != "Count" && !slices.Contains(out, m[1]) {
					out = append(out, m[1])
				}
			}
			slices.Sort(out)
			return out
		}
		if a, b := names(en), names(fr); !slices.Equal(a, b) {
			t.Errorf("%q: the English text fills %v, the French one %v", key, a, b)
		}
	}
}

func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case string:
		out[prefix] = x
	}
}

func TestNegotiate(t *testing.T) {
	for _, c := range []struct {
		setting, accept string
		fallback, want  Lang
	}{
		{"", "fr-FR,fr;q=0.9,en;q=0.8", English, French},
		{"", "en-US,en;q=0.9", French, English},
		{"", "de-DE,de;q=0.9", French, French},       // no supported language: the federation's
		{"", "de-DE,fr;q=0.5", English, French},      // the best supported one
		{"en", "fr-FR", French, English},             // the person's setting wins
		{"fr", "", English, French},                  //
		{"es", "en", French, English},                // an unsupported setting is ignored
		{"", "", French, French},                     // nothing said: the federation's
		{"", "*;q=0.1,;;;garbage", English, English}, // malformed: the fallback
		{" FR ", "", English, French},                // settings are read leniently
		{"", "fr-CA", English, French},               // a regional variant matches its language
	} {
		if got := Negotiate(c.setting, c.accept, c.fallback); got != c.want {
			t.Errorf("Negotiate(%q, %q, %s) = %s, want %s", c.setting, c.accept, c.fallback, got, c.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		vars map[string]string
		want Lang
	}{
		{map[string]string{"LANG": "fr_FR.UTF-8"}, French},
		{map[string]string{"LANG": "fr_FR.UTF-8", "LC_ALL": "en_GB.UTF-8"}, English},
		{map[string]string{"LC_MESSAGES": "fr_FR@euro", "LANG": "en_US"}, French},
		{map[string]string{"LANG": "C.UTF-8"}, English},
		{map[string]string{}, English},
	} {
		if got := FromEnv(env(c.vars), English); got != c.want {
			t.Errorf("FromEnv(%v) = %s, want %s", c.vars, got, c.want)
		}
	}
}

func TestFormatsFollowTheLanguage(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	en, fr := c.Printer(English), c.Printer(French)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 13, 3, 0, 0, time.UTC)
	now := at.Add(3 * time.Hour)
	for _, c := range []struct{ name, got, want string }{
		{"date en", en.Date(at, paris), "Dec 5, 2026"},
		{"date fr", fr.Date(at, paris), "5 déc. 2026"},
		{"date fr in the reader's zone", fr.Date(time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), paris), "1 janv. 2027"},
		{"datetime en", en.DateTime(at, paris), "Dec 5, 2026, 14:03 CET"},
		{"datetime fr", fr.DateTime(at, paris), "5 déc. 2026 à 14:03 CET"},
		{"bytes en", en.Bytes(1_500_000_000), "1.5\u00a0GB"},
		{"bytes fr", fr.Bytes(1_500_000_000), "1,5\u00a0Go"},
		{"bytes fr small", fr.Bytes(512), "512\u00a0o"},
		{"bytes fr two decimals", fr.Bytes(333_333_333_333), "333,33\u00a0Go"},
		{"number en", en.Number(1234567), "1,234,567"},
		{"number fr", fr.Number(-1234567), "-1\u202f234\u202f567"},
		{"number fr small", fr.Number(999), "999"},
		{"percent en", en.Percent(0.425), "43%"},
		{"percent fr", fr.Percent(0.425), "43\u202f%"},
		{"relative en", en.Relative(now, at), "3\u00a0h ago"},
		{"relative fr", fr.Relative(now, at), "il y a 3\u00a0h"},
		{"relative fr days", fr.Relative(now.Add(72*time.Hour), at), "il y a 3\u00a0j"},
		{"relative fr future", fr.Relative(at, now), "dans 3\u00a0h"},
		{"relative fr now", fr.Relative(at, at), "à l’instant"},
		{"relative en now", en.Relative(at, at.Add(time.Second)), "just now"},
		{"message en", en.T("lang.fr"), "French"},
		{"message fr", fr.T("lang.fr"), "français"},
		{"missing message", fr.T("no.such.message"), "no.such.message"},
		{"nil printer", (*Printer)(nil).Bytes(1_500_000_000), "1.5\u00a0GB"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}

// French writes « numéro » one way: « nº » (the masculine ordinal indicator, U+00BA, the
// typographers' form; a screen reader says « numéro », where « n° » uses the degree sign)
// followed by a no-break space (docs/i18n.md).
func TestFrenchWritesNumeroOneWay(t *testing.T) {
	files, err := catalogFiles()
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`n°|N°|[nN]º[^\x{00a0}]`)
	n := 0
	for _, name := range files[French] {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(data), "nº\u00a0")
		for i, line := range strings.Split(string(data), "\n") {
			if bad.MatchString(line) {
				t.Errorf("%s:%d: write « nº » and a no-break space: %s", name, i+1, line)
			}
		}
	}
	if n == 0 {
		t.Error("no « nº » in the French catalogs: is the test still reading them?")
	}
}
