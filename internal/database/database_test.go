package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigratedDatabaseIsCurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	if err := database.CheckCurrent(ctx, pool); err != nil {
		t.Fatalf("fresh test database not current: %v", err)
	}
	st, err := database.MigrateStatus(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending() || len(st.Migrations) == 0 || !st.Migrations[len(st.Migrations)-1].Applied {
		t.Fatalf("status = %+v", st)
	}
}

func TestOutOfDateSchemaIsRefusedWithMigrateHint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	if _, err := pool.Exec(ctx, `UPDATE `+database.VersionTable+` SET version = version - 1`); err != nil {
		t.Fatal(err)
	}
	err := database.CheckCurrent(ctx, pool)
	if !errors.Is(err, database.ErrSchemaBehind) || !strings.Contains(err.Error(), "archipelago migrate up") {
		t.Fatalf("err = %v, want ErrSchemaBehind with the migrate hint", err)
	}
}

func TestMigrateUpFromEmptyAndAgainIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	// Wipe the schema to an empty database, then migrate from scratch twice.
	if _, err := pool.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	if v, _ := database.CurrentVersion(ctx, pool); v != 0 {
		t.Fatalf("empty database at version %d", v)
	}
	var applied []string
	river := 0
	if err := database.MigrateUp(ctx, pool, func(_ int32, name string) {
		if strings.HasPrefix(name, "river job queue") {
			river++
			return
		}
		applied = append(applied, name)
	}); err != nil {
		t.Fatal(err)
	}
	latest, _ := database.LatestVersion()
	if int32(len(applied)) != latest || river == 0 {
		t.Fatalf("applied %d migrations (want %d) and %d river migrations (want some)", len(applied), latest, river)
	}
	if err := database.CheckCurrent(ctx, pool); err != nil {
		t.Fatalf("after migrate up: %v", err)
	}
	applied = nil
	if err := database.MigrateUp(ctx, pool, func(_ int32, name string) { applied = append(applied, name) }); err != nil || len(applied) != 0 {
		t.Fatalf("second run applied %v, err %v", applied, err)
	}
}

func TestOpenUnreachableNamesTheVariable(t *testing.T) {
	t.Parallel()
	_, err := database.Open(context.Background(), "postgres://nobody@127.0.0.1:1/x", 2e9)
	if err == nil || !strings.Contains(err.Error(), "ARCHIPELAGO_DATABASE_URL") {
		t.Fatalf("err = %v", err)
	}
	var _ *pgxpool.Pool
}

// TestOpenTurnsJITOff: Archipelago's connections run without PostgreSQL's JIT (it cost 8 of
// the 10 s of a /metrics aggregate at 10,000 members, docs/scale.md); a jit in the URL wins.
func TestOpenTurnsJITOff(t *testing.T) {
	t.Parallel()
	url := testenv.DBURL(t)
	for _, c := range []struct{ url, want string }{{url, "off"}, {url + sep(url) + "jit=on", "on"}} {
		pool, err := database.Open(t.Context(), c.url, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var jit string
		err = pool.QueryRow(t.Context(), `SHOW jit`).Scan(&jit)
		pool.Close()
		if err != nil || jit != c.want {
			t.Fatalf("%s: jit = %q (%v), want %q", c.url, jit, err, c.want)
		}
	}
}

// TestAStatementWhoseClientLeftStopsAtTheServer: when a statement's context ends (a caller
// that went away, e.g. a federation report's client), the pool's connection is closed and
// the server stops the statement (pgx sends a cancel request for a connection it closes on
// a cancelled context) instead of running it to its end for nobody.
func TestAStatementWhoseClientLeftStopsAtTheServer(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(t.Context(), testenv.DBURL(t), 10*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var pid int32
	if err := pool.QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	watch := testenv.DB(t) // pg_stat_activity shows every database's sessions
	running := func() bool {
		var n int
		if err := watch.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(600)%'`, pid).Scan(&n); err != nil {
			t.Error(err)
			return false
		}
		return n > 0
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		defer cancel() // once the statement runs at the server
		for deadline := time.Now().Add(2 * time.Minute); !running() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if _, err := pool.Exec(ctx, `SELECT pg_sleep(600)`); err == nil {
		t.Fatal("the statement outlived its context")
	}
	// A minute is generous on a loaded machine and far from the statement's 10 minutes.
	for deadline := time.Now().Add(time.Minute); running(); {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after its client left, server process %d still runs the statement", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}
