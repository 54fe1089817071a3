package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Liveness of restore tests: a heartbeat per running test, a sweeper that closes or
// retries what no live worker will finish, and a scratch directory per process.
//
// Bound: a test whose worker died is retried (or, on its last attempt, closed in error)
// at most HeartbeatTimeout + SweepEvery after its last heartbeat (defaults 2 min + 1 min),
// and "run now" on its repository does it at once once HeartbeatTimeout has passed.

// Defaults of the liveness settings (Config).
const (
	DefaultHeartbeatEvery   = 20 * time.Second
	DefaultHeartbeatTimeout = 2 * time.Minute
	DefaultSweepEvery       = time.Minute
)

// heartbeat stamps the run as alive (database clock) now and every HeartbeatEvery until
// the returned stop is called.
func (s *Service) heartbeat(ctx context.Context, runID int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	beat := func() {
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		defer bcancel()
		_, _ = s.pool.Exec(bctx, `UPDATE restore_test_runs SET heartbeat_at = now() WHERE id = $1 AND finished_at IS NULL`, runID)
	}
	beat()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.cfg.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// SweepArgs are the arguments of the periodic sweeper job.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "restore_sweep" }

// PeriodicJobs are the package's periodic River jobs (for jobs.Config.Periodic): the
// scheduler and the sweeper.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{s.Periodic(), river.NewPeriodicJob(river.PeriodicInterval(s.cfg.SweepEvery),
		func() (river.JobArgs, *river.InsertOpts) {
			return SweepArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: s.cfg.SweepEvery}}
		}, &river.PeriodicJobOpts{ID: "restore.sweep", RunOnStart: true})}
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return time.Minute }

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	n, err := w.s.Sweep(ctx)
	if n > 0 {
		w.s.log.InfoContext(ctx, "restore tests swept", "count", n)
	}
	return err
}

// Sweep closes or retries the tests no live worker will finish, and reclaims the scratch
// space of dead processes on this machine. It returns how many runs it acted on.
//
//   - A run whose River job ended without a result (discarded after its last attempt,
//     cancelled, or gone) is closed with the error outcome and a reason naming why.
//   - A run whose job is running but whose worker stopped beating for HeartbeatTimeout is
//     retried at once (or, on its last attempt, closed in error naming the dead worker).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n, err := s.sweep(ctx, 0)
	if rerr := s.reclaimDeadProcesses(); rerr != nil {
		s.log.WarnContext(ctx, "reclaim the scratch space of dead workers", "err", rerr)
	}
	if rerr := s.pruneCaches(ctx); rerr != nil {
		s.log.WarnContext(ctx, "remove unused restic caches", "err", rerr)
	}
	return n, err
}

// pruneCaches removes the restic caches of repositories not tested on this machine for
// CacheKeep (restic touches its cache directory at every run), and at once those of
// repositories removed or no longer in full mode (Archipelago no longer holds their
// password: restic does not run for them).
func (s *Service) pruneCaches(ctx context.Context) error {
	entries, err := os.ReadDir(s.cfg.CacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var full map[int64]bool // nil when unknown: only the time rule applies
	if rows, err := s.pool.Query(ctx, `SELECT id FROM restic_repositories WHERE deleted_at IS NULL AND mode = 'full'`); err == nil {
		if ids, err := pgx.CollectRows(rows, pgx.RowTo[int64]); err == nil {
			full = make(map[int64]bool, len(ids))
			for _, id := range ids {
				full[id] = true
			}
		}
	}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "repository-")
		info, err := e.Info()
		if err != nil || !e.IsDir() || !ok {
			continue
		}
		id, perr := strconv.ParseInt(name, 10, 64)
		gone := full != nil && perr == nil && !full[id]
		if !gone && time.Since(info.ModTime()) < s.cfg.CacheKeep {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(s.cfg.CacheDir, e.Name())))
	}
	return errors.Join(errs...)
}

