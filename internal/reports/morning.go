package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/chatons/archipelago/internal/database"
)

// The member dashboard answers the four questions a member admin has each morning, per
// repository and vault: are my backups restorable (the last test's outcome and when), how
// old is my newest snapshot now, how much of my quota is used, is my island healthy. Each
// list is one statement whatever its length (no statement per row) and is bounded: worst
// first, at most the limit asked (one more row is read to tell whether more follow), so a
// federation admin's view over every member stays one bounded, index-friendly read.

// Morning ranks, worst first: the least of a row's concerns.
const (
	RankBroken    = 0 // the last test failed: the backup is bad
	RankStale     = 1 // the newest snapshot is older than the RPO, or the island is down
	RankFull      = 2 // the vault is 95 % full or more, or the last test could not judge (error)
	RankWarning   = 3 // a warning, never tested yet, or the island is degraded
	RankWatch     = 4 // 80 % full, island health unknown, vault not active yet
	RankGood      = 5 // nothing to say
	morningMaxRow = 500
)

// MorningRepository is one repository's line on the dashboard.
type MorningRepository struct {
	ID                 int64
	Name               string
	MemberID           int64
	MemberSlug         string
	MemberName         string
	VaultID            int64
	VaultName          string
	QuotaBytes         int64
	UsageBytes         *int64
	IslandID           int64
	IslandName         string
	IslandStatus       string
	Paused             bool
	LastRunID          *int64
	LastStatus         string // "" when never tested
	LastReason         string
	LastFinishedAt     *time.Time
	NewestSnapshotTime *time.Time // the newest snapshot any test saw (its age is computed when shown)
	RPOSeconds         int64
	Rank               int
	RunningRunID       *int64 // a test queued or running now
}

// MorningVault is one vault's line on the dashboard.
type MorningVault struct {
	ID           int64
	Name         string
	MemberID     int64
	MemberSlug   string
	Status       string
	QuotaBytes   int64
	UsageBytes   *int64
	UsageAt      *time.Time
	IslandID     int64
	IslandName   string
	IslandStatus string
	Repositories int
	Rank         int
}

// MorningFilter selects what the dashboard shows. MemberIDs nil means every member (a
// federation admin's view); Limit bounds each list (1 to 500).
type MorningFilter struct {
	MemberIDs []int64
	Limit     int
}

func (f MorningFilter) where(col string) (database.Where, int) {
	var w database.Where
	if f.MemberIDs != nil {
		w.And(col+" = ANY(?)", f.MemberIDs)
	}
	return w, max(1, min(f.Limit, morningMaxRow))
}

// islandRank and usageRank are SQL expressions shared by both lists.
const (
	islandRank = `CASE i.status WHEN 'unavailable' THEN 1 WHEN 'unreachable' THEN 1 WHEN 'degraded' THEN 3
		WHEN 'unknown' THEN 4 ELSE 5 END`
	usageRank = `CASE WHEN v.usage_bytes IS NULL THEN 5 WHEN v.usage_bytes * 100 >= v.quota_bytes * 95 THEN 2
		WHEN v.usage_bytes * 100 >= v.quota_bytes * 80 THEN 4 ELSE 5 END`
)

