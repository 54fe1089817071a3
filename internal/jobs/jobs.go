// Package jobs owns Archipelago's background work on River (a job queue in the same
// PostgreSQL): periodic tasks of the domain packages (island polling, vault reconciliation,
// usage collection, key expiry, audit checkpoints…) and the workers other packages register
// (restore tests). `serve` and `worker` run it; any number of processes may, River hands
// each job to one of them.
//
// A task is a plain domain function `func(ctx) error`: idempotent, safe to run from two
// processes, bounded in time. This package schedules it; it knows nothing of the domain.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Queues.
const (
	QueueDefault = river.QueueDefault
	// QueueRestore runs restore tests, which are long and I/O heavy.
	QueueRestore = "restore"
)

// Task is a periodic domain function.
type Task struct {
	Name    string
	Every   time.Duration
	Timeout time.Duration // default: Every, at most 10 minutes
	Run     func(ctx context.Context) error
}

// Config configures the runner.
type Config struct {
	Logger *slog.Logger
	// Work says whether this process executes jobs; without it the client only inserts.
	Work bool
	// DefaultWorkers and RestoreWorkers bound concurrency in this process.
	DefaultWorkers int // default 10
	RestoreWorkers int // default 2
	// Register lets other packages add River workers (e.g. restore tests).
	Register []func(*river.Workers)
	// Extra periodic River jobs (e.g. the restore-test scheduler).
	Periodic []*river.PeriodicJob
	// FetchPollInterval bounds job pick-up latency (default River's 1s).
	FetchPollInterval time.Duration
}

// Runner owns the River client.
type Runner struct {
	client *river.Client[pgx.Tx]
	log    *slog.Logger
	tasks  map[string]Task
	work   bool
}

// TaskArgs are the arguments of the periodic task job.
type TaskArgs struct {
	Name string `json:"name" river:"unique"`
}

// Kind implements river.JobArgs.
func (TaskArgs) Kind() string { return "task" }

// InsertOpts: a task has at most one job waiting or running, so a slow run does not pile
// up copies behind it.
func (TaskArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

type taskWorker struct {
	river.WorkerDefaults[TaskArgs]
	r *Runner
}

func (w *taskWorker) Timeout(job *river.Job[TaskArgs]) time.Duration {
	if t, ok := w.r.tasks[job.Args.Name]; ok {
		return t.Timeout
	}
	return time.Minute
}

func (w *taskWorker) Work(ctx context.Context, job *river.Job[TaskArgs]) error {
	t, ok := w.r.tasks[job.Args.Name]
	if !ok {
		return river.JobCancel(fmt.Errorf("no task named %q in this binary", job.Args.Name))
	}
	start := time.Now()
	err := t.Run(ctx)
	if err != nil {
		w.r.log.WarnContext(ctx, "task failed", "task", t.Name, "attempt", job.Attempt, "err", err)
		return err
	}
	w.r.log.DebugContext(ctx, "task done", "task", t.Name, "duration", time.Since(start))
	return nil
}

// New builds the runner with its tasks. Start it with Run.
func New(pool *pgxpool.Pool, cfg Config, tasks ...Task) (*Runner, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{log: log, tasks: map[string]Task{}, work: cfg.Work}
	rc := &river.Config{Logger: log.With("component", "river"), FetchPollInterval: cfg.FetchPollInterval}
	if cfg.Work {
		workers := river.NewWorkers()
		river.AddWorker(workers, &taskWorker{r: r})
		for _, reg := range cfg.Register {
			reg(workers)
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{
			QueueDefault: {MaxWorkers: max(cfg.DefaultWorkers, 10)},
			QueueRestore: {MaxWorkers: max(cfg.RestoreWorkers, 2)},
		}
		names := make([]string, 0, len(tasks))
		for _, t := range tasks {
			if t.Name == "" || t.Every <= 0 || t.Run == nil {
				return nil, fmt.Errorf("jobs: task %q needs a name, an interval and a function", t.Name)
			}
			if _, dup := r.tasks[t.Name]; dup {
				return nil, fmt.Errorf("jobs: task %q registered twice", t.Name)
			}
			if t.Timeout == 0 {
				t.Timeout = min(t.Every, 10*time.Minute)
			}
			r.tasks[t.Name] = t
			names = append(names, t.Name)
		}
		sort.Strings(names)
		for _, name := range names {
			t := r.tasks[name]
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(t.Every),
				func() (river.JobArgs, *river.InsertOpts) { return TaskArgs{Name: t.Name}, nil },
				&river.PeriodicJobOpts{ID: "task:" + t.Name, RunOnStart: true}))
		}
		rc.PeriodicJobs = append(rc.PeriodicJobs, cfg.Periodic...)
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	r.client = client
	return r, nil
}

// Client is the River client, for inserting jobs (in the same transaction as the row that
// asks for the work).
func (r *Runner) Client() *river.Client[pgx.Tx] { return r.client }

// Run works jobs until ctx ends, then stops: running jobs get until grace to finish, after
// which they are cancelled (and retried elsewhere later).
func (r *Runner) Run(ctx context.Context, grace time.Duration) error {
	if !r.work {
		<-ctx.Done()
		return nil
	}
	if err := r.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job runner: %w", err)
	}
	r.log.InfoContext(ctx, "job runner started", "tasks", len(r.tasks))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := r.client.Stop(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer hcancel()
			return r.client.StopAndCancel(hctx)
		}
		return err
	}
	return nil
}

// RunTaskNow enqueues a task to run as soon as a worker is free. It reports false when a
// run of the task is already waiting or running (that run will do).
func (r *Runner) RunTaskNow(ctx context.Context, name string) (bool, error) {
	res, err := r.client.Insert(ctx, TaskArgs{Name: name}, nil)
	if err != nil {
		return false, err
	}
	return !res.UniqueSkippedAsDuplicate, nil
}
