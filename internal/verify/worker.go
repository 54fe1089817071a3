package verify

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/chatons/archipelago/internal/notify"
)

// queueRestore is River's queue for restore tests (jobs.QueueRestore).
const queueRestore = "restore"

// Register adds the restore-test workers to River (for jobs.Config.Register).
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, &testWorker{s: s})
	river.AddWorker(w, &scheduleWorker{s: s})
	river.AddWorker(w, &sweepWorker{s: s})
}

// ScheduleArgs are the arguments of the periodic scheduler job.
type ScheduleArgs struct{}

// Kind implements river.JobArgs.
func (ScheduleArgs) Kind() string { return "restore_schedule" }

// Periodic is the scheduler's periodic job (for jobs.Config.Periodic): every minute it
// enqueues the tests that are due.
func (s *Service) Periodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) {
			return ScheduleArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
		}, &river.PeriodicJobOpts{ID: "restore.schedule", RunOnStart: true})
}

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	s *Service
}

func (w *scheduleWorker) Timeout(*river.Job[ScheduleArgs]) time.Duration { return time.Minute }

func (w *scheduleWorker) Work(ctx context.Context, _ *river.Job[ScheduleArgs]) error {
	n, err := w.s.ScheduleDue(ctx)
	if n > 0 {
		w.s.log.InfoContext(ctx, "restore tests scheduled", "count", n)
	}
	return err
}

type testWorker struct {
	river.WorkerDefaults[TestArgs]
	s *Service
}

func (w *testWorker) Timeout(*river.Job[TestArgs]) time.Duration { return w.s.cfg.TestTimeout }

func (w *testWorker) Work(ctx context.Context, job *river.Job[TestArgs]) error {
	return w.s.work(ctx, job)
}

// slotClass is the first advisory-lock key of island slots ("RT" + slot number).
const slotClass = 0x52540000

// acquireSlot takes one of the island's limit slots: a session advisory lock held on a
// connection of its own for the whole test, so a worker that dies frees its slot with its
// connection. It returns nil when every slot is taken. The connection is one a finished
// test left idle when there is one (releaseSlot): a new one costs PostgreSQL a backend
// (0.02 s quiet, far more on a loaded machine) before every test.
func (s *Service) acquireSlot(ctx context.Context, islandID int64, limit int) (*pgx.Conn, error) {
	conn, reused := s.idleSlotConn(), true
	for {
		if conn == nil {
			var err error
			if conn, err = pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy()); err != nil {
				return nil, fmt.Errorf("connect for an island slot: %w", err)
			}
			reused = false
		}
		got, err := trySlot(ctx, conn, islandID, limit)
		if err != nil {
			conn.Close(context.WithoutCancel(ctx))
			if reused && ctx.Err() == nil { // an idle connection that died (a restarted server): a new one
				conn = nil
				continue
			}
			return nil, fmt.Errorf("take an island slot: %w", err)
		}
		if !got {
			s.putSlotConn(conn) // it holds nothing
			return nil, nil
		}
		return conn, nil
	}
}

