package verify

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// RepositoryPage lists one page of live repositories by member, name and id (internal/paging's style; the cursor is that triple).
func RepositoryPage(ctx context.Context, q querier, f RepositoryFilter, r paging.Request) (paging.Page[Repository], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Repository]{}, err
	}
	var (
		member, id int64
		name       string
	)
	after, err := r.Keys(&member, &name, &id)
	if err != nil {
		return paging.Page[Repository]{}, err
	}
	s, err := SettingsGet(ctx, q)
	if err != nil {
		return paging.Page[Repository]{}, err
	}
	var w database.Where
	w.And("r.deleted_at IS NULL")
	if f.MemberIDs != nil {
		w.And("r.member_id = ANY(?)", f.MemberIDs)
	}
	if f.VaultID != 0 {
		w.And("r.vault_id = ?", f.VaultID)
	}
	if after {
		w.And("r.member_id >= ? AND (r.member_id, r.name, r.id) > (?, ?, ?)", member, member, name, id)
	}
	// The page's repositories are chosen first, by the (member_id, name, id) index, and only
	// they are joined with their vaults, islands and latest runs; the LIMIT is written in the
	// statement (a number from r.Size), not a parameter. Joined before the LIMIT, or with the
	// generic plan's guess of a tenth of the table for $n, the plan's cost over every
	// repository made PostgreSQL read the index with parallel workers: 0.4–0.65 s a page at
	// 10,000 members on a loaded machine, 8 ms without them (EXPLAIN ANALYZE, docs/scale.md).
	rows, err := q.Query(ctx, `SELECT `+repoColumns+` FROM (SELECT r.* FROM restic_repositories r`+w.String()+`
		ORDER BY r.member_id, r.name, r.id LIMIT `+strconv.Itoa(size+1)+`) r
	JOIN vaults v ON v.id = r.vault_id
	JOIN islands i ON i.id = v.island_id
	LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
	ORDER BY r.member_id, r.name, r.id`, w.Args...)
	if err != nil {
		return paging.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		r, err := scanRepo(rows, s)
		if err != nil {
			return paging.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return paging.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
	}
	return paging.Cut(out, size, func(r Repository) []any { return []any{r.MemberID, r.Name, r.ID} }), nil
}

// RunPage lists one page of restore test runs, newest first (the cursor is the last id).
// f.Before and f.Limit are not used here.
func RunPage(ctx context.Context, q querier, f RunFilter, r paging.Request) (paging.Page[Run], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Run]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return paging.Page[Run]{}, err
	}
	var w database.Where
	if f.MemberIDs != nil {
		w.And("t.member_id = ANY(?)", f.MemberIDs)
	}
	if f.RepositoryID != 0 {
		w.And("t.repository_id = ?", f.RepositoryID)
	}
	if f.Status != "" {
		w.And("t.status = ?", f.Status)
	}
	if f.Since != nil {
		w.And("t.queued_at >= ?", *f.Since)
	}
	if before != 0 {
		w.And("t.id < ?", before)
	}
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM restore_test_runs t
		JOIN restic_repositories r ON r.id = t.repository_id`+w.String()+`
		ORDER BY t.id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		t, err := scanRun(rows)
		if err != nil {
			return paging.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return paging.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
	}
	return paging.Cut(out, size, func(t Run) []any { return []any{t.ID} }), nil
}

// OutcomeCounts counts the live repositories of the members (nil: every member) by the
// outcome of their latest finished test ("untested" when none), in one statement (two when it
// folds, below).
func OutcomeCounts(ctx context.Context, q querier, memberIDs []int64) (map[string]int, error) {
	// restore_summary (migration 018) holds the counts per member, island and outcome,
	// kept by a trigger: a few rows per member, never the repositories or their runs. The
	// whole federation's are its sums per outcome, kept as deltas in restore_outcome_deltas
	// (migration 026): a row per outcome and per change since the last fold, whatever the
	// number of members.
	var w database.Where
	sql := `SELECT outcome, sum(repositories)::bigint, count(*) FROM restore_outcome_deltas GROUP BY 1`
	if memberIDs != nil {
		w.And("member_id = ANY(?)", memberIDs)
		sql = `SELECT outcome, sum(repositories)::bigint, 0 FROM restore_summary` + w.String() + ` GROUP BY 1`
	}
	rows, err := q.Query(ctx, sql, w.Args...)
	if err != nil {
		return nil, fmt.Errorf("count repositories by outcome: %w", err)
	}
	out := map[string]int{}
	var (
		k              string
		n, read, total int
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &n, &read}, func() error {
		total += read
		if k == "none" {
			k = "untested"
		}
		if n > 0 {
			out[k] += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count repositories by outcome: %w", err)
	}
	if total > outcomeFoldAbove {
		if err := FoldOutcomeDeltas(ctx, q); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// outcomeFoldAbove is how many delta rows a read of the federation's outcome counts sums
// before it folds them.
const outcomeFoldAbove = 200

// FoldOutcomeDeltas replaces the committed rows of restore_outcome_deltas by their sums, one
// row per outcome (none for a sum of zero), in one statement: the totals do not change, rows
// of transactions not yet committed are left for the next fold, and a concurrent fold skips
// the rows this one deleted.
func FoldOutcomeDeltas(ctx context.Context, q querier) error {
	var n int64
	err := q.QueryRow(ctx, `WITH gone AS (DELETE FROM restore_outcome_deltas RETURNING outcome, repositories),
		sums AS (INSERT INTO restore_outcome_deltas (outcome, repositories)
			SELECT outcome, sum(repositories) FROM gone GROUP BY outcome HAVING sum(repositories) <> 0 RETURNING 1)
		SELECT count(*) FROM gone`).Scan(&n)
	if err != nil {
		return fmt.Errorf("fold outcome counts: %w", err)
	}
	return nil
}
