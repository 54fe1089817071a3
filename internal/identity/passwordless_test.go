package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestAPasswordlessAccountAnswersLikeAnUnknownOne: a person created by an external (OIDC)
// login has no password. A password login with that email must be refused like any wrong
// password, after the same work (one argon2id verification, as for an unknown email): a
// refusal without hashing would answer in microseconds instead of a fraction of a second,
// telling anyone who signs in through the identity provider.
func TestAPasswordlessAccountAnswersLikeAnUnknownOne(t *testing.T) {
	t.Parallel()
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	pool, err := pgxpool.New(ctx, testenv.DBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ids := identity.New(pool, testenv.Logger(t), identity.Config{JWTKey: []byte("0123456789abcdef0123456789abcdef"),
		Issuer: "http://test", MaxConcurrentHashes: 1, HashWait: 30 * time.Minute, ThrottleWait: 30 * time.Minute})
	const email = "oidc-only@passwordless.example"
	if _, err := ids.ExternalLogin(ctx, identity.ExternalIdentity{Issuer: "https://idp.example", Subject: "s-1",
		Email: email, EmailVerified: true, Name: "OIDC only", FederationAdmin: true}, "192.0.2.1", "test"); err != nil {
		t.Fatalf("external login: %v", err)
	}
	for _, c := range []struct{ who, email string }{
		{"an unknown email", "nobody@passwordless.example"},
		{"a passwordless account", email},
	} {
		before := ids.PasswordVerifications()
		_, err := ids.Login(ctx, c.email, "!oidc", "192.0.2.1", "test")
		if !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Fatalf("password login to %s: %v, want ErrInvalidCredentials", c.who, err)
		}
		if n := ids.PasswordVerifications() - before; n != 1 {
			t.Errorf("password login to %s verified %d passwords, want 1 (the same work whatever the account)", c.who, n)
		}
	}
}
