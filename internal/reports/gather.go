package reports

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what reads need: a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Gather reads the input of a report from the database: for a member (member != nil)
// its repositories, vaults, pledges and key events; for the federation every member's
// repositories, the islands and the incidents of the period.
func Gather(ctx context.Context, q Querier, scope string, member *MemberRef, p Period) (Input, error) {
	in := Input{Scope: scope, Member: member, Period: p}
	var memberID int64
	if member != nil {
		memberID = member.ID
	}
	var err error
	if in.Repositories, err = gatherRepositories(ctx, q, memberID, p, scope == ScopeFederation); err != nil {
		return in, err
	}
	if scope == ScopeMember {
		if in.Vaults, err = gatherVaults(ctx, q, memberID, p); err != nil {
			return in, err
		}
		if in.Pledges, err = gatherPledges(ctx, q, memberID, p); err != nil {
			return in, err
		}
		if in.KeyEvents, err = gatherKeyEvents(ctx, q, memberID, p); err != nil {
			return in, err
		}
		return in, nil
	}
	if in.Members, err = gatherMembers(ctx, q); err != nil {
		return in, err
	}
	if in.Islands, err = gatherIslands(ctx, q); err != nil {
		return in, err
	}
	if in.Incidents, err = gatherIncidents(ctx, q, p); err != nil {
		return in, err
	}
	return in, nil
}

