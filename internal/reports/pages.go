package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// Page lists one page of stored reports, newest first (internal/paging's style; the cursor is
// the last report's generation time and id). f.Limit is not used here.
func Page(ctx context.Context, q Querier, f Filter, r paging.Request) (paging.Page[Stored], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Stored]{}, err
	}
	var (
		at time.Time
		id int64
	)
	after, err := r.Keys(&at, &id)
	if err != nil {
		return paging.Page[Stored]{}, err
	}
	var w database.Where
	if !f.All {
		w.And("(r.member_id = ANY(?) OR (? AND r.scope = 'federation'))", f.MemberIDs, f.Federation)
	}
	if f.Scope != "" {
		w.And("r.scope = ?", f.Scope)
	}
	if after {
		w.And("r.generated_at <= ? AND (r.generated_at, r.id) < (?, ?)", at, at, id)
	}
	rows, err := q.Query(ctx, `SELECT `+storedColumns+` FROM reports r LEFT JOIN members m ON m.id = r.member_id`+w.String()+`
		ORDER BY r.generated_at DESC, r.id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Stored]{}, fmt.Errorf("list reports: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanStored)
	if err != nil {
		return paging.Page[Stored]{}, fmt.Errorf("list reports: %w", err)
	}
	return paging.Cut(out, size, func(s Stored) []any { return []any{s.GeneratedAt, s.ID} }), nil
}
