package vaults

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// S3Credentials are what an S3 client needs to reach a vault's bucket.
type S3Credentials struct {
	Endpoint        string // the island's S3 endpoint URL, e.g. https://s3.island.example
	Region          string // the island's s3_region
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
}

// String never shows the secret.
func (c S3Credentials) String() string {
	return fmt.Sprintf("s3 %s/%s (key %s, region %s)", c.Endpoint, c.Bucket, c.AccessKeyID, c.Region)
}

// GoString never shows the secret either.
func (c S3Credentials) GoString() string { return c.String() }

// VerifierCredentials returns the read-only verifier credentials of a vault, with the
// secret unsealed, for restore verification. ErrNotFound when there is no such vault (or
// it is deleted), ErrNoVerifier while the vault is pending.
func (s *Service) VerifierCredentials(ctx context.Context, vaultID int64) (S3Credentials, error) {
	var c S3Credentials
	var sealed, keyID *string
	var status string
	err := s.pool.QueryRow(ctx, `SELECT i.s3_endpoint, i.s3_region, v.bucket_name, v.status, vk.access_key_id, vk.secret_sealed
		FROM vaults v JOIN islands i ON i.id = v.island_id LEFT JOIN vault_verifier_keys vk ON vk.vault_id = v.id
		WHERE v.id = $1`, vaultID).Scan(&c.Endpoint, &c.Region, &c.Bucket, &status, &keyID, &sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return c, ErrNotFound
	case err != nil:
		return c, fmt.Errorf("verifier credentials of vault %d: %w", vaultID, err)
	case status == StatusDeleted:
		return S3Credentials{}, ErrNotFound
	case sealed == nil || keyID == nil:
		return S3Credentials{}, ErrNoVerifier
	}
	c.AccessKeyID = *keyID
	c.SecretAccessKey, err = s.keys.OpenString(verifierPurpose(vaultID), *sealed)
	if err != nil {
		return S3Credentials{}, fmt.Errorf("verifier credentials of vault %d: open secret: %w", vaultID, err)
	}
	return c, nil
}
