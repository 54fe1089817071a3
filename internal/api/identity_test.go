package api_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func login(env *apptest.Env, email, password string) *apptest.Response {
	return env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/login", Body: map[string]string{"email": email, "password": password}})
}

func TestLoginMeAndLogout(t *testing.T) {
	env, f := apptest.Parallel(t)
	r := login(env, f.AdminA.Email, f.AdminA.Password)
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var tok struct {
		AccessToken, RefreshToken string `json:"-"`
	}
	var raw map[string]any
	r.Decode(t, &raw)
	tok.AccessToken, tok.RefreshToken = raw["access_token"].(string), raw["refresh_token"].(string)

	me := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: tok.AccessToken})
	if me.Status != 200 || !strings.Contains(string(me.Body), `"member_slug":"member-a","member_name":"Member A","role":"admin"`) {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}
	// A refresh gives a working access token.
	rr := env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/refresh", Body: map[string]string{"refresh_token": tok.RefreshToken}})
	if rr.Status != 200 {
		t.Fatalf("refresh: %d %s", rr.Status, rr.Body)
	}
	// Logout revokes the session: its access tokens and refresh token stop working at once.
	if lo := env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/logout", Token: tok.AccessToken}); lo.Status != 204 {
		t.Fatalf("logout: %d %s", lo.Status, lo.Body)
	}
	if me := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: tok.AccessToken}); me.Status != 401 {
		t.Fatalf("me after logout: %d", me.Status)
	}
	if rr := env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/refresh", Body: map[string]string{"refresh_token": tok.RefreshToken}}); rr.Status != 401 {
		t.Fatalf("refresh after logout: %d", rr.Status)
	}
}

func TestBadCredentialsNeverRevealWhetherTheAccountExists(t *testing.T) {
	env, f := apptest.Parallel(t)
	wrong := login(env, f.AdminA.Email, "not-the-password-at-all")
	unknown := login(env, "nobody@nowhere.example", "not-the-password-at-all")
	if wrong.Status != 401 || unknown.Status != 401 {
		t.Fatalf("statuses %d %d", wrong.Status, unknown.Status)
	}
	strip := func(b []byte) string { s := string(b); return s[:strings.Index(s, `"request_id"`)] }
	if strip(wrong.Body) != strip(unknown.Body) {
		t.Fatalf("responses differ:\n%s\n%s", wrong.Body, unknown.Body)
	}
	if r := login(env, "", "x"); r.Status != 400 || r.ErrorField() != "email" {
		t.Fatalf("empty email: %d %s", r.Status, r.Body)
	}
}

