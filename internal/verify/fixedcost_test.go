package verify

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// TestDuplicateRunNowSendsNoInsertNotification: "run now" on a repository whose test is
// already waiting answers with that test and inserts nothing, so River sends no insert
// notification. River notifies its workers at most once per FetchCooldown, duplicates
// included: a duplicate's notification swallowed the next real test's, which then waited
// for River's poll (up to a second) before a worker took it.
func TestDuplicateRunNowSendsNoInsertNotification(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	// An inserting client only (no worker takes the test), with the shortest notification
	// window, so that only the behaviour under test can keep a notification from being sent.
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{FetchCooldown: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(inserter)
	f := b.newRepo("restic/duplicate", true, false, Policy{})

	listener, err := pgx.Connect(b.ctx, b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	// River's channel is the schema's (riverpgxv5's PGNotifyMany).
	var insertChannel string
	if err := listener.QueryRow(b.ctx, `SELECT current_schema() || '.river_insert'`).Scan(&insertChannel); err != nil {
		t.Fatal(err)
	}
	if _, err := listener.Exec(b.ctx, `LISTEN `+pgx.Identifier{insertChannel}.Sanitize()+`; LISTEN duplicate_marker`); err != nil {
		t.Fatal(err)
	}
	// next is the channel of the next notification (commit order).
	next := func() string {
		ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
		defer cancel()
		n, err := listener.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return n.Channel
	}

	run, created, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil || !created {
		t.Fatalf("run now: created %v, %v", created, err)
	}
	if ch := next(); ch != insertChannel {
		t.Fatalf("the new test's notification: %q, want %q (the test proves nothing)", ch, insertChannel)
	}
	time.Sleep(10 * time.Millisecond) // past the client's 1 ms notification window

	again, created, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil || created || again.ID != run.ID {
		t.Fatalf("second run now: run %d (want %d), created %v, %v", again.ID, run.ID, created, err)
	}
	// A marker committed after the duplicate: every notification the duplicate sent is
	// delivered before it.
	if _, err := b.pool.Exec(b.ctx, `NOTIFY duplicate_marker`); err != nil {
		t.Fatal(err)
	}
	if ch := next(); ch != "duplicate_marker" {
		t.Fatalf("a duplicate run now sent a %s notification: it swallows the next test's", ch)
	}
}
