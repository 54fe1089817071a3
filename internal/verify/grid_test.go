package verify

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

// countingQuerier counts the statements a read sends.
type countingQuerier struct {
	q querier
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

var gridRanks = map[string]int{StatusFailed: 0, StatusError: 1, StatusWarning: 2, GridStateUntested: 3, StatusPassed: 4, "": 5}

// worstOf is a member's worst last outcome computed from its cells, independently of the SQL.
func worstOf(m GridMember) string {
	if len(m.Cells) == 0 {
		return ""
	}
	worst := StatusPassed
	for _, c := range m.Cells {
		s := c.LastStatus
		if s == "" || s == StatusCancelled {
			s = GridStateUntested
		}
		if gridRanks[s] < gridRanks[worst] {
			worst = s
		}
	}
	return worst
}

// TestGridPagesAreOneStatementAtAThousandMembers: the federation grid over 1,200 members
// costs one statement per page whatever the sort or filter; walking its pages returns
// every member once, in the order asked (worst first, by name, oldest snapshot first); the
// worst outcome and the cells agree with the repositories; the outcome filter keeps only
// members with such a repository, the search only matching slugs or names (a % is not a
// wildcard), the scope only the members asked.
func TestGridPagesAreOneStatementAtAThousandMembers(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 1200, VaultsPerMember: 2, Days: 2}); err != nil {
		t.Fatal(err)
	}
	// Mixed outcomes: errors, warnings, a paused repository, one never tested, a running test,
	// and members without a repository.
	if _, err := pool.Exec(ctx, `
		UPDATE restore_test_runs SET status = 'error', reason = 'the island did not answer' WHERE id % 31 = 0 AND status = 'passed';
		UPDATE restore_test_runs SET status = 'warning', reason = 'close to the RPO' WHERE id % 17 = 0 AND status = 'passed';
		UPDATE restic_repositories SET last_run_id = NULL; UPDATE restic_repositories r SET last_run_id = l.id
			FROM (SELECT repository_id, max(id) id FROM restore_test_runs GROUP BY repository_id) l WHERE l.repository_id = r.id;
		UPDATE restic_repositories SET paused = true WHERE id = (SELECT min(id) FROM restic_repositories);
		INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token, next_run_at)
			SELECT member_id, id, 'fresh', 'fresh', 'blind', 'archipelago-canary-wxyzwxyzwxyzwxyzwxyzwxyzwx', now()
			FROM vaults WHERE id = (SELECT max(id) FROM vaults);
		INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, queued_at, started_at,
				rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', 'running', now(), now(), 93600, 86400
			FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id WHERE r.id = (SELECT min(id) + 1 FROM restic_repositories);
		INSERT INTO members (slug, name, contact_email) SELECT 'empty-' || g, 'Empty ' || g, 'e@x.example' FROM generate_series(1, 3) g;
		ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var members int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM members`).Scan(&members); err != nil {
		t.Fatal(err)
	}
	walk := func(f GridFilter) []GridMember {
		t.Helper()
		var out []GridMember
		req := paging.Request{Limit: 100}
		for pages := 0; ; pages++ {
			if pages > members {
				t.Fatalf("%+v: the pages never end", f)
			}
			c := &countingQuerier{q: pool}
			pg, err := GridPage(ctx, c, f, req)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			if c.n.Load() != 1 {
				t.Fatalf("%+v: a page cost %d statements, want 1", f, c.n.Load())
			}
			if len(pg.Items) > 100 {
				t.Fatalf("%+v: a page of %d members, want at most 100", f, len(pg.Items))
			}
			out = append(out, pg.Items...)
			if pg.Next == "" {
				return out
			}
			req.Cursor = pg.Next
		}
	}
	once := func(name string, got []GridMember, want int) {
		t.Helper()
		seen := map[int64]bool{}
		for _, m := range got {
			if seen[m.ID] {
				t.Fatalf("%s: member %s twice", name, m.Slug)
			}
			seen[m.ID] = true
		}
		if len(got) != want {
			t.Fatalf("%s: %d members, want %d", name, len(got), want)
		}
	}

	worst := walk(GridFilter{})
	once("worst first", worst, members)
	var states = map[string]int{}
	for i, m := range worst {
		if w := worstOf(m); m.Worst != w {
			t.Fatalf("member %s: worst %q, its cells say %q (%+v)", m.Slug, m.Worst, w, m.Cells)
		}
		if i > 0 && gridRanks[m.Worst] < gridRanks[worst[i-1].Worst] {
			t.Fatalf("not worst first at %d: %q after %q", i, m.Worst, worst[i-1].Worst)
		}
		for _, c := range m.Cells {
			states[c.State()]++
			if c.LastStatus != "" && (c.FinishedAt == nil || c.SnapshotTime == nil) {
				t.Fatalf("cell %+v: tested without a finish or a snapshot time", c)
			}
		}
	}
	for _, s := range []string{StatusPassed, StatusWarning, StatusFailed, StatusError, StatusRunning, GridStatePaused, GridStateUntested} {
		if states[s] == 0 {
			t.Errorf("no %s cell among %v", s, states)
		}
	}
	if worst[0].Worst != StatusFailed || worst[len(worst)-1].Worst != "" || len(worst[len(worst)-1].Cells) != 0 {
		t.Errorf("first %q, last %q with %d cells; want failed first, the members without repositories last",
			worst[0].Worst, worst[len(worst)-1].Worst, len(worst[len(worst)-1].Cells))
	}

	byName := walk(GridFilter{Sort: GridSortName})
	once("by name", byName, members)
	rows, err := pool.Query(ctx, `SELECT id FROM members ORDER BY name, id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range byName {
		if m.ID != ids[i] {
			t.Fatalf("by name at %d: member %d, want %d", i, m.ID, ids[i])
		}
	}

	oldest := walk(GridFilter{Sort: GridSortOldest})
	once("oldest snapshot first", oldest, members)
	for i := 1; i < len(oldest); i++ {
		a, b := oldest[i-1].OldestSnapshot, oldest[i].OldestSnapshot
		if (a == nil && b != nil) || (a != nil && b != nil && b.Before(*a)) {
			t.Fatalf("not oldest snapshot first at %d: %v after %v", i, b, a)
		}
	}

	var attention int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT member_id) FROM restic_repositories
		WHERE deleted_at IS NULL AND last_status IN ('failed', 'error')`).Scan(&attention); err != nil {
		t.Fatal(err)
	}
	if attention == 0 {
		t.Fatal("the seed has no failed or error repository")
	}
	needy := walk(GridFilter{Outcome: GridOutcomeAttention, Sort: GridSortName})
	once("failed or error", needy, attention)
	for _, m := range needy {
		if m.Worst != StatusFailed && m.Worst != StatusError {
			t.Fatalf("member %s (worst %q) among those with a failed or error repository", m.Slug, m.Worst)
		}
	}
	for _, m := range walk(GridFilter{Outcome: GridOutcomeUntested}) {
		if worstOf(m) != GridStateUntested && !func() bool {
			for _, c := range m.Cells {
				if c.LastStatus == "" {
					return true
				}
			}
			return false
		}() {
			t.Fatalf("member %s has no untested repository", m.Slug)
		}
	}

	if got := walk(GridFilter{Query: "M00042"}); len(got) != 1 || got[0].Slug != "m00042" {
		t.Errorf("search m00042: %+v", got)
	}
	if got := walk(GridFilter{Query: "empty"}); len(got) != 3 {
		t.Errorf("search empty: %d members, want 3", len(got))
	}
	if got := walk(GridFilter{Query: "m%42"}); len(got) != 0 {
		t.Errorf("search m%%42 matched %d members: %% is a wildcard", len(got))
	}
	scope := []int64{worst[0].ID, worst[5].ID}
	if got := walk(GridFilter{MemberIDs: scope}); len(got) != 2 || got[0].ID != scope[0] || got[1].ID != scope[1] {
		t.Errorf("scoped to %v: %+v", scope, got)
	}
	for _, f := range []GridFilter{{Sort: "newest"}, {Outcome: "bad"}} {
		if _, err := GridPage(ctx, pool, f, paging.Request{}); !errors.Is(err, ErrGridFilter) {
			t.Errorf("%+v: %v, want ErrGridFilter", f, err)
		}
	}
	if _, err := GridPage(ctx, pool, GridFilter{Sort: GridSortName}, paging.Request{Cursor: paging.Encode(1, 2)}); !errors.Is(err, paging.ErrBadCursor) {
		t.Errorf("a cursor of another list: %v", err)
	}
}

