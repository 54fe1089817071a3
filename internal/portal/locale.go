package portal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/quota"
)

// A page speaks the viewer's language and shows moments in the viewer's time zone (issue 18):
// for a logged-in person their own language setting, else their browser's Accept-Language,
// else the federation's default, read with their time zone in one statement
// (identity.UserTimeZone); on public pages (login) Accept-Language, else the federation's
// default. Both are settled once per request, on first use: a request that only redirects
// never reads them.

// viewer is what the portal knows of the person being answered, settled lazily.
type viewer struct {
	once    sync.Once
	printer *i18n.Printer
	loc     *time.Location
}

type viewerKey struct{}

// withViewer is ctx ready to carry the viewer's language and zone (Session installs it).
func withViewer(ctx context.Context) context.Context {
	return context.WithValue(ctx, viewerKey{}, &viewer{})
}

// viewerOf settles (once per request) the language and the time zone of r's viewer.
func (p *Portal) viewerOf(r *http.Request) *viewer {
	v, ok := r.Context().Value(viewerKey{}).(*viewer)
	if !ok {
		v = &viewer{} // outside Session (e.g. the router's 404): settled for this call only
	}
	v.once.Do(func() {
		lang, loc := p.settle(r)
		v.printer, v.loc = p.catalog.Printer(lang), loc
	})
	return v
}

// settle reads the viewer's language and time zone.
func (p *Portal) settle(r *http.Request) (i18n.Lang, *time.Location) {
	accept := r.Header.Get("Accept-Language")
	if p.identity == nil {
		return i18n.Negotiate("", accept, i18n.English), time.UTC
	}
	if u, ok := identity.PrincipalFrom(r.Context()); ok {
		tz, err := p.identity.UserTimeZone(r.Context(), u.UserID)
		if err != nil {
			p.log.WarnContext(r.Context(), "time zone and language", "err", err)
			return i18n.Negotiate("", accept, i18n.English), time.UTC
		}
		fed, _ := i18n.Parse(tz.FederationLanguage)
		return i18n.Negotiate(tz.Language, accept, cmpLang(fed)), tz.Location
	}
	if l, ok := i18n.FromAcceptLanguage(accept); ok {
		return l, time.UTC // no query when the browser says it
	}
	fed, err := p.identity.FederationLanguage(r.Context())
	if err != nil {
		p.log.WarnContext(r.Context(), "federation language", "err", err)
	}
	l, _ := i18n.Parse(fed)
	return cmpLang(l), time.UTC
}

func cmpLang(l i18n.Lang) i18n.Lang {
	if l == "" {
		return i18n.English
	}
	return l
}

// l is the printer of r's viewer: the portal's Go code writes every text it shows with it.
func (p *Portal) l(r *http.Request) *i18n.Printer { return p.viewerOf(r).printer }

// viewerZone is the time zone moments are shown in: the viewer's setting, else the
// federation's (identity.UserTimeZone); UTC on public pages.
func (p *Portal) viewerZone(r *http.Request) *time.Location { return p.viewerOf(r).loc }

// AccountLanguage handles the language form of the account page: "" (the browser's), "en"
// or "fr".
func (p *Portal) AccountLanguage(w http.ResponseWriter, r *http.Request) {
	if err := p.identity.UserLanguageSet(r.Context(), user(r), r.PostFormValue("language")); err != nil {
		p.refuse(w, r, err, map[string]string{"language": p.l(r).T("portal.account.language")}, func(status int, msg string) {
			p.renderAccount(w, r, status, Page{Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/account?done=language", http.StatusSeeOther)
}

// sizer writes sizes in pr's language: « 1,5 Go » in French; English keeps quota.Bytes'
// "1.5 GB" (a plain space, as the API's texts and the existing pages write it).
func sizer(pr *i18n.Printer) func(int64) string {
	if pr.Lang() == i18n.English {
		return quota.Bytes
	}
	return pr.Bytes
}

// enumIn writes a machine value a page shows (a state, status, outcome, role, mode…) in
// pr's language: the catalog's portal.enum.<value> ("passed" is « réussi »), else the value
// itself (a value the catalog does not know yet still shows).
func enumIn(pr *i18n.Printer) func(v any) string {
	return func(v any) string {
		s := fmt.Sprint(v)
		key := "portal.enum." + strings.ToLower(s)
		if t := pr.T(key); t != key {
			return t
		}
		return s
	}
}

// dayIn is t's date in loc as l's language writes it: "2026-12-05" in English (as the
// pages wrote it before), « 5 déc. 2026 » in French.
func dayIn(l *i18n.Printer, t time.Time, loc *time.Location) string {
	if l.Lang() == i18n.English {
		return t.In(loc).Format("2006-01-02")
	}
	return l.Date(t, loc)
}

// shortDayIn is t's day in loc without the year, for chart axes: "Dec 5", « 5 déc. ».
func shortDayIn(l *i18n.Printer, t time.Time, loc *time.Location) string {
	if l.Lang() == i18n.English {
		return t.In(loc).Format("Jan 2")
	}
	d := l.Date(t, loc)
	return strings.TrimSuffix(d, " "+strconv.Itoa(t.In(loc).Year()))
}

// exactIn is the moment t in loc to the minute with the zone's name, as l's language writes
// it: "2026-12-05 10:00 CET", « 5 déc. 2026 à 10:00 CET ».
func exactIn(l *i18n.Printer, t time.Time, loc *time.Location) string {
	if l.Lang() == i18n.English {
		return t.In(loc).Format("2006-01-02 15:04 MST")
	}
	return l.DateTime(t, loc)
}
