package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/oidclogin"
)

// Logging in through the federation's identity provider (internal/oidclogin): the login
// page's "Log in with NAME" button posts to OIDCStart, which sends the browser to the
// provider; the provider sends it back to OIDCCallback, which opens the session
// (identity.ExternalLogin). Every failure is a sentence on the login page, never a 500.

// OIDCStart starts a login at the identity provider (POST /login/oidc, from the login page).
func (p *Portal) OIDCStart(w http.ResponseWriter, r *http.Request) {
	if p.oidc == nil {
		p.NotFound(w, r)
		return
	}
	if _, ok := identity.PrincipalFrom(r.Context()); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	l := p.l(r)
	if !sameOrigin(r) {
		p.oidcRefuse(w, r, http.StatusForbidden, l.T("portal.login.other_site"))
		return
	}
	target, cookie, err := p.oidc.Start(r.Context(), safeNext(r.PostFormValue("next")))
	if err != nil {
		p.log.WarnContext(r.Context(), "oidc login could not start", "err", err)
		p.oidcRefuse(w, r, http.StatusBadGateway, l.T("portal.oidc.unreachable", "Name", p.oidc.Name()))
		return
	}
	http.SetCookie(w, cookie)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// OIDCCallback finishes a login at the identity provider (GET /login/oidc/callback).
func (p *Portal) OIDCCallback(w http.ResponseWriter, r *http.Request) {
	if p.oidc == nil {
		p.NotFound(w, r)
		return
	}
	http.SetCookie(w, p.oidc.ClearCookie()) // one flow, one callback
	if _, ok := identity.PrincipalFrom(r.Context()); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	l, name := p.l(r), p.oidc.Name()
	done, err := p.oidc.Finish(r.Context(), r)
	if err == nil {
		var res identity.LoginResult
		if res, err = p.identity.ExternalLogin(r.Context(), done.Identity, clientIP(r), r.UserAgent()); err == nil {
			p.setCookie(w, res.SessionSecret, res.SessionExpire)
			if hint := p.oidc.HintCookieFor(done.IDToken, res.SessionExpire); hint != nil {
				http.SetCookie(w, hint)
			}
			http.Redirect(w, r, safeNext(done.Next), http.StatusSeeOther)
			return
		}
	}
	status, msg := http.StatusBadGateway, ""
	switch {
	case errors.Is(err, oidclogin.ErrState):
		status, msg = http.StatusBadRequest, l.T("portal.oidc.bad_state", "Name", name)
	case errors.Is(err, oidclogin.ErrDenied):
		status, msg = http.StatusUnauthorized, l.T("portal.oidc.denied", "Name", name)
	case errors.Is(err, oidclogin.ErrUnreachable):
		msg = l.T("portal.oidc.unreachable", "Name", name)
	case errors.Is(err, oidclogin.ErrToken):
		msg = l.T("portal.oidc.failed", "Name", name)
	case errors.Is(err, identity.ErrNoAccess):
		status, msg = http.StatusForbidden, l.T("portal.oidc.no_access", "Name", name)
	case errors.Is(err, identity.ErrNoEmail):
		status, msg = http.StatusForbidden, l.T("portal.oidc.no_email", "Name", name)
	case errors.Is(err, identity.ErrEmailUnverified):
		status, msg = http.StatusConflict, l.T("portal.oidc.email_unverified", "Name", name)
	case errors.Is(err, identity.ErrUserDisabled):
		status, msg = http.StatusForbidden, l.T("portal.oidc.disabled")
	default:
		p.fail(w, r, err)
		return
	}
	p.log.InfoContext(r.Context(), "oidc login refused", "status", status, "err", err)
	p.oidcRefuse(w, r, status, msg)
}

// oidcRefuse shows the login page with a sentence saying why.
func (p *Portal) oidcRefuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.render(w, r, status, "login", Page{Title: p.l(r).T("portal.login.title"), Error: msg, Data: p.loginData("", "/")})
}

// oidcLogoutURL is where a person logging out of session goes: the provider's
// end_session_endpoint for a session opened through it (so the provider's own session
// ends too), else "" (the login page).
func (p *Portal) oidcLogoutURL(r *http.Request, u *identity.Principal) string {
	if p.oidc == nil || u == nil || u.SessionID == 0 {
		return ""
	}
	method, err := p.identity.SessionAuthMethod(r.Context(), u.SessionID)
	if err != nil || method != "oidc" {
		return ""
	}
	target, ok := p.oidc.LogoutURL(r.Context(), r)
	if !ok {
		return ""
	}
	return target
}

// allowProviderForm lets the login page's forms lead to the identity provider: the
// Content-Security-Policy's form-action also binds where a submitted form is redirected,
// and the "Log in with" button's POST is redirected to the provider's authorization endpoint.
func (p *Portal) allowProviderForm(w http.ResponseWriter) {
	if p.oidc == nil {
		return
	}
	h := w.Header()
	if csp := h.Get("Content-Security-Policy"); csp != "" {
		h.Set("Content-Security-Policy", strings.Replace(csp, "form-action 'self'", "form-action 'self' "+strings.Join(p.oidc.FormOrigins(), " "), 1))
	}
}