// orphan is an unfinished run whose job will not finish it.
type orphan struct {
	runID, jobID      int64
	state             string // River job state; "" when the job is gone
	attempt, attempts int
	lastError         string
	worker            string
	heartbeat         *time.Time
}

// sweep does the database part of Sweep; repoID > 0 limits it to one repository.
func (s *Service) sweep(ctx context.Context, repoID int64) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.id, r.river_job_id, coalesce(j.state::text, ''), coalesce(j.attempt, r.attempt),
			coalesce(j.max_attempts, 0), coalesce(j.errors[array_length(j.errors, 1)]->>'error', ''), r.worker, r.heartbeat_at
		FROM restore_test_runs r LEFT JOIN river_job j ON j.id = r.river_job_id
		WHERE r.finished_at IS NULL AND ($2 = 0 OR r.repository_id = $2)
		  AND (j.id IS NULL OR j.state IN ('discarded', 'cancelled', 'completed')
		       OR (j.state = 'running' AND greatest(r.heartbeat_at, j.attempted_at) < now() - $1 * interval '1 millisecond'))
		ORDER BY r.id LIMIT 1000`, s.cfg.HeartbeatTimeout.Milliseconds(), repoID)
	if err != nil {
		return 0, fmt.Errorf("find restore tests without a live worker: %w", err)
	}
	orphans, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (orphan, error) {
		var o orphan
		err := row.Scan(&o.runID, &o.jobID, &o.state, &o.attempt, &o.attempts, &o.lastError, &o.worker, &o.heartbeat)
		return o, err
	})
	if err != nil {
		return 0, fmt.Errorf("find restore tests without a live worker: %w", err)
	}
	n := 0
	var errs []error
	for _, o := range orphans {
		var err error
		if o.state == "running" {
			err = s.rescueDead(ctx, o)
		} else {
			err = s.closeOrphan(ctx, o, orphanReason(o))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// orphanReason says, for a member, why a run has no result.
func orphanReason(o orphan) string {
	last := ""
	if o.lastError != "" {
		last = ": " + truncate(o.lastError, 500)
	}
	switch o.state {
	case "discarded":
		return fmt.Sprintf("the verifier could not complete the test: attempt %d of %d ended in error and no attempt is left%s (this says nothing about the backup)",
			o.attempt, o.attempts, last)
	case "cancelled":
		return "the test was cancelled before it produced a result" + last + " (this says nothing about the backup)"
	case "completed":
		return "the test job ended without recording a result (this says nothing about the backup)"
	default:
		return "the test job disappeared from the queue before it produced a result (this says nothing about the backup)"
	}
}

// closeOrphan records the error outcome of a run whose job will not finish it (exactly
// once, through record).
func (s *Service) closeOrphan(ctx context.Context, o orphan, reason string) error {
	run, err := RunGetByID(ctx, s.pool, o.runID)
	if err != nil {
		return err
	}
	if run.Final() {
		return nil
	}
	started := s.cfg.Now()
	if run.StartedAt != nil {
		started = *run.StartedAt
	}
	res := &result{status: StatusError, reason: reason, worker: run.Worker}
	return s.record(ctx, run, Repository{ID: run.RepositoryID}, res, started, max(o.attempt, run.Attempt), "")
}

// rescueDead handles a running job whose worker stopped beating: the job is made available
// again at once (River retries it on a live worker), or, on its last attempt, discarded and
// its run closed in error naming the dead worker. The job row is locked and re-checked, so
// a worker that finishes meanwhile wins.
func (s *Service) rescueDead(ctx context.Context, o orphan) error {
	since := "never"
	if o.heartbeat != nil {
		since = o.heartbeat.UTC().Format(time.RFC3339)
	}
	worker := o.worker
	if worker == "" {
		worker = "(not started)"
	}
	why := fmt.Sprintf("the worker %s running attempt %d of %d stopped answering (last heartbeat %s): it was killed or crashed",
		worker, o.attempt, o.attempts, since)
	last := o.attempt >= o.attempts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var alive bool
		err := tx.QueryRow(ctx, `SELECT greatest(r.heartbeat_at, j.attempted_at) >= now() - $3 * interval '1 millisecond'
			FROM river_job j JOIN restore_test_runs r ON r.river_job_id = j.id
			WHERE j.id = $1 AND j.state = 'running' AND j.attempt = $2 FOR UPDATE OF j`, o.jobID, o.attempt, s.cfg.HeartbeatTimeout.Milliseconds()).Scan(&alive)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && alive) {
			return errSwept // finished, retried or alive meanwhile
		}
		if err != nil {
			return err
		}
		attemptErr, _ := json.Marshal(map[string]any{"at": time.Now().UTC(), "attempt": o.attempt, "error": why,
			"trace": "archipelago restore sweeper: no heartbeat for " + s.cfg.HeartbeatTimeout.String()})
		if last {
			_, err = tx.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now(),
				errors = array_append(errors, $2::jsonb) WHERE id = $1`, o.jobID, attemptErr)
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now(),
			errors = array_append(errors, $2::jsonb) WHERE id = $1`, o.jobID, attemptErr); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE restore_test_runs SET status = 'retrying', reason = $2, progress = '{}'
			WHERE id = $1 AND finished_at IS NULL`, o.runID, why+"; retried on another worker")
		return err
	})
	if errors.Is(err, errSwept) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("retry restore test %d of a dead worker: %w", o.runID, err)
	}
	s.log.WarnContext(ctx, "restore test of a dead worker", "run_id", o.runID, "job_id", o.jobID, "worker", o.worker,
		"attempt", o.attempt, "last_attempt", last)
	if last {
		return s.closeOrphan(ctx, o, "the verifier could not complete the test: "+why+", on the last attempt (this says nothing about the backup)")
	}
	return nil
}

