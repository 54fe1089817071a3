package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/verify"
)

// historyDays is how much synthetic history the sandbox writes: a month of daily tests.
const historyDays = 30

// DemoTrigger marks the synthetic runs of the sandbox's demo history (migration 016): every
// page that lists runs labels them, and no real deployment writes one.
const DemoTrigger = "demo"

// historyDay is one synthetic daily test.
type historyDay struct {
	status, reason, failedLevel string
	snapshotTime                time.Time
}

// demoHistoryOf says how a demo repository in this state fared on the day `daysAgo`
// days before today: a month that leads up to its current state (a stale repository's
// backups stopped three days ago, a pack was damaged two days ago, the island was
// unreachable one night — an *error*, not the member's fault).
func demoHistoryOf(state string, daysAgo int, testedAt time.Time) historyDay {
	d := historyDay{status: "passed", snapshotTime: testedAt.Add(-2 * time.Hour)}
	switch {
	case daysAgo == 12 && state == stateHealthy:
		d.status, d.failedLevel = "error", "integrity"
		d.reason = "the island did not answer (demo): this says nothing about the backup; the test was retried the next night"
	case state == stateStale && daysAgo <= 3:
		d.snapshotTime = testedAt.Add(-time.Duration(24*(4-daysAgo)) * time.Hour)
		if daysAgo <= 2 {
			d.status, d.failedLevel = "failed", "freshness"
			d.reason = "the newest snapshot is older than the RPO target (demo): check the backup job"
		}
	case state == stateCorrupted && daysAgo <= 2:
		d.status, d.failedLevel = "failed", "integrity"
		d.reason = "restic check found a damaged pack (demo)"
	case state == stateBlindCorrupt && daysAgo <= 1:
		d.status, d.failedLevel = "failed", "contenthash"
		d.reason = "an object's content does not match its name (demo)"
	case state == stateMissingCanary:
		d.status, d.failedLevel = "failed", "canary"
		d.reason = "the canary file is not in the snapshot (demo): add it to the backup"
	case daysAgo%9 == 4 && (state == stateBlind || state == stateAttested):
		d.status = "warning"
		d.reason = "a snapshot was deleted since the last test (demo)"
	}
	return d
}

// levelsOf are the levels a test of this mode runs, in order.
func levelsOf(mode string) []string {
	if mode == verify.ModeFull {
		return []string{"freshness", "deletions", "integrity", "sample", "canary"}
	}
	return []string{"freshness", "deletions", "contenthash"}
}

// seedHistory writes historyDays days of synthetic daily tests (trigger 'demo') for a
// demo repository just registered, ending yesterday, and dates its registration before
// them. The live test the sandbox enqueues afterwards stays the repository's last run.
func seedHistory(ctx context.Context, a *app.App, repo verify.Repository, state string, sizeBytes int64) error {
	return pgx.BeginFunc(ctx, a.Pool, func(tx pgx.Tx) error {
		today := time.Now().UTC().Truncate(24 * time.Hour)
		if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET created_at = $2 WHERE id = $1`,
			repo.ID, today.AddDate(0, 0, -historyDays-1)); err != nil {
			return err
		}
		pol := repo.Effective
		for ago := historyDays; ago >= 1; ago-- {
			started := today.AddDate(0, 0, -ago).Add(4*time.Hour + time.Duration(repo.ID%7)*time.Minute)
			day := demoHistoryOf(state, ago, started)
			// The repository grows about 1.5 % a day; restores run at 20–35 MB/s.
			size := sizeBytes * int64(1000-15*ago) / 1000
			sample := min(size, 2<<20)
			rate := float64(20_000_000 + (repo.ID*7919+int64(ago)*104729)%15_000_000)
			restoreSec := float64(sample) / rate
			dur := 25*time.Second + time.Duration(ago%5)*3*time.Second
			snapID := sha256.Sum256(fmt.Appendf(nil, "demo-%d-%d", repo.ID, ago))
			var runID int64
			err := tx.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode,
					status, reason, attempt, worker, queued_at, started_at, finished_at, duration_ms, snapshot_id,
					snapshot_time, snapshot_age_seconds, snapshot_count, sample_files, sample_bytes, restore_seconds,
					throughput_bps, repo_size_bytes, rto_estimate_seconds, rpo_target_seconds, rto_target_seconds,
					progress)
				VALUES ($1, $2, $3, 'demo', $4, $5, $6, 1, 'sandbox (synthetic history)', $7, $7, $8, $9, $10, $11,
					$12, $13, 40, $14, $15, $16, $17, $18, $19, $20, '{"percent": 100}')
				RETURNING id`,
				repo.ID, repo.MemberID, repo.IslandID, repo.Mode, day.status, day.reason, started, started.Add(dur),
				dur.Milliseconds(), hex.EncodeToString(snapID[:]), day.snapshotTime,
				int64(started.Sub(day.snapshotTime).Seconds()), min(historyDays-ago+1, 14), sample, restoreSec, rate, size,
				int64(float64(size)/rate)+60, pol.RPOSeconds, pol.RTOSeconds).Scan(&runID)
			if err != nil {
				return fmt.Errorf("demo history, %d days ago: %w", ago, err)
			}
			at := started
			for i, level := range levelsOf(repo.Mode) {
				outcome, summary := "passed", "demo history"
				switch {
				case level == day.failedLevel:
					outcome, summary = day.status, day.reason
				case day.failedLevel != "" && i > slices.Index(levelsOf(repo.Mode), day.failedLevel):
					outcome, summary = "skipped", "not run: an earlier level did not pass (demo)"
				case level == "deletions" && day.status == "warning":
					outcome, summary = "warning", day.reason
				}
				if _, err := tx.Exec(ctx, `INSERT INTO restore_test_levels (run_id, level, position, outcome, summary,
						started_at, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
					runID, level, i, outcome, summary, at, dur.Milliseconds()/5); err != nil {
					return err
				}
				at = at.Add(dur / 5)
			}
		}
		return nil
	})
}
