package reports

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

// seededPool returns a pool whose statements are counted, on a database seeded with size.
func seededPool(t *testing.T, size scaleseed.Size) (*pgxpool.Pool, *testenv.Statements) {
	t.Helper()
	pool, c := testenv.CountedDB(t)
	if err := scaleseed.Seed(t.Context(), pool, size); err != nil {
		t.Fatal(err)
	}
	return pool, c
}

// TestFederationCountsAgreeWithMemberReports: each member's line of a v2 federation report
// — counted in SQL, without reading any run into Go — says what that member's own report of
// the same period says: repositories by status, tests by outcome and pass rate, RPO and RTO
// missed, snapshots that disappeared; and the islands count the same repositories. The data
// varies every column the counts read, has a repository whose latest test is before the
// period, one never tested, one deleted before the period, RTOs met and missed through the
// verifier's projection and through the median throughput.
func TestFederationCountsAgreeWithMemberReports(t *testing.T) {
	t.Parallel()
	pool, _ := seededPool(t, scaleseed.Size{Members: 6, VaultsPerMember: 3, Days: 12})
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `UPDATE restore_test_runs SET
			status = CASE WHEN id % 5 = 0 THEN 'failed' WHEN id % 7 = 0 THEN 'error' WHEN id % 3 = 0 THEN 'warning' ELSE 'passed' END,
			reason = CASE WHEN id % 5 = 0 THEN 'broken pack ' || id WHEN id % 7 = 0 THEN 'island down ' || id ELSE '' END,
			snapshot_age_seconds = CASE WHEN id % 4 = 0 THEN NULL ELSE (id * 7919) % 200000 END,
			deleted_snapshots = CASE WHEN id % 23 = 0 THEN 1 + id % 3 ELSE 0 END,
			throughput_bps = CASE WHEN id % 2 = 0 THEN ((id * 104729) % 5000) * 1000.0 WHEN id % 11 = 0 THEN 0 END,
			repo_size_bytes = CASE WHEN id % 3 = 1 THEN id * 1000000 END,
			rto_estimate_seconds = CASE WHEN id % 13 = 0 THEN id * 10 END,
			finished_at = CASE WHEN id % 17 = 0 THEN date_trunc('day', finished_at) ELSE finished_at END`); err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	p := Period{Kind: PeriodCustom, Start: now.AddDate(0, 0, -9), End: now.AddDate(0, 0, -1)}
	// RTOs and RPOs of their own on some repositories; one repository tested only before the
	// period, one never, one deleted before the period.
	if _, err := pool.Exec(ctx, `UPDATE restic_repositories SET rto_seconds = CASE WHEN id % 3 = 0 THEN 60 WHEN id % 3 = 1 THEN 100000000 END,
			rpo_seconds = CASE WHEN id % 4 = 0 THEN 400000 END`); err != nil {
		t.Fatal(err)
	}
	var before, never, gone, median int64
	if err := pool.QueryRow(ctx, `SELECT min(id), min(id) + 1, min(id) + 2, min(id) + 3 FROM restic_repositories`).Scan(&before, &never, &gone, &median); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM restore_test_runs WHERE (repository_id = $1 AND finished_at >= $3) OR repository_id = $2`,
		before, never, p.Start); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE restic_repositories SET deleted_at = $2 WHERE id = $1`, gone, p.Start.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Two repositories whose projection can only come from the median of their throughputs
	// (no projection by the verifier, a size on every run, an even number of distinct
	// throughputs), whose RTO is exactly the projection their member report makes (met) or a
	// second less (missed), and so their RPO with their worst snapshot age: another median,
	// rounding or comparison changes a count.
	if _, err := pool.Exec(ctx, `UPDATE restore_test_runs SET rto_estimate_seconds = NULL, repo_size_bytes = 1000000000 + id,
			throughput_bps = CASE WHEN (id / 18) % 4 = 0 THEN NULL ELSE 1000000 + id * 1000 END
		WHERE repository_id IN ($1::bigint, $1::bigint + 1)`, median); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{median, median + 1} {
		var owner MemberRef
		if err := pool.QueryRow(ctx, `SELECT m.id, m.slug, m.name FROM members m JOIN restic_repositories r ON r.member_id = m.id WHERE r.id = $1`,
			id).Scan(&owner.ID, &owner.Slug, &owner.Name); err != nil {
			t.Fatal(err)
		}
		in, err := Gather(ctx, pool, ScopeMember, &owner, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range Build(in).Repositories {
			if x.ID != id {
				continue
			}
			measured := 0
			for _, run := range x.Trend {
				if run.ThroughputBps != nil && *run.ThroughputBps > 0 {
					measured++
				}
			}
			if x.ProjectedRestoreSeconds == nil || x.WorstSnapshotAgeSeconds == nil || measured%2 != 0 {
				t.Fatalf("repository %d: projection %v from %d throughputs, want one from an even number", id, x.ProjectedRestoreSeconds, measured)
			}
			// RTO and RPO met exactly at the boundary for the first, missed by a second for the other.
			by := id - median
			if _, err := pool.Exec(ctx, `UPDATE restic_repositories SET rto_seconds = $2, rpo_seconds = $3 WHERE id = $1`,
				x.ID, *x.ProjectedRestoreSeconds-by, *x.WorstSnapshotAgeSeconds-by); err != nil {
				t.Fatal(err)
			}
		}
	}
	fed, err := Gather(ctx, pool, ScopeFederation, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if fed.Repositories != nil {
		t.Fatal("the federation report read repositories")
	}
	rep := Build(fed)
	if len(rep.Members) != 6 {
		t.Fatalf("%d member lines, want 6", len(rep.Members))
	}
	var sum MemberLine
	islands := map[string]StatusCounts{}
	for _, l := range rep.Members {
		m := l.Member
		in, err := Gather(ctx, pool, ScopeMember, &m, p)
		if err != nil {
			t.Fatal(err)
		}
		own := Build(in)
		if want := lineOf(own); !reflect.DeepEqual(l, want) {
			t.Errorf("member %s: the federation counts\n%+v\nits own report says\n%+v", m.Slug, l, want)
		}
		for _, x := range own.Repositories {
			c := islands[x.Island]
			c.Repositories++
			switch x.Status {
			case StatusGreen:
				c.Green++
			case StatusAmber:
				c.Amber++
			case StatusRed:
				c.Red++
			default:
				c.Grey++
			}
			islands[x.Island] = c
			if x.ID == before && (x.LastTestAt == nil || !x.LastTestAt.Before(p.Start) || x.Status == StatusGrey) {
				t.Errorf("repository %d was to be last tested before the period: %+v", before, x)
			}
			if (x.ID == median || x.ID == median+1) && (x.ProjectedRestoreSeconds == nil || *x.RTOMet != (x.ID == median) || *x.RPOMet != (x.ID == median)) {
				t.Errorf("repository %d was to be projected from its median throughput, its RTO and RPO met only at the boundary: %+v", x.ID, x)
			}
			if x.ID == gone {
				t.Errorf("repository %d, deleted before the period, is in %s's report", gone, m.Slug)
			}
		}
		sum.Red += l.Red
		sum.Grey += l.Grey
		sum.Amber += l.Amber
		sum.RPOMissed += l.RPOMissed
		sum.RTOMissed += l.RTOMissed
		sum.DeletionsSeen += l.DeletionsSeen
	}
	for _, i := range rep.Islands {
		if !reflect.DeepEqual(*i.Repositories, islands[i.Name]) {
			t.Errorf("island %s: counted %+v, the member reports say %+v", i.Name, *i.Repositories, islands[i.Name])
		}
	}
	// The data must exercise every count, or the comparison proves little.
	if sum.Red == 0 || sum.Grey == 0 || sum.Amber == 0 || sum.RPOMissed == 0 || sum.RTOMissed == 0 || sum.DeletionsSeen == 0 ||
		rep.Totals.RTOMissed == rep.Summary.Repositories {
		t.Fatalf("the data does not exercise every count: %+v, totals %+v", sum, *rep.Totals)
	}
}

// TestFederationReportStatementsDoNotGrowWithMembers: gathering a federation report costs
// the same number of statements at 3 and at 30 members.
func TestFederationReportStatementsDoNotGrowWithMembers(t *testing.T) {
	t.Parallel()
	var counts []int64
	for _, members := range []int{3, 30} {
		pool, c := seededPool(t, scaleseed.Size{Members: members, VaultsPerMember: 3, Days: 8})
		now := time.Now().UTC()
		before := c.Count()
		in, err := Gather(t.Context(), pool, ScopeFederation, nil, Period{Kind: PeriodCustom, Start: now.AddDate(0, 0, -7), End: now})
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, c.Count()-before)
		if r := Build(in); r.Summary.Repositories != members*3 || r.Summary.Tests < members*3*6 || len(r.Members) != members {
			t.Fatalf("%d members: %d repositories, %d tests, %d member lines", members, r.Summary.Repositories, r.Summary.Tests, len(r.Members))
		}
	}
	if counts[0] != counts[1] {
		t.Fatalf("a federation report costs %d statements at 3 members and %d at 30", counts[0], counts[1])
	}
}

