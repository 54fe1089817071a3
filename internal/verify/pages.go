package verify

import (
	"context"
	"fmt"

	"github.com/chatons/archipelago/internal/page"
)

// RepositoryPage lists one page of live repositories by member, name and id (internal/page's style; the cursor is that triple).
func RepositoryPage(ctx context.Context, q querier, f RepositoryFilter, r page.Request) (page.Page[Repository], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Repository]{}, err
	}
	var (
		member, id int64
		name       string
	)
	after, err := r.Keys(&member, &name, &id)
	if err != nil {
		return page.Page[Repository]{}, err
	}
	s, err := SettingsGet(ctx, q)
	if err != nil {
		return page.Page[Repository]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+repoColumns+repoFrom+` WHERE r.deleted_at IS NULL
		AND ($1::bigint[] IS NULL OR r.member_id = ANY($1)) AND ($2 = 0 OR r.vault_id = $2)
		AND (NOT $3 OR (r.member_id, r.name, r.id) > ($4, $5, $6))
		ORDER BY r.member_id, r.name, r.id LIMIT $7`, f.MemberIDs, f.VaultID, after, member, name, id, size+1)
	if err != nil {
		return page.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		r, err := scanRepo(rows, s)
		if err != nil {
			return page.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Repository]{}, fmt.Errorf("list repositories: %w", err)
	}
	return page.Cut(out, size, func(r Repository) []any { return []any{r.MemberID, r.Name, r.ID} }), nil
}

// RunPage lists one page of restore test runs, newest first (the cursor is the last id).
// f.Before and f.Limit are not used here.
func RunPage(ctx context.Context, q querier, f RunFilter, r page.Request) (page.Page[Run], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Run]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return page.Page[Run]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM restore_test_runs t
		JOIN restic_repositories r ON r.id = t.repository_id
		WHERE ($1::bigint[] IS NULL OR t.member_id = ANY($1)) AND ($2 = 0 OR t.repository_id = $2)
		AND ($3 = '' OR t.status = $3) AND ($4::timestamptz IS NULL OR t.queued_at >= $4) AND ($5 = 0 OR t.id < $5)
		ORDER BY t.id DESC LIMIT $6`, f.MemberIDs, f.RepositoryID, f.Status, f.Since, before, size+1)
	if err != nil {
		return page.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		t, err := scanRun(rows)
		if err != nil {
			return page.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return page.Page[Run]{}, fmt.Errorf("list restore tests: %w", err)
	}
	return page.Cut(out, size, func(t Run) []any { return []any{t.ID} }), nil
}
