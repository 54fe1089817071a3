package scaleseed_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// seeded is a pool (statements counted) on a database seeded with size.
func seeded(t *testing.T, size scaleseed.Size) (*pgxpool.Pool, *testenv.Statements) {
	t.Helper()
	pool, c := testenv.CountedDB(t)
	if err := scaleseed.Seed(t.Context(), pool, size); err != nil {
		t.Fatal(err)
	}
	return pool, c
}

func TestSeedMakesTheFederationAsked(t *testing.T) {
	t.Parallel()
	size := scaleseed.Size{Members: 9, VaultsPerMember: 3, Days: 4, ChannelsPerMember: 1, ReportsPerMember: 2}
	pool, _ := seeded(t, size)
	got, err := scaleseed.Counts(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"members": 9, "islands": int64(size.Islands()), "pledges": 9, "vaults": 27,
		"restic_repositories": 27, "restore_test_runs": 108, "notify_channels": 9, "reports": 18}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if err := scaleseed.Seed(t.Context(), pool, size); err == nil {
		t.Fatal("seeded a database that already has members")
	}
}

// TestIslandDetailsAreSetBased: the detail of every island of a list page costs the same
// few statements whatever the number of islands, and says what Detail says of each.
func TestIslandDetailsAreSetBased(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 24, VaultsPerMember: 1})
	// A good observation per island, an older one and a failed newer one.
	if _, err := pool.Exec(t.Context(), `INSERT INTO island_observations (island_id, observed_at, ok, nodes)
		SELECT id, now() - interval '1 hour', true, '[]'::jsonb FROM islands
		UNION ALL SELECT id, now() - interval '1 minute', true, '[{"id": "n1", "zone": "z"}]'::jsonb FROM islands
		UNION ALL SELECT id, now(), false, '[]'::jsonb FROM islands`); err != nil {
		t.Fatal(err)
	}
	isls, err := paging.All(t.Context(), 1000, func(ctx context.Context, r paging.Request) (paging.Page[islands.Island], error) {
		return islands.IslandPage(ctx, pool, islands.IslandFilter{}, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := c.Count()
	all, err := islands.Details(t.Context(), pool, isls)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Count() - before; n != 3 {
		t.Fatalf("details of %d islands cost %d statements, want 3", len(isls), n)
	}
	for _, isl := range isls {
		one, err := islands.Detail(t.Context(), pool, isl)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(one, all[isl.ID]) {
			t.Fatalf("island %d: Details %+v, Detail %+v", isl.ID, all[isl.ID], one)
		}
		if len(one.Operators) != 4 || len(one.Pledges) != 4 || one.ObservedAt == nil || len(one.Nodes) != 1 {
			t.Fatalf("island %d detail %+v", isl.ID, one)
		}
	}
}

func TestMembersByIDIsOneStatement(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 30})
	var ids []int64
	if err := pool.QueryRow(t.Context(), `SELECT array_agg(id) FROM members`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	before := c.Count()
	ms, err := islands.MembersByID(t.Context(), pool, append(ids, -1))
	if err != nil || len(ms) != 30 || c.Count()-before != 1 {
		t.Fatalf("%d members, %v, %d statements", len(ms), err, c.Count()-before)
	}
}

// TestDashboardGlanceIsCachedUntilATestFinishes: the federation card is built once, then
// costs one statement per view until a test finishes (or GlanceMaxAge passes); it lists at
// most GlanceAttention members needing attention, worst first, and counts the others.
func TestDashboardGlanceIsCachedUntilATestFinishes(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 30, VaultsPerMember: 2, Days: 3})
	ctx := t.Context()
	// The latest test of every repository of the first 25 members failed.
	if _, err := pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'failed', reason = 'seeded' WHERE id IN (
		SELECT last_run_id FROM restic_repositories WHERE member_id IN (SELECT id FROM members ORDER BY id LIMIT 25))`); err != nil {
		t.Fatal(err)
	}
	rs := reports.New(pool, nil, testenv.Logger(t), reports.Config{})
	g, err := rs.FederationGlance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.Summary.Repositories != 60 || g.Members != 30 || len(g.Attention) != reports.GlanceAttention || g.More != 5 {
		t.Fatalf("glance: %d repositories, %d members, %d listed, %d more", g.Summary.Repositories, g.Members, len(g.Attention), g.More)
	}
	if g.Attention[0].Red != 2 {
		t.Fatalf("worst first: %+v", g.Attention[0])
	}
	before := c.Count()
	again, err := rs.FederationGlance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Count() - before; n != 1 || !again.Built.Equal(g.Built) {
		t.Fatalf("a second view cost %d statements (rebuilt: %v)", n, !again.Built.Equal(g.Built))
	}
	// A test finishes (as the verifier records it): the next view sees it.
	if _, err := pool.Exec(ctx, `WITH r AS (SELECT id, member_id, vault_id FROM restic_repositories
			WHERE member_id = (SELECT max(id) FROM members) ORDER BY id LIMIT 1),
		n AS (INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, reason, queued_at,
				started_at, finished_at, rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', 'failed', 'now', now(), now(), now(), 93600, 86400
			FROM r JOIN vaults v ON v.id = r.vault_id RETURNING id, repository_id)
		UPDATE restic_repositories SET last_run_id = n.id FROM n WHERE restic_repositories.id = n.repository_id`); err != nil {
		t.Fatal(err)
	}
	before = c.Count()
	after, err := rs.FederationGlance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Count()-before < 2 || after.Summary.Red != g.Summary.Red+1 || after.More != 6 {
		t.Fatalf("after a finished test: %d statements, red %d (was %d), more %d", c.Count()-before, after.Summary.Red,
			g.Summary.Red, after.More)
	}
}

// TestReportGatherMatchesTheRunsOfThePeriod: the reports' reads (a member report walks each
// repository's newest runs instead of its whole history; a federation report counts them per
// member in SQL) find exactly the runs of the period, the latest finished run before its end
// and the last success before its end, skipping a test still running.
func TestReportGatherMatchesTheRunsOfThePeriod(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, scaleseed.Size{Members: 6, VaultsPerMember: 2, Days: 20})
	ctx := t.Context()
	// Some failures, and a test still running, to make the walks skip rows.
	if _, err := pool.Exec(ctx, `UPDATE restore_test_runs SET status = 'failed' WHERE id % 7 = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status,
			queued_at, rpo_target_seconds, rto_target_seconds)
		SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', 'running', now(), 1, 1
		FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id`); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	p := reports.Period{Kind: reports.PeriodCustom, Start: now.AddDate(0, 0, -10), End: now.AddDate(0, 0, -3)}
	fed, err := reports.Gather(ctx, pool, reports.ScopeFederation, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(fed.Lines) != 6 {
		t.Fatalf("%d member lines, want 6", len(fed.Lines))
	}
	// The federation counts each member's tests of the period, by outcome, in SQL.
	for _, l := range fed.Lines {
		var repos, total, failed int
		if err := pool.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM restic_repositories WHERE member_id = $1),
				(SELECT count(*) FROM restore_test_runs WHERE member_id = $1 AND finished_at >= $2 AND finished_at < $3),
				(SELECT count(*) FROM restore_test_runs WHERE member_id = $1 AND finished_at >= $2 AND finished_at < $3 AND status = 'failed')`,
			l.Member.ID, p.Start, p.End).Scan(&repos, &total, &failed); err != nil {
			t.Fatal(err)
		}
		if l.Repositories != repos || repos != 2 || l.Tests.Total != total || total != 14 || l.Tests.Failed != failed {
			t.Fatalf("member %s: %d repositories, %d tests, %d failed; the runs say %d, %d, %d",
				l.Member.Slug, l.Repositories, l.Tests.Total, l.Tests.Failed, repos, total, failed)
		}
	}
	// A member report reads its repositories' runs of the period.
	member, err := reports.Gather(ctx, pool, reports.ScopeMember, &fed.Lines[0].Member, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(member.Repositories) != 2 {
		t.Fatalf("the member report read %d repositories, want 2", len(member.Repositories))
	}
	for _, m := range member.Repositories {
		var n int
		var latest int64
		var success time.Time
		if err := pool.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM restore_test_runs WHERE repository_id = $1 AND finished_at >= $2 AND finished_at < $3),
				(SELECT id FROM restore_test_runs WHERE repository_id = $1 AND finished_at < $3 ORDER BY finished_at DESC LIMIT 1),
				(SELECT max(finished_at) FROM restore_test_runs WHERE repository_id = $1 AND finished_at < $3 AND status = 'passed')`,
			m.ID, p.Start, p.End).Scan(&n, &latest, &success); err != nil {
			t.Fatal(err)
		}
		if len(m.Runs) != n || n != 7 || m.Latest == nil || m.Latest.ID != latest || m.LastSuccessAt == nil ||
			!m.LastSuccessAt.Equal(success) {
			t.Fatalf("member report, repository %d: %d runs (want %d), latest %+v (want %d), last success %v (want %v)",
				m.ID, len(m.Runs), n, m.Latest, latest, m.LastSuccessAt, success)
		}
	}
}

// TestLatestDeliveriesOfManyChannelsIsOneStatement: the notifications page shows each
// channel's last deliveries; reading them costs one statement, and says what DeliveryList
// says of each channel.
func TestLatestDeliveriesOfManyChannelsIsOneStatement(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 10, ChannelsPerMember: 2})
	if _, err := pool.Exec(t.Context(), `INSERT INTO notify_deliveries (channel_id, kind, status)
		SELECT c.id, 'test', CASE WHEN k % 3 = 0 THEN 'failed' ELSE 'sent' END FROM notify_channels c, generate_series(1, 8) k
		WHERE c.id % 4 <> 0`); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	if err := pool.QueryRow(t.Context(), `SELECT array_agg(id) FROM notify_channels`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	before := c.Count()
	got, err := notify.LatestDeliveries(t.Context(), pool, ids, 5)
	if err != nil || c.Count()-before != 1 {
		t.Fatalf("%v, %d statements", err, c.Count()-before)
	}
	for _, id := range ids {
		want, err := notify.DeliveryList(t.Context(), pool, []int64{id}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 && len(got[id]) == 0 {
			continue
		}
		if !reflect.DeepEqual(got[id], want) {
			t.Fatalf("channel %d: %+v, want %+v", id, got[id], want)
		}
	}
}

// TestAPageOfIslandsReadsItsOwnOperatorsAndPledges: the API's page of islands reads the
// operators and pledged capacity of its islands only (it read every island's for each
// page), and they are what the tables say.
func TestAPageOfIslandsReadsItsOwnOperatorsAndPledges(t *testing.T) {
	t.Parallel()
	pool, _ := seeded(t, scaleseed.Size{Members: 16, VaultsPerMember: 1})
	ctx := t.Context()
	var page []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM islands ORDER BY id LIMIT 2) i`).Scan(&page); err != nil {
		t.Fatal(err)
	}
	ops, err := islands.OperatorsByIsland(ctx, pool, page)
	if err != nil {
		t.Fatal(err)
	}
	pledged, err := islands.PledgedByIsland(ctx, pool, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || len(pledged) != 2 {
		t.Fatalf("operators of %d islands and pledges of %d islands for a page of 2", len(ops), len(pledged))
	}
	for _, id := range page {
		var n int
		var capacity int64
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM island_operators WHERE island_id = $1),
				(SELECT coalesce(sum(capacity_bytes), 0) FROM pledges WHERE island_id = $1 AND withdrawn_at IS NULL)::bigint`, id).
			Scan(&n, &capacity); err != nil {
			t.Fatal(err)
		}
		if len(ops[id]) != n || n == 0 || pledged[id] != capacity || capacity == 0 {
			t.Fatalf("island %d: %d operators (want %d), %d pledged (want %d)", id, len(ops[id]), n, pledged[id], capacity)
		}
	}
}
