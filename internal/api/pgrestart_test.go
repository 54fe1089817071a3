package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestPostgresRestartWhileServing: PostgreSQL is stopped under a serving Archipelago
// (fast shutdown: sessions terminated, as in a restart). Every API call that needs the
// database answers at once with 503 database_unavailable and Retry-After (never a 500,
// never a hang), /readyz says not ready, and once PostgreSQL is back the same process
// serves again without being restarted.
func TestPostgresRestartWhileServing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(pg.Stop)
	url, err := pg.CreateDatabase(ctx, "archipelago")
	if err != nil {
		t.Fatal(err)
	}
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_DATABASE_URL", url), apptest.WithEnv("ARCHIPELAGO_AUTO_MIGRATE", "true"))
	f := env.Fixture()
	calls := []apptest.Req{
		{Method: http.MethodGet, Path: "/v1/members", Token: f.FedAdmin.Access},
		{Method: http.MethodGet, Path: "/v1/vaults", Token: f.AdminA.Access},
		{Method: http.MethodPost, Path: "/v1/members", Token: f.FedAdmin.Access, Body: map[string]any{"slug": "during-outage", "name": "During"}},
	}
	if res := env.Do(calls[0]); res.Status != http.StatusOK {
		t.Fatalf("before the restart: %d %s", res.Status, res.Body)
	}

	t.Log("halting PostgreSQL")
	if err := pg.Halt(false); err != nil {
		t.Fatalf("halt: %v", err)
	}
	t.Log("PostgreSQL halted")
	for round := range 3 { // the pool's idle connections died with the server, and new ones are refused
		for _, c := range calls {
			c.NoValidate = true // 503 is the answer of every route when the database is down
			start := time.Now()
			res := env.Do(c)
			took := time.Since(start)
			if res.Status != http.StatusServiceUnavailable || res.ErrorCode() != "database_unavailable" || res.Header.Get("Retry-After") == "" {
				t.Errorf("round %d: %s %s while PostgreSQL is down: %d (Retry-After %q) %s", round, c.Method, c.Path,
					res.Status, res.Header.Get("Retry-After"), res.Body)
			}
			if took > 30*time.Second { // a refused connection answers at once, whatever the load
				t.Errorf("%s %s took %s while PostgreSQL is down", c.Method, c.Path, took)
			}
		}
	}
	if res := env.Do(apptest.Req{Method: http.MethodGet, Path: "/readyz", NoValidate: true}); res.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while PostgreSQL is down: %d %s", res.Status, res.Body)
	}

	if err := pg.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	t.Log("PostgreSQL resumed")
	deadline := time.Now().Add(2 * time.Minute)
	for _, c := range calls {
		for {
			c.NoValidate = false
			res := env.Do(c)
			if res.Status < 300 {
				break
			}
			if res.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("%s %s after PostgreSQL came back: %d %s", c.Method, c.Path, res.Status, res.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if res := env.Do(apptest.Req{Method: http.MethodGet, Path: "/readyz", NoValidate: true}); res.Status != http.StatusOK {
		t.Errorf("/readyz after the restart: %d %s", res.Status, res.Body)
	}
	t.Log("served again")
}
