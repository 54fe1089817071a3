package notify_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/notify"
)

// runFixture inserts an island, a vault and n repositories of the bundle's member, each
// with one queued restore test run, and returns the runs' ids.
func (b *bundle) runFixture(t *testing.T, n int) []int64 {
	t.Helper()
	var island, vault int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region, replication_factor)
		VALUES ('north', 'http://127.0.0.1:1', 'x', 'http://127.0.0.1:2', 'garage', 1) RETURNING id`).Scan(&island); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, quota_bytes, placement)
		VALUES ($1, $2, 'backups', 'libre-nuage-backups', 1000000, 'automatic') RETURNING id`, b.member, island).Scan(&vault); err != nil {
		t.Fatal(err)
	}
	var runs []int64
	for i := range n {
		var repo, run int64
		if err := b.pool.QueryRow(b.ctx, `INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token)
			VALUES ($1, $2, $3, $4, 'blind', 'archipelago-canary-abcdefghijklmnopqrstuvwxyz') RETURNING id`,
			b.member, vault, "repo "+strconv.Itoa(i), "restic/r"+strconv.Itoa(i)).Scan(&repo); err != nil {
			t.Fatal(err)
		}
		if err := b.pool.QueryRow(b.ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode,
			rpo_target_seconds, rto_target_seconds) VALUES ($1, $2, $3, 'schedule', 'blind', 86400, 3600) RETURNING id`,
			repo, b.member, island).Scan(&run); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

// finish records a run as failed, stamped at, with its outbox row, as the verify
// worker's run-finishing transaction does.
func finish(b *bundle, tx pgx.Tx, run int64, at time.Time) error {
	if _, err := tx.Exec(b.ctx, `UPDATE restore_test_runs SET status = 'failed', reason = 'damaged pack', started_at = $2,
		finished_at = $2 WHERE id = $1`, run, at); err != nil {
		return err
	}
	return notify.OutboxAdd(b.ctx, tx, notify.SourceRestoreRun, run, nil)
}

func (b *bundle) notifiedRuns(t *testing.T) []int64 {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT (detail->>'run_id')::bigint FROM notify_events WHERE kind = $1 ORDER BY id`, notify.KindRestoreFailed)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLateCommittedRunIsStillNotified: a worker stamps its run's finish time, then
// takes long to commit; meanwhile another run, stamped later, commits and is scanned.
// The former cursor on (finished_at, id) had moved past the first run when it finally
// committed: its failure was never notified. The outbox consumes rows in transaction
// order once no older transaction is running, so both are notified, the earlier first.
func TestLateCommittedRunIsStillNotified(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	runs := b.runFixture(t, 2)
	early, late := runs[0], runs[1]
	stamp := time.Now().Add(-time.Minute)

	slow, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback(b.ctx) }()
	if err := finish(b, slow, early, stamp); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error { return finish(b, tx, late, stamp.Add(30*time.Second)) }); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.ScanSources(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.notifiedRuns(t); len(got) > 0 {
		t.Fatalf("notified %v while an older transaction was still running", got)
	}
	if err := slow.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // another test's transaction may hold the horizon back a moment
	for {
		if err := b.svc.ScanSources(b.ctx); err != nil {
			t.Fatal(err)
		}
		got := b.notifiedRuns(t)
		if len(got) == 2 {
			if !slices.Equal(got, []int64{early, late}) {
				t.Fatalf("notified %v, want %v (transaction order)", got, []int64{early, late})
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notified runs %v, want both %d (committed late) and %d", got, early, late)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Consumed once: scanning again notifies nothing more.
	if err := b.svc.ScanSources(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.notifiedRuns(t); len(got) != 2 {
		t.Fatalf("notified %v after a second scan", got)
	}
}

// TestScanLostMidwayLosesNothing: the database fails while the scan is emitting (here a
// trigger refuses the event, as a restart would kill the transaction): nothing is
// consumed, and the next scan emits the event exactly once.
func TestScanLostMidwayLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, notify.Config{})
	run := b.runFixture(t, 1)[0]
	if err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error { return finish(b, tx, run, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(b.ctx, `
		CREATE FUNCTION test_fail_event() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'simulated database failure during the scan'; END $$;
		CREATE TRIGGER test_fail_event BEFORE INSERT ON notify_events FOR EACH ROW EXECUTE FUNCTION test_fail_event();`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for { // until the scan reaches the row (another test's transaction may hold it back a moment)
		err := b.svc.ScanSources(b.ctx)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scan never reached the outbox row")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := b.pool.Exec(b.ctx, `DROP TRIGGER test_fail_event ON notify_events`); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.ScanSources(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.ScanSources(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.notifiedRuns(t); !slices.Equal(got, []int64{run}) {
		t.Fatalf("notified %v after the failed scan, want %d once", got, run)
	}
}
