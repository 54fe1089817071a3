package identity

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// TokenPage lists one page of the tokens p may see (as TokenList), newest first
// (internal/paging's style; the cursor is the last id).
func (s *Service) TokenPage(ctx context.Context, p *Principal, r paging.Request) (paging.Page[APIToken], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[APIToken]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return paging.Page[APIToken]{}, err
	}
	var adminOf []int64
	for _, m := range p.Members {
		if m.Role == RoleAdmin {
			adminOf = append(adminOf, m.ID)
		}
	}
	var w database.Where
	if !p.FederationAdmin {
		w.And("(t.user_id = ? OR t.member_id = ANY(?))", p.UserID, adminOf)
	}
	if before != 0 {
		w.And("t.id < ?", before)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens t
		JOIN members m ON m.id = t.member_id JOIN users u ON u.id = t.user_id`+w.String()+`
		ORDER BY t.id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[APIToken]{}, fmt.Errorf("list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) { return scanToken(r) })
	if err != nil {
		return paging.Page[APIToken]{}, fmt.Errorf("list tokens: %w", err)
	}
	return paging.Cut(out, size, func(t APIToken) []any { return []any{t.ID} }), nil
}

// PersonPage lists one page of a member's people, admins first, then by email and id
// (internal/paging's style; the cursor is that triple).
func (s *Service) PersonPage(ctx context.Context, memberID int64, r paging.Request) (paging.Page[Person], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Person]{}, err
	}
	var (
		notAdmin bool
		email    string
		id       int64
	)
	after, err := r.Keys(&notAdmin, &email, &id)
	if err != nil {
		return paging.Page[Person]{}, err
	}
	var w database.Where
	w.And("ms.member_id = ?", memberID)
	if after {
		w.And("(ms.role <> 'admin', u.email, u.id) > (?, ?, ?)", notAdmin, email, id)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+personColumns+` FROM memberships ms JOIN users u ON u.id = ms.user_id`+w.String()+`
		ORDER BY ms.role <> 'admin', u.email, u.id LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Person]{}, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Person, error) { return scanPerson(r) })
	if err != nil {
		return paging.Page[Person]{}, fmt.Errorf("list people of member %d: %w", memberID, err)
	}
	return paging.Cut(out, size, func(p Person) []any { return []any{p.Role != RoleAdmin, p.Email, p.UserID} }), nil
}
