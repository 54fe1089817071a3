package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/paging"
)

// SessionCookie is the portal's session cookie (the same name the API accepts).
const SessionCookie = "archipelago_session"

// Session loads the principal of the session cookie, if any, into the context.
func (p *Portal) Session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withViewer(r.Context())) // the language and zone, settled on first use (locale.go)
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			if pr, err := p.identity.SessionPrincipal(r.Context(), c.Value); err == nil {
				r = r.WithContext(identity.WithPrincipal(r.Context(), pr))
			} else {
				p.clearCookie(w)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RequireLogin sends anonymous visitors to the login page, and checks the CSRF token of
// every state-changing form.
func (p *Portal) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := identity.PrincipalFrom(r.Context())
		if !ok {
			target := "/login"
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !identity.CheckCSRF(u, r.PostFormValue("csrf")) {
				p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.csrf.title"),
					Error: p.l(r).T("portal.csrf.error")})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Portal) setCookie(w http.ResponseWriter, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", Expires: expires,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

func (p *Portal) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

// sameOrigin guards forms that have no session yet (login): the browser's Origin (or
// Sec-Fetch-Site) must say the form came from this site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == "" // non-browser clients send none
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

type loginData struct {
	Email string
	Next  string
	// OIDCName is the identity provider's name on the "Log in with" button; "" hides it.
	OIDCName string
}

func (p *Portal) loginData(email, next string) loginData {
	d := loginData{Email: email, Next: next}
	if p.oidc != nil {
		d.OIDCName = p.oidc.Name()
	}
	return d
}

// LoginForm shows the login page.
func (p *Portal) LoginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := identity.PrincipalFrom(r.Context()); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "login", Page{Title: p.l(r).T("portal.login.title"), Data: p.loginData("", safeNext(r.URL.Query().Get("next")))})
}

// Login handles the login form.
func (p *Portal) Login(w http.ResponseWriter, r *http.Request) {
	l := p.l(r)
	if !sameOrigin(r) {
		p.render(w, r, http.StatusForbidden, "login", Page{Title: l.T("portal.login.title"), Error: l.T("portal.login.other_site"), Data: p.loginData("", "/")})
		return
	}
	email, password, next := r.PostFormValue("email"), r.PostFormValue("password"), safeNext(r.PostFormValue("next"))
	data := p.loginData(email, next)
	res, err := p.identity.Login(r.Context(), email, password, clientIP(r), r.UserAgent())
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		p.render(w, r, http.StatusUnauthorized, "login", Page{Title: l.T("portal.login.title"), Error: l.T("portal.login.invalid"), Data: data})
		return
	case errors.Is(err, identity.ErrThrottled):
		w.Header().Set("Retry-After", "300")
		p.render(w, r, http.StatusTooManyRequests, "login", Page{Title: l.T("portal.login.title"),
			Error: l.T("portal.login.throttled"), Data: data})
		return
	case errors.Is(err, identity.ErrBusy):
		w.Header().Set("Retry-After", "2")
		p.render(w, r, http.StatusServiceUnavailable, "login", Page{Title: l.T("portal.login.title"),
			Error: l.T("portal.login.busy"), Data: data})
		return
	case errors.As(err, new(*identity.FieldError)):
		data.Email = ""
		p.render(w, r, http.StatusBadRequest, "login", Page{Title: l.T("portal.login.title"), Error: l.T("portal.login.invalid"), Data: data})
		return
	case err != nil:
		p.fail(w, r, err)
		return
	}
	p.setCookie(w, res.SessionSecret, res.SessionExpire)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// Logout ends the session.
func (p *Portal) Logout(w http.ResponseWriter, r *http.Request) {
	u, _ := identity.PrincipalFrom(r.Context())
	provider := p.oidcLogoutURL(r, u) // asked before the session ends
	if err := p.identity.Logout(r.Context(), u); err != nil {
		p.fail(w, r, err)
		return
	}
	p.clearCookie(w)
	if p.oidc != nil {
		http.SetCookie(w, p.oidc.ClearHintCookie())
	}
	if provider != "" {
		http.Redirect(w, r, provider, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps redirects on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func clientIP(r *http.Request) string {
	if i := strings.LastIndex(r.RemoteAddr, ":"); i > 0 {
		return strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return r.RemoteAddr
}

// fail logs an unexpected error and shows a generic error page.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, err error) {
	var le *paging.LimitError
	if errors.Is(err, paging.ErrBadCursor) || errors.As(err, &le) {
		p.render(w, r, http.StatusBadRequest, "error", Page{Title: p.l(r).T("portal.error.bad_cursor_title"),
			Error: p.l(r).T("portal.error.bad_cursor")})
		return
	}
	p.log.ErrorContext(r.Context(), "portal request failed", "err", err, "path", r.URL.Path)
	p.render(w, r, http.StatusInternalServerError, "error", Page{Title: p.l(r).T("portal.error.title"),
		Error: p.l(r).T("portal.error.text")})
}
