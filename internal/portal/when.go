package portal

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
)

// clockWords are all the words of a relative time, in one place: the server renders with
// them, and the layout hands them to web/static/clock.js (a JSON block, #clock-words) so the
// live refresh of a page left open says the same thing. "{n}" is a number, "{t}" a span.
type clockWords struct {
	JustNow string `json:"just_now"` // within 5 s of now
	Ago     string `json:"ago"`      // a past moment: "{t} ago"
	In      string `json:"in"`       // a future moment: "in {t}"
	Old     string `json:"old"`      // an age: "{t} old"
	Seconds string `json:"s"`        // "{n} s", under a minute
	Minutes string `json:"min"`      // "{n} min", under an hour
	Hours   string `json:"h"`        // "{n} h", under 48 h
	Days    string `json:"d"`        // "{n} d"
}

// englishClock are the English words of relative times.
func englishClock() clockWords {
	return clockWords{JustNow: "just now", Ago: "{t} ago", In: "in {t}", Old: "{t} old",
		Seconds: "{n} s", Minutes: "{n} min", Hours: "{n} h", Days: "{n} d"}
}

// clock is how a page shows moments: relative to when it was rendered ("3 h ago"), with the
// exact time in the viewer's time zone on hover. Templates reach it as $.Clock; every
// moment a page shows goes through it (TestTemplatesShowMomentsThroughTheClock).
type clock struct {
	Now   time.Time
	Loc   *time.Location
	Words clockWords
	// P writes exact moments in the viewer's language (nil: English); Words come from its
	// catalog (newClockIn).
	P *i18n.Printer
}

func newClock(now time.Time, loc *time.Location) clock {
	if loc == nil {
		loc = time.UTC
	}
	return clock{Now: now, Loc: loc, Words: englishClock()}
}

// newClockIn is the clock of a page in pr's language: its words from the catalog
// (portal.clock.*), its exact moments as the language writes them.
func newClockIn(now time.Time, loc *time.Location, pr *i18n.Printer) clock {
	c := newClock(now, loc)
	c.P = pr
	if pr.Lang() != i18n.English {
		c.Words = clockWords{JustNow: pr.T("portal.clock.just_now"), Ago: pr.T("portal.clock.ago"), In: pr.T("portal.clock.in"),
			Old: pr.T("portal.clock.old"), Seconds: pr.T("portal.clock.s"), Minutes: pr.T("portal.clock.min"),
			Hours: pr.T("portal.clock.h"), Days: pr.T("portal.clock.d")}
	}
	return c
}

// when dereferences the moments templates hand over.
func when(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil && !t.IsZero() {
			return *t, true
		}
	}
	return time.Time{}, false
}

// Exact is the moment in the viewer's zone, to the minute, with the zone's name.
func (c clock) Exact(v any) string {
	t, ok := when(v)
	if !ok {
		return ""
	}
	if c.P.Lang() != i18n.English {
		return c.P.DateTime(t, c.Loc) // « 5 déc. 2026 à 10:00 CET »
	}
	return t.In(c.Loc).Format("2006-01-02 15:04 MST")
}

// Precise is the moment in the viewer's zone to the second, with the zone's name (an audit
// entry, a checkpoint's signature).
func (c clock) Precise(v any) string {
	t, ok := when(v)
	if !ok {
		return ""
	}
	if c.P.Lang() != i18n.English {
		return c.P.Date(t, c.Loc) + " à " + t.In(c.Loc).Format("15:04:05 MST")
	}
	return t.In(c.Loc).Format("2006-01-02 15:04:05 MST")
}

// Day is the moment's date in the viewer's zone ("2026-12-05").
func (c clock) Day(v any) string {
	t, ok := when(v)
	if !ok {
		return ""
	}
	if c.P.Lang() != i18n.English {
		return c.P.Date(t, c.Loc)
	}
	return t.In(c.Loc).Format("2006-01-02")
}

// Ago is a <time> element: the moment relative to now, the exact time on hover; "—" for
// no moment. clock.js keeps the words true on a page left open (data-clock="ago").
func (c clock) Ago(v any) template.HTML {
	t, ok := when(v)
	if !ok {
		return "—"
	}
	return c.element(t, "ago", c.Words.relative(c.Now, t))
}

