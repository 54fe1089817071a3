package notify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/page"
)

// ChannelPage lists one page of channels: federation-wide first, then by member slug, name
// and id (internal/page's style; the cursor is that triple, "" standing for federation-wide).
func ChannelPage(ctx context.Context, q Querier, f ChannelFilter, r page.Request) (page.Page[Channel], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Channel]{}, err
	}
	var (
		slug, name string
		id         int64
	)
	after, err := r.Keys(&slug, &name, &id)
	if err != nil {
		return page.Page[Channel]{}, err
	}
	rows, err := q.Query(ctx, `SELECT `+channelColumns+channelFrom+`
		WHERE ($1 OR c.member_id = ANY ($2) OR ($3 AND c.member_id IS NULL))
		  AND (NOT $4 OR (coalesce(m.slug, ''), c.name, c.id) > ($5, $6, $7))
		ORDER BY coalesce(m.slug, ''), c.name, c.id LIMIT $8`, f.All, f.MemberIDs, f.Federation, after, slug, name, id, size+1)
	if err != nil {
		return page.Page[Channel]{}, fmt.Errorf("list channels: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanChannel)
	if err != nil {
		return page.Page[Channel]{}, fmt.Errorf("list channels: %w", err)
	}
	return page.Cut(out, size, func(c Channel) []any { return []any{c.MemberSlug, c.Name, c.ID} }), nil
}
