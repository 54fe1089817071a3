package jobs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Default retention periods (Retention's zero fields).
const (
	DefaultRetainRunLogs              = 90 * 24 * time.Hour
	DefaultRetainLoginFailures        = 30 * 24 * time.Hour
	DefaultRetainExpiredSessions      = 7 * 24 * time.Hour
	DefaultRetainDeliveredEvents      = 180 * 24 * time.Hour
	DefaultRetainSnapshotObservations = 180 * 24 * time.Hour
	// RetentionEvery is how often the retention task runs.
	RetentionEvery = 6 * time.Hour
	retentionBatch = 5000
)

// Retention says how long rows that would otherwise grow for ever are kept. The audit log
// is never pruned: it is append-only and its checkpoints are signed.
type Retention struct {
	// RunLogs: the raw log of a restore test run (up to 2 MiB) is emptied this long after
	// the run finished; the run, its levels and its outcome stay.
	RunLogs time.Duration
	// LoginFailures: failed logins (the throttle's memory) older than this are deleted.
	LoginFailures time.Duration
	// ExpiredSessions: sessions expired or revoked longer ago than this are deleted.
	ExpiredSessions time.Duration
	// DeliveredEvents: notification events, finished deliveries and consumed outbox rows
	// older than this are deleted (an event a pending delivery still needs is kept).
	DeliveredEvents time.Duration
	// SnapshotObservations: snapshots a restore test saw disappear longer ago than this
	// are forgotten (snapshots still present are kept: they are the current state).
	SnapshotObservations time.Duration
}

func (r Retention) withDefaults() Retention {
	r.RunLogs = cmp.Or(r.RunLogs, DefaultRetainRunLogs)
	r.LoginFailures = cmp.Or(r.LoginFailures, DefaultRetainLoginFailures)
	r.ExpiredSessions = cmp.Or(r.ExpiredSessions, DefaultRetainExpiredSessions)
	r.DeliveredEvents = cmp.Or(r.DeliveredEvents, DefaultRetainDeliveredEvents)
	r.SnapshotObservations = cmp.Or(r.SnapshotObservations, DefaultRetainSnapshotObservations)
	return r
}

// retentionRule is one table's pruning: a statement touching at most retentionBatch rows
// older than $1 (run until it touches fewer), so no run holds long locks.
type retentionRule struct {
	name string
	keep func(Retention) time.Duration
	sql  string
}

var retentionRules = []retentionRule{
	{"restore test run logs", func(r Retention) time.Duration { return r.RunLogs },
		`UPDATE restore_test_runs SET log = '' WHERE id IN (
			SELECT id FROM restore_test_runs WHERE finished_at < $1 AND log <> '' LIMIT $2)`},
	{"login failures", func(r Retention) time.Duration { return r.LoginFailures },
		`DELETE FROM login_failures WHERE id IN (SELECT id FROM login_failures WHERE at < $1 LIMIT $2)`},
	{"expired sessions", func(r Retention) time.Duration { return r.ExpiredSessions },
		`DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2)`},
	{"finished notification deliveries", func(r Retention) time.Duration { return r.DeliveredEvents },
		`DELETE FROM notify_deliveries WHERE id IN (
			SELECT id FROM notify_deliveries WHERE status <> 'pending' AND created_at < $1 LIMIT $2)`},
	{"delivered notification events", func(r Retention) time.Duration { return r.DeliveredEvents },
		`DELETE FROM notify_events WHERE id IN (
			SELECT e.id FROM notify_events e WHERE e.at < $1
				AND NOT EXISTS (SELECT 1 FROM notify_deliveries d WHERE d.status = 'pending' AND e.id = ANY (d.event_ids))
			LIMIT $2)`},
	{"consumed notification outbox rows", func(r Retention) time.Duration { return r.DeliveredEvents },
		`DELETE FROM notify_outbox WHERE id IN (SELECT id FROM notify_outbox WHERE consumed_at < $1 LIMIT $2)`},
	{"snapshot observations", func(r Retention) time.Duration { return r.SnapshotObservations },
		`DELETE FROM restore_test_snapshots WHERE (repository_id, snapshot_id) IN (
			SELECT repository_id, snapshot_id FROM restore_test_snapshots WHERE gone_at < $1 LIMIT $2)`},
}

// ApplyRetention prunes what is older than its retention period at now, and returns how
// many rows each rule touched. It is idempotent and safe to run from two processes.
func ApplyRetention(ctx context.Context, pool *pgxpool.Pool, r Retention, now time.Time) (map[string]int64, error) {
	r = r.withDefaults()
	done := map[string]int64{}
	for _, rule := range retentionRules {
		cutoff := now.Add(-rule.keep(r))
		for {
			tag, err := pool.Exec(ctx, rule.sql, cutoff, retentionBatch)
			if err != nil {
				return done, fmt.Errorf("retention of %s: %w", rule.name, err)
			}
			done[rule.name] += tag.RowsAffected()
			if tag.RowsAffected() < retentionBatch {
				break
			}
		}
	}
	return done, nil
}

// RetentionTask is the periodic "retention" task applying r.
func RetentionTask(pool *pgxpool.Pool, r Retention, log *slog.Logger) Task {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return Task{Name: "retention", Every: RetentionEvery, Timeout: 30 * time.Minute, Run: func(ctx context.Context) error {
		done, err := ApplyRetention(ctx, pool, r, time.Now())
		for name, n := range done {
			if n > 0 {
				log.InfoContext(ctx, "retention: pruned", slog.String("what", name), slog.Int64("rows", n))
			}
		}
		return err
	}}
}
