package vaults

import (
	"context"
	"fmt"

	"github.com/chatons/archipelago/internal/garage"
)

// memberKeyPermissions is what member keys get on a vault's bucket: read+write, or read
// only while internal/protection has the vault frozen (vault_protection.frozen_at).
func (s *Service) memberKeyPermissions(ctx context.Context, vaultID int64) (garage.Permission, error) {
	var frozen bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM vault_protection WHERE vault_id = $1 AND frozen_at IS NOT NULL)`,
		vaultID).Scan(&frozen); err != nil {
		return 0, fmt.Errorf("freeze state of vault %d: %w", vaultID, err)
	}
	if frozen {
		return garage.PermRead, nil
	}
	return MemberKeyPermissions, nil
}
