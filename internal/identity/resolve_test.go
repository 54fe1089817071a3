package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/testenv"
)

// resolveSetup is a member, an admin of it logged in (session and access token) and an API
// token of theirs, on a database of the test's own, with a pool whose statements are counted.
type resolveSetup struct {
	pool    *pgxpool.Pool
	count   *testenv.Statements
	ids     *identity.Service
	login   identity.LoginResult
	token   string
	tokenID identity.APIToken
}

func setupResolve(t *testing.T, cacheTTL time.Duration) resolveSetup {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	var s resolveSetup
	s.pool, s.count = testenv.CountedDB(t)
	s.ids = identity.New(s.pool, testenv.Logger(t), identity.Config{JWTKey: []byte("0123456789abcdef0123456789abcdef"),
		Issuer: "http://test", PrincipalCacheTTL: cacheTTL})
	const email, password = "admin@resolve.example", "correct-horse-battery-staple"
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var member int64
		if err := tx.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('resolve', 'Resolve') RETURNING id`).Scan(&member); err != nil {
			return err
		}
		u, err := s.ids.UserCreate(ctx, tx, identity.NewUser{Email: email, Password: password})
		if err != nil {
			return err
		}
		return s.ids.MembershipSet(ctx, tx, u.ID, member, identity.RoleAdmin)
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.login, err = s.ids.Login(ctx, email, password, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	s.tokenID, s.token, err = s.ids.TokenCreate(identity.WithPrincipal(ctx, s.login.Principal), s.login.Principal,
		identity.NewToken{Name: "t", MemberID: s.login.Principal.Members[0].ID, Role: identity.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resolvers are the three credentials of the setup and how each is resolved.
func (s resolveSetup) resolvers() map[string]func(context.Context) (*identity.Principal, error) {
	return map[string]func(context.Context) (*identity.Principal, error){
		"api token": func(ctx context.Context) (*identity.Principal, error) { return s.ids.TokenPrincipal(ctx, s.token) },
		"session": func(ctx context.Context) (*identity.Principal, error) {
			return s.ids.SessionPrincipal(ctx, s.login.SessionSecret)
		},
		"access token": func(ctx context.Context) (*identity.Principal, error) {
			return s.ids.AccessPrincipal(ctx, s.login.AccessToken)
		},
	}
}

// TestResolvingACredentialCostsOneStatement: with the cache off, each kind of credential is
// resolved (credential, user and memberships) in one SQL statement; with it on, a repeated
// resolve costs none.
func TestResolvingACredentialCostsOneStatement(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{-1, time.Hour} {
		s := setupResolve(t, ttl)
		for name, resolve := range s.resolvers() {
			if _, err := resolve(t.Context()); err != nil { // the first use may record last_used/last_seen
				t.Fatalf("%s: %v", name, err)
			}
			before := s.count.Count()
			p, err := resolve(t.Context())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(p.Members) != 1 || p.Members[0].Slug != "resolve" || p.Email != "admin@resolve.example" {
				t.Fatalf("%s: principal %+v", name, p)
			}
			want := int64(1)
			if ttl > 0 {
				want = 0
			}
			if got := s.count.Count() - before; got != want {
				t.Errorf("cache ttl %s, %s: %d statements, want %d", ttl, name, got, want)
			}
		}
		if tp, _ := s.ids.TokenPrincipal(t.Context(), s.token); tp.Members[0].Role != identity.RoleViewer || tp.TokenID != s.tokenID.ID {
			t.Fatalf("token principal %+v", tp)
		}
	}
}

// TestRevocationThroughTheServiceIsImmediateDespiteTheCache: a cached token or session stops
// working the moment it is revoked through the Service.
func TestRevocationThroughTheServiceIsImmediateDespiteTheCache(t *testing.T) {
	t.Parallel()
	s := setupResolve(t, time.Hour)
	ctx := identity.WithPrincipal(t.Context(), s.login.Principal)
	for name, resolve := range s.resolvers() {
		if _, err := resolve(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := s.ids.TokenRevoke(ctx, s.tokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ids.TokenPrincipal(ctx, s.token); err == nil {
		t.Fatal("revoked API token still accepted")
	}
	if err := s.ids.Logout(ctx, s.login.Principal); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ids.SessionPrincipal(ctx, s.login.SessionSecret); err == nil {
		t.Fatal("logged-out session still accepted")
	}
	if _, err := s.ids.AccessPrincipal(ctx, s.login.AccessToken); err == nil {
		t.Fatal("access token of a logged-out session still accepted")
	}
}

// TestAPasswordChangeEndsCachedCredentialsAtOnce: after a password change, the person's other
// sessions and their API tokens are refused at once, even when this process has them cached
// (an hour's cache here), while the session that made the change goes on.
func TestAPasswordChangeEndsCachedCredentialsAtOnce(t *testing.T) {
	t.Parallel()
	s := setupResolve(t, time.Hour)
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	other, err := s.ids.Login(ctx, "admin@resolve.example", "correct-horse-battery-staple", "192.0.2.2", "another device")
	if err != nil {
		t.Fatal(err)
	}
	cached := map[string]func() (*identity.Principal, error){
		"the API token":           func() (*identity.Principal, error) { return s.ids.TokenPrincipal(t.Context(), s.token) },
		"the other session":       func() (*identity.Principal, error) { return s.ids.SessionPrincipal(t.Context(), other.SessionSecret) },
		"the other session's JWT": func() (*identity.Principal, error) { return s.ids.AccessPrincipal(t.Context(), other.AccessToken) },
	}
	for name, resolve := range cached {
		if _, err := resolve(); err != nil {
			t.Fatalf("%s before the change: %v", name, err)
		}
	}
	p := s.login.Principal
	changed, err := s.ids.ChangePassword(identity.WithPrincipal(ctx, p), p, "correct-horse-battery-staple", "a-brand-new-long-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if changed.SessionsEnded != 1 || changed.TokensRevoked != 1 {
		t.Errorf("changed = %+v, want 1 session ended and 1 token revoked", changed)
	}
	for name, resolve := range cached {
		if _, err := resolve(); err == nil {
			t.Errorf("%s is still accepted right after the password change", name)
		}
	}
	if _, err := s.ids.SessionPrincipal(t.Context(), s.login.SessionSecret); err != nil {
		t.Errorf("the session that changed the password: %v", err)
	}
}

// TestRevocationByAnotherProcessTakesEffectWithinTheCacheTTL: a revocation this process did
// not make (another server, or SQL) is seen once the cached entry expires.
func TestRevocationByAnotherProcessTakesEffectWithinTheCacheTTL(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	s := setupResolve(t, ttl)
	for name, resolve := range s.resolvers() {
		if _, err := resolve(t.Context()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := s.pool.Exec(t.Context(), `UPDATE api_tokens SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), `UPDATE sessions SET revoked_at = now()`); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for name, resolve := range s.resolvers() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := resolve(t.Context()); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepted 30 s after its revocation", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Each entry was cached before the revocation, so none can outlive it by more than the
	// TTL; the bound is checked loosely (scheduling delays on a busy machine).
	if d := time.Since(revokedAt); d > ttl+10*time.Second {
		t.Fatalf("revocation took %s to take effect (ttl %s)", d, ttl)
	}
}