// trySlot tries each of the island's limit slots on conn.
func trySlot(ctx context.Context, conn *pgx.Conn, islandID int64, limit int) (bool, error) {
	for slot := range limit {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::int, $2::int)`, slotClass+slot, int32(islandID)).Scan(&ok); err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// releaseSlot frees an island slot at once: the lock is released explicitly (the next test,
// started immediately by River, would otherwise find the slot still taken until a closed
// connection's backend has exited), and the connection is kept for the next test; closed
// when the release failed. A worker that dies frees its slot when its connection drops.
func (s *Service) releaseSlot(ctx context.Context, conn *pgx.Conn) {
	if err := unlockSlot(ctx, conn); err != nil {
		_ = conn.Close(ctx)
		return
	}
	s.putSlotConn(conn)
}

// unlockSlot releases the slot's lock on a connection that stays open.
func unlockSlot(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	return err
}

// Idle slot connections: at most maxIdleSlots, each closed after slotIdleTime unused.
const (
	maxIdleSlots = 4
	slotIdleTime = time.Minute
)

type idleSlot struct {
	conn  *pgx.Conn
	timer *time.Timer
}

// idleSlotConn takes an idle slot connection, or returns nil.
func (s *Service) idleSlotConn() *pgx.Conn {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	for n := len(s.slotIdle); n > 0; n = len(s.slotIdle) {
		c := s.slotIdle[n-1]
		s.slotIdle = s.slotIdle[:n-1]
		c.timer.Stop() // when it already fired, its function finds nothing to close
		if !c.conn.IsClosed() {
			return c.conn
		}
	}
	return nil
}

// putSlotConn keeps a connection holding no lock for the next test.
func (s *Service) putSlotConn(conn *pgx.Conn) {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	if len(s.slotIdle) >= maxIdleSlots || conn.IsClosed() {
		go conn.Close(context.Background())
		return
	}
	c := &idleSlot{conn: conn}
	c.timer = time.AfterFunc(slotIdleTime, func() {
		s.slotMu.Lock()
		i := slices.Index(s.slotIdle, c)
		if i >= 0 {
			s.slotIdle = slices.Delete(s.slotIdle, i, i+1)
		}
		s.slotMu.Unlock()
		if i >= 0 {
			_ = conn.Close(context.Background())
		}
	})
	s.slotIdle = append(s.slotIdle, c)
}

// scratchFor is the job's scratch directory, inside this process's own.
func (s *Service) scratchFor(jobID int64) (string, error) {
	dir, err := s.procDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "job-"+strconv.FormatInt(jobID, 10)), nil
}

// ReclaimScratch removes scratch directories of tests that no longer run on this machine:
// at worker start (keep is nil: everything goes) and before a job's attempt (its own
// directory). Processes still writing into a directory (a restic orphaned by a killed
// worker) are killed first.
func (s *Service) ReclaimScratch(keep func(name string) bool) error {
	entries, err := os.ReadDir(s.cfg.ScratchDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read scratch directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if keep != nil && keep(e.Name()) {
			continue
		}
		dir := filepath.Join(s.cfg.ScratchDir, e.Name())
		killUsers(dir)
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killUsers kills processes whose command line names dir (Linux /proc; elsewhere a no-op).
func killUsers(dir string) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.HasSuffix(bytes.TrimRight(cmdline, "\x00"), []byte(dir)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// logBuffer keeps restic's output of a run, capped.
type logBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	cut bool
}

const maxLog = 1 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len()+len(p) > maxLog {
		if !l.cut {
			l.b.WriteString("\n… output cut at 1 MiB …\n")
			l.cut = true
		}
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.ToValidUTF8(l.b.String(), "?")
}

// work runs one attempt of a test job.
func (s *Service) work(ctx context.Context, job *river.Job[TestArgs]) error {
	log := s.log.With("repository_id", job.Args.RepositoryID, "job_id", job.ID, "attempt", job.Attempt)
	run, err := s.runForJob(ctx, job)
	if err != nil {
		return err
	}
	if run.Final() {
		return nil // the result is recorded: a duplicate execution records nothing
	}
	stopBeat := s.heartbeat(ctx, run.ID)
	defer stopBeat()
	repo, err := RepositoryGetByID(ctx, s.pool, job.Args.RepositoryID)
	if errors.Is(err, ErrNotFound) {
		_, err = s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'cancelled', finished_at = now(),
			reason = 'the repository was removed before the test ran', progress = '{}' WHERE id = $1 AND finished_at IS NULL`, run.ID)
		return err
	}
	if err != nil {
		return err
	}
	settings, err := SettingsGet(ctx, s.pool)
	if err != nil {
		return err
	}

	// Processes of this machine that died left their scratch behind: reclaim it (the
	// sweeper does too, on whichever machine it runs).
	if err := s.reclaimDeadProcesses(); err != nil {
		log.WarnContext(ctx, "reclaim the scratch space of dead workers", "err", err)
	}
	scratch, err := s.scratchFor(job.ID)
	if err != nil {
		return s.finishError(ctx, job, run, "the scratch directory could not be created (this says nothing about the backup): "+err.Error(), "")
	}
	killUsers(scratch)
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("reclaim scratch %s: %w", scratch, err)
	}

	slot, err := s.acquireSlot(ctx, repo.IslandID, settings.IslandConcurrency)
	if err != nil {
		return err
	}
	if slot == nil {
		_, err := s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'postponed', reason = $2 WHERE id = $1 AND finished_at IS NULL`,
			run.ID, fmt.Sprintf("waiting for a free slot: %d tests already run on island %s", settings.IslandConcurrency, repo.IslandName))
		if err != nil {
			return err
		}
		return river.JobSnooze(s.cfg.SlotWait + time.Duration(rand.Int64N(int64(s.cfg.SlotWait))))
	}
	defer s.releaseSlot(context.WithoutCancel(ctx), slot)

	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return s.finishError(ctx, job, run, "the scratch directory could not be created (this says nothing about the backup): "+err.Error(), "")
	}
	defer os.RemoveAll(scratch)

	started := s.cfg.Now()
	if _, err := s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'running', attempt = $2, worker = $3, started_at = $4,
		reason = '', progress = '{}', progress_at = $4 WHERE id = $1`, run.ID, job.Attempt, s.cfg.Worker, started); err != nil {
		return err
	}
	log.InfoContext(ctx, "restore test started", "island_id", repo.IslandID, "mode", repo.Mode)

	recordTarget(ctx, s.pool, run.ID, repo)
	t, err := s.targetFor(ctx, repo, scratch, job.ID)
	if err != nil {
		return s.finishError(ctx, job, run, err.Error(), "")
	}
	// The repository's cache is kept warm between tests; its time says it is in use. Only
	// restic uses it, in full mode: another mode's test removes what an earlier full-mode
	// test left.
	if repo.Mode != ModeFull {
		_ = os.RemoveAll(t.cacheDir)
		t.cacheDir = ""
	} else if err := os.MkdirAll(t.cacheDir, 0o700); err == nil {
		now := time.Now()
		_ = os.Chtimes(t.cacheDir, now, now)
	} else {
		t.cacheDir = "" // a cache in the job's scratch, as before
	}
	t.keyHint = readKeyHint(t.cacheDir, repo.PasswordSetAt)
	if s.cfg.Restic == nil && repo.Mode == ModeFull {
		return s.finishError(ctx, job, run, "restic is not available on worker "+s.cfg.Worker+" (this says nothing about the backup)", "")
	}
	var out logBuffer
	rr := s.cfg.Restic
	if rr != nil {
		rr = rr.WithOutput(&out)
	}
	prog := newProgressWriter(s, run.ID, repo.Mode)
	res := execute(ctx, rr, t, s.cfg.Now, prog.report, s.beforeRecheck, s.removeSample)
	defer res.waitRemoval() // on every return: before the scratch's own removal (deferred earlier)
	prog.wait()

	if ctx.Err() != nil {
		// Stopping (shutdown or timeout): nothing is judged; River retries the job.
		s.appendLog(run.ID, job.Attempt, out.String())
		return fmt.Errorf("restore test interrupted: %w", ctx.Err())
	}
	if res.postpone != "" {
		if run.Postponements+1 >= s.cfg.MaxPostponements {
			return s.finishError(ctx, job, run, fmt.Sprintf("postponed %d times: %s", run.Postponements+1, res.postpone), out.String())
		}
		_, err := s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'postponed', postponements = postponements + 1,
			reason = $2, progress = '{}' WHERE id = $1 AND finished_at IS NULL`, run.ID, "postponed: "+res.postpone)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "restore test postponed", "reason", res.postpone)
		return river.JobSnooze(s.cfg.PostponeDelay)
	}
	if res.status == StatusError && job.Attempt < job.MaxAttempts {
		s.appendLog(run.ID, job.Attempt, out.String())
		_, _ = s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'retrying', reason = $2, progress = '{}'
			WHERE id = $1 AND finished_at IS NULL`, run.ID, fmt.Sprintf("attempt %d of %d: %s", job.Attempt, job.MaxAttempts, res.reason))
		log.WarnContext(ctx, "restore test attempt ended in error; River retries it", "reason", res.reason)
		return errors.New(res.reason)
	}
	if err := s.record(ctx, run, repo, res, started, job.Attempt, out.String()); err != nil {
		return err
	}
	log.InfoContext(ctx, "restore test finished", "status", res.status)
	// The scratch goes with the outcome (the deferred removal finds it gone), not after the
	// key's id is learnt.
	_ = os.RemoveAll(scratch)
	s.learnKeyHint(ctx, s.cfg.Restic, t, repo.PasswordSetAt)
	return nil
}

