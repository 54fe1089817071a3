package vaults

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/page"
)

// VaultPage lists one page of vaults by member slug, name and id (internal/page's style;
// the cursor is that triple).
func (s *Service) VaultPage(ctx context.Context, f VaultFilter, r page.Request) (page.Page[Vault], error) {
	return VaultPage(ctx, s.pool, f, r)
}

// VaultPage lists one page of vaults by member slug, name and id, on q.
func VaultPage(ctx context.Context, q querier, f VaultFilter, r page.Request) (page.Page[Vault], error) {
	size, err := r.Size()
	if err != nil {
		return page.Page[Vault]{}, err
	}
	var (
		slug, name string
		id         int64
	)
	after, err := r.Keys(&slug, &name, &id)
	if err != nil {
		return page.Page[Vault]{}, err
	}
	if !f.All && len(f.MemberIDs) == 0 {
		return page.Page[Vault]{Items: []Vault{}}, nil
	}
	rows, err := q.Query(ctx, `SELECT `+vaultColumns+vaultFrom+`
		WHERE ($5 OR v.member_id = ANY($1)) AND ($2 = 0 OR v.island_id = $2)
		  AND ($3 = '' OR v.status = $3) AND ($4 OR v.status <> 'deleted')
		  AND (NOT $6 OR (m.slug, v.name, v.id) > ($7, $8, $9))
		ORDER BY m.slug, v.name, v.id LIMIT $10`, f.MemberIDs, f.IslandID, f.Status, f.WithDeleted, f.All,
		after, slug, name, id, size+1)
	if err != nil {
		return page.Page[Vault]{}, fmt.Errorf("list vaults: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Vault, error) { return scanVault(r) })
	if err != nil {
		return page.Page[Vault]{}, fmt.Errorf("list vaults: %w", err)
	}
	return page.Cut(out, size, func(v Vault) []any { return []any{v.MemberSlug, v.Name, v.ID} }), nil
}
