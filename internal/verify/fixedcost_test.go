package verify

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
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

// TestKeyHint: after a test of a repository holding several keys, the worker knows which
// key its password opens, and restic tries that key first in the next tests
// (RESTIC_KEY_HINT), where it tried the keys in listing order, one key derivation each. The
// proof: a broken key object named to be listed first, which restic cannot get past without
// the hint. A hint naming another password's key still works.
func TestKeyHint(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	b.worker(nil)
	f := b.newRepo("restic/hinted", false, false, Policy{})
	keys, err := b.restic.KeyList(b.ctx, b.memberRepo(b.bucket, "restic/hinted", f.password))
	if err != nil {
		t.Fatal(err)
	}
	var ours, members string
	for _, k := range keys {
		if k.Current {
			ours = k.ID
		} else {
			members = k.ID
		}
	}
	if ours == "" || members == "" {
		t.Fatalf("keys: %+v", keys)
	}
	hintPath := filepath.Join(b.svc.cfg.CacheDir, "repository-"+strconv.FormatInt(f.repo.ID, 10), keyHintFile)
	recorded := func() string {
		repo, err := RepositoryGetByID(b.ctx, b.pool, f.repo.ID)
		if err != nil {
			t.Fatal(err)
		}
		return readKeyHint(filepath.Dir(hintPath), repo.PasswordSetAt)
	}

	if run := b.test(f); run.Status != StatusPassed {
		t.Fatalf("first test: %s", describe(run))
	}
	// Learnt after the outcome.
	for deadline := time.Now().Add(2 * time.Minute); recorded() != ours; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the key's id was not learnt: %q, want %q", recorded(), ours)
		}
	}

	// A key object listed before every other, which restic cannot read: without the hint
	// every restic run stops there.
	broken := path.Join("restic/hinted/keys", strings.Repeat("0", 64))
	if _, err := b.root.PutObject(b.ctx, b.bucket, broken, strings.NewReader("not a key"), 9, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// (The content-hash level rightly reports the object: its content is not its hash.)
	run := b.test(f)
	for _, name := range []string{LevelFreshness, LevelSample, LevelCanary} {
		if l := level(run, name); l.Outcome != OutcomePassed {
			t.Fatalf("with the hint, the broken key is never read: %s", describe(run))
		}
	}
	if err := b.root.RemoveObject(b.ctx, b.bucket, broken, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// A wrong hint (the member's key, another password) costs a try and still opens.
	repo, _ := RepositoryGetByID(b.ctx, b.pool, f.repo.ID)
	wrong, _ := json.Marshal(keyHint{KeyID: members, PasswordSetAt: *repo.PasswordSetAt})
	if err := os.WriteFile(hintPath, wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	if recorded() != members {
		t.Fatal("the wrong hint is not the one recorded: the test proves nothing")
	}
	if run := b.test(f); run.Status != StatusPassed {
		t.Fatalf("with a wrong hint: %s", describe(run))
	}
	// A hint learnt for another password is not used.
	if got := readKeyHint(filepath.Dir(hintPath), ptr(repo.PasswordSetAt.Add(time.Second))); got != "" {
		t.Errorf("a hint of another password: %q", got)
	}
}

// TestSampleRemovalOverlapsTheLastLevels: when no full restore follows, the restored
// sample is removed while the last levels run, not before them; the outcome is still
// recorded only once it is gone.
func TestSampleRemovalOverlapsTheLastLevels(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	removing, release := make(chan string, 1), make(chan struct{})
	b.svc.removeSample = func(dir string) error {
		removing <- dir
		<-release
		return os.RemoveAll(dir)
	}
	b.worker(nil)
	f := b.newRepo("restic/removal", false, false, Policy{})
	run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	select {
	case dir = <-removing:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the sample was never removed: %s", describe(b.wait(run.ID, time.Second)))
	}
	if dirSize(dir) == 0 {
		t.Fatal("no restored sample: the test proves nothing")
	}
	// The removal is held: the last level (content-hash) still runs to its end.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		cur, err := RunGetByID(b.ctx, b.pool, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Final() {
			close(release)
			t.Fatalf("the outcome was recorded before the sample was removed: %s", describe(cur))
		}
		if slices.ContainsFunc(cur.Progress.LevelsDone, func(l LevelDone) bool { return l.Level == LevelContentHash }) {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("the last levels waited for the sample's removal: %+v", cur.Progress)
		}
	}
	time.Sleep(200 * time.Millisecond) // the outcome waits: give a wrong implementation the time to record it
	if cur, _ := RunGetByID(b.ctx, b.pool, run.ID); cur.Final() {
		close(release)
		t.Fatalf("the outcome was recorded before the sample was removed: %s", describe(cur))
	}
	close(release)
	done := b.wait(run.ID, 3*time.Minute)
	if done.Status != StatusPassed {
		t.Fatalf("test: %s", describe(done))
	}
	if n := dirSize(b.scratch); n != 0 {
		t.Errorf("restored data left when the outcome showed: %d bytes", n)
	}
}

// TestSlotConnectionIsReused: the island slot of consecutive tests is held on the same
// PostgreSQL connection (a finished test leaves it idle), where every test connected anew
// (a backend forked before each test).
func TestSlotConnectionIsReused(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	removing, release := make(chan string), make(chan struct{})
	b.svc.removeSample = func(dir string) error {
		removing <- dir
		<-release
		return os.RemoveAll(dir)
	}
	b.worker(nil)
	f := b.newRepo("restic/slot", false, false, Policy{})
	// holder is the backend holding the island's slot while a test is held in its sample's
	// removal.
	holder := func() int32 {
		var run Run
		for { // River completes the previous job just after its outcome: until then "run now" answers with it
			r, created, err := b.svc.RunNow(b.ctx, f.repo.ID)
			if err != nil {
				t.Fatal(err)
			}
			if created {
				run = r
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case <-removing:
		case <-time.After(3 * time.Minute):
			t.Fatalf("the test did not reach its sample's removal: %s", describe(b.wait(run.ID, time.Second)))
		}
		var pid int32
		err := b.pool.QueryRow(b.ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1 AND objid = $2`,
			slotClass, b.islandID).Scan(&pid)
		release <- struct{}{}
		if err != nil {
			t.Fatalf("the island slot's holder: %v", err)
		}
		if done := b.wait(run.ID, 3*time.Minute); done.Status != StatusPassed {
			t.Fatalf("test: %s", describe(done))
		}
		return pid
	}
	first := holder()
	if second := holder(); second != first {
		t.Errorf("the slot's connection was not reused: backend %d, then %d", first, second)
	}
}