// gatherRepositories reads the repositories (every member's when memberID is 0) with their
// latest finished run up to the period's end. With totals (federation reports) the runs of
// the period are summed in SQL, one row per repository (RepoInput.Totals), and nothing else
// is read: a federation report shows no repository's runs, failures, evidence or last
// success, and shipping 700,000 runs of 100,000 repositories to Go took minutes. Otherwise
// (member reports) the runs themselves, the evidence of the latest run and the last success
// are read.
func gatherRepositories(ctx context.Context, q Querier, memberID int64, p Period, totals bool) ([]RepoInput, error) {
	rows, err := q.Query(ctx, `SELECT r.id, r.name, r.mode, v.name, i.name, m.id, m.slug, m.name,
			coalesce(r.rpo_seconds, s.rpo_seconds), coalesce(r.rto_seconds, s.rto_seconds)
		FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id JOIN islands i ON i.id = v.island_id
		JOIN members m ON m.id = r.member_id CROSS JOIN restore_settings s
		WHERE (r.deleted_at IS NULL OR r.deleted_at > $2) AND r.created_at < $3 AND ($1 = 0 OR r.member_id = $1)
		ORDER BY m.slug, r.name, r.id`, memberID, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: repositories: %w", err)
	}
	repos, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RepoInput, error) {
		var x RepoInput
		err := r.Scan(&x.ID, &x.Name, &x.Mode, &x.Vault, &x.Island, &x.Member.ID, &x.Member.Slug, &x.Member.Name, &x.RPOSeconds, &x.RTOSeconds)
		return x, err
	})
	if err != nil || len(repos) == 0 {
		return repos, err
	}
	ids := make([]int64, len(repos))
	byID := map[int64]*RepoInput{}
	for i := range repos {
		ids[i] = repos[i].ID
		byID[repos[i].ID] = &repos[i]
	}
	const runCols = `repository_id, id, status, reason, finished_at, duration_ms, snapshot_age_seconds, deleted_snapshots,
		restore_seconds, throughput_bps, repo_size_bytes, rto_estimate_seconds`
	scanRun := func(r pgx.CollectableRow) (struct {
		repo int64
		run  RunInput
	}, error) {
		var x struct {
			repo int64
			run  RunInput
		}
		err := r.Scan(&x.repo, &x.run.ID, &x.run.Status, &x.run.Reason, &x.run.FinishedAt, &x.run.DurationMS, &x.run.SnapshotAgeSeconds,
			&x.run.DeletedSnapshots, &x.run.RestoreSeconds, &x.run.ThroughputBps, &x.run.RepoSizeBytes, &x.run.RTOEstimateSeconds)
		x.run.FinishedAt = x.run.FinishedAt.UTC()
		return x, err
	}
	// The runs of a repository finish in the order of their ids (it has one test at a time),
	// so every read below walks the (repository_id, id) index from the newest run backwards
	// and stops early: its cost follows the period and the number of repositories, not the
	// months of history before the period. A federation report sums the period's runs
	// instead, read through their finished_at index (gatherTotals).
	if totals {
		if err := gatherTotals(ctx, q, p, byID); err != nil {
			return nil, err
		}
	} else {
		rows, err = q.Query(ctx, `SELECT `+prefixed("x.", runCols)+` FROM unnest($1::bigint[]) AS r(id)
			CROSS JOIN LATERAL (SELECT coalesce((SELECT y.id FROM restore_test_runs y
				WHERE y.repository_id = r.id AND y.finished_at < $2 ORDER BY y.id DESC LIMIT 1), 0) AS floor) f
			JOIN restore_test_runs x ON x.repository_id = r.id AND x.id > f.floor
			WHERE x.status IN ('passed', 'warning', 'failed', 'error') AND x.finished_at >= $2 AND x.finished_at < $3
			ORDER BY x.finished_at, x.id`, ids, p.Start, p.End)
		if err != nil {
			return nil, fmt.Errorf("report: runs: %w", err)
		}
		runs, err := pgx.CollectRows(rows, scanRun)
		if err != nil {
			return nil, fmt.Errorf("report: runs: %w", err)
		}
		for _, x := range runs {
			byID[x.repo].Runs = append(byID[x.repo].Runs, x.run)
		}
	}
	rows, err = q.Query(ctx, `SELECT `+prefixed("x.", runCols)+` FROM unnest($1::bigint[]) AS r(id)
		CROSS JOIN LATERAL (SELECT * FROM restore_test_runs y WHERE y.repository_id = r.id
			AND y.status IN ('passed', 'warning', 'failed', 'error') AND y.finished_at < $2 ORDER BY y.id DESC LIMIT 1) x`, ids, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: latest runs: %w", err)
	}
	latest, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("report: latest runs: %w", err)
	}
	latestIDs := make([]int64, 0, len(latest))
	runRepo := map[int64]int64{}
	for _, x := range latest {
		run := x.run
		byID[x.repo].Latest = &run
		latestIDs = append(latestIDs, run.ID)
		runRepo[run.ID] = x.repo
	}
	if totals {
		return repos, nil
	}
	// The evidence of each latest run: its levels that ran, produced by the federation.
	rows, err = q.Query(ctx, `SELECT run_id, level, outcome FROM restore_test_levels
		WHERE run_id = ANY($1) AND outcome <> 'skipped' ORDER BY run_id, position`, latestIDs)
	if err != nil {
		return nil, fmt.Errorf("report: evidence: %w", err)
	}
	var evRun int64
	var ev Evidence
	if _, err := pgx.ForEachRow(rows, []any{&evRun, &ev.Kind, &ev.Outcome}, func() error {
		r := byID[runRepo[evRun]]
		r.Evidence = append(r.Evidence, Evidence{Kind: ev.Kind, Producer: "federation", Outcome: ev.Outcome})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("report: evidence: %w", err)
	}
	// The member's side: the latest signed attestation of its agent before the period's end.
	rows, err = q.Query(ctx, `SELECT DISTINCT ON (repository_id) repository_id, status FROM agent_attestations
		WHERE repository_id = ANY($1) AND finished_at < $2 ORDER BY repository_id, finished_at DESC, id DESC`, ids, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: attestations: %w", err)
	}
	var attRepo int64
	var attStatus string
	if _, err := pgx.ForEachRow(rows, []any{&attRepo, &attStatus}, func() error {
		r := byID[attRepo]
		r.Evidence = append(r.Evidence, Evidence{Kind: "attestation", Producer: "member", Outcome: attStatus})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("report: attestations: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT r.id, x.finished_at FROM unnest($1::bigint[]) AS r(id)
		CROSS JOIN LATERAL (SELECT y.finished_at FROM restore_test_runs y WHERE y.repository_id = r.id
			AND y.status IN ('passed', 'warning') AND y.finished_at < $2 ORDER BY y.id DESC LIMIT 1) x`, ids, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: last successes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		at = at.UTC()
		byID[id].LastSuccessAt = &at
	}
	return repos, rows.Err()
}

// gatherTotals sums the runs of the period of every repository in SQL (RunTotals, the same
// definition as totalsOf): one statement reading the period's runs through their
// finished_at index (migration 020), one row per repository tested in the period. The runs
// are sorted by an expression of the repository so that PostgreSQL neither walks every
// repository's index in order (a random read of the heap per run: 22 s at 10,000 members
// on the loaded machine) nor hashes 100,000 groups of arrays (spilled to disk: 15 s); the
// newest size, projection and failure are arg-max values (no sort per group), and the
// throughputs come as an array whose median is taken here.
func gatherTotals(ctx context.Context, q Querier, p Period, byID map[int64]*RepoInput) error {
	for _, r := range byID {
		r.Totals = &RunTotals{}
	}
	rows, err := q.Query(ctx, `SELECT x.repo, count(*)::int,
			count(*) FILTER (WHERE x.status = 'passed')::int, count(*) FILTER (WHERE x.status = 'warning')::int,
			count(*) FILTER (WHERE x.status = 'failed')::int, count(*) FILTER (WHERE x.status = 'error')::int,
			max(x.snapshot_age_seconds), coalesce(sum(x.deleted_snapshots), 0)::int,
			(max(ARRAY[x.at, x.id, x.repo_size_bytes]) FILTER (WHERE x.repo_size_bytes IS NOT NULL))[3],
			(max(ARRAY[x.at, x.id, x.rto_estimate_seconds]) FILTER (WHERE x.rto_estimate_seconds IS NOT NULL))[3],
			array_agg(x.throughput_bps) FILTER (WHERE x.throughput_bps > 0),
			coalesce(substr(max(lpad(x.at::text, 20, '0') || lpad(x.id::text, 20, '0') || x.reason COLLATE "C")
				FILTER (WHERE x.status IN ('failed', 'error')), 41), '')
		FROM (SELECT y.repository_id + 0 AS repo, (extract(epoch FROM y.finished_at) * 1000000)::bigint AS at, y.id, y.status,
				y.reason, y.snapshot_age_seconds, y.deleted_snapshots, y.repo_size_bytes, y.rto_estimate_seconds, y.throughput_bps
			FROM restore_test_runs y
			WHERE y.finished_at >= $1 AND y.finished_at < $2 AND y.status IN ('passed', 'warning', 'failed', 'error')
			ORDER BY 1) x
		GROUP BY x.repo`, p.Start, p.End)
	if err != nil {
		return fmt.Errorf("report: run totals: %w", err)
	}
	var (
		id          int64
		t           RunTotals
		throughputs []float64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &t.Tests.Total, &t.Tests.Passed, &t.Tests.Warning, &t.Tests.Failed, &t.Tests.Error,
		&t.WorstSnapshotAgeSeconds, &t.DeletionsSeen, &t.SizeBytes, &t.RTOEstimateSeconds, &throughputs, &t.LastFailureReason}, func() error {
		if r := byID[id]; r != nil { // runs of repositories not in the report (deleted before the period) are left out
			x := t
			if len(throughputs) > 0 {
				slices.Sort(throughputs)
				x.MedianThroughputBps = ptr(throughputs[len(throughputs)/2])
			}
			r.Totals = &x
		}
		t, throughputs = RunTotals{}, nil // the pointers scanned into are fresh for each row
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: run totals: %w", err)
	}
	return nil
}

func gatherVaults(ctx context.Context, q Querier, memberID int64, p Period) ([]VaultInput, error) {
	rows, err := q.Query(ctx, `SELECT v.id, v.name, i.name, v.status, v.quota_bytes,
			coalesce((SELECT u.bytes FROM vault_usage u WHERE u.vault_id = v.id AND u.observed_at < $3 ORDER BY u.observed_at DESC LIMIT 1),
				CASE WHEN $3 >= now() THEN v.usage_bytes END)
		FROM vaults v JOIN islands i ON i.id = v.island_id
		WHERE v.member_id = $1 AND v.created_at < $3 AND (v.deleted_at IS NULL OR v.deleted_at > $2) ORDER BY v.name, v.id`, memberID, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: vaults: %w", err)
	}
	vaults, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (VaultInput, error) {
		var v VaultInput
		err := r.Scan(&v.ID, &v.Name, &v.Island, &v.Status, &v.QuotaBytes, &v.UsageBytes)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("report: vaults: %w", err)
	}
	for i := range vaults {
		rows, err := q.Query(ctx, `SELECT observed_at, bytes FROM vault_usage WHERE vault_id = $1 AND observed_at >= $2 AND observed_at < $3
			ORDER BY observed_at`, vaults[i].ID, p.Start, p.End)
		if err != nil {
			return nil, fmt.Errorf("report: usage of vault %d: %w", vaults[i].ID, err)
		}
		vaults[i].History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsagePoint, error) {
			var u UsagePoint
			err := r.Scan(&u.At, &u.Bytes)
			u.At = u.At.UTC()
			return u, err
		})
		if err != nil {
			return nil, fmt.Errorf("report: usage of vault %d: %w", vaults[i].ID, err)
		}
	}
	return vaults, nil
}

func gatherPledges(ctx context.Context, q Querier, memberID int64, p Period) ([]Pledge, error) {
	rows, err := q.Query(ctx, `SELECT p.id, i.name, p.node_id, p.zone, p.capacity_bytes, p.layout_capacity_bytes, p.status, p.status_detail, p.since
		FROM pledges p JOIN islands i ON i.id = p.island_id
		WHERE p.member_id = $1 AND p.since < $3 AND (p.withdrawn_at IS NULL OR p.withdrawn_at > $2) ORDER BY p.id`, memberID, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: pledges: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pledge, error) {
		var x Pledge
		err := r.Scan(&x.ID, &x.Island, &x.NodeID, &x.Zone, &x.CapacityBytes, &x.LayoutCapacityBytes, &x.Status, &x.StatusDetail, &x.Since)
		x.Since = x.Since.UTC()
		return x, err
	})
}

func gatherKeyEvents(ctx context.Context, q Querier, memberID int64, p Period) ([]KeyEvent, error) {
	rows, err := q.Query(ctx, `SELECT at, vault, key, access_key_id, event FROM (
			SELECT k.created_at AS at, v.name AS vault, k.name AS key, k.access_key_id,
				CASE WHEN k.rotated_from IS NULL THEN 'created' ELSE 'rotated' END AS event
			FROM vault_keys k JOIN vaults v ON v.id = k.vault_id WHERE v.member_id = $1
			UNION ALL
			SELECT k.revoked_at, v.name, k.name, k.access_key_id, 'revoked'
			FROM vault_keys k JOIN vaults v ON v.id = k.vault_id WHERE v.member_id = $1 AND k.revoked_at IS NOT NULL
			UNION ALL
			SELECT k.deleted_at, v.name, k.name, k.access_key_id, 'expired'
			FROM vault_keys k JOIN vaults v ON v.id = k.vault_id WHERE v.member_id = $1 AND k.deleted_at IS NOT NULL AND k.revoked_at IS NULL
		) e WHERE at >= $2 AND at < $3 ORDER BY at, access_key_id, event`, memberID, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: key events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyEvent, error) {
		var k KeyEvent
		err := r.Scan(&k.At, &k.Vault, &k.Key, &k.AccessKeyID, &k.Event)
		k.At = k.At.UTC()
		return k, err
	})
}

func gatherMembers(ctx context.Context, q Querier) ([]MemberRef, error) {
	rows, err := q.Query(ctx, `SELECT id, slug, name FROM members ORDER BY slug`)
	if err != nil {
		return nil, fmt.Errorf("report: members: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MemberRef, error) {
		var m MemberRef
		err := r.Scan(&m.ID, &m.Slug, &m.Name)
		return m, err
	})
}

func gatherIslands(ctx context.Context, q Querier) ([]Island, error) {
	rows, err := q.Query(ctx, `SELECT i.id, i.name, i.status, i.replication_factor,
			coalesce((SELECT sum(p.capacity_bytes) FROM pledges p WHERE p.island_id = i.id AND p.withdrawn_at IS NULL), 0)::bigint,
			i.layout_capacity_bytes,
			coalesce((SELECT sum(v.quota_bytes) FROM vaults v WHERE v.island_id = i.id AND v.status IN ('pending', 'active')), 0)::bigint,
			coalesce((SELECT sum(v.usage_bytes) FROM vaults v WHERE v.island_id = i.id AND v.status IN ('pending', 'active', 'deleting')), 0)::bigint,
			(SELECT count(*) FROM pledges p WHERE p.island_id = i.id AND p.status = 'down')::int
		FROM islands i ORDER BY i.name`)
	if err != nil {
		return nil, fmt.Errorf("report: islands: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Island, error) {
		var x Island
		err := r.Scan(&x.ID, &x.Name, &x.Status, &x.ReplicationFactor, &x.PledgedBytes, &x.LayoutBytes, &x.AllocatedBytes, &x.UsedBytes, &x.PledgesDown)
		return x, err
	})
}

// gatherIncidents reads every warning and critical event of the period: a report is a
// record, and a list cut at some length would say less than it claims (it used to stop at
// 1,000 silently).
func gatherIncidents(ctx context.Context, q Querier, p Period) ([]Incident, error) {
	rows, err := q.Query(ctx, `SELECT e.at, coalesce(m.slug, ''), e.kind, e.severity, e.subject, e.title
		FROM notify_events e LEFT JOIN members m ON m.id = e.member_id
		WHERE e.severity IN ('warning', 'critical') AND e.kind <> 'test' AND e.at >= $1 AND e.at < $2
		ORDER BY e.at, e.id`, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("report: incidents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incident, error) {
		var x Incident
		err := r.Scan(&x.At, &x.Member, &x.Kind, &x.Severity, &x.Subject, &x.Title)
		x.At = x.At.UTC()
		return x, err
	})
}

// prefixed qualifies a comma-separated column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