// runForJob finds the run of a job, creating it for a job inserted without one.
func (s *Service) runForJob(ctx context.Context, job *river.Job[TestArgs]) (Run, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM restore_test_runs WHERE river_job_id = $1`, job.ID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		r, gerr := RepositoryGetByID(ctx, s.pool, job.Args.RepositoryID)
		if gerr != nil {
			return Run{}, river.JobCancel(gerr)
		}
		err = s.pool.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, river_job_id, trigger,
			mode, rpo_target_seconds, rto_target_seconds) VALUES ($1, $2, $3, $4, 'schedule', $5, $6, $7)
			ON CONFLICT (river_job_id) DO UPDATE SET river_job_id = EXCLUDED.river_job_id RETURNING id`,
			r.ID, r.MemberID, r.IslandID, job.ID, r.Mode, r.Effective.RPOSeconds, r.Effective.RTOSeconds).Scan(&id)
	}
	if err != nil {
		return Run{}, fmt.Errorf("find the run of job %d: %w", job.ID, err)
	}
	return RunGetByID(ctx, s.pool, id)
}

// targetFor gathers what the test needs: credentials, password, known snapshots.
func (s *Service) targetFor(ctx context.Context, r Repository, scratch string, jobID int64) (target, error) {
	t := target{repoID: r.ID, mode: r.Mode, prefix: r.Path, policy: r.Effective, canaryToken: r.CanaryToken,
		checkCount: r.CheckCount, runsSinceCheck: r.RunsSinceCheck, lastFull: r.LastFullRestoreAt, scratch: scratch,
		seed: uint64(jobID), clockTolerance: s.cfg.ClockTolerance, chCycle: s.cfg.ContentHashCycle,
		cacheDir: filepath.Join(s.cfg.CacheDir, "repository-"+strconv.FormatInt(r.ID, 10))}
	var err error
	t.creds, err = s.credentialsFor(ctx, r)
	if err != nil {
		return t, err
	}
	if r.Mode == ModeFull {
		var sealed string
		if err := s.pool.QueryRow(ctx, `SELECT password_sealed FROM restic_repositories WHERE id = $1`, r.ID).Scan(&sealed); err != nil {
			return t, err
		}
		t.password, err = s.keyring.OpenString(passwordPurpose(r.ID), sealed)
		if err != nil {
			return t, fmt.Errorf("the repository password could not be opened with this server's master key (this says nothing about the backup): %w", err)
		}
	}
	t.known, err = knownSnapshots(ctx, s.pool, r.ID)
	if err != nil {
		return t, err
	}
	t.chKnown, t.chLast, err = contentHashKnown(ctx, s.pool, r.ID)
	return t, err
}

