package islands

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/page"
)

// The paged lists of members, islands and pledges (internal/page's one style): ordered by
// id, the cursor is the last id. The filters' After and Limit fields are not used here.

// MemberPage lists one page of members by id (f.Query filters).
func MemberPage(ctx context.Context, q Querier, f MemberFilter, r page.Request) (page.Page[Member], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Member]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return page.Page[Member]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM members
		WHERE id > $1 AND ($2 = '' OR slug ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')
		ORDER BY id LIMIT $3`, after, f.Query, size+1)
	if err != nil {
		return page.Page[Member]{}, fmt.Errorf("list members: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return page.Page[Member]{}, fmt.Errorf("list members: %w", err)
	}
	return page.Cut(out, size, func(m Member) []any { return []any{m.ID} }), nil
}

// IslandPage lists one page of islands by id (f.Status and f.Operator filter).
func IslandPage(ctx context.Context, q Querier, f IslandFilter, r page.Request) (page.Page[Island], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Island]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return page.Page[Island]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+islandColumns+` FROM islands i
		WHERE i.id > $1 AND ($2 = '' OR i.status = $2)
		  AND ($3 = 0 OR EXISTS (SELECT 1 FROM island_operators o WHERE o.island_id = i.id AND o.member_id = $3))
		ORDER BY i.id LIMIT $4`, after, f.Status, f.Operator, size+1)
	if err != nil {
		return page.Page[Island]{}, fmt.Errorf("list islands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Island, error) { return scanIsland(r) })
	if err != nil {
		return page.Page[Island]{}, fmt.Errorf("list islands: %w", err)
	}
	return page.Cut(out, size, func(i Island) []any { return []any{i.ID} }), nil
}

// PledgePage lists one page of pledges by id (f.MemberID, f.IslandID, f.Status and f.Live
// filter).
func PledgePage(ctx context.Context, q Querier, f PledgeFilter, r page.Request) (page.Page[Pledge], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Pledge]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return page.Page[Pledge]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+pledgeColumns+pledgeFrom+`
		WHERE p.id > $1 AND ($2 = 0 OR p.member_id = $2) AND ($3 = 0 OR p.island_id = $3) AND ($4 = '' OR p.status = $4)
		  AND (NOT $5 OR p.withdrawn_at IS NULL)
		ORDER BY p.id LIMIT $6`, after, f.MemberID, f.IslandID, f.Status, f.Live, size+1)
	if err != nil {
		return page.Page[Pledge]{}, fmt.Errorf("list pledges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pledge, error) { return scanPledge(r) })
	if err != nil {
		return page.Page[Pledge]{}, fmt.Errorf("list pledges: %w", err)
	}
	return page.Cut(out, size, func(p Pledge) []any { return []any{p.ID} }), nil
}
