package reports_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

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
