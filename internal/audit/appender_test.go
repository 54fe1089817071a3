package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

// appendWith records entry i of a test with ctx (an Appender in it or not): personal every
// third, about a member every other one when m is set.
func appendWith(ctx context.Context, tx pgx.Tx, i int, m *int64) error {
	e := audit.Entry{Action: "test.append", TargetType: "thing", TargetID: fmt.Sprint(i), Details: map[string]any{"i": i}}
	switch {
	case i%3 == 0:
		e.Action, e.TargetType = "user.update", "user" // personal (audit_entry_people)
	case m != nil && i%2 == 1:
		e.MemberID, e.Action = m, "vault.create"
	}
	_, err := audit.Record(ctx, tx, e)
	return err
}

// checkLog verifies the log and that its times never go back from one entry to the next.
func (b *bundle) checkLog(t *testing.T, entries int) {
	t.Helper()
	rep, err := audit.Verify(context.Background(), b.pool, b.keys)
	if err != nil || !rep.OK() || rep.Entries != int64(entries) {
		t.Fatalf("verify: %v, %d entries (want %d), %v", err, rep.Entries, entries, rep.Problems)
	}
	var back int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM (
		SELECT at < lag(at) OVER (ORDER BY seq) AS back FROM audit_entries) x WHERE back`).Scan(&back); err != nil || back != 0 {
		t.Fatalf("%d entries earlier than the one before (%v)", back, err)
	}
}

// An Appender writes the tree the database would (Verify recomputes it from the leaves),
// the database appending only the log's first entry: every other append is predicted.
func TestAnAppenderWritesTheSameTree(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := member(t, b.pool, "alpha")
	a := audit.NewAppender()
	ctx := audit.WithAppender(b.ctx, a)
	const n = 300 // levels up to 8: every shape of trailing ones up to 255
	for i := range n {
		if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return appendWith(ctx, tx, i, &m) }); err != nil {
			t.Fatal(err)
		}
	}
	b.checkLog(t, n)
	if predicted, redone := a.AppendCounts(); predicted != n-1 || redone != 1 {
		t.Fatalf("%d appends predicted, %d by the database; want %d and 1", predicted, redone, n-1)
	}
}

// When the head is not the one an Appender predicted (another process appended, or the
// transaction of its last append rolled back), the database appends, and the Appender
// follows the new head from there.
func TestAnAppenderFollowsAHeadWrittenElsewhere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := audit.NewAppender()
	ctx := audit.WithAppender(b.ctx, a)
	appendIn := func(ctx context.Context, i int, rollback bool) {
		t.Helper()
		errRollback := errors.New("rolled back")
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := appendWith(ctx, tx, i, nil); err != nil {
				return err
			}
			if rollback {
				return errRollback
			}
			return nil
		})
		if err != nil && (!rollback || !errors.Is(err, errRollback)) {
			t.Fatal(err)
		}
	}
	counts := func(wantPredicted, wantRedone int64) {
		t.Helper()
		if p, r := a.AppendCounts(); p != wantPredicted || r != wantRedone {
			t.Fatalf("%d appends predicted, %d by the database; want %d and %d", p, r, wantPredicted, wantRedone)
		}
	}
	for i := range 5 {
		appendIn(ctx, i, false)
	}
	counts(4, 1)
	appendIn(b.ctx, 5, false) // another process (no Appender)
	appendIn(ctx, 6, false)
	appendIn(ctx, 7, false)
	counts(5, 2)
	appendIn(ctx, 8, true) // predicted, then rolled back
	appendIn(ctx, 9, false)
	appendIn(ctx, 10, false)
	counts(7, 3)
	nobody := int64(1 << 40) // an append the database refuses (no such member): nothing is written
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.create", MemberID: &nobody})
		return err
	})
	if err == nil {
		t.Fatal("an entry about a member that does not exist was appended")
	}
	appendIn(ctx, 11, false)
	appendIn(ctx, 12, false)
	counts(8, 4)
	b.checkLog(t, 12)
}

// An entry's time is the process's clock, but never earlier than the entry before (whose
// time may come from the database's clock or another process's), and only within a second of
// the database's clock: a process whose clock is an hour off appends through the database,
// with the database's time.
func TestAnAppendersTimesStayWithTheDatabaseClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := audit.NewAppender()
	ctx := audit.WithAppender(b.ctx, a)
	appendN := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return appendWith(ctx, tx, i, nil) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := func(wantPredicted, wantRedone int64) {
		t.Helper()
		if p, r := a.AppendCounts(); p != wantPredicted || r != wantRedone {
			t.Fatalf("%d appends predicted, %d by the database; want %d and %d", p, r, wantPredicted, wantRedone)
		}
	}
	appendN(0, 3)
	counts(2, 1)
	// An hour late: stamped with the head's time, within a second of the database's clock.
	audit.SetAppenderClock(a, func() time.Time { return time.Now().Add(-time.Hour) })
	appendN(3, 4)
	counts(3, 1)
	time.Sleep(1200 * time.Millisecond)
	appendN(4, 5) // the head's time is now over a second behind the database's clock
	counts(3, 2)
	audit.SetAppenderClock(a, func() time.Time { return time.Now().Add(time.Hour) }) // an hour early
	appendN(5, 7)
	counts(3, 4)
	var outside int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries
		WHERE NOT at BETWEEN (SELECT at FROM audit_entries WHERE seq = 0) AND clock_timestamp()`).Scan(&outside); err != nil || outside != 0 {
		t.Fatalf("%d entries of a process whose clock is off by an hour stamped outside the database's clock (%v)", outside, err)
	}
	var late bool // entry 4: the database's time, not entry 3's
	if err := b.pool.QueryRow(ctx, `SELECT (SELECT at FROM audit_entries WHERE seq = 4) - (SELECT at FROM audit_entries WHERE seq = 3)
		> interval '1 second'`).Scan(&late); err != nil || !late {
		t.Fatalf("entry 4 is stamped within a second of entry 3, slept 1.2 s apart (%v)", err)
	}
	audit.SetAppenderClock(a, time.Now)
	appendN(7, 9)
	counts(4, 5) // the second miss in a row left entry 6 to the database, entry 7 reads the head back: predictions go on
	b.checkLog(t, 9)
}

