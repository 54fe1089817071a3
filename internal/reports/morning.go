package reports

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The member dashboard answers the four questions a member admin has each morning, per
// repository and vault: are my backups restorable (the last test's outcome and when), how
// old is my newest snapshot now, how much of my quota is used, is my island healthy. Each
// list is one statement whatever its length (no statement per row) and is bounded: worst
// first, at most the limit asked (one more row is read to tell whether more follow), so a
// federation admin's view over every member stays one bounded read. The rank is kept on each
// repository and vault (migration 022) in the transaction that moves it, so a view walks an
// index in rank order and stops at the limit instead of ranking every repository (6.9–10.2 s
// at 10,000 members); only staleness, which changes with the time alone, is decided at read
// time, from an indexed moment (stale_at).

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

// morningRepositoriesSQL is the statement of MorningRepositories and its arguments.
//
// A repository's rank is kept on it (migration 022): morning_rank, the least of its latest
// outcome's rank and its vault's place (island health, quota used), set in the transaction
// that changes any of them; stale_at, the moment its newest snapshot becomes older than the
// RPO. Staleness depends on the time, so it is decided here against now(). The list is four
// index walks, each stopping at the limit: rank 0 (failed), rank 1 (island down) by name,
// the stale ones of a lesser stored rank — rank 1 too, longest overdue first — by stale_at,
// and the rest (ranks 2 to 5, not stale) by rank and name. Only the page's rows are then
// joined with their member, vault, island, last run and running test.
func morningRepositoriesSQL(f MorningFilter) (string, []any, int) {
	limit := max(1, min(f.Limit, morningMaxRow))
	var args []any
	mine := ""
	if f.MemberIDs != nil {
		args = append(args, f.MemberIDs)
		mine = " AND r.member_id = ANY($1)"
	}
	n := strconv.Itoa(limit + 1) // a literal: a generic plan of LIMIT $n may not walk the index
	live := "r.deleted_at IS NULL" + mine
	return `WITH cand AS (
		(SELECT r.id, r.morning_rank AS rank, 0 AS part, NULL::timestamptz AS due, lower(r.name) AS lname FROM restic_repositories r
			WHERE ` + live + ` AND r.morning_rank = 0 ORDER BY r.morning_rank, lower(r.name), r.id LIMIT ` + n + `)
		UNION ALL
		(SELECT r.id, r.morning_rank, 1, NULL, lower(r.name) FROM restic_repositories r
			WHERE ` + live + ` AND r.morning_rank = 1 ORDER BY r.morning_rank, lower(r.name), r.id LIMIT ` + n + `)
		UNION ALL
		(SELECT r.id, 1, 2, r.stale_at, lower(r.name) FROM restic_repositories r
			WHERE ` + live + ` AND r.stale_at <= now() AND r.morning_rank > 1 ORDER BY r.stale_at, r.id LIMIT ` + n + `)
		UNION ALL
		(SELECT r.id, r.morning_rank, 3, NULL, lower(r.name) FROM restic_repositories r
			WHERE ` + live + ` AND r.morning_rank > 1 AND (r.stale_at IS NULL OR r.stale_at > now())
			ORDER BY r.morning_rank, lower(r.name), r.id LIMIT ` + n + `)),
	page AS (SELECT * FROM cand c ORDER BY c.rank, c.part, c.due, c.lname, c.id LIMIT ` + n + `)
	SELECT r.id, r.name, r.member_id, m.slug, m.name, r.vault_id, v.name, v.quota_bytes, v.usage_bytes,
		v.island_id, i.name, i.status, r.paused, lr.id, coalesce(lr.status, ''), coalesce(lr.reason, ''),
		lr.finished_at, r.newest_snapshot_time, coalesce(r.rpo_seconds, s.rpo_seconds), p.rank,
		(SELECT o.id FROM restore_test_runs o WHERE o.repository_id = r.id AND o.finished_at IS NULL ORDER BY o.id DESC LIMIT 1)
	FROM page p JOIN restic_repositories r ON r.id = p.id
	JOIN members m ON m.id = r.member_id
	JOIN vaults v ON v.id = r.vault_id
	JOIN islands i ON i.id = v.island_id
	CROSS JOIN restore_settings s
	LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
	ORDER BY p.rank, p.part, p.due, p.lname, p.id`, args, limit
}

// MorningRepositories returns the repositories of the filter, worst first, at most
// f.Limit, and whether more follow. One statement, which reads about the page's rows
// whatever the number of repositories (see morningRepositoriesSQL).
func MorningRepositories(ctx context.Context, q Querier, f MorningFilter) ([]MorningRepository, bool, error) {
	sql, args, limit := morningRepositoriesSQL(f)
	rows, err := q.Query(ctx, sql, args...)
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

// morningVaultsSQL is the statement of MorningVaults: one walk of the (morning_rank, name)
// index — the rank is kept on the vault (migration 022) and does not depend on the time —
// then the page's rows joined with their member, island and repository count.
func morningVaultsSQL(f MorningFilter) (string, []any, int) {
	limit := max(1, min(f.Limit, morningMaxRow))
	var args []any
	mine := ""
	if f.MemberIDs != nil {
		args = append(args, f.MemberIDs)
		mine = " AND v.member_id = ANY($1)"
	}
	return `WITH page AS (SELECT v.id, v.morning_rank AS rank, lower(v.name) AS lname FROM vaults v
		WHERE v.status <> 'deleted'` + mine + ` ORDER BY v.morning_rank, lower(v.name), v.id LIMIT ` + strconv.Itoa(limit+1) + `)
	SELECT v.id, v.name, v.member_id, m.slug, v.status, v.quota_bytes, v.usage_bytes, v.usage_at, v.island_id, i.name,
		i.status, (SELECT count(*) FROM restic_repositories r WHERE r.vault_id = v.id AND r.deleted_at IS NULL), p.rank
	FROM page p JOIN vaults v ON v.id = p.id JOIN members m ON m.id = v.member_id JOIN islands i ON i.id = v.island_id
	ORDER BY p.rank, p.lname, p.id`, args, limit
}

// MorningVaults returns the live vaults of the filter, worst first (island health, quota
// used, not active yet), at most f.Limit, and whether more follow. One statement.
func MorningVaults(ctx context.Context, q Querier, f MorningFilter) ([]MorningVault, bool, error) {
	sql, args, limit := morningVaultsSQL(f)
	rows, err := q.Query(ctx, sql, args...)
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