// MorningRepositories returns the repositories of the filter, worst first, at most
// f.Limit, and whether more follow. One statement.
func MorningRepositories(ctx context.Context, q Querier, f MorningFilter) ([]MorningRepository, bool, error) {
	w, limit := f.where("r.member_id")
	w.And("r.deleted_at IS NULL")
	// The newest snapshot: the last test's (kept on the repository, migration 018), or (when
	// it could not read the snapshots) the newest an earlier test saw, walking the
	// (repository_id, id) index backwards. Every repository is ranked from the columns kept on
	// it; the last run's details and a running test are read for the page only (read before
	// the sort, they cost 100,000 index walks at 10,000 members: 5.5 s per dashboard view).
	rows, err := q.Query(ctx, `WITH base AS (
		SELECT r.id, r.name, r.member_id, m.slug, m.name AS member_name, r.vault_id, v.name AS vault_name, v.quota_bytes,
			v.usage_bytes, v.island_id, i.name AS island_name, i.status AS island_status, r.paused, r.last_run_id, r.last_status,
			coalesce(r.last_snapshot_time, (SELECT t.snapshot_time FROM restore_test_runs t
				WHERE t.repository_id = r.id AND t.snapshot_time IS NOT NULL ORDER BY t.id DESC LIMIT 1)) AS snap,
			coalesce(r.rpo_seconds, s.rpo_seconds) AS rpo,
			least(`+islandRank+`, `+usageRank+`) AS other_rank
		FROM restic_repositories r
		JOIN members m ON m.id = r.member_id
		JOIN vaults v ON v.id = r.vault_id
		JOIN islands i ON i.id = v.island_id
		CROSS JOIN restore_settings s`+w.String()+`),
	page AS (SELECT b.*, k.rank FROM base b CROSS JOIN LATERAL (SELECT least(b.other_rank,
		CASE b.last_status WHEN 'failed' THEN 0 WHEN 'error' THEN 2 WHEN 'warning' THEN 3 WHEN 'passed' THEN 5 ELSE 3 END,
		CASE WHEN b.snap IS NOT NULL AND b.snap < now() - b.rpo * interval '1 second' THEN 1 ELSE 5 END) AS rank) k
		ORDER BY k.rank, lower(b.name), b.id LIMIT `+w.Arg(limit+1)+`)
	SELECT b.id, b.name, b.member_id, b.slug, b.member_name, b.vault_id, b.vault_name, b.quota_bytes, b.usage_bytes,
		b.island_id, b.island_name, b.island_status, b.paused, lr.id, coalesce(lr.status, ''), coalesce(lr.reason, ''),
		lr.finished_at, b.snap, b.rpo, b.rank,
		(SELECT o.id FROM restore_test_runs o WHERE o.repository_id = b.id AND o.finished_at IS NULL ORDER BY o.id DESC LIMIT 1)
	FROM page b LEFT JOIN restore_test_runs lr ON lr.id = b.last_run_id
	ORDER BY b.rank, lower(b.name), b.id`, w.Args...)
	if err != nil {
		return nil, false, fmt.Errorf("dashboard repositories: %w", err)
	}
	defer rows.Close()
	var out []MorningRepository
	for rows.Next() {
		var m MorningRepository
		if err := rows.Scan(&m.ID, &m.Name, &m.MemberID, &m.MemberSlug, &m.MemberName, &m.VaultID, &m.VaultName, &m.QuotaBytes,
			&m.UsageBytes, &m.IslandID, &m.IslandName, &m.IslandStatus, &m.Paused, &m.LastRunID, &m.LastStatus, &m.LastReason,
			&m.LastFinishedAt, &m.NewestSnapshotTime, &m.RPOSeconds, &m.Rank, &m.RunningRunID); err != nil {
			return nil, false, fmt.Errorf("dashboard repositories: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("dashboard repositories: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// MorningVaults returns the live vaults of the filter, worst first (island health, quota
// used), at most f.Limit, and whether more follow. One statement.
func MorningVaults(ctx context.Context, q Querier, f MorningFilter) ([]MorningVault, bool, error) {
	w, limit := f.where("v.member_id")
	w.And("v.status <> 'deleted'")
	rows, err := q.Query(ctx, `WITH ranked AS (
		SELECT v.id, v.name, v.member_id, m.slug, v.status, v.quota_bytes, v.usage_bytes, v.usage_at, v.island_id,
			i.name AS island_name, i.status AS island_status,
			least(`+islandRank+`, `+usageRank+`, CASE WHEN v.status <> 'active' THEN 4 ELSE 5 END) AS rank
		FROM vaults v JOIN members m ON m.id = v.member_id JOIN islands i ON i.id = v.island_id`+w.String()+`
		ORDER BY rank, lower(v.name), v.id LIMIT `+w.Arg(limit+1)+`)
	SELECT x.id, x.name, x.member_id, x.slug, x.status, x.quota_bytes, x.usage_bytes, x.usage_at, x.island_id, x.island_name,
		x.island_status, (SELECT count(*) FROM restic_repositories r WHERE r.vault_id = x.id AND r.deleted_at IS NULL), x.rank
	FROM ranked x ORDER BY x.rank, lower(x.name), x.id`, w.Args...)
	if err != nil {
		return nil, false, fmt.Errorf("dashboard vaults: %w", err)
	}
	defer rows.Close()
	var out []MorningVault
	for rows.Next() {
		var v MorningVault
		if err := rows.Scan(&v.ID, &v.Name, &v.MemberID, &v.MemberSlug, &v.Status, &v.QuotaBytes, &v.UsageBytes, &v.UsageAt,
			&v.IslandID, &v.IslandName, &v.IslandStatus, &v.Repositories, &v.Rank); err != nil {
			return nil, false, fmt.Errorf("dashboard vaults: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("dashboard vaults: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// usedFraction is the share of the quota used (0 while usage was never measured).
func usedFraction(usage *int64, quota int64) float64 {
	if usage == nil || quota <= 0 {
		return 0
	}
	return float64(*usage) / float64(quota)
}

// Measured reports whether the vault's usage was ever measured.
func (m MorningRepository) Measured() bool { return m.UsageBytes != nil }

// Used is the share of the vault's quota used (0 while never measured).
func (m MorningRepository) Used() float64 { return usedFraction(m.UsageBytes, m.QuotaBytes) }

// Measured reports whether the vault's usage was ever measured.
func (v MorningVault) Measured() bool { return v.UsageBytes != nil }

// Used is the share of the quota used (0 while never measured).
func (v MorningVault) Used() float64 { return usedFraction(v.UsageBytes, v.QuotaBytes) }

// SnapshotAge is the newest snapshot's age at now (nil when no test saw a snapshot).
func (m MorningRepository) SnapshotAge(now time.Time) *time.Duration {
	if m.NewestSnapshotTime == nil {
		return nil
	}
	d := max(now.Sub(*m.NewestSnapshotTime), 0)
	return &d
}

// Stale reports whether the newest snapshot is older than the repository's RPO at now.
func (m MorningRepository) Stale(now time.Time) bool {
	a := m.SnapshotAge(now)
	return a != nil && *a > time.Duration(m.RPOSeconds)*time.Second
}
