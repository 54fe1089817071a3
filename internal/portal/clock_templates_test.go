package portal

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/web"
)

// clockExempt are the only places a template may format a time itself or say "UTC": each
// with why the viewer's clock ($.Clock, when.go) is not the right tool there.
var clockExempt = []struct{ file, fragment, reason string }{
	{"quota.html", `(optional; at 00:00 UTC that day)`,
		"says how the form's date is read (QuotaGrantCreate takes the day at 00:00 UTC), not a moment shown"},
	{"restore_repository.html", `a cron expression in UTC`,
		"test schedules are evaluated in UTC (internal/verify): the hint says how to write one, it shows no moment"},
}

// Every moment a page shows goes through the viewer's clock: relative, in the viewer's time
// zone, exact on hover. A template that formats a time itself or hard-codes " UTC" fails
// here unless clockExempt says why.
func TestTemplatesShowMomentsThroughTheClock(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	banned := regexp.MustCompile(`\.Format\b| UTC\b`)
	for _, name := range names {
		b, err := fs.ReadFile(web.Templates, name)
		if err != nil {
			t.Fatal(err)
		}
		src, base := string(b), path.Base(name)
		var covered [][2]int
		for _, e := range clockExempt {
			if e.file != base {
				continue
			}
			for from := 0; ; {
				i := strings.Index(src[from:], e.fragment)
				if i < 0 {
					break
				}
				covered = append(covered, [2]int{from + i, from + i + len(e.fragment)})
				from += i + len(e.fragment)
			}
		}
	next:
		for _, m := range banned.FindAllStringIndex(src, -1) {
			for _, c := range covered {
				if m[0] >= c[0] && m[1] <= c[1] {
					continue next
				}
			}
			line := strings.Count(src[:m[0]], "\n") + 1
			lines := strings.Split(src, "\n")
			t.Errorf("%s:%d shows a moment without the clock (%q): use $.Clock.Ago or $.Clock.Exact, or add a reason to clockExempt\n%s",
				base, line, src[m[0]:m[1]], strings.TrimSpace(lines[line-1]))
		}
	}
}

// The live refresh (web/static/clock.js) says relative times in the page's words (when.go's
// clockWords, handed over in #clock-words), never in its own: a translated page stays
// translated when its times are refreshed.
func TestClockScriptHasNoWordsOfItsOwn(t *testing.T) {
	t.Parallel()
	js, err := fs.ReadFile(web.Static, "static/clock.js")
	if err != nil {
		t.Fatal(err)
	}
	layout, err := fs.ReadFile(web.Templates, "templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(layout), `id="clock-words">{{.Clock.Script}}</script>`) || !strings.Contains(string(layout), `{{static "clock.js"}}`) {
		t.Fatal("the layout does not hand the clock's words to clock.js, or does not load it")
	}
	w := englishClock()
	literals := regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`+"`[^`]*`").FindAllString(string(js), -1)
	for _, word := range []string{w.JustNow, w.Ago, w.In, w.Old, w.Seconds, w.Minutes, w.Hours, w.Days} {
		word = strings.TrimSpace(strings.NewReplacer("{n}", "", "{t}", "").Replace(word))
		if len(word) < 3 {
			continue // "s", "h", "d", "in": too short to tell from code
		}
		re := regexp.MustCompile(`\b` + regexp.QuoteMeta(word) + `\b`)
		for _, l := range literals {
			if re.MatchString(l) {
				t.Errorf("clock.js says %q itself (%s): take it from #clock-words", word, l)
			}
		}
	}
	script := newClock(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), nil).Script()
	if script["now"] != "2026-12-05T12:00:00Z" || script["words"] != w {
		t.Fatalf("Script = %v", script)
	}
}