// Two processes' Appenders and a process without one append concurrently, some
// transactions appending twice (the second without waiting for a turn: the transaction
// holds the lock), once more in a savepoint (which waits for its turn at most a while, then
// queues on the lock in PostgreSQL: it cannot tell it holds the lock), and some rolled back:
// every append completes, the log verifies and its times never go back. The first process's
// writers start on their own (their predictions follow one another), then all at once (the
// others' appends in between make most predictions wrong: the database redoes those).
func TestAppendersOfSeveralProcessesInterleave(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := member(t, b.pool, "alpha")
	a1, a2 := audit.NewAppender(), audit.NewAppender()
	ctxs := []context.Context{audit.WithAppender(b.ctx, a1), audit.WithAppender(b.ctx, a1), audit.WithAppender(b.ctx, a1),
		audit.WithAppender(b.ctx, a2), audit.WithAppender(b.ctx, a2), b.ctx}
	const perWriter = 60
	deadline, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang fails, it does not block the suite
	defer cancel()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		committed int
		errs      []error
	)
	errRollback := errors.New("rolled back")
	// The first process's three writers append 10 times each on their own first (their
	// predictions follow one another), then everybody at once.
	var alone sync.WaitGroup
	alone.Add(3)
	for w, ctx := range ctxs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				select {
				case <-deadline.Done():
					stop()
				case <-ctx.Done():
				}
			}()
			if w >= 3 {
				alone.Wait()
			}
			for i := range perWriter {
				if w < 3 && i == 10 {
					alone.Done()
				}
				k := w*perWriter + i
				n := 1
				err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
					if err := appendWith(ctx, tx, k, &m); err != nil {
						return err
					}
					switch i % 10 {
					case 3: // twice in one transaction
						n = 2
						return appendWith(ctx, tx, k, &m)
					case 5: // then in a savepoint
						n = 2
						return pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return appendWith(ctx, sp, k, &m) })
					case 7:
						return errRollback
					}
					return nil
				})
				mu.Lock()
				switch {
				case err == nil:
					committed += n
				case !errors.Is(err, errRollback):
					errs = append(errs, fmt.Errorf("writer %d, append %d: %w", w, i, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	b.checkLog(t, committed)
	if p, r := a1.AppendCounts(); p < 10 || r == 0 {
		t.Errorf("appender 1: %d appends predicted, %d by the database: the test did not exercise predictions", p, r)
	}
	if p, r := a2.AppendCounts(); p+audit.AppenderMissed(a2) == 0 || r == 0 {
		t.Errorf("appender 2: %d appends predicted, %d predictions missed, %d by the database: the test did not exercise predictions",
			p, audit.AppenderMissed(a2), r)
	}
}

// Two processes appending in turn make every prediction fail: after two failures in a row an
// Appender stops reading the head back for one append, then two, four… (up to 64), so that
// its appends cost what the database's do, with a try at predicting now and then.
func TestAppendersOfProcessesAppendingInTurnStopPredicting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a1, a2 := audit.NewAppender(), audit.NewAppender()
	const n = 200
	for i := range n {
		ctx := audit.WithAppender(b.ctx, a1)
		if i%2 == 1 {
			ctx = audit.WithAppender(b.ctx, a2)
		}
		if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return appendWith(ctx, tx, i, nil) }); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range []*audit.Appender{a1, a2} {
		if missed := audit.AppenderMissed(a); missed < 2 || missed > 10 {
			t.Errorf("appender %d: %d predictions tried and missed over %d appends, want 2 to 10", i+1, missed, n/2)
		}
	}
	b.checkLog(t, n)
}
