package audit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
)

// Entry times come from one clock, the database's, read under the append lock: they never
// go back from one entry to the next, however many processes append at once (a time taken
// by the writer before it waits for the lock would), and they lie within the database's
// clock around the appends.
func TestEntryTimesComeFromTheDatabaseClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var dbBefore, dbAfter time.Time
	if err := b.pool.QueryRow(b.ctx, `SELECT clock_timestamp()`).Scan(&dbBefore); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
					_, err := audit.Record(b.ctx, tx, audit.Entry{Action: "test.clock", Details: map[string]any{"w": w, "i": i}})
					if err == nil {
						time.Sleep(time.Millisecond) // hold the lock a little: others queue behind it
					}
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := b.pool.QueryRow(b.ctx, `SELECT clock_timestamp()`).Scan(&dbAfter); err != nil {
		t.Fatal(err)
	}
	rows, err := b.pool.Query(b.ctx, `SELECT seq, at FROM audit_entries ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		seq  int64
		at   time.Time
		prev time.Time
		n    int
	)
	if _, err := pgx.ForEachRow(rows, []any{&seq, &at}, func() error {
		if at.Before(prev) {
			t.Errorf("entry %d at %s is earlier than the entry before it (%s)", seq, at.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano))
		}
		if at.Before(dbBefore) || at.After(dbAfter) {
			t.Errorf("entry %d at %s is outside the database's clock during the appends [%s, %s]", seq, at, dbBefore, dbAfter)
		}
		prev = at
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 200 {
		t.Fatalf("%d entries, want 200", n)
	}
	if rep := b.verify(t); !rep.OK() {
		t.Fatalf("the log does not verify: %v", rep.Problems)
	}

	// The time is read under the lock, not when the writer asks: an append that waits behind
	// a transaction holding the lock is stamped after that transaction's last statement.
	holding, release := make(chan struct{}), make(chan struct{})
	var heldUntil time.Time
	done := make(chan error, 1)
	go func() {
		done <- pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			if _, err := audit.Record(b.ctx, tx, audit.Entry{Action: "test.hold"}); err != nil {
				close(holding)
				return err
			}
			close(holding)
			<-release
			return tx.QueryRow(b.ctx, `SELECT clock_timestamp()`).Scan(&heldUntil)
		})
	}()
	<-holding
	var waiterAt time.Time
	waiter := make(chan error, 1)
	go func() {
		waiter <- pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			seq, err := audit.Record(b.ctx, tx, audit.Entry{Action: "test.wait"})
			if err != nil {
				return err
			}
			return tx.QueryRow(b.ctx, `SELECT at FROM audit_entries WHERE seq = $1`, seq).Scan(&waiterAt)
		})
	}()
	// The holder goes on only once the waiter is seen waiting for the lock (whatever the
	// machine's speed: a generous deadline, polled).
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var waiting int
		if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second append is not waiting for the lock after 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; err != nil {
		t.Fatal(err)
	}
	if waiterAt.Before(heldUntil) {
		t.Fatalf("the waiting append is stamped %s, before the lock holder's last statement at %s: its time was not read under the lock",
			waiterAt.Format(time.RFC3339Nano), heldUntil.Format(time.RFC3339Nano))
	}
}

// A client that sends the lock statement and the append in one simple-protocol message
// (ARCHIPELAGO_DATABASE_URL with default_query_exec_mode=simple_protocol) has them stamped
// with that message's time, taken before the lock: the append statement never stamps an
// entry earlier than the one before it, so times still never go back, and the log verifies.
func TestEntryTimesNeverGoBackOverTheSimpleProtocol(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.pool.Config()
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 15 {
				err := pgx.BeginFunc(b.ctx, pool, func(tx pgx.Tx) error {
					// (a personal entry now and then: the other statement)
					e := audit.Entry{Action: "test.simple", Details: map[string]any{"w": w, "i": i}}
					if i%5 == 0 {
						e.Action = "auth.login"
					}
					_, err := audit.Record(b.ctx, tx, e)
					if err == nil {
						time.Sleep(time.Millisecond) // hold the lock a little: others queue behind it
					}
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n, back int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*), count(*) FILTER (WHERE at < lag) FROM
		(SELECT at, lag(at) OVER (ORDER BY seq) FROM audit_entries) e`).Scan(&n, &back); err != nil {
		t.Fatal(err)
	}
	if n != 120 || back != 0 {
		t.Fatalf("%d entries (want 120), %d earlier than the entry before them", n, back)
	}
	if rep := b.verify(t); !rep.OK() {
		t.Fatalf("the log does not verify: %v", rep.Problems)
	}
}