// Old is a <time> element saying how old the moment is ("5 h old"), the exact time on
// hover; "—" for no moment. clock.js keeps it true (data-clock="age").
func (c clock) Old(v any) template.HTML {
	t, ok := when(v)
	if !ok {
		return "—"
	}
	return c.element(t, "age", strings.ReplaceAll(c.Words.Old, "{t}", c.Words.span(c.Now.Sub(t))))
}

func (c clock) element(t time.Time, kind, text string) template.HTML {
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s" data-clock="%s">%s</time>`, t.UTC().Format(time.RFC3339),
		template.HTMLEscapeString(c.Exact(t)), kind, template.HTMLEscapeString(text)))
}

// Age is how old the moment is now ("5 h"), "" for no moment.
func (c clock) Age(v any) string {
	t, ok := when(v)
	if !ok {
		return ""
	}
	return c.Words.span(c.Now.Sub(t))
}

// Script is what clock.js reads (#clock-words): the words and the render time, so that a
// browser whose clock is off still counts from the server's.
func (c clock) Script() map[string]any {
	return map[string]any{"now": c.Now.UTC().Format(time.RFC3339), "words": c.Words}
}

// relative says when t is from now in words: "just now", "5 min ago", "in 2 h".
func (w clockWords) relative(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d > -5*time.Second && d < 5*time.Second:
		return w.JustNow
	case d < 0:
		return strings.ReplaceAll(w.In, "{t}", w.span(-d))
	}
	return strings.ReplaceAll(w.Ago, "{t}", w.span(d))
}

// span is a duration in its largest sensible unit: "42 s", "5 min", "3 h", "2 d". clock.js
// has the same thresholds.
func (w clockWords) span(d time.Duration) string {
	d = max(d, 0)
	unit, n := w.Days, int64(d/(24*time.Hour))
	switch {
	case d < time.Minute:
		unit, n = w.Seconds, int64(d/time.Second)
	case d < time.Hour:
		unit, n = w.Minutes, int64(d/time.Minute)
	case d < 48*time.Hour:
		unit, n = w.Hours, int64(d/time.Hour)
	}
	return strings.ReplaceAll(unit, "{n}", strconv.FormatInt(n, 10))
}

// relative is relative in English.
func relative(now, t time.Time) string { return englishClock().relative(now, t) }

// AccountTimeZone handles the time zone form of the account page.
func (p *Portal) AccountTimeZone(w http.ResponseWriter, r *http.Request) {
	if err := p.identity.UserTimeZoneSet(r.Context(), user(r), r.PostFormValue("time_zone")); err != nil {
		p.refuse(w, r, err, map[string]string{"time_zone": "portal.account.time_zone"}, func(status int, msg string) {
			p.renderAccount(w, r, status, Page{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/account?done=timezone", http.StatusSeeOther)
}

// accountData is the account page's: the viewer's time zone setting and whether they may
// set the federation's (federation admins).
type accountData struct {
	identity.TimeZone
	CanSetFederation bool
}

// FederationTimeZone handles the federation time zone form of the account page (federation
// admins): the zone of everyone who has not chosen their own.
func (p *Portal) FederationTimeZone(w http.ResponseWriter, r *http.Request) {
	if authz.Check(user(r), authz.FederationManage, authz.Federation) != nil {
		p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"),
			Error: p.l(r).T("portal.account.federation_only")})
		return
	}
	if _, err := p.identity.FederationTimeZoneSet(r.Context(), r.PostFormValue("time_zone")); err != nil {
		p.refuse(w, r, err, map[string]string{"time_zone": "portal.account.federation_tz"}, func(status int, msg string) {
			p.renderAccount(w, r, status, Page{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/account?done=federation-timezone", http.StatusSeeOther)
}

// FederationLanguage handles the federation language form of the account page (federation
// admins): the language of everyone whose browser asks for no supported one and who has not
// chosen their own, and of what is sent to members that have not chosen one.
func (p *Portal) FederationLanguage(w http.ResponseWriter, r *http.Request) {
	if authz.Check(user(r), authz.FederationManage, authz.Federation) != nil {
		p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"),
			Error: p.l(r).T("portal.account.federation_only")})
		return
	}
	if _, err := p.identity.FederationLanguageSet(r.Context(), r.PostFormValue("language")); err != nil {
		p.refuse(w, r, err, map[string]string{"language": "portal.account.federation_language"}, func(status int, msg string) {
			p.renderAccount(w, r, status, Page{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/account?done=federation-language", http.StatusSeeOther)
}
