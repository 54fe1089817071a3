package oidclogin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/chatons/archipelago/internal/identity"
)

// Paths of the portal's OIDC routes (internal/server/routes.go).
const (
	StartPath    = "/login/oidc"
	CallbackPath = "/login/oidc/callback"
)

// FlowCookie holds one login's state, nonce and PKCE verifier, sealed, between the start
// of the flow and the callback. It is sent only to the OIDC paths.
const FlowCookie = "archipelago_oidc_flow"

// HintCookie keeps the ID token of an OIDC session, sealed, for the provider's logout
// (id_token_hint). It is sent only to /logout.
const HintCookie = "archipelago_oidc_hint"

// FlowTTL is how long a person has to log in at the provider.
const FlowTTL = 10 * time.Minute

// Config configures a Client.
type Config struct {
	Issuer       string   // the provider's issuer URL (discovery: Issuer + /.well-known/openid-configuration)
	ClientID     string   // Archipelago's client id at the provider
	ClientSecret string   // its secret (never logged)
	Name         string   // the provider's name on the login button ("Keycloak", "Chatons SSO")
	Scopes       []string // asked for; "openid" is always added
	GroupsClaim  string   // the claim holding the person's groups; a dotted path reads nested objects
	RoleMap      RoleMap
	// PublicURL is the portal's URL: the redirect URI is PublicURL + CallbackPath, and the
	// provider sends people back to PublicURL + "/login" after logging out.
	PublicURL string
	// CookieKey (32 bytes) seals the flow cookie; Secure marks it Secure (https).
	CookieKey []byte
	Secure    bool
	// HTTPClient talks to the provider; nil: a client with a 15 s timeout.
	HTTPClient *http.Client
	Now        func() time.Time
}

// Errors of a login through the provider, each shown to the person as its own sentence.
var (
	// ErrDenied: the provider answered with an error (the person refused consent, the
	// provider refused them, or the request was wrong).
	ErrDenied = errors.New("the identity provider did not log you in")
	// ErrState: the callback's state does not match this browser's flow cookie (missing,
	// expired, or from another login).
	ErrState = errors.New("this login did not start in this browser, or took too long")
	// ErrUnreachable: the provider could not be reached (discovery, token or userinfo).
	ErrUnreachable = errors.New("the identity provider cannot be reached")
	// ErrToken: the provider's answer did not verify (code exchange refused, ID token
	// signature, issuer, audience, expiry or nonce).
	ErrToken = errors.New("the identity provider's answer could not be verified")
)

// Client runs logins through one provider. Discovery happens at first use (and is retried
// until it succeeds), so Archipelago starts while its provider is down.
type Client struct {
	cfg  Config
	log  *slog.Logger
	aead cipher.AEAD

	mu         sync.Mutex
	provider   *oidc.Provider
	endSession string
}

// New checks the configuration; it does not contact the provider.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.PublicURL == "" {
		return nil, errors.New("oidclogin: issuer, client id and public URL are required")
	}
	if len(cfg.CookieKey) != 32 {
		return nil, errors.New("oidclogin: the cookie key must be 32 bytes")
	}
	if cfg.Name == "" {
		cfg.Name = "SSO"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if !containsString(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	block, err := aes.NewCipher(cfg.CookieKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, log: log, aead: aead}, nil
}

// Name is the provider's name shown on the login button.
func (c *Client) Name() string { return c.cfg.Name }

// FormOrigins are the origins the login form may be redirected to: the issuer's and, once
// discovered, the authorization endpoint's (for the page's Content-Security-Policy).
func (c *Client) FormOrigins() []string {
	out := []string{origin(c.cfg.Issuer)}
	c.mu.Lock()
	p := c.provider
	c.mu.Unlock()
	if p != nil {
		if o := origin(p.Endpoint().AuthURL); o != "" && o != out[0] {
			out = append(out, o)
		}
	}
	return out
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// RedirectURL is the callback URL to register at the provider.
func (c *Client) RedirectURL() string { return c.cfg.PublicURL + CallbackPath }

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient)
}

