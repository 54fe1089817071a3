package reports_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

// countingQuerier counts the statements a read sends.
type countingQuerier struct {
	q reports.Querier
	n atomic.Int64
}

func (c *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n.Add(1)
	return c.q.QueryRow(ctx, sql, args...)
}

func (c *countingQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n.Add(1)
	return c.q.Query(ctx, sql, args...)
}

// TestMorningListsAreOneBoundedStatementWorstFirst: the dashboard's lists cost one statement
// each whatever the number of repositories and vaults, return at most the limit asked (and
// say more follow), worst first; a member's list holds only its own.
func TestMorningListsAreOneBoundedStatementWorstFirst(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 40, VaultsPerMember: 3, Days: 2}); err != nil {
		t.Fatal(err)
	}
	// One island down and one vault 96 % full.
	if _, err := pool.Exec(ctx, `UPDATE islands SET status = 'healthy';
		UPDATE islands SET status = 'unavailable' WHERE id = (SELECT min(id) FROM islands);
		UPDATE vaults SET usage_bytes = quota_bytes / 100 * 96 WHERE id = (SELECT max(id) FROM vaults)`); err != nil {
		t.Fatal(err)
	}
	c := &countingQuerier{q: pool}
	repos, more, err := reports.MorningRepositories(ctx, c, reports.MorningFilter{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if c.n.Load() != 1 || len(repos) != 20 || !more {
		t.Fatalf("federation repositories: %d statements, %d rows, more %v; want 1, 20, true", c.n.Load(), len(repos), more)
	}
	for i := 1; i < len(repos); i++ {
		if repos[i].Rank < repos[i-1].Rank {
			t.Fatalf("not worst first at %d: %d after %d", i, repos[i].Rank, repos[i-1].Rank)
		}
	}
	if repos[0].Rank > reports.RankStale {
		t.Fatalf("worst repository ranks %d (%+v), want a failed one or one on the island that is down", repos[0].Rank, repos[0])
	}
	for _, r := range repos {
		if r.LastStatus != "" && r.NewestSnapshotTime == nil {
			t.Fatalf("repository %d tested without a snapshot time", r.ID)
		}
	}
	c.n.Store(0)
	vaults, more, err := reports.MorningVaults(ctx, c, reports.MorningFilter{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if c.n.Load() != 1 || len(vaults) != 20 || !more || vaults[0].IslandStatus != "unavailable" {
		t.Fatalf("federation vaults: %d statements, %d rows, more %v, first %+v", c.n.Load(), len(vaults), more, vaults)
	}
	var full int
	for _, v := range vaults {
		if v.Used() > 0.95 {
			full++
		}
	}
	if full != 1 {
		t.Fatalf("the 96 %% full vault is not among the 20 worst: %+v", vaults)
	}
	member := repos[0].MemberID
	mine, more, err := reports.MorningRepositories(ctx, pool, reports.MorningFilter{MemberIDs: []int64{member}, Limit: 200})
	if err != nil || more || len(mine) != 3 {
		t.Fatalf("member's repositories: %d, more %v, %v", len(mine), more, err)
	}
	for _, r := range mine {
		if r.MemberID != member {
			t.Fatalf("another member's repository %+v", r)
		}
	}
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType      string     `json:"Node Type"`
	Relation      string     `json:"Relation Name"`
	Index         string     `json:"Index Name"`
	ActualRows    float64    `json:"Actual Rows"`
	ActualLoops   float64    `json:"Actual Loops"`
	RemovedFilter float64    `json:"Rows Removed by Filter"`
	Plans         []planNode `json:"Plans"`
}

// rowsRead walks the plan: the rows each table's scans read (returned and filtered out,
// over every loop), and the sequential scans.
func rowsRead(n planNode, read map[string]float64, seq map[string]bool) {
	if n.Relation != "" {
		loops := max(n.ActualLoops, 1)
		read[n.Relation] += (n.ActualRows + n.RemovedFilter) * loops
		if n.NodeType == "Seq Scan" {
			seq[n.Relation] = true
		}
	}
	for _, c := range n.Plans {
		rowsRead(c, read, seq)
	}
}

func explain(t *testing.T, pool *pgxpool.Pool, sql string, args []any) (map[string]float64, map[string]bool, string) {
	t.Helper()
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	var raw []byte
	if err := pool.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		t.Fatalf("plan: %v %s", err, raw)
	}
	read, seq := map[string]float64{}, map[string]bool{}
	rowsRead(out[0].Plan, read, seq)
	return read, seq, string(raw)
}

// consistent fails when a kept rank differs from the rank computed from scratch.
func consistent(t *testing.T, pool *pgxpool.Pool, when string) {
	t.Helper()
	var repos, vaults, stale int
	if err := pool.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id JOIN islands i ON i.id = v.island_id
			WHERE r.morning_rank <> least(morning_outcome_rank(r.last_status), morning_island_rank(i.status),
				morning_usage_rank(v.usage_bytes, v.quota_bytes))),
		(SELECT count(*) FROM vaults v JOIN islands i ON i.id = v.island_id WHERE v.status <> 'deleted'
			AND v.morning_rank <> least(morning_island_rank(i.status), morning_usage_rank(v.usage_bytes, v.quota_bytes),
				CASE WHEN v.status <> 'active' THEN 4 ELSE 5 END)),
		(SELECT count(*) FROM restic_repositories r CROSS JOIN restore_settings s
			WHERE r.stale_at IS DISTINCT FROM coalesce(r.last_snapshot_time, (SELECT x.snapshot_time FROM restore_test_runs x
				WHERE x.repository_id = r.id AND x.snapshot_time IS NOT NULL ORDER BY x.id DESC LIMIT 1))
				+ coalesce(r.rpo_seconds, s.rpo_seconds) * interval '1 second')`).Scan(&repos, &vaults, &stale); err != nil {
		t.Fatal(err)
	}
	if repos+vaults+stale > 0 {
		t.Fatalf("%s: kept ranks differ from the data: %d repositories, %d vaults, %d stale moments", when, repos, vaults, stale)
	}
}

// TestMorningRankIsKeptAndWalkedByIndex: the dashboard's worst-first lists read a rank kept
// on each repository and vault in the transaction of the change (a failed test, an island
// going down, a vault filling up, the federation's RPO), walk an index in rank order and stop
// at the limit — at 3,000 repositories they read about the page's rows, with no sequential
// scan — and a repository whose snapshot grows older than its RPO, with no write at all, is
// ranked stale from that moment.
func TestMorningRankIsKeptAndWalkedByIndex(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 300, VaultsPerMember: 10, Days: 2}); err != nil {
		t.Fatal(err)
	}
	consistent(t, pool, "seeded")
	const limit = 20
	f := reports.MorningFilter{Limit: limit}
	rsql, rargs, vsql, vargs := reports.MorningSQL(f)
	for _, q := range []struct {
		what string
		sql  string
		args []any
	}{{"repositories", rsql, rargs}, {"vaults", vsql, vargs}} {
		read, seq, plan := explain(t, pool, q.sql, q.args)
		if seq["restic_repositories"] || seq["vaults"] {
			t.Errorf("%s: a sequential scan (%v) in %s", q.what, seq, plan)
		}
		// Four walks of limit+1 rows at most, then the page's rows joined (and counted).
		if bound := float64(6 * (limit + 1)); read["restic_repositories"] > bound || read["vaults"] > bound {
			t.Errorf("%s: read %v rows of restic_repositories and %v of vaults for a page of %d (3,000 of each), want ≤ %v",
				q.what, read["restic_repositories"], read["vaults"], limit, bound)
		}
	}

	// A good repository, first by name: not among the worst until its test fails.
	var id, vault, island int64
	if err := pool.QueryRow(ctx, `UPDATE restic_repositories SET name = 'a-first' WHERE id = (SELECT min(id) FROM restic_repositories
		WHERE last_status = 'passed') RETURNING id, vault_id, (SELECT island_id FROM vaults WHERE id = vault_id)`).Scan(&id, &vault, &island); err != nil {
		t.Fatal(err)
	}
	first := func() reports.MorningRepository {
		t.Helper()
		repos, _, err := reports.MorningRepositories(ctx, pool, f)
		if err != nil || len(repos) == 0 {
			t.Fatalf("repositories: %v, %v", repos, err)
		}
		for i := 1; i < len(repos); i++ {
			if repos[i].Rank < repos[i-1].Rank {
				t.Fatalf("not worst first at %d: %d after %d", i, repos[i].Rank, repos[i-1].Rank)
			}
		}
		return repos[0]
	}
	if r := first(); r.ID == id {
		t.Fatalf("a passing repository ranks first: %+v", r)
	}
	if _, err := pool.Exec(ctx, `WITH run AS (INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status,
			reason, queued_at, started_at, finished_at, snapshot_time, rpo_target_seconds, rto_target_seconds)
		SELECT r.id, r.member_id, $2, 'manual', 'blind', 'failed', 'canary missing', now(), now(), now(), now() - interval '1 hour',
			93600, 86400
		FROM restic_repositories r WHERE r.id = $1 RETURNING id)
		UPDATE restic_repositories SET last_run_id = (SELECT id FROM run) WHERE id = $1`, id, island); err != nil {
		t.Fatal(err)
	}
	if r := first(); r.ID != id || r.Rank != reports.RankBroken || r.LastStatus != "failed" || r.LastReason != "canary missing" {
		t.Fatalf("after its test failed, first is %+v, want repository %d, failed", r, id)
	}
	consistent(t, pool, "a failed test")

	// Its island goes down, another vault fills up: the kept ranks follow.
	if _, err := pool.Exec(ctx, `UPDATE islands SET status = 'unavailable' WHERE id = $1`, island); err != nil {
		t.Fatal(err)
	}
	consistent(t, pool, "an island down")
	if _, err := pool.Exec(ctx, `UPDATE islands SET status = 'healthy' WHERE id = $1`, island); err != nil {
		t.Fatal(err)
	}
	var full int64
	if err := pool.QueryRow(ctx, `UPDATE vaults SET usage_bytes = quota_bytes / 100 * 96, name = 'aaa-full'
		WHERE id = (SELECT max(id) FROM vaults) RETURNING id`).Scan(&full); err != nil {
		t.Fatal(err)
	}
	consistent(t, pool, "a vault 96 % full")
	vaults, _, err := reports.MorningVaults(ctx, pool, f)
	if err != nil || len(vaults) == 0 || vaults[0].ID != full || vaults[0].Rank != reports.RankFull {
		t.Fatalf("the 96 %% full vault is not first: %+v, %v", vaults, err)
	}

	// The federation's RPO shortened: every repository's stale moment follows.
	if _, err := pool.Exec(ctx, `UPDATE restore_settings SET rpo_seconds = 7200`); err != nil {
		t.Fatal(err)
	}
	consistent(t, pool, "a shorter RPO")
	if _, err := pool.Exec(ctx, `UPDATE restore_settings SET rpo_seconds = 93600`); err != nil {
		t.Fatal(err)
	}

	// Time alone: a passing repository whose snapshot turns older than its RPO 45 seconds
	// from now is not stale now, and is without any write once the moment passes.
	var soon int64
	if err := pool.QueryRow(ctx, `WITH r AS (SELECT id, member_id FROM restic_repositories WHERE last_status = 'passed' AND id <> $1
			ORDER BY id DESC LIMIT 1),
		run AS (INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, reason, queued_at,
			started_at, finished_at, snapshot_time, rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, $2, 'manual', 'blind', 'passed', '', now(), now(), now(), now() - interval '75 seconds',
				120, 86400 FROM r
			RETURNING id, repository_id)
		UPDATE restic_repositories x SET rpo_seconds = 120, last_run_id = run.id, name = 'b-soon' FROM run
		WHERE x.id = run.repository_id RETURNING x.id`, id, island).Scan(&soon); err != nil {
		t.Fatal(err)
	}
	stale := func() (bool, reports.MorningRepository) {
		repos, _, err := reports.MorningRepositories(ctx, pool, reports.MorningFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range repos {
			if r.ID == soon {
				return r.Rank == reports.RankStale, r
			}
		}
		return false, reports.MorningRepository{}
	}
	if s, r := stale(); s {
		t.Fatalf("stale before its RPO passed: %+v", r)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, r := stale()
		if s {
			if !r.Stale(time.Now()) {
				t.Fatalf("ranked stale but its age says otherwise: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("repository %d never ranked stale after its RPO passed: %+v", soon, r)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
