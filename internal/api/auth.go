package api

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/identity"
)

// SessionCookie is the portal's session cookie; it holds the session secret.
const SessionCookie = "archipelago_session"

// CSRFHeader carries the session's CSRF token on state-changing API calls authenticated by
// the portal cookie (API clients using bearer tokens do not need it).
const CSRFHeader = "X-CSRF-Token"

// Authenticate resolves the caller from a bearer token (API token or access JWT) or the
// portal session cookie and puts the principal in the context. Requests without
// credentials pass through anonymous; bad credentials are refused with 401.
func (a *API) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var (
			p   *identity.Principal
			err error
		)
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, tok, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "Bearer") || tok == "" {
				a.Fail(w, r, Unauthenticated("the Authorization header must be `Bearer <token>`"))
				return
			}
			if strings.HasPrefix(tok, identity.APITokenPrefix) {
				p, err = a.identity.TokenPrincipal(r.Context(), tok)
			} else {
				p, err = a.identity.AccessPrincipal(r.Context(), tok)
			}
			if database.Unavailable(err) {
				a.Fail(w, r, err) // 503: the token may well be good
				return
			}
			if err != nil {
				a.log.DebugContext(r.Context(), "bearer credential refused", "err", err)
				a.Fail(w, r, Unauthenticated("invalid, expired or revoked token"))
				return
			}
		} else if c, cerr := r.Cookie(SessionCookie); cerr == nil && c.Value != "" {
			p, err = a.identity.SessionPrincipal(r.Context(), c.Value)
			if database.Unavailable(err) {
				a.Fail(w, r, err) // 503, not a logged-out page
				return
			}
			if err != nil {
				p = nil // an expired cookie is simply anonymous
			} else if r.Method != http.MethodGet && r.Method != http.MethodHead && !identity.CheckCSRF(p, r.Header.Get(CSRFHeader)) {
				a.Fail(w, r, Forbidden("a cookie-authenticated change needs the %s header", CSRFHeader))
				return
			}
		}
		if p != nil {
			r = r.WithContext(identity.WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// RequireAuth refuses anonymous requests with 401.
func (a *API) RequireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := identity.PrincipalFrom(r.Context()); !ok {
			a.Fail(w, r, Unauthenticated("authentication required: send `Authorization: Bearer <token>`"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// principal returns the caller; routes behind RequireAuth always have one.
func principal(r *http.Request) *identity.Principal {
	p, _ := identity.PrincipalFrom(r.Context())
	return p
}

// check asks the authorizer and converts its answer.
func check(p *identity.Principal, act authz.Action, o authz.Object) error {
	return authz.Check(p, act, o)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken      string     `json:"access_token"`
	TokenType        string     `json:"token_type"`
	ExpiresIn        int        `json:"expires_in"`
	RefreshToken     string     `json:"refresh_token,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_expires_at,omitempty"`
}

// Login answers POST /v1/auth/login.
func (a *API) Login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Email) == "" {
		return Invalid("email", "is required")
	}
	if req.Password == "" {
		return Invalid("password", "is required")
	}
	res, err := a.identity.Login(r.Context(), req.Email, req.Password, clientIP(r), r.UserAgent())
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		return Unauthenticated("invalid email or password")
	case errors.Is(err, identity.ErrThrottled):
		w.Header().Set("Retry-After", "300")
		return err
	case errors.Is(err, identity.ErrBusy):
		w.Header().Set("Retry-After", "2")
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeRateLimited, Message: err.Error()}
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, tokenResponse{AccessToken: res.AccessToken, TokenType: "Bearer",
		ExpiresIn: int(time.Until(res.AccessExpires).Seconds()), RefreshToken: res.SessionSecret, RefreshExpiresAt: &res.SessionExpire})
	return nil
}

// Refresh answers POST /v1/auth/refresh.
func (a *API) Refresh(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return Invalid("refresh_token", "is required")
	}
	tok, exp, err := a.identity.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return Unauthenticated("the refresh token is invalid, expired or revoked")
	}
	WriteJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(time.Until(exp).Seconds())})
	return nil
}

// Logout answers POST /v1/auth/logout: the caller's session is revoked.
func (a *API) Logout(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if p.Via == "api_token" {
		return Invalid("Authorization", "an API token has no session; revoke it with DELETE /v1/tokens/{id}")
	}
	return noContent(w, a.identity.Logout(r.Context(), p))
}

type meResponse struct {
	User        identity.User        `json:"user"`
	Memberships []identity.MemberRef `json:"memberships"`
	Via         string               `json:"via"`
	Token       *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"token,omitempty"`
}

// Me answers GET /v1/me: who is calling, with which roles.
func (a *API) Me(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	u, err := a.identity.UserByID(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	u.FederationAdmin = p.FederationAdmin // an API token never carries federation powers
	out := meResponse{User: u, Memberships: p.Members, Via: p.Via}
	if out.Memberships == nil {
		out.Memberships = []identity.MemberRef{}
	}
	if p.TokenID != 0 {
		out.Token = &struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		}{p.TokenID, p.TokenName}
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// pathID parses a numeric path parameter; a malformed id is simply not found.
func pathID(r *http.Request, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, NotFound("object")
	}
	return id, nil
}