// discover returns the provider, fetching its discovery document the first time.
func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := oidc.NewProvider(c.ctx(ctx), c.cfg.Issuer)
	if err != nil {
		c.log.WarnContext(ctx, "oidc discovery failed", "issuer", c.cfg.Issuer, "err", err)
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrUnreachable, c.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	c.provider, c.endSession = p, extra.EndSession
	return p, nil
}

func (c *Client) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: c.RedirectURL(), Scopes: c.cfg.Scopes}
}

// flow is the sealed content of the flow cookie.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"x"`
}

// Start begins a login: it returns the provider's authorization URL to send the browser
// to, and the flow cookie to set. next is where the person goes after logging in (a path
// of this site, already checked by the caller).
func (c *Client) Start(ctx context.Context, next string) (string, *http.Cookie, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return "", nil, err
	}
	f := flow{State: random(24), Nonce: random(24), Verifier: oauth2.GenerateVerifier(), Next: next,
		Expires: c.cfg.Now().Add(FlowTTL).Unix()}
	val, err := c.seal(f)
	if err != nil {
		return "", nil, err
	}
	u := c.oauth(p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return u, c.cookie(val, int(FlowTTL/time.Second)), nil
}

// ClearCookie is the cookie that removes the flow cookie.
func (c *Client) ClearCookie() *http.Cookie { return c.cookie("", -1) }

func (c *Client) cookie(val string, maxAge int) *http.Cookie {
	// SameSite=Lax: the provider's redirect back is a top-level GET from another site.
	return &http.Cookie{Name: FlowCookie, Value: val, Path: StartPath, MaxAge: maxAge, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode}
}

