package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// querier is what the store functions need: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SettingsGet reads the federation defaults.
func SettingsGet(ctx context.Context, q querier) (Settings, error) {
	var s Settings
	err := q.QueryRow(ctx, `SELECT schedule, window_start_minute, window_minutes, jitter_seconds, rpo_seconds, rto_seconds,
		sample_files, sample_bytes, check_every_runs, check_subsets, full_restore_days, canary_path, island_concurrency
		FROM restore_settings`).Scan(&s.Schedule, &s.WindowStartMinute, &s.WindowMinutes, &s.JitterSeconds, &s.RPOSeconds,
		&s.RTOSeconds, &s.SampleFiles, &s.SampleBytes, &s.CheckEveryRuns, &s.CheckSubsets, &s.FullRestoreDays, &s.CanaryPath,
		&s.IslandConcurrency)
	if err != nil {
		return s, fmt.Errorf("read restore settings: %w", err)
	}
	return s, nil
}

const repoColumns = `r.id, r.member_id, r.vault_id, v.island_id, r.name, r.path, r.mode, r.password_sealed IS NOT NULL,
	r.password_set_at, r.canary_token, r.schedule, r.window_start_minute, r.window_minutes, r.jitter_seconds, r.rpo_seconds,
	r.rto_seconds, r.sample_files, r.sample_bytes, r.check_every_runs, r.check_subsets, r.full_restore_days, r.canary_path,
	r.paused, r.next_run_at, r.check_count, r.runs_since_check, r.last_full_restore_at, r.last_run_id, r.created_by,
	r.created_at, r.updated_at, v.name, v.bucket_name, i.name,
	lr.id, lr.status, lr.reason, lr.finished_at, lr.snapshot_age_seconds, lr.rto_estimate_seconds,
	r.full_consent_by, r.full_consent_at, r.full_consent_version, r.contenthash_at, r.contenthash_cycle_seconds,
	r.contenthash_objects_total, r.contenthash_bytes_total, r.contenthash_objects_cycle, r.contenthash_bytes_cycle, r.test_target`

const repoFrom = ` FROM restic_repositories r
	JOIN vaults v ON v.id = r.vault_id
	JOIN islands i ON i.id = v.island_id
	LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id `

func scanRepo(row pgx.Row, s Settings) (Repository, error) {
	var r Repository
	var p = &r.Policy
	var lid *int64
	var lstatus, lreason *string
	var lfin *time.Time
	var lage, lrto *int64
	var consentBy, consentVersion *string
	var consentAt, chAt *time.Time
	var chCycle, chObj, chBytes, chObjCycle, chBytesCycle *int64
	err := row.Scan(&r.ID, &r.MemberID, &r.VaultID, &r.IslandID, &r.Name, &r.Path, &r.Mode, &r.HasPassword, &r.PasswordSetAt,
		&r.CanaryToken, &p.Schedule, &p.WindowStartMinute, &p.WindowMinutes, &p.JitterSeconds, &p.RPOSeconds, &p.RTOSeconds,
		&p.SampleFiles, &p.SampleBytes, &p.CheckEveryRuns, &p.CheckSubsets, &p.FullRestoreDays, &p.CanaryPath, &r.Paused,
		&r.NextRunAt, &r.CheckCount, &r.RunsSinceCheck, &r.LastFullRestoreAt, &r.LastRunID, &r.CreatedBy, &r.CreatedAt,
		&r.UpdatedAt, &r.VaultName, &r.BucketName, &r.IslandName, &lid, &lstatus, &lreason, &lfin, &lage, &lrto,
		&consentBy, &consentAt, &consentVersion, &chAt, &chCycle, &chObj, &chBytes, &chObjCycle, &chBytesCycle, &p.Target)
	if err != nil {
		return r, err
	}
	r.Effective = r.Policy.Effective(s)
	if consentAt != nil {
		r.FullConsent = &ConsentRecord{By: chDeref(consentBy), At: *consentAt, StatementVersion: chDeref(consentVersion)}
	}
	if chAt != nil {
		r.ContentHash = &Coverage{At: *chAt, CycleSeconds: chDeref(chCycle), ObjectsTotal: chDeref(chObj), BytesTotal: chDeref(chBytes),
			ObjectsCycle: chDeref(chObjCycle), BytesCycle: chDeref(chBytesCycle)}
	}
	if lid != nil {
		r.Last = &RunSummary{ID: *lid, Status: *lstatus, Reason: *lreason, FinishedAt: lfin, SnapshotAgeSeconds: lage,
			RTOEstimateSeconds: lrto}
	}
	return r, nil
}

// RepositoryGet reads a live repository.
func RepositoryGetByID(ctx context.Context, q querier, id int64) (Repository, error) {
	s, err := SettingsGet(ctx, q)
	if err != nil {
		return Repository{}, err
	}
	r, err := scanRepo(q.QueryRow(ctx, `SELECT `+repoColumns+repoFrom+` WHERE r.id = $1 AND r.deleted_at IS NULL`, id), s)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("repository %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read repository %d: %w", id, err)
	}
	return r, nil
}