func TestRepeatedBadLoginsAreRefused(t *testing.T) {
	env, f := apptest.Parallel(t)
	for i := 0; i < 5; i++ {
		if r := login(env, f.ViewerA.Email, fmt.Sprintf("wrong-password-%02d", i)); r.Status != 401 {
			t.Fatalf("attempt %d: %d", i, r.Status)
		}
	}
	// Now even the right password is refused for a while, and the answer says to wait.
	r := login(env, f.ViewerA.Email, f.ViewerA.Password)
	if r.Status != 429 || r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d %s", r.Status, r.Body)
	}
	// An unknown account is throttled the same way: no enumeration through 429s either.
	for i := 0; i < 5; i++ {
		login(env, "ghost@nowhere.example", fmt.Sprintf("wrong-password-%02d", i))
	}
	if r := login(env, "ghost@nowhere.example", "x-wrong-password"); r.Status != 429 {
		t.Fatalf("unknown account not throttled: %d", r.Status)
	}
	// Failures were audited, never with the password.
	var n int
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_entries WHERE action = 'auth.login_failed'
		AND details::text NOT LIKE '%wrong-password%'`).Scan(&n); err != nil || n < 10 {
		t.Fatalf("audited failures: %d %v", n, err)
	}
}

func TestForgedAndBrokenJWTsAreRefused(t *testing.T) {
	env, f := apptest.Parallel(t)
	key := env.App.Keyring.Derive("jwt-hs256")
	now := time.Now()
	claims := func(mod func(*jwt.RegisteredClaims)) jwt.MapClaims {
		rc := jwt.RegisteredClaims{Issuer: env.App.Cfg.PublicURL, Subject: "1", Audience: jwt.ClaimStrings{identity.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
		mod(&rc)
		m := jwt.MapClaims{"iss": rc.Issuer, "sub": rc.Subject, "aud": []string(rc.Audience), "sid": 1}
		if rc.IssuedAt != nil {
			m["iat"] = rc.IssuedAt.Unix()
		}
		if rc.ExpiresAt != nil {
			m["exp"] = rc.ExpiresAt.Unix()
		}
		return m
	}
	sign := func(c jwt.MapClaims, k []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(func(*jwt.RegisteredClaims) {})).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := map[string]string{
		"expired":        sign(claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) }), key),
		"no expiry":      sign(claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }), key),
		"wrong key":      sign(claims(func(*jwt.RegisteredClaims) {}), []byte(strings.Repeat("k", 32))),
		"wrong issuer":   sign(claims(func(c *jwt.RegisteredClaims) { c.Issuer = "https://evil.example" }), key),
		"wrong audience": sign(claims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} }), key),
		"issued later":   sign(claims(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }), key),
		"alg none":       none,
		"garbled":        f.AdminA.Access[:len(f.AdminA.Access)-6] + "AAAAAA",
		"not a jwt":      "hello",
		"bad api token":  "arch_abcdefgh_nope",
	}
	for name, tok := range cases {
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: tok})
		if r.Status != 401 || r.ErrorCode() != "unauthenticated" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// The genuine token works, proving the cases above fail for their own reason.
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: f.AdminA.Access}); r.Status != 200 {
		t.Fatalf("genuine token: %d", r.Status)
	}
}

func TestAPITokensAreScopedShownOnceAndRevocable(t *testing.T) {
	env, f := apptest.Parallel(t)
	create := func(a *apptest.Actor, body map[string]any) *apptest.Response {
		return env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: a.Access, Body: body})
	}
	r := create(f.AdminA, map[string]any{"name": "provisioning", "member": "member-a", "role": "admin"})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var created struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	r.Decode(t, &created)
	if !strings.HasPrefix(created.Token, "arch_") {
		t.Fatalf("token %q lacks its prefix", created.Token)
	}
	// Never shown again: not in the list, not in the detail, not in the database, not in the audit log.
	list := env.Do(apptest.Req{Method: "GET", Path: "/v1/tokens", Token: f.AdminA.Access})
	get := env.Do(apptest.Req{Method: "GET", Path: "/v1/tokens/" + strconv.FormatInt(created.ID, 10), Token: f.AdminA.Access})
	secret := created.Token[len("arch_")+9:]
	for _, b := range [][]byte{list.Body, get.Body} {
		if strings.Contains(string(b), secret) {
			t.Fatal("the token secret is shown again")
		}
	}
	var leaks int
	env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_entries WHERE details::text LIKE '%'||$1||'%'`, secret).Scan(&leaks)
	if leaks != 0 {
		t.Fatal("the token secret is in the audit log")
	}

	// The token works, and sees only member A.
	me := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: created.Token})
	if me.Status != 200 || !strings.Contains(string(me.Body), `"via":"api_token"`) || strings.Contains(string(me.Body), "member-b") {
		t.Fatalf("me with token: %d %s", me.Status, me.Body)
	}
	// An API token creates no tokens, for its member or any other (refused before any lookup).
	if r := create(&apptest.Actor{Access: created.Token}, map[string]any{"name": "x", "member": "member-b"}); r.Status != 403 {
		t.Fatalf("token of A on member B: %d %s", r.Status, r.Body)
	}
	bTok := create(f.AdminB, map[string]any{"name": "b-token", "member": "member-b"})
	var bt struct{ ID int64 }
	bTok.Decode(t, &bt)
	if r := env.Do(apptest.Req{Method: "GET", Path: fmt.Sprintf("/v1/tokens/%d", bt.ID), Token: created.Token}); r.Status != 404 {
		t.Fatalf("token of A reading B's token: %d", r.Status)
	}
	if r := env.Do(apptest.Req{Method: "DELETE", Path: fmt.Sprintf("/v1/tokens/%d", bt.ID), Token: f.AdminA.Access}); r.Status != 404 {
		t.Fatalf("admin of A revoking B's token: %d", r.Status)
	}

	// Never more than the creator has: a viewer cannot mint an admin token.
	if r := create(f.ViewerA, map[string]any{"name": "escalate", "member": "member-a", "role": "admin"}); r.Status != 400 || r.ErrorField() != "role" {
		t.Fatalf("viewer minting admin: %d %s", r.Status, r.Body)
	}
	for name, body := range map[string]map[string]any{
		"no name":       {"member": "member-a"},
		"bad role":      {"name": "x", "member": "member-a", "role": "owner"},
		"past expiry":   {"name": "x", "member": "member-a", "expires_at": time.Now().Add(-time.Hour)},
		"no member":     {"name": "x"},
		"unknown field": {"name": "x", "member": "member-a", "scope": "all"},
	} {
		if r := create(f.AdminA, body); r.Status != 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}

	// Revoked: refused at once.
	if r := env.Do(apptest.Req{Method: "DELETE", Path: fmt.Sprintf("/v1/tokens/%d", created.ID), Token: f.AdminA.Access}); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: created.Token}); r.Status != 401 {
		t.Fatalf("revoked token: %d", r.Status)
	}
}

func TestExpiredAPITokenIsRefused(t *testing.T) {
	env, f := apptest.Parallel(t)
	r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: f.AdminA.Access,
		Body: map[string]any{"name": "short", "member": "member-a", "expires_at": time.Now().Add(time.Hour)}})
	var c struct {
		ID    int64
		Token string
	}
	r.Decode(t, &c)
	if _, err := env.App.Pool.Exec(t.Context(), `UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: c.Token}); r.Status != 401 {
		t.Fatalf("expired token: %d", r.Status)
	}
}

func TestCookieAuthenticatedChangesNeedTheCSRFHeader(t *testing.T) {
	env, f := apptest.Parallel(t)
	cookie := map[string]string{"Cookie": "archipelago_session=" + f.AdminA.Session}
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Header: cookie}); r.Status != 200 {
		t.Fatalf("cookie read: %d", r.Status)
	}
	body := map[string]any{"name": "x", "member": "member-a"}
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Header: cookie, Body: body}); r.Status != 403 {
		t.Fatalf("cookie write without CSRF: %d %s", r.Status, r.Body)
	}
	withCSRF := map[string]string{"Cookie": cookie["Cookie"], "X-CSRF-Token": f.AdminA.CSRF}
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Header: withCSRF, Body: body}); r.Status != 201 {
		t.Fatalf("cookie write with CSRF: %d %s", r.Status, r.Body)
	}
}
