package identity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestConcurrentAttemptsAreCountedBeforeTheyAreVerified floods one address with wrong
// logins that all wait for a hashing slot (no 503 to hide behind): the throttle must count
// each attempt when it lets it through, so no more than the address's allowance is ever
// verified, however many arrive at once.
func TestConcurrentAttemptsAreCountedBeforeTheyAreVerified(t *testing.T) {
	t.Parallel()
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	pool, err := pgxpool.New(ctx, testenv.DBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const allowance, n = 10, 40
	ids := identity.New(pool, testenv.Logger(t), identity.Config{JWTKey: []byte("0123456789abcdef0123456789abcdef"),
		Issuer: "http://test", MaxIPFailures: allowance, MaxConcurrentHashes: 1,
		HashWait: 30 * time.Minute, ThrottleWait: 30 * time.Minute})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string]int{}
	)
	for i := range n {
		wg.Go(func() {
			_, err := ids.Login(ctx, fmt.Sprintf("flood-%d@throttle.example", i), "not-the-password", "198.51.100.7", "test")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, identity.ErrThrottled):
				results["throttled"]++
			case errors.Is(err, identity.ErrInvalidCredentials):
				results["invalid"]++
			default:
				results[fmt.Sprint(err)]++
			}
		})
	}
	wg.Wait()
	verified := ids.PasswordVerifications()
	if verified > allowance || results["invalid"] != allowance || results["throttled"] != n-allowance {
		t.Fatalf("%d logins at once from one address (allowance %d): %d passwords verified, results %v", n, allowance, verified, results)
	}
}
