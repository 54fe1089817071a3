package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
)

func TestHealthyPassesThenCorruptionFailsNamingThePack(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/web01", false, false, Policy{CheckSubsets: ptr(1)})

	run := b.test(f)
	if run.Status != StatusPassed {
		t.Fatalf("healthy repository: %s", describe(run))
	}
	for _, name := range []string{LevelFreshness, LevelDeletions, LevelIntegrity, LevelSample, LevelCanary} {
		if l := level(run, name); l.Outcome != OutcomePassed {
			t.Errorf("level %s = %s (%s), want passed", name, l.Outcome, l.Summary)
		}
	}
	if l := level(run, LevelFull); l.Outcome != OutcomeSkipped {
		t.Errorf("full restore without a cadence: %s", l.Outcome)
	}
	if run.SampleBytes == nil || *run.SampleBytes == 0 || run.RTOEstimateSeconds == nil || run.ThroughputBps == nil ||
		run.SnapshotAgeSeconds == nil || *run.SnapshotAgeSeconds > 600 || run.CheckSubset != "1/1" {
		t.Errorf("measurements missing: %+v", run)
	}
	log, err := RunLog(b.ctx, b.pool, run.ID)
	if err != nil || !strings.Contains(log, "restore") || strings.Contains(log, f.password) {
		t.Errorf("log: err %v, has restore: %v, leaks password: %v", err, strings.Contains(log, "restore"), strings.Contains(log, f.password))
	}
	if dirs := jobDirs(t, b.scratch); len(dirs) != 0 || dirSize(b.scratch) != 0 {
		t.Errorf("scratch not cleaned: %v, %d bytes", dirs, dirSize(b.scratch))
	}

	// Overwrite the bytes of one data pack: the next test fails and names it.
	pack := corruptOnePack(t, b, f)
	run = b.test(f)
	if run.Status != StatusFailed {
		t.Fatalf("corrupted repository: %s", describe(run))
	}
	if l := level(run, LevelIntegrity); l.Outcome != OutcomeFailed || !strings.Contains(l.Summary, pack[:8]) {
		t.Errorf("integrity level does not name pack %s: %s", pack, describe(run))
	}
	if !strings.Contains(run.Reason, pack[:8]) {
		t.Errorf("reason does not name the pack: %s", run.Reason)
	}
	// A canary the damaged sample restore did not bring back is not the verifier's error.
	if l := level(run, LevelCanary); l.Outcome == OutcomeError {
		t.Errorf("canary level after a damaged sample: %s (%s), want it skipped or judged", l.Outcome, l.Summary)
	}
}

