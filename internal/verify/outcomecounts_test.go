package verify

import (
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestFederationOutcomeCountsAreKept: the restore-tests page's outcome counts over the whole
// federation read restore_outcome_deltas (migration 026), never the per-member summary; after
// tests pass and fail (concurrently, in opposite directions, while reads fold the deltas),
// repositories are deleted and added and a member's view is asked, the counts equal a recount
// from the repositories and their latest runs, and a read that finds many deltas folds them
// into a row per outcome.
func TestFederationOutcomeCountsAreKept(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 40, VaultsPerMember: 2, Days: 2}); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// finishSQL records a finished test of a repository with this outcome, as the worker does
	// (the run, then last_run_id).
	const finishSQL = `WITH run AS (INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, reason,
			queued_at, started_at, finished_at, snapshot_time, rpo_target_seconds, rto_target_seconds)
		SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', $2, 'test', now(), now(), now(), now(), 93600, 86400
		FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id WHERE r.id = $1 RETURNING id)
		UPDATE restic_repositories SET last_run_id = (SELECT id FROM run) WHERE id = $1`
	var ids []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM restic_repositories`).Scan(&ids); err != nil {
		t.Fatal(err)
	}

	recount := func(t *testing.T, members []int64) map[string]int {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT coalesce(lr.status, 'untested'), count(*)::bigint FROM restic_repositories r
			LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
			WHERE r.deleted_at IS NULL AND ($1::bigint[] IS NULL OR r.member_id = ANY($1)) GROUP BY 1`, members)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		var (
			k string
			n int
		)
		if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error { out[k] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// counted reads the federation's counts inside a transaction and says how many rows it
	// read from the per-member summary and the repositories, as PostgreSQL counted them.
	counted := func(t *testing.T) (map[string]int, int64) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		read := func() int64 {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT sum(pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid))::bigint
				FROM pg_class c WHERE c.relname IN ('restore_summary', 'restic_repositories', 'members')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := read()
		got, err := OutcomeCounts(ctx, tx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got, read() - before
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		got, rows := counted(t)
		if want := recount(t, nil); !maps.Equal(got, want) {
			t.Errorf("%s: the federation's counts %v, a recount says %v", when, got, want)
		}
		if rows != 0 {
			t.Errorf("%s: the federation's counts read %d rows of the per-member summary or the repositories", when, rows)
		}
		members := []int64{ids[0]}
		if err := pool.QueryRow(ctx, `SELECT array_agg(DISTINCT member_id) FROM restic_repositories WHERE id = ANY($1)`,
			ids[:5]).Scan(&members); err != nil {
			t.Fatal(err)
		}
		got, err := OutcomeCounts(ctx, pool, members)
		if err != nil {
			t.Fatal(err)
		}
		if want := recount(t, members); !maps.Equal(got, want) {
			t.Errorf("%s: members %v: counts %v, a recount says %v", when, members, got, want)
		}
	}
	check(t, "seeded")

	// Tests finish: failed, error, warning, passed; a repository is deleted, one loses its
	// runs (never tested), one is added.
	for i, status := range []string{"failed", "error", "warning", "passed", "failed"} {
		exec(finishSQL, ids[i], status)
	}
	exec(`UPDATE restic_repositories SET deleted_at = now() WHERE id = $1`, ids[5])
	exec(`UPDATE restic_repositories SET last_run_id = NULL WHERE id = $1`, ids[6])
	exec(`INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token)
		SELECT member_id, vault_id, 'added', 'added/path', 'blind', 'archipelago-canary-aaaaaaaaaaaaaaaaaaaaaaaaaa'
		FROM restic_repositories WHERE id = $1`, ids[7])
	check(t, "after tests, a deletion and an addition")

	// Concurrent tests that move outcomes in opposite directions (each flips its own
	// repository between passed and failed, half of them starting from failed) while folds
	// run: none may fail, and the counts stay exact.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 3 {
		wg.Go(func() {
			for range 10 {
				if err := FoldOutcomeDeltas(ctx, pool); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for g := range 8 {
		wg.Go(func() {
			id := ids[10+g]
			for n := range 15 {
				status := []string{"passed", "failed"}[(n+g)%2]
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, finishSQL, id, status)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("repository %d, test %d (%s): %w", id, n, status, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	check(t, "after concurrent tests")

	// Many changes since the last fold: a read sums them, then folds them.
	for n := range outcomeFoldAbove {
		exec(finishSQL, ids[20+n%10], []string{"passed", "failed", "error"}[n%3])
	}
	deltas := func() (n int) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM restore_outcome_deltas`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := deltas(); n <= outcomeFoldAbove {
		t.Fatalf("%d deltas after %d changes of outcome", n, outcomeFoldAbove)
	}
	check(t, "before the fold") // inside a transaction rolled back: its fold is undone
	if _, err := OutcomeCounts(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	if n := deltas(); n > 5 {
		t.Errorf("%d deltas after a read that found more than %d: not folded", n, outcomeFoldAbove)
	}
	check(t, "after the fold")
}
