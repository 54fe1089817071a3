package api

import (
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/reports"
)

// reportReader is the language and time zone a report download is rendered in (reports
// are rendered from their stored document at each request): the caller's own language
// setting, else their Accept-Language, else the language of the report's audience (its
// member's language, else the federation's); dates in the federation's time zone.
func (a *API) reportReader(r *http.Request, st reports.Stored) (*i18n.Printer, *time.Location, error) {
	lang, loc, err := notify.Audience(r.Context(), a.pool, st.MemberID)
	if err != nil {
		return nil, nil, err
	}
	if p, ok := identity.PrincipalFrom(r.Context()); ok && p != nil {
		if own, ok := i18n.Parse(p.Language); ok {
			return a.langs.cat.Printer(own), loc, nil
		}
	}
	if browser, ok := i18n.FromAcceptLanguage(r.Header.Get("Accept-Language")); ok {
		lang = browser
	}
	return a.langs.cat.Printer(lang), loc, nil
}
