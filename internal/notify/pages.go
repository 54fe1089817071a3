package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// ChannelPage lists one page of channels: federation-wide first, then by member slug, name
// and id (internal/paging's style; the cursor is that triple, "" standing for federation-wide).
func ChannelPage(ctx context.Context, q Querier, f ChannelFilter, r paging.Request) (paging.Page[Channel], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Channel]{}, err
	}
	var (
		slug, name string
		id         int64
	)
	after, err := r.Keys(&slug, &name, &id)
	if err != nil {
		return paging.Page[Channel]{}, err
	}
	// Two walks merged, each in the page's order and stopped at its limit: the federation's
	// channels ('' sorts first) by name, then the members' through the members' slug index
	// and each member's channels. Sorting every channel of the federation joined with its
	// member took 9–62 ms a page at 10,000 members (the sort key spans two tables, so no one
	// index holds it); the walks read a page's rows. The page is chosen first, then only its
	// channels count their deliveries: with the counts in the same SELECT as the ORDER BY …
	// LIMIT, PostgreSQL counted the deliveries of every channel of the federation before
	// sorting (10,000 channels: 0.5 s per page).
	limit := strconv.Itoa(size + 1)
	var w database.Where // the parameters of both walks, numbered in order
	fed, mem := []string{"c.member_id IS NULL"}, []string{}
	if !f.All {
		mem = append(mem, "c.member_id = ANY("+w.Arg(f.MemberIDs)+")")
	}
	withFed := (f.All || f.Federation) && (!after || slug == "")
	if after {
		if withFed {
			fed = append(fed, "(c.name, c.id) > ("+w.Arg(name)+", "+w.Arg(id)+")")
		}
		s := w.Arg(slug)
		mem = append(mem, "m.slug >= "+s+" AND (m.slug, c.name, c.id) > ("+s+", "+w.Arg(name)+", "+w.Arg(id)+")")
	}
	where := func(conds []string) string {
		if len(conds) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(conds, " AND ")
	}
	parts := []string{`(SELECT c.*, m.slug AS member_slug FROM members m JOIN notify_channels c ON c.member_id = m.id` +
		where(mem) + ` ORDER BY m.slug, c.name, c.id LIMIT ` + limit + `)`}
	if withFed {
		parts = append(parts, `(SELECT c.*, ''::text AS member_slug FROM notify_channels c`+where(fed)+`
			ORDER BY c.name, c.id LIMIT `+limit+`)`)
	}
	args := w.Args
	rows, err := q.Query(ctx, `SELECT `+pageColumns+` FROM (SELECT * FROM (`+strings.Join(parts, " UNION ALL ")+`) u
		ORDER BY u.member_slug, u.name, u.id LIMIT `+limit+`) c ORDER BY c.member_slug, c.name, c.id`, args...)
	if err != nil {
		return paging.Page[Channel]{}, fmt.Errorf("list channels: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanChannel)
	if err != nil {
		return paging.Page[Channel]{}, fmt.Errorf("list channels: %w", err)
	}
	return paging.Cut(out, size, func(c Channel) []any { return []any{c.MemberSlug, c.Name, c.ID} }), nil
}

// pageColumns are channelColumns over a page of channels already chosen (c: the channel's
// columns and its member_slug).
var pageColumns = strings.Replace(channelColumns, "coalesce(m.slug, '')", "c.member_slug", 1)

// LatestDeliveries returns the newest n deliveries of each channel (newest first), in one
// statement whatever the number of channels (a walk of the (channel_id, id) index each).
func LatestDeliveries(ctx context.Context, q Querier, channelIDs []int64, n int) (map[int64][]Delivery, error) {
	out := make(map[int64][]Delivery, len(channelIDs))
	if len(channelIDs) == 0 || n <= 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT d.* FROM unnest($1::bigint[]) AS c(id)
		CROSS JOIN LATERAL (SELECT `+deliveryColumns+` FROM notify_deliveries
			WHERE channel_id = c.id ORDER BY id DESC LIMIT $2) d ORDER BY d.channel_id, d.id DESC`, channelIDs, n)
	if err != nil {
		return nil, fmt.Errorf("latest deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("latest deliveries: %w", err)
	}
	for _, d := range ds {
		out[d.ChannelID] = append(out[d.ChannelID], d)
	}
	return out, nil
}