// finishError ends a job in error without levels (the test could not start): retried while
// attempts remain, recorded on the last one.
func (s *Service) finishError(ctx context.Context, job *river.Job[TestArgs], run Run, reason, log string) error {
	if job.Attempt < job.MaxAttempts {
		s.appendLog(run.ID, job.Attempt, log)
		_, _ = s.pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'retrying', reason = $2, progress = '{}'
			WHERE id = $1 AND finished_at IS NULL`, run.ID, fmt.Sprintf("attempt %d of %d: %s", job.Attempt, job.MaxAttempts, reason))
		return errors.New(reason)
	}
	repo := Repository{ID: run.RepositoryID}
	res := &result{status: StatusError, reason: reason}
	return s.record(ctx, run, repo, res, s.cfg.Now(), job.Attempt, log)
}

func (s *Service) appendLog(runID int64, attempt int, log string) {
	if log == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `UPDATE restore_test_runs SET log = right(log || $2, 2097152) WHERE id = $1`,
		runID, fmt.Sprintf("### attempt %d\n%s", attempt, log))
}

// record writes the result of a run in one transaction: exactly once (a second execution
// of the same job finds finished_at set and writes nothing).
func (s *Service) record(ctx context.Context, run Run, repo Repository, res *result, started time.Time, attempt int, log string) error {
	// The outcome shows when this commits: the restored sample is gone by then (waited for
	// here, not in the transaction, whose locks and place in the notification outbox's order
	// would be held meanwhile).
	res.waitRemoval()
	now := s.cfg.Now()
	ctx = context.WithoutCancel(ctx)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			snapID   *string
			snapTime *time.Time
			age      *int64
			count    *int
		)
		if res.snapshotID != "" {
			snapID, snapTime = &res.snapshotID, &res.snapshotTime
			a := int64(now.Sub(res.snapshotTime).Seconds())
			age = &a
		}
		if res.snapshots != nil {
			count = &res.snapshotCount
		}
		var sf, sb, size, rto *int64
		var secs, tput *float64
		if res.measured {
			sf, sb, size, secs, tput = &res.sampleFiles, &res.sampleBytes, &res.repoSize, &res.restoreSeconds, &res.throughput
		}
		if res.measured || res.fullDone {
			rto = &res.rtoEstimate
		}
		tag, err := tx.Exec(ctx, `UPDATE restore_test_runs SET status = $2, reason = $3, attempt = $4, worker = $5,
			started_at = coalesce(started_at, $6), finished_at = $7, duration_ms = $8, snapshot_id = $9, snapshot_time = $10,
			snapshot_age_seconds = $11, snapshot_count = $12, deleted_snapshots = $13, check_subset = $14, full_restore = $15,
			sample_files = $16, sample_bytes = $17, restore_seconds = $18, throughput_bps = $19, repo_size_bytes = $20,
			rto_estimate_seconds = $21, progress = '{"percent": 100}', progress_at = $7,
			log = right(log || $22, 2097152) WHERE id = $1 AND finished_at IS NULL`,
			run.ID, res.status, truncate(res.reason, 4000), attempt, cmp.Or(res.worker, s.cfg.Worker), started, now, now.Sub(started).Milliseconds(),
			snapID, snapTime, age, count, len(res.gone), res.checkSubset, res.fullDone, sf, sb, secs, tput, size, rto,
			fmt.Sprintf("### attempt %d\n%s", attempt, log))
		if err != nil {
			return fmt.Errorf("record restore test %d: %w", run.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil // already recorded
		}
		// Commit-ordered notification of the outcome (internal/notify's outbox).
		if err := notify.OutboxAdd(ctx, tx, notify.SourceRestoreRun, run.ID, nil); err != nil {
			return err
		}
		for i, l := range res.levels {
			if _, err := tx.Exec(ctx, `INSERT INTO restore_test_levels (run_id, level, position, outcome, summary, started_at,
				duration_ms, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				run.ID, l.Level, i+1, l.Outcome, truncate(l.Summary, 4000), l.StartedAt, l.DurationMS, l.Details); err != nil {
				return fmt.Errorf("record level %s of restore test %d: %w", l.Level, run.ID, err)
			}
		}
		for id, ts := range res.snapshots {
			if _, err := tx.Exec(ctx, `INSERT INTO restore_test_snapshots (repository_id, snapshot_id, snapshot_time)
				VALUES ($1, $2, $3) ON CONFLICT (repository_id, snapshot_id) DO UPDATE SET gone_at = NULL, gone_run_id = NULL`,
				run.RepositoryID, id, ts); err != nil {
				return fmt.Errorf("record snapshots of repository %d: %w", run.RepositoryID, err)
			}
		}
		if len(res.gone) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE restore_test_snapshots SET gone_at = $3, gone_run_id = $4
				WHERE repository_id = $1 AND snapshot_id = ANY($2)`, run.RepositoryID, res.gone, now, run.ID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE restic_repositories SET last_run_id = $2,
			check_count = check_count + CASE WHEN $3 THEN 1 ELSE 0 END,
			runs_since_check = CASE WHEN $3 THEN 0 ELSE runs_since_check + 1 END,
			last_full_restore_at = CASE WHEN $4 THEN $5 ELSE last_full_restore_at END WHERE id = $1`,
			run.RepositoryID, run.ID, res.checkDone, res.fullDone, now)
		if err != nil {
			return err
		}
		return contentHashRecord(ctx, tx, run.RepositoryID, res.contentHash, now)
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// progressWriter persists live progress at most once a second, off restic's output path;
// the start and the end of each level are always written, so the run page shows the levels
// done so far (the live level log) and never a level that has already ended.
type progressWriter struct {
	s          *Service
	runID      int64
	spans      map[string][2]float64 // a level's start and width on the run's bar
	mu         sync.Mutex
	last       time.Time
	level      string
	levelStart time.Time
	cur        Progress    // the latest progress, as written
	done       []LevelDone // the levels finished so far
	busy       bool        // a write is in flight
	pending    bool        // cur changed while it was
	wg         sync.WaitGroup
}

