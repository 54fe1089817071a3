package api

import (
	"net/http"
	"time"

	"github.com/chatons/archipelago/internal/problem"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
)

type tokenCreateRequest struct {
	Name      string     `json:"name"`
	Member    memberRef  `json:"member"` // id or slug
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type tokenCreated struct {
	identity.APIToken
	Token string `json:"token"`
}

// TokenCreate answers POST /v1/tokens; the token is in this response only.
func (a *API) TokenCreate(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if p.Via == "api_token" {
		return identity.ErrTokenCannotMint
	}
	var req tokenCreateRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	m, err := a.bodyMember(r, req.Member, authz.TokenCreate)
	if err != nil {
		return err
	}
	role := identity.Role(cmpOr(req.Role, string(identity.RoleViewer)))
	t, secret, err := a.identity.TokenCreate(r.Context(), p, identity.NewToken{Name: req.Name, MemberID: m.ID, Role: role, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, tokenCreated{APIToken: t, Token: secret})
	return nil
}

// TokenList answers GET /v1/tokens.
func (a *API) TokenList(w http.ResponseWriter, r *http.Request) error {
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := a.identity.TokenPage(r.Context(), principal(r), req)
	return replyPage(w, "tokens", pg, err)
}

func (a *API) tokenFor(r *http.Request) (identity.APIToken, error) {
	return loadByID(r, "id", "token", a.identity.TokenGetByID, func(t identity.APIToken) error {
		if !identity.CanManageToken(principal(r), t) {
			return authz.ErrHidden
		}
		return nil
	})
}

// TokenGet answers GET /v1/tokens/{id}.
func (a *API) TokenGet(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tokenFor(r)
	return reply(w, http.StatusOK, t, err)
}

// TokenRevoke answers DELETE /v1/tokens/{id}: the token stops working at once.
func (a *API) TokenRevoke(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tokenFor(r)
	if err != nil {
		return err
	}
	if p := principal(r); p.Via == "api_token" && !p.FederationAdmin {
		if role, _ := p.RoleIn(t.MemberID); role != identity.RoleAdmin && p.TokenID != t.ID {
			return Forbidden("a viewer token may revoke only itself")
		}
	}
	return noContent(w, a.identity.TokenRevoke(r.Context(), t))
}

// notFoundAs turns "not visible" into a 404 naming what was looked for.
func notFoundAs(err error, what, key string) error {
	if e := ErrorOf(err); e != nil && e.Status == http.StatusNotFound {
		key = problem.Truncate(key, 100)
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: what, Message: what + " " + key + " not found",
			Format: "%s %s not found", Args: []any{problem.Word(what), key}}
	}
	return err
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
