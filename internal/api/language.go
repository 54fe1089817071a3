package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
)

// The API answers error messages in the caller's language (issue 18): their own setting
// (users.language, read with the principal at no extra statement), else the best supported
// match of Accept-Language, else the federation's default, which is read at most once per
// federationLanguageTTL per process. Codes never change; only messages are translated.

// federationLanguageTTL is how long the federation's default language is cached: a change
// of federation_settings.language reaches API messages within this delay.
const federationLanguageTTL = 30 * time.Second

// languages picks the language of a request.
type languages struct {
	cat  *i18n.Catalog
	pool *pgxpool.Pool

	mu    sync.Mutex
	fed   i18n.Lang
	until time.Time
}

// federation is the federation's default language (English when it cannot be read: an
// error message must still be written).
func (l *languages) federation(ctx context.Context) i18n.Lang {
	now := time.Now()
	l.mu.Lock()
	if l.fed != "" && now.Before(l.until) {
		defer l.mu.Unlock()
		return l.fed
	}
	l.mu.Unlock()
	lang := i18n.English
	if l.pool != nil {
		var s string
		if err := l.pool.QueryRow(ctx, `SELECT language FROM federation_settings`).Scan(&s); err != nil {
			return lang // not cached: the next message tries again
		}
		if parsed, ok := i18n.Parse(s); ok {
			lang = parsed
		}
	}
	l.mu.Lock()
	l.fed, l.until = lang, now.Add(federationLanguageTTL)
	l.mu.Unlock()
	return lang
}

// lang is the language to answer r in.
func (l *languages) lang(r *http.Request) i18n.Lang {
	if p, ok := identity.PrincipalFrom(r.Context()); ok && p != nil {
		if lang, ok := i18n.Parse(p.Language); ok {
			return lang
		}
	}
	if lang, ok := i18n.FromAcceptLanguage(r.Header.Get("Accept-Language")); ok {
		return lang
	}
	return l.federation(r.Context())
}

// printer is the printer of r's language.
func (l *languages) printer(r *http.Request) *i18n.Printer { return l.cat.Printer(l.lang(r)) }

// localized is r carrying the printer of the caller's language, unless it already has one.
func (a *API) localized(r *http.Request) *http.Request {
	if i18n.FromContext(r.Context()) != nil || a.langs == nil || a.langs.cat == nil {
		return r
	}
	return r.WithContext(i18n.WithPrinter(r.Context(), a.langs.printer(r)))
}