func newProgressWriter(s *Service, runID int64, mode string) *progressWriter {
	spans := fullSpans
	if mode != ModeFull {
		spans = blindSpans
	}
	return &progressWriter{s: s, runID: runID, spans: spans}
}

func (p *progressWriter) report(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	span := p.spans[pr.Level]
	switch {
	case pr.done != nil: // a level ended: its row joins the log, the bar reaches the level's end
		p.done = append(p.done, *pr.done)
		pr = Progress{Level: pr.Level, Percent: span[0] + span[1]}
	case pr.Level != p.level: // a level starts
		p.level, p.levelStart = pr.Level, now
		pr.Percent = span[0] + pr.Percent*span[1]/100
	case now.Sub(p.last) < time.Second:
		return
	default:
		pr.Percent = span[0] + pr.Percent*span[1]/100
		if el := now.Sub(p.levelStart).Seconds(); pr.BytesDone > 0 && el > 0 {
			pr.RateBps = float64(pr.BytesDone) / el
			if pr.BytesTotal > pr.BytesDone {
				eta := int64(float64(pr.BytesTotal-pr.BytesDone) / pr.RateBps)
				pr.ETASeconds = &eta
			}
		}
	}
	pr.LevelsDone = slices.Clone(p.done)
	p.cur, p.last = pr, now
	if p.busy {
		p.pending = true // the writer in flight writes it next
		return
	}
	p.busy = true
	p.wg.Go(p.flush)
}