// TestGridPageReadsOnlyItsMembers: a page of the grid reads the rows of its own members, not
// the federation's — whatever the order, from the first page or a cursor — so its cost does
// not grow with the number of members (it computed every member's sort keys and sorted them
// for each page: 0.13 s of SQL at 1,000 members). And restore_grid, kept by triggers, says
// what the repositories and the summary say after members are added and renamed,
// repositories deleted and tests recorded.
func TestGridPageReadsOnlyItsMembers(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := t.Context()
	const members = 600
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: members, VaultsPerMember: 2, Days: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		UPDATE restore_test_runs SET status = 'error', snapshot_time = now() - interval '400 days' WHERE id % 7 = 0;
		UPDATE restic_repositories SET last_run_id = NULL; UPDATE restic_repositories r SET last_run_id = l.id
			FROM (SELECT repository_id, max(id) id FROM restore_test_runs GROUP BY repository_id) l WHERE l.repository_id = r.id;
		UPDATE restic_repositories SET deleted_at = now() WHERE id % 11 = 0;
		UPDATE members SET name = 'Renamed ' || id WHERE id % 13 = 0;
		INSERT INTO members (slug, name, contact_email) VALUES ('late', 'Late', 'l@x.example');
		ANALYZE`); err != nil {
		t.Fatal(err)
	}
	differ := func(t *testing.T) {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT member_id, name, worst, oldest FROM restore_grid
			EXCEPT
			SELECT m.id, m.name, coalesce((SELECT min(CASE x.outcome WHEN 'failed' THEN 0 WHEN 'error' THEN 1 WHEN 'warning' THEN 2
					WHEN 'passed' THEN 4 ELSE 3 END) FROM restore_summary x WHERE x.member_id = m.id AND x.repositories > 0), 5),
				(SELECT min(r.last_snapshot_time) FROM restic_repositories r WHERE r.member_id = m.id AND r.deleted_at IS NULL)
			FROM members m) d`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM restore_grid`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if n != 0 || rows != members+1 {
			t.Fatalf("restore_grid: %d rows differ from the repositories, %d rows for %d members", n, rows, members+1)
		}
	}
	differ(t)

	// rowsRead is the rows a read of the grid fetched from the tables that hold one row (or
	// more) per member, counted by PostgreSQL inside the read's transaction.
	rowsRead := func(t *testing.T, f GridFilter, req paging.Request) (int64, paging.Page[GridMember]) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		count := func() int64 {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT sum(pg_stat_get_xact_tuples_returned(c.oid) + pg_stat_get_xact_tuples_fetched(c.oid))::bigint
				FROM pg_class c WHERE c.relname IN ('members', 'restore_summary', 'restic_repositories', 'restore_grid')`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		pg, err := GridPage(ctx, tx, f, req)
		if err != nil {
			t.Fatal(err)
		}
		return count() - before, pg
	}
	for _, sort := range GridSorts {
		req := paging.Request{Limit: 10}
		for page := range 3 {
			n, pg := rowsRead(t, GridFilter{Sort: sort}, req)
			// 10 members (and the next one's keys) with 2 repositories each, through indexes:
			// a few rows per member, never the federation's 600.
			if n > 150 {
				t.Fatalf("sort %q, page %d: %d rows read for a page of %d members (of %d)", sort, page, n, len(pg.Items), members)
			}
			if len(pg.Items) != 10 || pg.Next == "" {
				t.Fatalf("sort %q, page %d: %d members, next %q", sort, page, len(pg.Items), pg.Next)
			}
			req.Cursor = pg.Next
		}
	}
}