var errSwept = errors.New("already handled")

// Scratch space: each process works under a directory of its own inside ScratchDir
// (proc-<pid>-<random>), holding an exclusive flock on its .lock file for its whole life.
// A process that dies (even by SIGKILL) loses the lock with its file descriptors, so any
// other process on the machine can tell a dead process's directory and reclaim it.

const procPrefix = "proc-"

// procDir returns this process's scratch directory, creating and locking it on first use.
func (s *Service) procDir() (string, error) {
	s.scratchMu.Lock()
	defer s.scratchMu.Unlock()
	if s.scratchDir != "" {
		return s.scratchDir, nil
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	dir := filepath.Join(s.cfg.ScratchDir, procPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create scratch directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("create scratch lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return "", fmt.Errorf("lock scratch directory %s: %w", dir, err)
	}
	s.scratchLock, s.scratchDir = f, dir // kept open (and locked) for the process's life
	return dir, nil
}

// reclaimDeadProcesses removes the scratch directories of processes that are gone: their
// lock can be taken. Restic processes still writing into one (orphaned by a killed
// worker) are killed first.
func (s *Service) reclaimDeadProcesses() error {
	entries, err := os.ReadDir(s.cfg.ScratchDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read scratch directory: %w", err)
	}
	own, _ := s.procDir()
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(s.cfg.ScratchDir, e.Name())
		if !e.IsDir() || !strings.HasPrefix(e.Name(), procPrefix) || dir == own {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
		if err != nil {
			// No lock file: a process between its mkdir and its lock, or a half-removed
			// directory; reclaimed once it is clearly old.
			if info, ierr := e.Info(); ierr == nil && time.Since(info.ModTime()) > time.Hour {
				killUsers(dir)
				errs = append(errs, os.RemoveAll(dir))
			}
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // its owner is alive
			continue
		}
		killUsers(dir)
		errs = append(errs, os.RemoveAll(dir))
		f.Close()
	}
	return errors.Join(errs...)
}