// flush writes the latest progress until nothing newer is pending.
func (p *progressWriter) flush() {
	for {
		p.mu.Lock()
		pr := p.cur
		p.pending = false
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = p.s.pool.Exec(ctx, `UPDATE restore_test_runs SET progress = $2, progress_at = now() WHERE id = $1 AND finished_at IS NULL`,
			p.runID, pr)
		cancel()
		p.mu.Lock()
		if !p.pending {
			p.busy = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

func (p *progressWriter) wait() { p.wg.Wait() }

// fullSpans and blindSpans place each level on the run's progress bar (start, width), by
// what it usually costs: in full mode restic's check and the sample restore, in the other
// modes the content-hash reading. A finished run's progress is 100.
var (
	fullSpans = map[string][2]float64{LevelFreshness: {0, 4}, LevelDeletions: {4, 2}, LevelIntegrity: {6, 30},
		LevelSample: {36, 40}, LevelCanary: {76, 2}, LevelFull: {78, 12}, LevelContentHash: {90, 10}}
	blindSpans = map[string][2]float64{LevelFreshness: {0, 5}, LevelDeletions: {5, 5}, LevelContentHash: {10, 90}}
)

// ReclaimStale removes the scratch directories of processes of this machine that are gone
// (killed, crashed, restarted), killing restic processes still writing into them first;
// run it when a worker starts. The sweeper and every test's start do it too.
func (s *Service) ReclaimStale(ctx context.Context) error {
	if err := s.reclaimLegacy(ctx); err != nil {
		return err
	}
	return s.reclaimDeadProcesses()
}

// reclaimLegacy removes job directories left directly in ScratchDir by versions that
// shared it between processes, unless their job is still running.
func (s *Service) reclaimLegacy(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT id FROM river_job WHERE kind = $1 AND state = 'running'`, TestArgs{}.Kind())
	if err != nil {
		return fmt.Errorf("list running restore tests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list running restore tests: %w", err)
	}
	running := map[string]bool{}
	for _, id := range ids {
		running["job-"+strconv.FormatInt(id, 10)] = true
	}
	return s.ReclaimScratch(func(name string) bool { return running[name] || !strings.HasPrefix(name, "job-") })
}
