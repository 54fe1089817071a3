package portal

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/verify"
	"github.com/chatons/archipelago/web"
)

// The portal's scripts (a copy button's answer, a running test's live progress) write the
// page's words (#page-words, clock.UI), never their own: a French page stays French while
// a test runs. Their string literals hold no English word, and the words a French page
// hands over are French — sizes included (« 1,5 Go »).
func TestScriptsTakeTheirWordsFromThePage(t *testing.T) {
	t.Parallel()
	layout, err := fs.ReadFile(web.Templates, "templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(layout), `id="page-words">{{.Clock.UI}}</script>`) {
		t.Fatal("the layout does not hand the page's words to the scripts (#page-words)")
	}
	literal := regexp.MustCompile(`"(?:[^"\\]|\\.)*"|` + "`[^`]*`")
	english := regexp.MustCompile(`\b(Copy|Copied|Selected|press|about|left|of|restoring|passed|failed|running)\b`)
	for _, name := range []string{"static/app.js", "static/restore.js"} {
		js, err := fs.ReadFile(web.Static, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range literal.FindAllString(string(js), -1) {
			if w := english.FindString(l); w != "" {
				t.Errorf("%s says %q itself (%s): take it from #page-words", name, w, l)
			}
		}
	}
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	fr := newClockIn(now, time.UTC, c.Printer(i18n.French)).UI()
	en := newClockIn(now, time.UTC, c.Printer(i18n.English)).UI()
	if fr["copied"] != "Copié" || en["copied"] != "Copied" {
		t.Errorf("copied: %q / %q", fr["copied"], en["copied"])
	}
	if fr["of"] != "{a} sur {b}" || !strings.Contains(fr["eta_min"].(string), "{n}") || fr["decimal"] != "," ||
		strings.Join(fr["units"].([]string), " ") != "o ko Mo Go To" {
		t.Errorf("French progress words: %v", fr)
	}
	values := fr["values"].(map[string]string)
	if values["passed"] != "réussi" || values[verify.LevelSample] == verify.LevelSample || values["running"] == "running" {
		t.Errorf("French values: %v", values)
	}
	for _, ph := range verify.Phases() {
		got := fr["phases"].(map[string]string)[ph]
		if got == "" || (got == ph && ph != "restic check") {
			t.Errorf("the phase %q has no French words (%q): add %s to portal.fr.yaml", ph, got, phaseKey(ph))
		}
	}
}
