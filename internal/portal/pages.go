package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
)

func user(r *http.Request) *identity.Principal {
	u, _ := identity.PrincipalFrom(r.Context())
	return u
}

// Home is the dashboard.
func (p *Portal) Home(w http.ResponseWriter, r *http.Request) {
	p.renderHome(w, r) // home.go: red/green summary, what needs attention, latest reports
}

// Account shows the account page.
func (p *Portal) Account(w http.ResponseWriter, r *http.Request) {
	sessions, _ := strconv.Atoi(r.URL.Query().Get("sessions"))
	tokens, _ := strconv.Atoi(r.URL.Query().Get("tokens"))
	l := p.l(r)
	p.renderAccount(w, r, http.StatusOK, Page{Flash: accountFlashes.in(r, l,
		"Sessions", l.N("portal.account.sessions_ended", sessions), "Tokens", l.N("portal.account.tokens_revoked", tokens))})
}

// renderAccount renders the account page with the viewer's time zone setting.
func (p *Portal) renderAccount(w http.ResponseWriter, r *http.Request, status int, page Page) {
	tz, err := p.identity.UserTimeZone(r.Context(), user(r).UserID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	page.Title, page.Nav = p.l(r).T("portal.account.title"), "account"
	page.Data = accountData{TimeZone: tz, CanSetFederation: authz.Check(user(r), authz.FederationManage, authz.Federation) == nil}
	p.render(w, r, status, "account", page)
}

// ChangePassword handles the password form.
func (p *Portal) ChangePassword(w http.ResponseWriter, r *http.Request) {
	current, next, confirm := r.PostFormValue("current_password"), r.PostFormValue("new_password"), r.PostFormValue("confirm_password")
	l := p.l(r)
	page := Page{Title: l.T("portal.account.title"), Nav: "account"}
	if next != confirm {
		page.Error = l.T("portal.account.password_mismatch")
		p.renderAccount(w, r, http.StatusBadRequest, page)
		return
	}
	changed, err := p.identity.ChangePassword(r.Context(), user(r), current, next)
	if errors.Is(err, identity.ErrBusy) {
		w.Header().Set("Retry-After", "2")
		page.Error = l.T("portal.account.password_busy")
		p.renderAccount(w, r, http.StatusServiceUnavailable, page)
		return
	}
	if err != nil {
		p.refuse(w, r, err, nil, func(status int, msg string) {
			page.Error = msg
			p.renderAccount(w, r, status, page)
		})
		return
	}
	http.Redirect(w, r, "/account?done=password&sessions="+strconv.FormatInt(changed.SessionsEnded, 10)+
		"&tokens="+strconv.Itoa(changed.TokensRevoked), http.StatusSeeOther)
}

type tokensData struct {
	Tokens  []identity.APIToken
	Members []identity.MemberRef // members the user may create tokens for
	Created *createdToken
	Now     time.Time
	Form    tokenForm
}

type createdToken struct {
	Name, Member, Role, Token string
}

type tokenForm struct {
	Name, Member, Role string
	ExpiresDays        string
}

// Tokens lists API tokens and offers to create one.
func (p *Portal) Tokens(w http.ResponseWriter, r *http.Request) {
	var created *createdToken
	if c, ok := takeOnce[createdToken](p, r, "token"); ok {
		created = &c
		w.Header().Set("Cache-Control", "no-store")
	}
	p.renderTokens(w, r, http.StatusOK, Page{Flash: accountFlashes.in(r, p.l(r))}, created, tokenForm{Role: "viewer", ExpiresDays: "90"})
}

func (p *Portal) renderTokens(w http.ResponseWriter, r *http.Request, status int, page Page, created *createdToken, form tokenForm) {
	u := user(r)
	tp, err := p.identity.TokenPage(r.Context(), u, pageRequest(r))
	ts, ok := pageItems(p, w, r, &page, tp, err)
	if !ok {
		return
	}
	page.Title, page.Nav = p.l(r).T("portal.tokens.title"), "tokens"
	page.Data = tokensData{Tokens: ts, Members: u.Members, Created: created, Now: time.Now(), Form: form}
	p.render(w, r, status, "tokens", page)
}

// TokenCreate handles the token form; the new token is shown once, on the page the answer
// redirects to.
func (p *Portal) TokenCreate(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	form := tokenForm{Name: r.PostFormValue("name"), Member: r.PostFormValue("member"), Role: r.PostFormValue("role"),
		ExpiresDays: strings.TrimSpace(r.PostFormValue("expires_days"))}
	bad := func(msg string) { p.renderTokens(w, r, http.StatusBadRequest, Page{Error: msg}, nil, form) }
	m, err := islands.MemberGetBySlug(r.Context(), p.pool, form.Member)
	if err != nil || authz.Check(u, authz.TokenCreate, authz.Member(m.ID)) != nil {
		bad(p.l(r).T("portal.tokens.choose_member"))
		return
	}
	var exp *time.Time
	if form.ExpiresDays != "" && form.ExpiresDays != "0" {
		days, err := strconv.Atoi(form.ExpiresDays)
		if err != nil || days < 1 || days > 3650 {
			bad(p.l(r).T("portal.tokens.bad_expiry"))
			return
		}
		t := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		exp = &t
	}
	t, secret, err := p.identity.TokenCreate(r.Context(), u, identity.NewToken{Name: form.Name, MemberID: m.ID,
		Role: identity.Role(form.Role), ExpiresAt: exp})
	if err != nil {
		p.refuse(w, r, err, nil, func(_ int, msg string) { bad(msg) })
		return
	}
	// Shown once, on the page the redirect leads to (once.go).
	p.keepOnce(r, "token", createdToken{Name: t.Name, Member: t.MemberSlug, Role: string(t.Role), Token: secret})
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}

// TokenRevoke handles the revoke button.
func (p *Portal) TokenRevoke(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	t, err := p.identity.TokenGetByID(r.Context(), id)
	if err != nil || !identity.CanManageToken(user(r), t) {
		p.NotFound(w, r)
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "token-revoke", Name: t.Name, Back: "/tokens"}) {
		return
	}
	if err := p.identity.TokenRevoke(r.Context(), t); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/tokens?done=revoked", http.StatusSeeOther)
}

// accountFlashes are the messages shown after a form, by the done= of the redirect.
var accountFlashes = flashes{
	"password": "portal.account.flash.password",
	"revoked":  "portal.tokens.flash.revoked",
	"timezone": "portal.account.flash.timezone",
	"language": "portal.account.flash.language",
	// Federation admins (when.go).
	"federation-timezone": "portal.account.flash.federation_timezone",
	"federation-language": "portal.account.flash.federation_language",
}

// fieldLabelIn names a domain field for people in l's language: the catalog's
// portal.field.<last segment> when it has one, else the last segment itself
// ("policy.sample_files" is "Sample files").
func fieldLabelIn(l *i18n.Printer, f string) string {
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	}
	if key := "portal.field." + f; l.T(key) != key {
		return l.T(key)
	}
	return fieldLabel(f)
}

// fieldLabel names a domain field for people: its last segment ("policy.sample_files" is
// "Sample files").
func fieldLabel(f string) string {
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	}
	return capitalize(strings.ReplaceAll(f, "_", " "))
}