// RepositoryFilter selects repositories. MemberIDs nil means every member.
type RepositoryFilter struct {
	MemberIDs []int64
	VaultID   int64
}

// RepositoryList lists live repositories, by member then name.
func RepositoryList(ctx context.Context, q querier, f RepositoryFilter) ([]Repository, error) {
	s, err := SettingsGet(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+repoColumns+repoFrom+` WHERE r.deleted_at IS NULL
		AND ($1::bigint[] IS NULL OR r.member_id = ANY($1)) AND ($2 = 0 OR r.vault_id = $2)
		ORDER BY r.member_id, lower(r.name)`, f.MemberIDs, f.VaultID)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		r, err := scanRepo(rows, s)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const runColumns = `t.id, t.repository_id, t.member_id, t.island_id, t.river_job_id, t.trigger, t.requested_by, t.mode,
	t.status, t.reason, t.attempt, t.postponements, t.worker, t.queued_at, t.started_at, t.finished_at, t.duration_ms,
	t.snapshot_id, t.snapshot_time, t.snapshot_age_seconds, t.snapshot_count, t.deleted_snapshots, t.check_subset,
	t.full_restore, t.sample_files, t.sample_bytes, t.restore_seconds, t.throughput_bps, t.repo_size_bytes,
	t.rto_estimate_seconds, t.rpo_target_seconds, t.rto_target_seconds, t.progress, t.progress_at, r.name, t.target`

func scanRun(row pgx.Row) (Run, error) {
	var t Run
	err := row.Scan(&t.ID, &t.RepositoryID, &t.MemberID, &t.IslandID, &t.JobID, &t.Trigger, &t.RequestedBy, &t.Mode,
		&t.Status, &t.Reason, &t.Attempt, &t.Postponements, &t.Worker, &t.QueuedAt, &t.StartedAt, &t.FinishedAt,
		&t.DurationMS, &t.SnapshotID, &t.SnapshotTime, &t.SnapshotAgeSeconds, &t.SnapshotCount, &t.DeletedSnapshots,
		&t.CheckSubset, &t.FullRestore, &t.SampleFiles, &t.SampleBytes, &t.RestoreSeconds, &t.ThroughputBps,
		&t.RepoSizeBytes, &t.RTOEstimateSeconds, &t.RPOTargetSeconds, &t.RTOTargetSeconds, &t.Progress, &t.ProgressAt,
		&t.RepositoryName, &t.Target)
	return t, err
}

// RunGet reads a run with its levels.
func RunGetByID(ctx context.Context, q querier, id int64) (Run, error) {
	t, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM restore_test_runs t
		JOIN restic_repositories r ON r.id = t.repository_id WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("restore test %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read restore test %d: %w", id, err)
	}
	t.Levels, err = LevelList(ctx, q, id)
	return t, err
}

// RunLog reads the restic output kept for a run.
func RunLog(ctx context.Context, q querier, id int64) (string, error) {
	var log string
	err := q.QueryRow(ctx, `SELECT log FROM restore_test_runs WHERE id = $1`, id).Scan(&log)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("restore test %d: %w", id, ErrNotFound)
	}
	return log, err
}

// LevelList reads a run's level results in order.
func LevelList(ctx context.Context, q querier, runID int64) ([]LevelResult, error) {
	rows, err := q.Query(ctx, `SELECT level, outcome, summary, started_at, duration_ms, details
		FROM restore_test_levels WHERE run_id = $1 ORDER BY position`, runID)
	if err != nil {
		return nil, fmt.Errorf("list levels of restore test %d: %w", runID, err)
	}
	defer rows.Close()
	var out []LevelResult
	for rows.Next() {
		var l LevelResult
		if err := rows.Scan(&l.Level, &l.Outcome, &l.Summary, &l.StartedAt, &l.DurationMS, &l.Details); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// RunFilter selects runs. MemberIDs nil means every member; Before pages by id (descending).
type RunFilter struct {
	MemberIDs    []int64
	RepositoryID int64
	Status       string
	Since        *time.Time
	Before       int64
	Limit        int
}

// RunList lists runs, newest first.
func RunList(ctx context.Context, q querier, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM restore_test_runs t
		JOIN restic_repositories r ON r.id = t.repository_id
		WHERE ($1::bigint[] IS NULL OR t.member_id = ANY($1)) AND ($2 = 0 OR t.repository_id = $2)
		AND ($3 = '' OR t.status = $3) AND ($4::timestamptz IS NULL OR t.queued_at >= $4) AND ($5 = 0 OR t.id < $5)
		ORDER BY t.id DESC LIMIT $6`, f.MemberIDs, f.RepositoryID, f.Status, f.Since, f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list restore tests: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		t, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list restore tests: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// knownSnapshots reads the snapshots earlier tests saw that were not gone yet.
func knownSnapshots(ctx context.Context, q querier, repoID int64) (map[string]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT snapshot_id, snapshot_time FROM restore_test_snapshots
		WHERE repository_id = $1 AND gone_at IS NULL`, repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, err
		}
		out[id] = t
	}
	return out, rows.Err()
}