// corruptOnePack overwrites the biggest data pack's bytes (same length) and returns its id.
func corruptOnePack(t *testing.T, b *bundle, f *fixture) string {
	t.Helper()
	var key string
	var size int64
	for obj := range b.root.ListObjects(b.ctx, b.bucket, minio.ListObjectsOptions{Prefix: f.repo.Path + "/data/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if obj.Size > size {
			key, size = obj.Key, obj.Size
		}
	}
	junk := make([]byte, size)
	_, _ = rand.Read(junk)
	if _, err := b.root.PutObject(b.ctx, b.bucket, key, bytes.NewReader(junk), size, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	return key[strings.LastIndex(key, "/")+1:]
}

func TestDeletedSnapshotsAreReported(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/db", false, false, Policy{})
	b.backup(f)
	b.backup(f)
	if run := b.test(f); run.Status != StatusPassed || *run.SnapshotCount != 3 {
		t.Fatalf("first test: %s", describe(run))
	}
	// Someone with write access deletes two snapshots.
	var deleted []string
	for obj := range b.root.ListObjects(b.ctx, b.bucket, minio.ListObjectsOptions{Prefix: f.repo.Path + "/snapshots/", Recursive: true}) {
		if len(deleted) < 2 {
			if err := b.root.RemoveObject(b.ctx, b.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			deleted = append(deleted, obj.Key[strings.LastIndex(obj.Key, "/")+1:])
		}
	}
	run := b.test(f)
	l := level(run, LevelDeletions)
	if run.Status != StatusWarning || l.Outcome != OutcomeWarning || run.DeletedSnapshots != 2 ||
		!strings.Contains(l.Summary, deleted[0][:8]) || !strings.Contains(l.Summary, deleted[1][:8]) {
		t.Fatalf("deletion not reported: %s", describe(run))
	}
	// Reported once: the next test is clean again.
	if run := b.test(f); run.Status != StatusPassed {
		t.Fatalf("third test: %s", describe(run))
	}
}

func TestStaleSnapshotFailsOnRPO(t *testing.T) {
	t.Parallel()
	var skew time.Duration
	b := setup(t, Config{Now: func() time.Time { return time.Now().Add(skew) }})
	b.worker(nil)
	f := b.newRepo("restic/old", false, false, Policy{RPOSeconds: ptr(int64(26 * 3600))})
	skew = 21 * time.Hour // 80 % of the target: warning
	if run := b.test(f); run.Status != StatusWarning || level(run, LevelFreshness).Outcome != OutcomeWarning {
		t.Fatalf("close to the RPO: %s", describe(run))
	}
	skew = 30 * time.Hour
	run := b.test(f)
	if run.Status != StatusFailed || level(run, LevelFreshness).Outcome != OutcomeFailed || !strings.Contains(run.Reason, "26h target") {
		t.Fatalf("stale: %s", describe(run))
	}
	// The other levels still ran: the data is fine.
	if level(run, LevelSample).Outcome != OutcomePassed {
		t.Errorf("sample after a stale freshness: %s", describe(run))
	}
}

func TestWrongPasswordIsAnErrorNotAFailureAndIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 2})
	b.worker(nil)
	f := b.newRepo("restic/pw", false, false, Policy{})
	// The member removed our key and the stored password no longer opens anything.
	if _, err := b.pool.Exec(b.ctx, `UPDATE restic_repositories SET password_sealed = $2 WHERE id = $1`, f.repo.ID,
		b.keyring.SealString(passwordPurpose(f.repo.ID), "not-the-password")); err != nil {
		t.Fatal(err)
	}
	run := b.test(f)
	if run.Status != StatusError || run.Attempt != 2 || !strings.Contains(run.Reason, "password") {
		t.Fatalf("wrong password: %s (attempt %d)", describe(run), run.Attempt)
	}
	log, _ := RunLog(b.ctx, b.pool, run.ID)
	if !strings.Contains(log, "### attempt 1") || !strings.Contains(log, "### attempt 2") {
		t.Errorf("log does not keep both attempts:\n%s", log)
	}
	// Registering a wrong password is refused up front.
	_, err := b.svc.PasswordSet(b.ctx, f.repo.ID, "another-wrong-password", "")
	if fe, ok := err.(*FieldError); !ok || fe.Field != "password" {
		t.Fatalf("wrong password accepted: %v", err)
	}
}

func TestUnreachableIslandIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	b.worker(nil)
	f := b.newRepo("restic/far", false, false, Policy{})
	g := b.newRepo("restic/blindfar", true, false, Policy{})
	if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET s3_endpoint = 'http://127.0.0.1:1' WHERE id = $1`, b.islandID); err != nil {
		t.Fatal(err)
	}
	for _, fx := range []*fixture{f, g} {
		run := b.test(fx)
		// The quick look with the verifier key says so (in full mode before restic is
		// started, which would retry the island for StorageFaultLimit): the reason names the
		// island could not be reached, not a failed restic run.
		l := level(run, LevelFreshness)
		if run.Status != StatusError || l.Outcome != OutcomeError ||
			!strings.Contains(run.Reason, "the island could not be reached (this says nothing about the backup)") {
			t.Errorf("%s on an unreachable island: %s", fx.repo.Mode, describe(run))
		}
	}
}

func TestMissingCanaryFails(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/nocanary", false, true, Policy{})
	run := b.test(f)
	if run.Status != StatusFailed || level(run, LevelCanary).Outcome != OutcomeFailed || !strings.Contains(run.Reason, "canary") {
		t.Fatalf("missing canary: %s", describe(run))
	}
	// A wrong token fails too.
	f.src.write(t, "archipelago-canary.txt", []byte("archipelago-canary-of-someone-else\n"))
	b.backup(f)
	if run := b.test(f); run.Status != StatusFailed || !strings.Contains(level(run, LevelCanary).Summary, "does not hold") {
		t.Fatalf("wrong canary: %s", describe(run))
	}
}

func TestBlindModeChecksFreshnessFromObjects(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/blind", true, false, Policy{})
	run := b.test(f)
	if run.Status != StatusPassed || run.Mode != ModeBlind || *run.SnapshotCount != 1 ||
		level(run, LevelIntegrity).Outcome != OutcomeSkipped || level(run, LevelFreshness).Outcome != OutcomePassed {
		t.Fatalf("blind: %s", describe(run))
	}
	// The verifier key is read-only: writing with it is refused (read-only by construction).
	creds, err := b.svc.cfg.Credentials(b.ctx, b.vaultID)
	if err != nil {
		t.Fatal(err)
	}
	ro := b.memberRepo(b.bucket, "restic/ro-probe", "whatever-password")
	ro.S3AccessKey, ro.S3SecretKey = creds.AccessKeyID, creds.SecretAccessKey
	if _, err := b.restic.Init(b.ctx, ro); err == nil {
		t.Fatal("the verifier key could create a repository")
	}
}

func TestFullRestoreWhenDue(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/full", false, false, Policy{FullRestoreDays: ptr(30)})
	run := b.test(f)
	if run.Status != StatusPassed || level(run, LevelFull).Outcome != OutcomePassed || !run.FullRestore {
		t.Fatalf("full restore: %s", describe(run))
	}
	if run := b.test(f); level(run, LevelFull).Outcome != OutcomeSkipped {
		t.Fatalf("full restore not due yet: %s", describe(run))
	}
}

func TestIslandConcurrencyLimitHolds(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	if _, err := b.pool.Exec(b.ctx, `UPDATE restore_settings SET island_concurrency = 1`); err != nil {
		t.Fatal(err)
	}
	// The slots are advisory locks: the second taker of a one-slot island gets none.
	c1, err := b.svc.acquireSlot(b.ctx, b.islandID, 1)
	if err != nil || c1 == nil {
		t.Fatalf("first slot: %v", err)
	}
	if c2, err := b.svc.acquireSlot(b.ctx, b.islandID, 1); err != nil || c2 != nil {
		t.Fatalf("second slot of a one-slot island: %v %v", c2, err)
	}
	// Releasing frees the slot at once, before the connection closes (River starts the next
	// test immediately; a closed connection's locks go only when its backend has exited).
	if err := unlockSlot(b.ctx, c1); err != nil {
		t.Fatal(err)
	}
	c2, err := b.svc.acquireSlot(b.ctx, b.islandID, 1)
	if err != nil || c2 == nil {
		t.Fatalf("slot still taken after its release: %v", err)
	}
	b.svc.releaseSlot(b.ctx, c2)
	b.svc.releaseSlot(b.ctx, c1)

	var fs []*fixture
	for i := range 3 {
		fs = append(fs, b.newRepo(fmt.Sprintf("restic/c%d", i), false, false, Policy{}))
	}
	b.worker(nil) // three restore workers, one island slot
	var ids []int64
	for _, f := range fs {
		run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	var runs []Run
	for _, id := range ids {
		runs = append(runs, b.wait(id, 3*time.Minute))
	}
	for i, r := range runs {
		if r.Status != StatusPassed {
			t.Errorf("run %d: %s", i, describe(r))
		}
		for j, o := range runs[:i] {
			if r.StartedAt.Before(*o.FinishedAt) && o.StartedAt.Before(*r.FinishedAt) {
				t.Errorf("runs %d and %d overlapped on a one-slot island: [%s, %s] and [%s, %s]", j, i,
					o.StartedAt.Format(time.StampMilli), o.FinishedAt.Format(time.StampMilli),
					r.StartedAt.Format(time.StampMilli), r.FinishedAt.Format(time.StampMilli))
			}
		}
	}
}

// childEnv makes the test binary a restore worker (for the killed-worker test).
const childEnv = "ARCHIPELAGO_VERIFY_CHILD_WORKER"

func childWorker() int {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("CHILD_DB_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	key, _ := hex.DecodeString(os.Getenv("CHILD_KEY"))
	kr, err := seal.NewKeyring(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rr, err := restic.New(ctx, restic.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	beat, _ := time.ParseDuration(os.Getenv("CHILD_HEARTBEAT"))
	svc := New(pool, kr, Config{Restic: rr, ScratchDir: os.Getenv("CHILD_SCRATCH"), CacheDir: os.Getenv("CHILD_CACHE"),
		Worker: "doomed-worker", HeartbeatEvery: beat})
	workers := river.NewWorkers()
	svc.Register(workers)
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Workers: workers, FetchPollInterval: 100 * time.Millisecond,
		Queues: map[string]river.QueueConfig{queueRestore: {MaxWorkers: 1}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	select {} // until killed
}

// doomedTest registers a repository with a big sample, enqueues its test (MaxAttempts
// from cfg) through a client that works no job, starts a real worker process (this test
// binary) that picks it up, and returns once that worker is restoring the sample and has
// written scratch data. kill SIGKILLs the worker alone (its restic, in a process group of
// its own, is orphaned and keeps writing).
func doomedTest(t *testing.T, cfg Config) (b *bundle, f *fixture, run Run, kill func()) {
	t.Helper()
	b = setup(t, cfg)
	f = b.newRepo("restic/big", false, false, Policy{SampleBytes: ptr(int64(1 << 30)), SampleFiles: ptr(1000)})
	big := make([]byte, 150<<20)
	_, _ = rand.Read(big)
	f.src.write(t, "big/blob.bin", big)
	b.backup(f)

	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(inserter)
	run, _, err = b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}

	exe, _ := os.Executable()
	child := exec.Command(exe, "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1", "CHILD_DB_URL="+b.dbURL, "CHILD_KEY="+b.keyHex, "CHILD_SCRATCH="+b.scratch,
		"CHILD_HEARTBEAT="+b.svc.cfg.HeartbeatEvery.String(), "CHILD_CACHE="+b.svc.cfg.CacheDir)
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = io.Discard, &childOut
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL); _ = child.Wait() }) })

	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, err := RunGetByID(b.ctx, b.pool, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == StatusRunning && r.Progress.Level == LevelSample && dirSize(b.scratch) > 1<<20 {
			break
		}
		if r.Final() || time.Now().After(deadline) {
			t.Fatalf("the doomed worker never got to the sample restore: %s\n%s", describe(r), childOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	kill = func() {
		_ = child.Process.Kill() // SIGKILL
		_ = child.Wait()
		if dirSize(b.scratch) == 0 {
			t.Fatal("no scratch data left behind by the killed worker: the test proves nothing")
		}
	}
	return b, f, run, kill
}

// Liveness settings of the killed-worker tests: a dead worker is noticed after 2 s.
var fastLiveness = Config{HeartbeatEvery: 200 * time.Millisecond, HeartbeatTimeout: 2 * time.Second, SweepEvery: time.Second}

// TestKilledWorkerIsRetriedWithOneResultAndNoScratchLeft: a worker SIGKILLed mid-test is
// noticed by its missing heartbeat and its test retried by another worker within the
// liveness bound (River's own rescue would wait for the test timeout, 2 h by default);
// the run gets exactly one result and the dead worker's scratch space is reclaimed.
func TestKilledWorkerIsRetriedWithOneResultAndNoScratchLeft(t *testing.T) {
	t.Parallel()
	b, f, run, kill := doomedTest(t, fastLiveness)
	kill()
	killed := time.Now()

	// A new worker with River's default rescue settings: only the heartbeat can save the test.
	b.worker(&river.Config{PeriodicJobs: b.svc.PeriodicJobs()})
	done := b.wait(run.ID, 3*time.Minute)
	if done.Status != StatusPassed || done.Attempt < 2 || done.Worker == "doomed-worker" {
		t.Fatalf("after the retry: %s (attempt %d, worker %s)", describe(done), done.Attempt, done.Worker)
	}
	t.Logf("retried and finished %s after the kill", time.Since(killed).Round(time.Millisecond))
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM restore_test_runs WHERE repository_id = $1`, f.repo.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d runs recorded for one job (err %v)", n, err)
	}
	if left := dirSize(b.scratch); left != 0 {
		entries, _ := os.ReadDir(b.scratch)
		t.Fatalf("scratch data left after the retry: %d bytes in %v", left, entries)
	}
	if dirs := jobDirs(t, b.scratch); len(dirs) != 0 {
		t.Fatalf("job directories left: %v", dirs)
	}
}

