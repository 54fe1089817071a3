package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sides of a vault a restore test can read (Policy.Target, Run.Target).
const (
	// TargetSource tests the vault itself, with the vault's verifier key.
	TargetSource = "source"
	// TargetCopy tests the vault's protected copy on its second island, with the copy's
	// read-only verifier key (docs/protection.md): a test that passes there proves the
	// backups survive even when the vault itself was emptied by a stolen member key.
	TargetCopy = "copy"
)

func validateTarget(t *string) error {
	if t != nil && *t != TargetSource && *t != TargetCopy {
		return &FieldError{Field: "policy.target", Problem: `must be "source" (the vault) or "copy" (its protected copy)`}
	}
	return nil
}

// setTestTarget stores a repository's test target (nil: the source).
func setTestTarget(ctx context.Context, tx pgx.Tx, id int64, t *string) error {
	if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET test_target = $2 WHERE id = $1`, id, t); err != nil {
		return fmt.Errorf("set the test target of repository %d: %w", id, err)
	}
	return nil
}

// recordTarget notes on the run which side it tests (best effort: the run says "source"
// by default, and a failure here only affects what is shown).
func recordTarget(ctx context.Context, pool *pgxpool.Pool, runID int64, r Repository) {
	_, _ = pool.Exec(ctx, `UPDATE restore_test_runs SET target = $2 WHERE id = $1`, runID, r.Effective.Target)
}

// credentialsFor returns the read-only credentials of the side the repository's policy
// tests: the vault's verifier key, or the copy's verifier key on the copy's island.
func (s *Service) credentialsFor(ctx context.Context, r Repository) (Credentials, error) {
	if r.Effective.Target != TargetCopy {
		c, err := s.cfg.Credentials(ctx, r.VaultID)
		if err != nil {
			return c, fmt.Errorf("the vault's verifier key is not available (this says nothing about the backup): %w", err)
		}
		c.transport = s.s3Transport
		return c, nil
	}
	c, err := s.copyCredentialsFromDB(ctx, r.VaultID)
	if err != nil {
		return c, fmt.Errorf("the verifier key of the vault's protected copy is not available (this says nothing about the backup): %w", err)
	}
	c.transport = s.s3Transport
	return c, nil
}

// copyCredentialsFromDB reads the copy island's endpoint, the copy bucket and the copy's
// verifier key (sealed by internal/protection under "vault/<id>/copy_verifier_secret").
func (s *Service) copyCredentialsFromDB(ctx context.Context, vaultID int64) (Credentials, error) {
	var c Credentials
	var keyID, sealed *string
	var status string
	err := s.pool.QueryRow(ctx, `SELECT i.s3_endpoint, i.s3_region, p.copy_bucket_name, p.copy_status, p.copy_verifier_key_id,
		p.copy_verifier_secret_sealed FROM vault_protection p JOIN islands i ON i.id = p.copy_island_id
		WHERE p.vault_id = $1 AND p.copy_bucket_name IS NOT NULL`, vaultID).Scan(&c.Endpoint, &c.Region, &c.Bucket, &status, &keyID, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("vault %d has no protected copy", vaultID)
	}
	if err != nil {
		return c, fmt.Errorf("read the copy verifier key of vault %d: %w", vaultID, err)
	}
	if status != "active" || keyID == nil || sealed == nil {
		return c, fmt.Errorf("the protected copy of vault %d is %s, without a verifier key yet", vaultID, status)
	}
	c.AccessKeyID = *keyID
	c.SecretAccessKey, err = s.keyring.OpenString(fmt.Sprintf("vault/%d/copy_verifier_secret", vaultID), *sealed)
	if err != nil {
		return c, fmt.Errorf("open the copy verifier key of vault %d: %w", vaultID, err)
	}
	return c, nil
}
