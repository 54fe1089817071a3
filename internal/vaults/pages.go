package vaults

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
)

// VaultPage lists one page of vaults by member slug, name and id (internal/paging's style;
// the cursor is that triple).
func (s *Service) VaultPage(ctx context.Context, f VaultFilter, r paging.Request) (paging.Page[Vault], error) {
	return VaultPage(ctx, s.pool, f, r)
}

// VaultPage lists one page of vaults by member slug, name and id, on q.
func VaultPage(ctx context.Context, q querier, f VaultFilter, r paging.Request) (paging.Page[Vault], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Vault]{}, err
	}
	var (
		slug, name string
		id         int64
	)
	after, err := r.Keys(&slug, &name, &id)
	if err != nil {
		return paging.Page[Vault]{}, err
	}
	if !f.All && len(f.MemberIDs) == 0 {
		return paging.Page[Vault]{Items: []Vault{}}, nil
	}
	var w database.Where
	if !f.All {
		w.And("v.member_id = ANY(?)", f.MemberIDs)
	}
	if f.IslandID != 0 {
		w.And("v.island_id = ?", f.IslandID)
	}
	if f.Status != "" {
		w.And("v.status = ?", f.Status)
	}
	if !f.WithDeleted {
		w.And("v.status <> 'deleted'")
	}
	if after {
		w.And("m.slug >= ? AND (m.slug, v.name, v.id) > (?, ?, ?)", slug, slug, name, id)
	}
	rows, err := q.Query(ctx, `SELECT `+vaultColumns+vaultFrom+w.String()+`
		ORDER BY m.slug, v.name, v.id LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Vault]{}, fmt.Errorf("list vaults: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Vault, error) { return scanVault(r) })
	if err != nil {
		return paging.Page[Vault]{}, fmt.Errorf("list vaults: %w", err)
	}
	return paging.Cut(out, size, func(v Vault) []any { return []any{v.MemberSlug, v.Name, v.ID} }), nil
}