// jobDirs lists the job directories left under a scratch directory (in any process's).
func jobDirs(t *testing.T, scratch string) []string {
	t.Helper()
	var out []string
	procs, _ := os.ReadDir(scratch)
	for _, p := range procs {
		jobs, _ := os.ReadDir(scratch + "/" + p.Name())
		for _, j := range jobs {
			if strings.HasPrefix(j.Name(), "job-") {
				out = append(out, p.Name()+"/"+j.Name())
			}
		}
	}
	return out
}

func dirSize(dir string) int64 {
	var n int64
	_ = walk(dir, func(size int64) { n += size })
	return n
}

func walk(dir string, fn func(int64)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			_ = walk(p, fn)
			continue
		}
		if info, err := e.Info(); err == nil {
			fn(info.Size())
		}
	}
	return nil
}

func TestScheduleDueEnqueuesOncePerRepository(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := setup(t, Config{Now: func() time.Time { return now }})
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(inserter)
	f := b.newRepo("restic/sched", true, false, Policy{Schedule: ptr("@every 6h"), JitterSeconds: ptr(0)})
	// The first test comes FirstTestDelay after the registration, then the schedule rules.
	if f.repo.NextRunAt == nil || !f.repo.NextRunAt.Equal(now.Add(DefaultFirstTestDelay).Truncate(time.Microsecond)) {
		t.Fatalf("next run = %v, want now + %s", f.repo.NextRunAt, DefaultFirstTestDelay)
	}
	if n, err := b.svc.ScheduleDue(b.ctx); err != nil || n != 0 {
		t.Fatalf("nothing due yet: %d %v", n, err)
	}
	now = now.Add(DefaultFirstTestDelay)
	if n, err := b.svc.ScheduleDue(b.ctx); err != nil || n != 1 {
		t.Fatalf("due: %d %v", n, err)
	}
	if r, err := RepositoryGetByID(b.ctx, b.pool, f.repo.ID); err != nil || r.NextRunAt == nil ||
		!r.NextRunAt.Equal(now.Add(6*time.Hour).Truncate(time.Second)) {
		t.Fatalf("next run after the first = %v (%v), want + 6h", r.NextRunAt, err)
	}
	// Due again before the first ran: no second job.
	now = now.Add(7 * time.Hour)
	if n, err := b.svc.ScheduleDue(b.ctx); err != nil || n != 0 {
		t.Fatalf("a second test queued behind a waiting one: %d %v", n, err)
	}
	runs, err := RunList(b.ctx, b.pool, RunFilter{RepositoryID: f.repo.ID})
	if err != nil || len(runs) != 1 || runs[0].Trigger != "schedule" || runs[0].Status != StatusQueued {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
}

func TestPasswordIsSealedAndNeverReturned(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	f := b.newRepo("restic/secret", false, false, Policy{})
	var sealed string
	if err := b.pool.QueryRow(b.ctx, `SELECT password_sealed FROM restic_repositories WHERE id = $1`, f.repo.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, f.password) {
		t.Fatal("password stored in clear")
	}
	var details string
	if err := b.pool.QueryRow(b.ctx, `SELECT string_agg(details::text, ' ') FROM audit_entries`).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(details, f.password) {
		t.Fatal("password in the audit log")
	}
	r, err := b.svc.PasswordRemove(b.ctx, f.repo.ID)
	if err != nil || r.Mode != ModeBlind || r.HasPassword {
		t.Fatalf("remove password: %+v %v", r, err)
	}
	if _, err := b.svc.PasswordRemove(b.ctx, f.repo.ID); err != ErrNoPassword {
		t.Fatalf("second remove: %v", err)
	}
	r, err = b.svc.PasswordSet(b.ctx, f.repo.ID, f.password, FullModeStatementVersion)
	if err != nil || r.Mode != ModeFull {
		t.Fatalf("set password again: %+v %v", r, err)
	}
	var actions []string
	rows, _ := b.pool.Query(b.ctx, `SELECT action FROM audit_entries ORDER BY seq`)
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	for _, want := range []string{"repository.create", "repository.password_remove", "repository.password_set"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
}
