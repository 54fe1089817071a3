package portal

import (
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/identity"
)

// clock is how a page shows moments: relative to when it was rendered ("3 h ago"), with the
// exact time in the viewer's time zone on hover. Templates reach it as $.Clock.
type clock struct {
	Now time.Time
	Loc *time.Location
}

func newClock(now time.Time, loc *time.Location) clock {
	if loc == nil {
		loc = time.UTC
	}
	return clock{Now: now, Loc: loc}
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
	return t.In(c.Loc).Format("2006-01-02 15:04 MST")
}

// Ago is a <time> element: the moment relative to now, the exact time on hover; "—" for
// no moment.
func (c clock) Ago(v any) template.HTML {
	t, ok := when(v)
	if !ok {
		return "—"
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`, t.UTC().Format(time.RFC3339),
		template.HTMLEscapeString(c.Exact(t)), template.HTMLEscapeString(relative(c.Now, t))))
}

// Age is how old the moment is now ("5 h"), "" for no moment.
func (c clock) Age(v any) string {
	t, ok := when(v)
	if !ok {
		return ""
	}
	return span(c.Now.Sub(t))
}

// relative says when t is from now in words: "just now", "5 min ago", "in 2 h".
func relative(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d > -5*time.Second && d < 5*time.Second:
		return "just now"
	case d < 0:
		return "in " + span(-d)
	}
	return span(d) + " ago"
}

// span is a duration in its largest sensible unit: "42 s", "5 min", "3 h", "2 d".
func span(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int64(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int64(d/time.Hour))
	}
	return fmt.Sprintf("%d d", int64(d/(24*time.Hour)))
}

// viewerZone is the time zone moments are shown in: the viewer's setting, else the
// federation's (identity.UserTimeZone); UTC on public pages.
func (p *Portal) viewerZone(r *http.Request) *time.Location {
	u, ok := identity.PrincipalFrom(r.Context())
	if !ok || p.identity == nil {
		return time.UTC
	}
	tz, err := p.identity.UserTimeZone(r.Context(), u.UserID)
	if err != nil {
		p.log.WarnContext(r.Context(), "time zone", "err", err)
		return time.UTC
	}
	return tz.Location
}

// AccountTimeZone handles the time zone form of the account page.
func (p *Portal) AccountTimeZone(w http.ResponseWriter, r *http.Request) {
	if err := p.identity.UserTimeZoneSet(r.Context(), user(r), r.PostFormValue("time_zone")); err != nil {
		p.refuse(w, r, err, map[string]string{"time_zone": "Time zone"}, func(status int, msg string) {
			p.renderAccount(w, r, status, Page{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/account?done=timezone", http.StatusSeeOther)
}
