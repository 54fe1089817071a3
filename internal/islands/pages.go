package islands

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// The paged lists of members, islands and pledges (internal/paging's one style): ordered by
// id, the cursor is the last id. The filters' After and Limit fields are not used here.

// MemberPage lists one page of members by id (f.Query filters).
func MemberPage(ctx context.Context, q Querier, f MemberFilter, r paging.Request) (paging.Page[Member], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Member]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return paging.Page[Member]{}, err
	}
	var w database.Where
	if after != 0 {
		w.And("id > ?", after)
	}
	if f.Query != "" {
		like := database.Contains(f.Query)
		w.And("(slug ILIKE ? OR name ILIKE ?)", like, like)
	}
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM members`+w.String()+` ORDER BY id LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Member]{}, fmt.Errorf("list members: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return paging.Page[Member]{}, fmt.Errorf("list members: %w", err)
	}
	return paging.Cut(out, size, func(m Member) []any { return []any{m.ID} }), nil
}

// IslandPage lists one page of islands by id (f.Status and f.Operator filter).
func IslandPage(ctx context.Context, q Querier, f IslandFilter, r paging.Request) (paging.Page[Island], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Island]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return paging.Page[Island]{}, err
	}
	var w database.Where
	if after != 0 {
		w.And("i.id > ?", after)
	}
	if f.Status != "" {
		w.And("i.status = ?", f.Status)
	}
	if f.Operator != 0 {
		w.And("EXISTS (SELECT 1 FROM island_operators o WHERE o.island_id = i.id AND o.member_id = ?)", f.Operator)
	}
	rows, err := q.Query(ctx, `SELECT `+islandColumns+` FROM islands i`+w.String()+` ORDER BY i.id LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Island]{}, fmt.Errorf("list islands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Island, error) { return scanIsland(r) })
	if err != nil {
		return paging.Page[Island]{}, fmt.Errorf("list islands: %w", err)
	}
	return paging.Cut(out, size, func(i Island) []any { return []any{i.ID} }), nil
}

// PledgePage lists one page of pledges by id (f.MemberID, f.IslandID, f.Status and f.Live
// filter).
func PledgePage(ctx context.Context, q Querier, f PledgeFilter, r paging.Request) (paging.Page[Pledge], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Pledge]{}, err
	}
	var after int64
	if _, err := r.Keys(&after); err != nil {
		return paging.Page[Pledge]{}, err
	}
	var w database.Where
	if after != 0 {
		w.And("p.id > ?", after)
	}
	if f.MemberID != 0 {
		w.And("p.member_id = ?", f.MemberID)
	}
	if f.IslandID != 0 {
		w.And("p.island_id = ?", f.IslandID)
	}
	if f.Status != "" {
		w.And("p.status = ?", f.Status)
	}
	if f.Live {
		w.And("p.withdrawn_at IS NULL")
	}
	rows, err := q.Query(ctx, `SELECT `+pledgeColumns+pledgeFrom+w.String()+` ORDER BY p.id LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Pledge]{}, fmt.Errorf("list pledges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pledge, error) { return scanPledge(r) })
	if err != nil {
		return paging.Page[Pledge]{}, fmt.Errorf("list pledges: %w", err)
	}
	return paging.Cut(out, size, func(p Pledge) []any { return []any{p.ID} }), nil
}

// OperatorPage lists one page of an island's operators by member slug (the cursor is the
// last slug), paged in SQL.
func OperatorPage(ctx context.Context, q Querier, islandID int64, r paging.Request) (paging.Page[Operator], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Operator]{}, err
	}
	var after string
	ok, err := r.Keys(&after)
	if err != nil {
		return paging.Page[Operator]{}, err
	}
	var w database.Where
	w.And("o.island_id = ?", islandID)
	if ok {
		w.And("m.slug > ?", after)
	}
	rows, err := q.Query(ctx, `SELECT o.island_id, o.member_id, m.slug, m.name, o.created_at
		FROM island_operators o JOIN members m ON m.id = o.member_id`+w.String()+` ORDER BY m.slug LIMIT `+strconv.Itoa(size+1), w.Args...)
	if err != nil {
		return paging.Page[Operator]{}, fmt.Errorf("list operators: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Operator, error) {
		var o Operator
		err := r.Scan(&o.IslandID, &o.MemberID, &o.MemberSlug, &o.MemberName, &o.Since)
		return o, err
	})
	if err != nil {
		return paging.Page[Operator]{}, fmt.Errorf("list operators: %w", err)
	}
	return paging.Cut(out, size, func(o Operator) []any { return []any{o.MemberSlug} }), nil
}
