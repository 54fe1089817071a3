// Package scaleseed fills a migrated database with a synthetic federation of a chosen size,
// directly in SQL and set-based (a few statements whatever the size), for the scale
// benchmark (bench/scale) and for tests of lists and pages at sizes beyond what the API
// could create quickly. It writes no audit entries and talks to no Garage: its islands are
// placeholders (workers must stay off on a seeded database).
//
// It must never run against a real federation's database; it refuses a database that
// already has members.
package scaleseed

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Size is the shape of a seeded federation.
type Size struct {
	Members         int // member organisations, slugs m00001…
	VaultsPerMember int // each with one restic repository (blind mode)
	// Days of daily restore tests per repository (finished, mostly passed), ending now.
	Days int
	// ChannelsPerMember and ReportsPerMember add notification channels and stored reports.
	ChannelsPerMember, ReportsPerMember int
}

// Islands is how many islands a size gets: one per four members (its operators), at least
// two so every member's vaults can live on an island it does not operate.
func (s Size) Islands() int { return max(2, (s.Members+3)/4) }

// Seed fills the database. It refuses one that already has members.
func Seed(ctx context.Context, pool *pgxpool.Pool, s Size) error {
	if s.Members < 1 || s.VaultsPerMember < 0 || s.Days < 0 {
		return errors.New("scaleseed: need at least one member")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM members`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return errors.New("scaleseed: the database already has members; seed an empty one")
	}
	islands := s.Islands()
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"members", `INSERT INTO members (slug, name, contact_email)
			SELECT 'm' || lpad(g::text, 5, '0'), 'Member ' || g, 'admin@m' || g || '.example' FROM generate_series(1, $1) g`,
			[]any{s.Members}},
		{"islands", `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
				replication_factor, status, last_polled_at, last_ok_at, layout_version, layout_capacity_bytes)
			SELECT 'island-' || lpad(g::text, 5, '0'), 'http://127.0.0.1:9/' || g, 'seeded-placeholder',
				'http://127.0.0.1:9', 'garage', 3, 'healthy', now(), now(), 1, 4 * 1099511627776
			FROM generate_series(1, $1) g`, []any{islands}},
		// Member k operates island ((k-1) mod islands)+1 and pledges one node there.
		{"operators", `INSERT INTO island_operators (island_id, member_id)
			SELECT i.id, m.id FROM members m JOIN islands i ON i.name = 'island-' || lpad((((m.id - (SELECT min(id) FROM members))
				% $1) + 1)::text, 5, '0')`, []any{islands}},
		{"pledges", `INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes, status, layout_capacity_bytes,
				node_up, observed_at)
			SELECT o.member_id, o.island_id, encode(sha256(('node-' || o.member_id)::bytea), 'hex'), 'zone-' || o.member_id,
				1099511627776, 'active', 1099511627776, true, now()
			FROM island_operators o`, nil},
		// Vaults live on the next island after the one the member operates.
		{"vaults", `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes, status,
				placement, usage_bytes, usage_objects, usage_at, reconciled_at)
			SELECT o.member_id, (SELECT min(id) FROM islands) + ((o.island_id - (SELECT min(id) FROM islands) + 1) % $2),
				'vault-' || v, 'b-' || o.member_id || '-' || v, encode(sha256(('bucket-' || o.member_id || '-' || v)::bytea), 'hex'),
				107374182400, 'active', 'automatic', (o.member_id * 7919 + v * 104729) % 107374182400, 1000 + v, now(), now()
			FROM island_operators o, generate_series(1, $1) v`, []any{s.VaultsPerMember, islands}},
		// Registered a day before their first test.
		{"repositories", `INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token, next_run_at,
				created_at)
			SELECT v.member_id, v.id, 'repo-' || v.name, 'restic', 'blind',
				'archipelago-canary-' || substr(translate(encode(sha256(('canary-' || v.id)::bytea), 'hex'), '0189', 'wxyz'), 1, 26),
				now() + interval '1 day', now() - ($1 + 1) * interval '1 day'
			FROM vaults v`, []any{s.Days}},
		{"last runs", `UPDATE restic_repositories r SET last_run_id = l.id
			FROM (SELECT repository_id, max(id) id FROM restore_test_runs GROUP BY repository_id) l WHERE l.repository_id = r.id`, nil},
		{"channels", `INSERT INTO notify_channels (member_id, kind, name, target)
			SELECT m.id, 'email', 'channel-' || c, 'ops' || c || '@' || m.slug || '.example'
			FROM members m, generate_series(1, $1) c`, []any{s.ChannelsPerMember}},
		{"reports", `INSERT INTO reports (scope, member_id, period, period_start, period_end, generated_at, schema_version,
				document, sha256, checkpoint_size, audit_seq)
			SELECT 'member', m.id, 'custom', now() - (k + 1) * interval '7 days', now() - k * interval '7 days',
				now() - k * interval '7 days', 'seeded', '\x7b7d'::bytea, encode(sha256(('report-' || m.id || '-' || k)::bytea), 'hex'), 0, 0
			FROM members m, generate_series(1, $1) k`, []any{s.ReportsPerMember}},
	}
	for _, st := range steps {
		if st.what == "last runs" {
			if err := seedRuns(ctx, pool, s.Days); err != nil {
				return fmt.Errorf("scaleseed: runs: %w", err)
			}
		}
		if _, err := pool.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("scaleseed: %s: %w", st.what, err)
		}
	}
	// The bulk update of the last runs left two outcome deltas per repository (migration 026):
	// fold them as a read of the restore-tests page would, and vacuum the table, so that the
	// seeded database is in the steady state a running federation keeps (a few rows), not
	// 200,000 dead ones for the first reads to wade through until autovacuum comes.
	if _, err := pool.Exec(ctx, `WITH gone AS (DELETE FROM restore_outcome_deltas RETURNING outcome, repositories)
		INSERT INTO restore_outcome_deltas (outcome, repositories)
			SELECT outcome, sum(repositories) FROM gone GROUP BY outcome HAVING sum(repositories) <> 0`); err != nil {
		return fmt.Errorf("scaleseed: fold outcome deltas: %w", err)
	}
	if _, err := pool.Exec(ctx, `VACUUM restore_outcome_deltas`); err != nil {
		return fmt.Errorf("scaleseed: vacuum outcome deltas: %w", err)
	}
	_, err := pool.Exec(ctx, `ANALYZE`)
	return err
}

// Counts reports how many rows of each seeded kind the database holds.
func Counts(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range []string{"members", "islands", "pledges", "vaults", "restic_repositories", "restore_test_runs",
		"notify_channels", "reports"} {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, nil
}

// seedRuns writes one run a day per repository (one in twenty failed), oldest day first
// and by repository within a day, so ids grow with time as real runs' do. It is the big
// table (a year at 10,000 members is 3.65 M rows), so in one transaction: its secondary
// indexes are dropped and rebuilt after the rows are in (a sorted build instead of millions
// of index insertions), its foreign keys are not checked row by row when the role may
// skip them (the rows reference what the steps before made), and each day is one
// INSERT … SELECT in repository order (no sort of the whole year).
func seedRuns(ctx context.Context, pool *pgxpool.Pool, days int) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var super bool
		if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
			return err
		}
		if super {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = 'restore_test_runs'
			  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'restore_test_runs'::regclass)`)
		if err != nil {
			return err
		}
		type index struct{ name, def string }
		idx, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
			var i index
			return i, r.Scan(&i.name, &i.def)
		})
		if err != nil {
			return err
		}
		for _, i := range idx {
			if _, err := tx.Exec(ctx, `DROP INDEX `+pgx.Identifier{i.name}.Sanitize()); err != nil {
				return err
			}
		}
		for d := days - 1; d >= 0; d-- {
			if _, err := tx.Exec(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status,
					reason, queued_at, started_at, finished_at, duration_ms, snapshot_id, snapshot_time, snapshot_age_seconds,
					snapshot_count, rpo_target_seconds, rto_target_seconds, repo_size_bytes, rto_estimate_seconds)
				SELECT r.id, r.member_id, v.island_id, 'schedule', 'blind',
					CASE WHEN (r.id + $1::int) % 20 = 0 THEN 'failed' ELSE 'passed' END,
					CASE WHEN (r.id + $1::int) % 20 = 0 THEN 'seeded failure' ELSE '' END,
					now() - $1::int * interval '1 day' - interval '1 hour', now() - $1::int * interval '1 day' - interval '1 hour',
					now() - $1::int * interval '1 day' - interval '1 hour' + interval '40 seconds',
					40000, encode(sha256(('snap-' || r.id || '-' || $1::int)::bytea), 'hex'), now() - $1::int * interval '1 day' - interval '4 hours',
					10800, 30, 93600, 86400, v.usage_bytes, 600
				FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id
				ORDER BY r.id`, d); err != nil {
				return fmt.Errorf("day %d: %w", d, err)
			}
		}
		for _, i := range idx {
			if _, err := tx.Exec(ctx, i.def); err != nil {
				return err
			}
		}
		return nil
	})
}
