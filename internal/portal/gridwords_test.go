package portal

import (
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/verify"
)

// A grid cell's hover title and screen-reader words put the repository's name before its
// state the language's way: "web: passed", « web : réussi » (French's narrow space before
// the colon).
func TestGridCellTitlesSpeakTheLanguage(t *testing.T) {
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	cells := []verify.GridCell{{ID: 1, Name: "web", LastStatus: "passed"}}
	for lang, want := range map[i18n.Lang]string{i18n.English: "web: passed", i18n.French: "web\u202f: réussi"} {
		pr := c.Printer(lang)
		v := gridCells(pr, newClockIn(now, time.UTC, pr), cells)[0]
		if !strings.HasPrefix(v.Title, want) || !strings.HasPrefix(v.Says, want) {
			t.Errorf("%s: title %q, says %q, want them to begin %q", lang, v.Title, v.Says, want)
		}
	}
}

// A cell's hover title ends with the latest test's reason, stored in English and said in
// the page's language.
func TestGridCellReasonsSpeakTheLanguage(t *testing.T) {
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	cells := []verify.GridCell{{ID: 1, Name: "web", LastStatus: "passed", Reason: "every level passed"}}
	for lang, want := range map[i18n.Lang]string{i18n.English: "every level passed", i18n.French: "tous les niveaux ont réussi"} {
		pr := c.Printer(lang)
		if v := gridCells(pr, newClockIn(now, time.UTC, pr), cells)[0]; !strings.HasSuffix(v.Title, "— "+want) {
			t.Errorf("%s: title %q, want it to end with %q", lang, v.Title, want)
		}
	}
}
