package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// TestKilledWorkerOnTheLastAttemptIsClosedInError: when the dead worker ran the last
// attempt, the first sweep after HeartbeatTimeout closes the run in error naming the dead
// worker (it never stays "running", and waits for no second sweep: the documented bound
// is HeartbeatTimeout + SweepEvery), the job is discarded, and the scratch space is
// reclaimed by that same sweep.
func TestKilledWorkerOnTheLastAttemptIsClosedInError(t *testing.T) {
	t.Parallel()
	cfg := fastLiveness
	cfg.MaxAttempts = 1
	b, _, run, kill := doomedTest(t, cfg)
	kill()
	// No worker and no periodic sweeper: one sweep, once the heartbeat is overdue.
	for deadline := time.Now().Add(time.Minute); ; {
		var dead bool
		if err := b.pool.QueryRow(b.ctx, `SELECT heartbeat_at < now() - $2 * interval '1 millisecond' FROM restore_test_runs WHERE id = $1`,
			run.ID, cfg.HeartbeatTimeout.Milliseconds()).Scan(&dead); err != nil {
			t.Fatal(err)
		}
		if dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's heartbeat is still fresh")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := b.svc.Sweep(b.ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	done, err := RunGetByID(b.ctx, b.pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != StatusError || !strings.Contains(done.Reason, "doomed-worker") ||
		!strings.Contains(done.Reason, "stopped answering") || !strings.Contains(done.Reason, "says nothing about the backup") {
		t.Fatalf("dead worker on the last attempt, after one sweep: %s", describe(done))
	}
	var state string
	if err := b.pool.QueryRow(b.ctx, `SELECT j.state FROM river_job j JOIN restore_test_runs r ON r.river_job_id = j.id
		WHERE r.id = $1`, run.ID).Scan(&state); err != nil || state != "discarded" {
		t.Fatalf("job state %q (%v), want discarded", state, err)
	}
	if left := dirSize(b.scratch); left != 0 || len(jobDirs(t, b.scratch)) != 0 {
		t.Fatalf("scratch of the dead worker not reclaimed by the sweep: %d bytes, %v", left, jobDirs(t, b.scratch))
	}
}

// TestRunNowNeverAnswersWithADeadRun: once a worker stopped beating, "run now" on its
// repository retries the dead test at once instead of answering with a run nobody works on.
func TestRunNowNeverAnswersWithADeadRun(t *testing.T) {
	t.Parallel()
	cfg := fastLiveness
	cfg.SweepEvery = time.Hour // no sweeper help
	b, f, run, kill := doomedTest(t, cfg)
	kill()
	// Wait until the worker is dead by the heartbeat rule.
	deadline := time.Now().Add(time.Minute)
	for {
		var dead bool
		if err := b.pool.QueryRow(b.ctx, `SELECT heartbeat_at < now() - interval '2 seconds' FROM restore_test_runs WHERE id = $1`,
			run.ID).Scan(&dead); err != nil {
			t.Fatal(err)
		}
		if dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's heartbeat is still fresh")
		}
		time.Sleep(100 * time.Millisecond)
	}
	again, created, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ID != run.ID || again.Status != StatusRetrying || !strings.Contains(again.Reason, "stopped answering") {
		t.Fatalf("run now answered (created %v) %s", created, describe(again))
	}
	b.worker(nil) // no periodic jobs: only run now's sweep made the test retryable
	if done := b.wait(run.ID, 3*time.Minute); done.Status != StatusPassed || done.Attempt != 2 {
		t.Fatalf("the retried test: %s (attempt %d)", describe(done), done.Attempt)
	}
}

// TestSweeperClosesRunsOfDiscardedJobs: a job River itself discarded (its worker killed on
// the last attempt and rescued by River's stuck-job rescuer, the heartbeat rule out of
// play) leaves a running run; the sweeper closes it in error naming why.
func TestSweeperClosesRunsOfDiscardedJobs(t *testing.T) {
	t.Parallel()
	// River rescues a job once the worker's timeout has passed: this one is short.
	cfg := Config{MaxAttempts: 1, TestTimeout: 15 * time.Second, HeartbeatTimeout: time.Hour, SweepEvery: time.Second}
	b, _, run, kill := doomedTest(t, cfg)
	kill()
	// River's rescuer discards the stuck job of the last attempt.
	b.worker(&river.Config{JobTimeout: time.Second, RescueStuckJobsAfter: 2 * time.Second, PeriodicJobs: b.svc.PeriodicJobs()})
	done := b.wait(run.ID, 2*time.Minute)
	if done.Status != StatusError || !strings.Contains(done.Reason, "no attempt is left") {
		t.Fatalf("run of a job River discarded: %s", describe(done))
	}

}

// TestSweeperClosesRunsOfCancelledJobs: a test job cancelled through River's API before any
// worker took it leaves a queued run; the sweeper closes it in error saying it was
// cancelled.
func TestSweeperClosesRunsOfCancelledJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(inserter)
	f := b.newRepo("restic/cancelled", true, false, Policy{})
	run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	var jobID int64
	if err := b.pool.QueryRow(b.ctx, `SELECT river_job_id FROM restore_test_runs WHERE id = $1`, run.ID).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.JobCancel(b.ctx, jobID); err != nil {
		t.Fatal(err)
	}
	if n, err := b.svc.Sweep(b.ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	done, err := RunGetByID(b.ctx, b.pool, run.ID)
	if err != nil || done.Status != StatusError || !strings.Contains(done.Reason, "cancelled") {
		t.Fatalf("run of a cancelled job: %s (%v)", describe(done), err)
	}
	repo, _ := RepositoryGetByID(b.ctx, b.pool, f.repo.ID)
	if repo.LastRunID == nil || *repo.LastRunID != run.ID {
		t.Errorf("the closed run is not the repository's last run: %v", repo.LastRunID)
	}
	// Swept once: a second sweep has nothing to do, and "run now" makes a new test.
	if n, err := b.svc.Sweep(b.ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if again, created, err := b.svc.RunNow(b.ctx, f.repo.ID); err != nil || !created || again.ID == run.ID {
		t.Fatalf("run now after the cancelled test: %v %v %v", again.ID, created, err)
	}
}

// TestEachProcessHasItsOwnScratch: two workers sharing a host and a scratch directory each
// work in a directory of their own; neither reclaims the other's while it lives, and the
// directory of one that is gone (its lock released, as by death) is reclaimed by the other.
func TestEachProcessHasItsOwnScratch(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a := New(nil, nil, Config{ScratchDir: root})
	b := New(nil, nil, Config{ScratchDir: root})
	da, err := a.scratchFor(1)
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.scratchFor(1)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(da) == filepath.Dir(db) || filepath.Dir(filepath.Dir(da)) != root {
		t.Fatalf("shared or misplaced process directories: %s and %s", da, db)
	}
	for _, d := range []string{da, db} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "restored.bin"), []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.reclaimDeadProcesses(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(db, "restored.bin")); err != nil {
		t.Fatalf("a live process's scratch was reclaimed: %v", err)
	}
	// b dies: the kernel releases its lock with its file descriptors.
	b.scratchLock.Close()
	if err := a.reclaimDeadProcesses(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(db)); !os.IsNotExist(err) {
		t.Fatalf("a dead process's scratch was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(da, "restored.bin")); err != nil {
		t.Fatalf("the reclaiming process lost its own scratch: %v", err)
	}
}
