package selfbackup

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

var snapshotID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// The whole promise: init gives a kit; a backup dumps the database into the vault; the
// restore check loads it into a throwaway PostgreSQL; the kit alone, without the
// coordinator's database or master key, restores it into a fresh PostgreSQL with the data
// there; and the repository passes the ordinary restore test, canary included.
func TestBackupRestoreWithKitAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := b.service(nil)
	kit, err := svc.Init(b.ctx, b.verify, InitInput{VaultID: b.vaultID, AccessKeyID: b.keyID, SecretAccessKey: b.secret})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if _, err := svc.Init(b.ctx, b.verify, InitInput{VaultID: b.vaultID, AccessKeyID: b.keyID, SecretAccessKey: b.secret}); err != ErrConfigured {
		t.Fatalf("a second init: got %v, want ErrConfigured", err)
	}
	// The kit is text the admins keep: it must read back to the same values.
	text := kit.Format()
	parsed, err := ParseKit(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse kit: %v\n%s", err, text)
	}
	if parsed.RepositoryURL != kit.RepositoryURL || parsed.Password != kit.Password || parsed.AccessKeyID != kit.AccessKeyID ||
		parsed.SecretAccessKey != kit.SecretAccessKey || parsed.Region != kit.Region {
		t.Fatalf("kit round trip: %+v != %+v", parsed, kit)
	}
	// Something recognisable in the coordinator's database.
	marker := testenv.Unique("restore-me-")
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO members (slug, name) VALUES ($1, 'Marker')`, marker); err != nil {
		t.Fatal(err)
	}

	res, err := svc.Backup(b.ctx, "test")
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if res.Status != "ok" || !snapshotID.MatchString(res.SnapshotID) || res.Bytes == 0 {
		t.Fatalf("backup result: %+v", res)
	}
	var members int64
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM members`).Scan(&members); err != nil {
		t.Fatal(err)
	}
	if res.Metadata.Rows["members"] != members || res.Metadata.SchemaVersion == 0 {
		t.Fatalf("metadata %+v, %d members", res.Metadata, members)
	}
	snaps := b.coordinatorSnapshots(kit)
	if len(snaps) != 1 || snaps[0].ID != res.SnapshotID || !containsTag(snaps[0].Tags, Tag) {
		t.Fatalf("snapshots after one backup: %+v", snaps)
	}
	var audited int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM audit_entries WHERE action = 'coordinator_backup.backup'
		AND details->>'snapshot_id' = $1 AND details->>'status' = 'ok'`, res.SnapshotID).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("backup audit entries: %d, %v", audited, err)
	}
	var leaked int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM audit_entries WHERE details::text LIKE '%' || $1 || '%'
		OR details::text LIKE '%' || $2 || '%'`, kit.Password, kit.SecretAccessKey).Scan(&leaked); err != nil || leaked != 0 {
		t.Fatalf("audit entries holding a secret: %d, %v", leaked, err)
	}

	// The restore check: a throwaway PostgreSQL, the dump loaded, the counts compared.
	chk, err := svc.RestoreCheck(b.ctx, "test")
	if err != nil {
		t.Fatalf("restore check: %v", err)
	}
	if chk.Status != "ok" || chk.SnapshotID != res.SnapshotID || chk.Metadata.Rows["members"] != members {
		t.Fatalf("restore check result: %+v", chk)
	}
	st, err := StatusGet(b.ctx, b.pool)
	if err != nil || st.Setup == nil || st.LastOK[KindBackup].SnapshotID != res.SnapshotID || st.LastOK[KindRestoreCheck].ID != chk.ID {
		t.Fatalf("status: %+v, %v", st, err)
	}

	// Disaster: only the kit's text is left. A fresh restic (no cache), a fresh PostgreSQL.
	kitOnly, err := ParseKit(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := restic.New(context.Background(), restic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pg, err := pgcluster.Start(t.Context(), pgcluster.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatalf("start a fresh PostgreSQL: %v", err)
	}
	t.Cleanup(pg.Stop)
	target, err := pg.CreateDatabase(t.Context(), "archipelago")
	if err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(t.TempDir(), "kept.dump")
	r, err := Restore(t.Context(), RestoreOptions{Restic: fresh, Repo: kitOnly.Repo(""), DatabaseURL: target, KeepDump: keep})
	if err != nil {
		t.Fatalf("restore with the kit alone: %v", err)
	}
	if r.Snapshot.ID != res.SnapshotID || r.Found.Rows["members"] != members {
		t.Fatalf("restored %+v", r)
	}
	conn, err := pgx.Connect(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(t.Context(), `SELECT name FROM members WHERE slug = $1`, marker).Scan(&name); err != nil || name != "Marker" {
		t.Fatalf("the marker member in the restored database: %q, %v", name, err)
	}
	if fi, err := os.Stat(keep); err != nil || fi.Size() != r.DumpBytes {
		t.Fatalf("kept dump: %v %v", fi, err)
	}

	// The federation's repository is restore-tested like any member's, and passes.
	b.worker()
	run := b.test(st.Setup.RepositoryID)
	if run.Status != verify.StatusPassed {
		t.Fatalf("restore test of the coordinator's repository:\n%s", describe(run))
	}
	if l := level(run, verify.LevelCanary); l.Outcome != verify.OutcomePassed {
		t.Fatalf("canary: %+v", l)
	}

	// Retention: the backup forgets the older snapshot, and the restore tests are told, so
	// their deletion watch does not report it as disappeared.
	svc1 := b.service(func(c *Config) { c.Keep = restic.ForgetPolicy{Last: 1} })
	res2, err := svc1.Backup(b.ctx, "test")
	if err != nil {
		t.Fatalf("second backup: %v", err)
	}
	if len(res2.Forgotten) != 1 || res2.Forgotten[0] != res.SnapshotID {
		t.Fatalf("forgotten: %v, want [%s]", res2.Forgotten, res.SnapshotID)
	}
	if snaps := b.coordinatorSnapshots(kit); len(snaps) != 1 || snaps[0].ID != res2.SnapshotID {
		t.Fatalf("snapshots after retention: %+v", snaps)
	}
	run = b.test(st.Setup.RepositoryID)
	if l := level(run, verify.LevelDeletions); l.Outcome != verify.OutcomePassed || run.Status != verify.StatusPassed {
		t.Fatalf("restore test after retention:\n%s", describe(run))
	}
}

// A dump that fails makes no snapshot and an error naming pg_dump, recorded as failed:
// never a green result.
func TestFailingDumpMakesNoSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := b.service(func(c *Config) { c.LockWaitTimeout = time.Second })
	kit, err := svc.Init(b.ctx, b.verify, InitInput{VaultID: b.vaultID, AccessKeyID: b.keyID, SecretAccessKey: b.secret})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	check := func(name string, err error, res Result, mention string) {
		t.Helper()
		if err == nil || res.Status != "failed" {
			t.Fatalf("%s: got %+v, %v; want a failure", name, res, err)
		}
		if !strings.Contains(err.Error(), "pg_dump") || !strings.Contains(err.Error(), mention) {
			t.Fatalf("%s: the error does not name pg_dump and %q: %v", name, mention, err)
		}
		if snaps := b.coordinatorSnapshots(kit); len(snaps) != 0 {
			t.Fatalf("%s: a failed dump left snapshots: %+v", name, snaps)
		}
		var status, msg string
		if err := b.pool.QueryRow(b.ctx, `SELECT status, error FROM coordinator_backup_runs WHERE id = $1`, res.ID).Scan(&status, &msg); err != nil ||
			status != "failed" || !strings.Contains(msg, "pg_dump") {
			t.Fatalf("%s: recorded run %q %q %v", name, status, msg, err)
		}
	}

	// A real pg_dump failure: a table held in an exclusive lock for the whole backup.
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(b.ctx, `LOCK TABLE notify_channels IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Backup(b.ctx, "test")
	_ = tx.Rollback(context.Background())
	check("locked table", err, res, "notify_channels")

	// A pg_dump that writes half a dump, then fails.
	fake := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nhead -c 100000 /dev/urandom\necho 'pg_dump: error: simulated failure' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err = b.service(func(c *Config) { c.PGDump = fake }).Backup(b.ctx, "test")
	check("half a dump", err, res, "simulated failure")

	st, err := StatusGet(b.ctx, b.pool)
	if err != nil || st.Last[KindBackup].Status != "failed" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, ok := st.LastOK[KindBackup]; ok {
		t.Fatalf("a successful backup in the status: %+v", st.LastOK)
	}
}

// worker runs River with the restore-test workers until the test ends.
func (b *bundle) worker() {
	t := b.t
	workers := river.NewWorkers()
	b.verify.Register(workers)
	c, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Workers: workers, Logger: testenv.Logger(t),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}, jobs.QueueRestore: {MaxWorkers: 2}},
		FetchPollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.verify.UseQueue(c)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
}

// test runs a restore test of the repository now and waits (generously) for its outcome.
func (b *bundle) test(repoID int64) verify.Run {
	b.t.Helper()
	for {
		run, _, err := b.verify.RunNow(b.ctx, repoID)
		if err != nil {
			b.t.Fatalf("run now: %v", err)
		}
		if !run.Final() {
			deadline := time.Now().Add(20 * time.Minute)
			for {
				r, err := verify.RunGetByID(b.ctx, b.pool, run.ID)
				if err != nil {
					b.t.Fatal(err)
				}
				if r.Final() {
					return r
				}
				if time.Now().After(deadline) {
					b.t.Fatalf("restore test %d not finished: %+v", run.ID, r)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func level(run verify.Run, name string) verify.LevelResult {
	for _, l := range run.Levels {
		if l.Level == name {
			return l
		}
	}
	return verify.LevelResult{}
}

func describe(run verify.Run) string {
	var s strings.Builder
	s.WriteString(run.Status + " (" + run.Reason + ")\n")
	for _, l := range run.Levels {
		s.WriteString("  " + l.Level + " " + l.Outcome + " " + l.Summary + "\n")
	}
	return s.String()
}
