package reports

import (
	"bytes"
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

// TestFederationTotalsInSQLAreTheRunsTotals: a federation report sums each repository's runs
// of the period in SQL instead of reading them; the sums equal what totalsOf computes from
// the runs (tests by outcome, worst snapshot age, deletions, newest size and projection,
// median throughput, newest failure's reason), and the report built from them is the report
// built from the runs, byte for byte.
func TestFederationTotalsInSQLAreTheRunsTotals(t *testing.T) {
	t.Parallel()
	pool, _ := seededPool(t, scaleseed.Size{Members: 6, VaultsPerMember: 2, Days: 12})
	ctx := t.Context()
	// Vary every column the totals read, deterministically by run id: outcomes with reasons,
	// measurements on some runs only, ties of finished_at.
	if _, err := pool.Exec(ctx, `UPDATE restore_test_runs SET
			status = CASE WHEN id % 5 = 0 THEN 'failed' WHEN id % 7 = 0 THEN 'error' WHEN id % 3 = 0 THEN 'warning' ELSE 'passed' END,
			reason = CASE WHEN id % 5 = 0 THEN 'broken pack ' || id WHEN id % 7 = 0 THEN 'island down ' || id ELSE '' END,
			snapshot_age_seconds = CASE WHEN id % 4 = 0 THEN NULL ELSE (id * 7919) % 200000 END,
			deleted_snapshots = (id % 9) / 7,
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
	fed, err := Gather(ctx, pool, ScopeFederation, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	withRuns, err := gatherRepositories(ctx, pool, 0, p, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(fed.Repositories) != 12 || len(withRuns) != 12 {
		t.Fatalf("%d and %d repositories", len(fed.Repositories), len(withRuns))
	}
	measured := 0
	for i, r := range fed.Repositories {
		if r.Runs != nil || r.Totals == nil {
			t.Fatalf("repository %d: the federation read its runs or no totals", r.ID)
		}
		want := totalsOf(withRuns[i].Runs)
		if !reflect.DeepEqual(*r.Totals, want) {
			t.Errorf("repository %d: totals in SQL\n%+v\nfrom its %d runs\n%+v", r.ID, *r.Totals, len(withRuns[i].Runs), want)
		}
		if want.MedianThroughputBps != nil && want.SizeBytes != nil && want.LastFailureReason != "" {
			measured++
		}
	}
	if measured == 0 {
		t.Fatal("no repository has a measured run and a failure: the comparison proves little")
	}
	runsIn := fed
	runsIn.Repositories = withRuns
	a, err := Encode(Build(fed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Encode(Build(runsIn))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the federation report from SQL totals differs from the one built from the runs:\n%s\n---\n%s", a, b)
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
		if r := Build(in); r.Summary.Repositories != members*3 || r.Summary.Tests < members*3*6 || len(r.Matrix) != members {
			t.Fatalf("%d members: %d repositories, %d tests, %d matrix rows", members, r.Summary.Repositories, r.Summary.Tests, len(r.Matrix))
		}
	}
	if counts[0] != counts[1] {
		t.Fatalf("a federation report costs %d statements at 3 members and %d at 30", counts[0], counts[1])
	}
}