// Finish completes a login from the provider's redirect: it checks the state against the
// browser's flow cookie, exchanges the code (with the PKCE verifier), verifies the ID
// token (signature, issuer, audience, expiry, nonce, access-token hash), reads the claims
// (the ID token's, completed by the userinfo endpoint) and applies the role map. It
// returns who the person is, what the claims grant, and where to send them next.
func (c *Client) Finish(ctx context.Context, r *http.Request) (Result, error) {
	var none Result
	q := r.URL.Query()
	ck, err := r.Cookie(FlowCookie)
	if err != nil || ck.Value == "" {
		return none, fmt.Errorf("%w: no flow cookie", ErrState)
	}
	f, err := c.open(ck.Value)
	if err != nil {
		return none, fmt.Errorf("%w: %w", ErrState, err)
	}
	if c.cfg.Now().Unix() > f.Expires {
		return none, fmt.Errorf("%w: the flow expired", ErrState)
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return none, fmt.Errorf("%w: state mismatch", ErrState)
	}
	if e := q.Get("error"); e != "" {
		return Result{Next: f.Next}, fmt.Errorf("%w: %s: %s", ErrDenied, clip(e, 64), clip(q.Get("error_description"), 200))
	}
	code := q.Get("code")
	if code == "" {
		return Result{Next: f.Next}, fmt.Errorf("%w: no code in the callback", ErrToken)
	}
	p, err := c.discover(ctx)
	if err != nil {
		return Result{Next: f.Next}, err
	}
	ctx = c.ctx(ctx)
	tok, err := c.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Result{Next: f.Next}, fmt.Errorf("%w: token endpoint: %s %s", ErrToken, re.ErrorCode, clip(re.ErrorDescription, 200))
		}
		return Result{Next: f.Next}, fmt.Errorf("%w: token endpoint: %w", ErrUnreachable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Result{Next: f.Next}, fmt.Errorf("%w: no ID token in the token response", ErrToken)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.cfg.Now}).Verify(ctx, raw)
	if err != nil {
		return Result{Next: f.Next}, fmt.Errorf("%w: ID token: %w", ErrToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return Result{Next: f.Next}, fmt.Errorf("%w: ID token nonce mismatch", ErrToken)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Result{Next: f.Next}, fmt.Errorf("%w: access token hash: %w", ErrToken, err)
		}
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Result{Next: f.Next}, fmt.Errorf("%w: ID token claims: %w", ErrToken, err)
	}
	// Many providers put email and groups at the userinfo endpoint only.
	if _, ok := lookup(claims, c.cfg.GroupsClaim); !ok || claims["email"] == nil {
		if p.UserInfoEndpoint() != "" {
			ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				return Result{Next: f.Next}, fmt.Errorf("%w: userinfo: %w", ErrUnreachable, err)
			}
			if ui.Subject != idt.Subject {
				return Result{Next: f.Next}, fmt.Errorf("%w: userinfo subject differs from the ID token's", ErrToken)
			}
			more := map[string]any{}
			if err := ui.Claims(&more); err == nil {
				for k, v := range more {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	}
	groups := stringsOf(claims, c.cfg.GroupsClaim)
	fed, roles := c.cfg.RoleMap.Apply(groups)
	email, _ := claims["email"].(string)
	name, _ := claims["name"].(string)
	if name == "" {
		name, _ = claims["preferred_username"].(string)
	}
	return Result{Identity: identity.ExternalIdentity{Issuer: idt.Issuer, Subject: idt.Subject, Email: email,
		EmailVerified: truthy(claims["email_verified"]), Name: name, FederationAdmin: fed, Roles: roles, Groups: groups},
		Next: f.Next, IDToken: raw}, nil
}

// Result is a finished login at the provider.
type Result struct {
	Identity identity.ExternalIdentity // who, and what the claims grant
	Next     string                    // where to send the person (a path of this site)
	IDToken  string                    // the raw ID token, kept only for the logout hint
}

// HintCookieFor keeps the ID token for the provider's logout (sealed, HttpOnly, sent only
// to /logout) until the session expires; nil when it is too large for a cookie (the
// logout then names the client instead).
func (c *Client) HintCookieFor(idToken string, expires time.Time) *http.Cookie {
	val, err := c.sealBytes([]byte(idToken), HintCookie)
	if err != nil || len(val) > 3500 {
		return nil
	}
	return &http.Cookie{Name: HintCookie, Value: val, Path: "/logout", Expires: expires, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode}
}

// ClearHintCookie removes the logout hint.
func (c *Client) ClearHintCookie() *http.Cookie {
	return &http.Cookie{Name: HintCookie, Value: "", Path: "/logout", MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode}
}

// LogoutURL is where to send a person who logged out of an OIDC session, so the provider
// ends its own session too (RP-initiated logout), then sends them back to the login page;
// ok is false when the provider advertises no end_session_endpoint (or is unreachable).
func (c *Client) LogoutURL(ctx context.Context, r *http.Request) (string, bool) {
	if _, err := c.discover(ctx); err != nil {
		return "", false
	}
	c.mu.Lock()
	end := c.endSession
	c.mu.Unlock()
	u, err := url.Parse(end)
	if end == "" || err != nil {
		return "", false
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	q.Set("post_logout_redirect_uri", c.cfg.PublicURL+"/login")
	if ck, err := r.Cookie(HintCookie); err == nil {
		if tok, err := c.openBytes(ck.Value, HintCookie); err == nil {
			q.Set("id_token_hint", string(tok))
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}

func (c *Client) seal(f flow) (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return c.sealBytes(b, FlowCookie)
}

func (c *Client) open(s string) (flow, error) {
	var f flow
	plain, err := c.openBytes(s, FlowCookie)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(plain, &f)
}

// sealBytes encrypts and authenticates b for the cookie named purpose (AES-256-GCM).
func (c *Client) sealBytes(b []byte, purpose string) (string, error) {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, b, []byte(purpose))), nil
}

func (c *Client) openBytes(s, purpose string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < c.aead.NonceSize() {
		return nil, errors.New("malformed cookie")
	}
	plain, err := c.aead.Open(nil, b[:c.aead.NonceSize()], b[c.aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, errors.New("cookie does not open")
	}
	return plain, nil
}

// lookup reads a claim by name, or by a dotted path into nested objects
// ("realm_access.roles") when no claim has the whole name.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringsOf reads a claim holding a list of strings, or one string.
func stringsOf(claims map[string]any, name string) []string {
	v, _ := lookup(claims, name)
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// truthy reads a boolean claim that some providers send as a string.
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