// TestGlanceIsTheFederationReportsCounts: the dashboard's federation card is built from the
// counts of a v2 federation report of the last seven days: the same summary, the members with
// a red or amber repository worst first, and how many members have repositories.
func TestGlanceIsTheFederationReportsCounts(t *testing.T) {
	t.Parallel()
	pool, c := seededPool(t, scaleseed.Size{Members: 30, VaultsPerMember: 2, Days: 8})
	ctx := t.Context()
	now := time.Now().UTC()
	s := New(pool, nil, nil, Config{Now: func() time.Time { return now }})
	before := c.Count()
	g, err := s.FederationGlance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Count() - before; n > 3 {
		t.Errorf("the glance took %d statements (stamp, members, counts)", n)
	}
	in, err := Gather(ctx, pool, ScopeFederation, nil, Period{Kind: PeriodCustom, Start: now.AddDate(0, 0, -7), End: now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rep := Build(in)
	want := rep.Summary
	want.Attention = nil
	if !reflect.DeepEqual(g.Summary, want) || g.Members != 30 || g.Summary.Repositories != 60 {
		t.Fatalf("glance summary %+v (%d members), the report's %+v", g.Summary, g.Members, want)
	}
	var need []GlanceMember
	for _, l := range rep.Members {
		if l.Red+l.Amber > 0 {
			need = append(need, GlanceMember{Member: l.Member, Red: l.Red, Amber: l.Amber, Green: l.Green, Grey: l.Grey})
		}
	}
	if len(need) == 0 || len(g.Attention)+g.More != len(need) || len(g.Attention) > GlanceAttention {
		t.Fatalf("glance lists %d (+%d) members needing attention, the report %d", len(g.Attention), g.More, len(need))
	}
	for i, m := range g.Attention {
		if i > 0 && (m.Red > g.Attention[i-1].Red || m.Red == g.Attention[i-1].Red && m.Amber > g.Attention[i-1].Amber) {
			t.Errorf("glance not worst first at %d: %+v after %+v", i, m, g.Attention[i-1])
		}
	}
}
