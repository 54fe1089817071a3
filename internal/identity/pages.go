package identity

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/page"
)

// TokenPage lists one page of the tokens p may see (as TokenList), newest first
// (internal/page's style; the cursor is the last id).
func (s *Service) TokenPage(ctx context.Context, p *Principal, r page.Request) (page.Page[APIToken], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[APIToken]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return page.Page[APIToken]{}, err
	}
	var adminOf []int64
	for _, m := range p.Members {
		if m.Role == RoleAdmin {
			adminOf = append(adminOf, m.ID)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens t
		JOIN members m ON m.id = t.member_id JOIN users u ON u.id = t.user_id
		WHERE ($1 OR t.user_id = $2 OR t.member_id = ANY($3)) AND ($4 = 0 OR t.id < $4)
		ORDER BY t.id DESC LIMIT $5`, p.FederationAdmin, p.UserID, adminOf, before, size+1)
	if err != nil {
		return page.Page[APIToken]{}, fmt.Errorf("list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) { return scanToken(r) })
	if err != nil {
		return page.Page[APIToken]{}, fmt.Errorf("list tokens: %w", err)
	}
	return page.Cut(out, size, func(t APIToken) []any { return []any{t.ID} }), nil
}

// PersonPage lists one page of a member's people, admins first, then by email and id
// (internal/page's style; the cursor is that triple).
func (s *Service) PersonPage(ctx context.Context, memberID int64, r page.Request) (page.Page[Person], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Person]{}, err
	}
	var (
		notAdmin bool
		email    string
		id       int64
	)
	after, err := r.Keys(&notAdmin, &email, &id)
	if err != nil {
		return page.Page[Person]{}, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+personColumns+` FROM memberships ms JOIN users u ON u.id = ms.user_id
		WHERE ms.member_id = $1 AND (NOT $2 OR (ms.role <> 'admin', u.email, u.id) > ($3, $4, $5))
		ORDER BY ms.role <> 'admin', u.email, u.id LIMIT $6`, memberID, after, notAdmin, email, id, size+1)
	if err != nil {
		return page.Page[Person]{}, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Person, error) { return scanPerson(r) })
	if err != nil {
		return page.Page[Person]{}, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	return page.Cut(out, size, func(p Person) []any { return []any{p.Role != RoleAdmin, p.Email, p.UserID} }), nil
}
