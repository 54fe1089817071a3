package protection

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/vaults"
)

// Copy statuses (vault_protection.copy_status).
const (
	CopyNone    = "none"    // no copy: disabled, or no island can hold one
	CopyPending = "pending" // not provisioned yet
	CopyActive  = "active"  // provisioned
	CopyError   = "error"   // provisioning failed (CopyDetail says why); retried
)

// CopyQuotaFactor: a copy's bucket may hold this many times its vault's quota (the
// vault's content plus what was deleted from it within the grace period). Copies count
// against their island's capacity with that size (docs/protection.md).
const CopyQuotaFactor = 2

// copyRow is a vault's protection row with what the copy needs.
type copyRow struct {
	vault        vaults.Vault
	enabled      bool
	islandID     *int64
	islandName   string
	s3Endpoint   string
	s3Region     string
	bucketName   *string
	bucketID     *string
	keyID        *string
	secretSealed *string
	readerKeyID  *string
	// verifierKeyID is the copy's read-only verifier key (restore tests of the copy).
	verifierKeyID *string
	status        string
	frozen        bool
	through       *time.Time
}

func copyPurpose(vaultID int64) string { return fmt.Sprintf("vault/%d/copy_secret", vaultID) }

// copyVerifierPurpose seals the copy's read-only verifier key (internal/verify opens it
// under the same purpose).
func copyVerifierPurpose(vaultID int64) string {
	return fmt.Sprintf("vault/%d/copy_verifier_secret", vaultID)
}

func (s *Service) loadCopyRow(ctx context.Context, q querier, vaultID int64) (copyRow, error) {
	var c copyRow
	v, err := vaults.VaultGetByID(ctx, s.pool, vaultID)
	if errors.Is(err, vaults.ErrNotFound) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, err
	}
	c.vault = v
	var islandName, endpoint, region *string
	err = q.QueryRow(ctx, `SELECT p.copy_enabled, p.copy_island_id, i.name, i.s3_endpoint, i.s3_region, p.copy_bucket_name,
		p.copy_garage_bucket_id, p.copy_key_id, p.copy_secret_sealed, p.reader_key_id, p.copy_status, p.frozen_at IS NOT NULL,
		p.copied_through, p.copy_verifier_key_id
		FROM vault_protection p LEFT JOIN islands i ON i.id = p.copy_island_id WHERE p.vault_id = $1`, vaultID).Scan(
		&c.enabled, &c.islandID, &islandName, &endpoint, &region, &c.bucketName, &c.bucketID, &c.keyID, &c.secretSealed,
		&c.readerKeyID, &c.status, &c.frozen, &c.through, &c.verifierKeyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, &ConflictError{Problem: "the vault has no protected copy yet"}
	}
	if err != nil {
		return c, fmt.Errorf("protection of vault %d: %w", vaultID, err)
	}
	if islandName != nil {
		c.islandName, c.s3Endpoint, c.s3Region = *islandName, *endpoint, *region
	}
	return c, nil
}

// copyBucketName derives the copy's bucket name from the vault's (unique in the federation).
func copyBucketName(vaultBucket string) string {
	base := vaultBucket
	if len(base) > 58 {
		base = strings.TrimRight(base[:58], ".-")
	}
	return base + "-copy"
}

// chooseCopyIsland picks the island of a vault's copy: not the vault's island, not one
// the member operates, reachable with a known layout, with room for CopyQuotaFactor × the
// vault's quota within usable capacity × overcommit counting vaults and other copies;
// the lowest fill ratio after placement wins. It returns 0 and why when none can.
func (s *Service) chooseCopyIsland(ctx context.Context, q querier, v vaults.Vault) (int64, string, error) {
	need := CopyQuotaFactor * v.QuotaBytes
	var id int64
	err := q.QueryRow(ctx, `WITH cand AS (
		SELECT i.id, floor(i.layout_capacity_bytes::numeric / i.replication_factor * (SELECT overcommit FROM federation_settings)::numeric) AS lim,
		  coalesce((SELECT sum(v.quota_bytes) FROM vaults v WHERE v.island_id = i.id AND v.status <> 'deleted'), 0)
		  + coalesce((SELECT sum(`+strconv.Itoa(CopyQuotaFactor)+` * v.quota_bytes) FROM vault_protection p JOIN vaults v ON v.id = p.vault_id
		      WHERE p.copy_island_id = i.id AND v.status <> 'deleted' AND v.id <> $3), 0) AS alloc
		FROM islands i
		WHERE i.id <> $1 AND i.layout_capacity_bytes IS NOT NULL AND i.status NOT IN ('unreachable', 'unavailable')
		  AND NOT EXISTS (SELECT 1 FROM island_operators o WHERE o.island_id = i.id AND o.member_id = $2))
		SELECT id FROM cand WHERE lim > 0 AND alloc + $4 <= lim ORDER BY (alloc + $4) / lim, id LIMIT 1`,
		v.IslandID, v.MemberID, v.ID, need).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Sprintf("no island other than %q that member %s does not operate has room for a copy of %d bytes",
			v.IslandName, v.MemberSlug, need), nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("choose copy island of vault %d: %w", v.ID, err)
	}
	return id, "", nil
}

// EnsureCopy provisions a vault's protected copy when it has none yet: it chooses the
// copy island, creates the bucket (quota CopyQuotaFactor × the vault's, Archipelago's
// lifecycle rule) and Archipelago's copy key (read+write on that bucket only). Each step
// is recorded as soon as it succeeds, so a failure is resumed by the next run. It
// returns the copy status.
func (s *Service) EnsureCopy(ctx context.Context, vaultID int64) (string, error) {
	ctx = withSystemActor(ctx, "protection.copy")
	if err := s.tx(ctx, func(tx pgx.Tx) error { return ensureRow(ctx, tx, vaultID) }); err != nil {
		return "", fmt.Errorf("protection of vault %d: %w", vaultID, err)
	}
	c, err := s.loadCopyRow(ctx, s.pool, vaultID)
	if err != nil {
		return "", err
	}
	v := c.vault
	if !c.enabled {
		return CopyNone, s.setCopyStatus(ctx, v, CopyNone, "the protected copy is disabled for this vault")
	}
	if v.Status != vaults.StatusActive && v.Status != vaults.StatusDeleting {
		return c.status, nil
	}
	if c.islandID == nil {
		id, why, err := s.chooseCopyIsland(ctx, s.pool, v)
		if err != nil {
			return "", err
		}
		if id == 0 {
			return CopyNone, s.setCopyStatus(ctx, v, CopyNone, why)
		}
		name := copyBucketName(v.BucketName)
		err = s.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copy_island_id = $2, copy_bucket_name = $3, copy_status = 'pending',
				copy_detail = '', updated_at = now() WHERE vault_id = $1`, v.ID, id, name); err != nil {
				return err
			}
			_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.place", MemberID: &v.MemberID, TargetType: "vault",
				TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"copy_island_id": id, "copy_bucket": name}})
			return err
		})
		if err != nil {
			return "", fmt.Errorf("place copy of vault %d: %w", v.ID, err)
		}
		if c, err = s.loadCopyRow(ctx, s.pool, vaultID); err != nil {
			return "", err
		}
	}
	if c.status == CopyActive && c.bucketID != nil && c.keyID != nil && c.verifierKeyID != nil {
		return CopyActive, nil
	}
	if err := s.provisionCopy(ctx, c); err != nil {
		_ = s.setCopyStatus(context.WithoutCancel(ctx), v, CopyError, err.Error()+"; retried at the next copy run")
		return CopyError, err
	}
	return CopyActive, nil
}

func (s *Service) setCopyStatus(ctx context.Context, v vaults.Vault, status, detail string) error {
	_, err := s.pool.Exec(ctx, `UPDATE vault_protection SET copy_status = $2, copy_detail = $3, updated_at = now()
		WHERE vault_id = $1 AND (copy_status, copy_detail) IS DISTINCT FROM ($2, $3)`, v.ID, status, truncate(detail, 1900))
	return err
}

func (s *Service) provisionCopy(ctx context.Context, c copyRow) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	v := c.vault
	gc, err := s.garageFor(ctx, *c.islandID)
	if err != nil {
		return err
	}
	if c.bucketID == nil {
		b, err := gc.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: *c.bucketName})
		if errors.Is(err, garage.ErrBucketAlreadyExists) {
			// A lost answer: adopt the bucket if nobody holds a key on it.
			b, err = gc.GetBucketInfo(ctx, garage.BucketLookup{GlobalAlias: *c.bucketName})
			if err == nil && len(b.Keys) > 0 {
				return fmt.Errorf("island %q: bucket name %q is taken by a bucket Archipelago did not create", c.islandName, *c.bucketName)
			}
		}
		if err != nil {
			return fmt.Errorf("island %q: CreateBucket %s: %w", c.islandName, *c.bucketName, err)
		}
		if _, err := s.pool.Exec(ctx, `UPDATE vault_protection SET copy_garage_bucket_id = $2 WHERE vault_id = $1`, v.ID, b.ID); err != nil {
			return err
		}
		c.bucketID = &b.ID
	}
	size := CopyQuotaFactor * v.QuotaBytes
	if _, err := gc.SetBucketQuotas(ctx, *c.bucketID, garage.Quotas{MaxSize: &size}); err != nil {
		return fmt.Errorf("island %q: UpdateBucket (quotas) %s: %w", c.islandName, *c.bucketName, err)
	}
	if _, err := gc.SetBucketLifecycle(ctx, *c.bucketID, Rules()); err != nil {
		return fmt.Errorf("island %q: UpdateBucket (lifecycle) %s: %w", c.islandName, *c.bucketName, err)
	}
	if c.keyID == nil {
		k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: fmt.Sprintf("archipelago-copy-vault-%d", v.ID)})
		if err != nil {
			return fmt.Errorf("island %q: CreateKey (copy): %w", c.islandName, err)
		}
		sealed := s.keys.SealString(copyPurpose(v.ID), k.SecretAccessKey)
		if _, err := s.pool.Exec(ctx, `UPDATE vault_protection SET copy_key_id = $2, copy_secret_sealed = $3 WHERE vault_id = $1`,
			v.ID, k.AccessKeyID, sealed); err != nil {
			return err
		}
		c.keyID = &k.AccessKeyID
	}
	if _, err := gc.AllowBucketKey(ctx, *c.bucketID, *c.keyID, garage.PermRead|garage.PermWrite); err != nil {
		return fmt.Errorf("island %q: AllowBucketKey (copy key): %w", c.islandName, err)
	}
	if c.verifierKeyID == nil {
		k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: fmt.Sprintf("archipelago-copy-verifier-vault-%d", v.ID)})
		if err != nil {
			return fmt.Errorf("island %q: CreateKey (copy verifier): %w", c.islandName, err)
		}
		sealed := s.keys.SealString(copyVerifierPurpose(v.ID), k.SecretAccessKey)
		if _, err := s.pool.Exec(ctx, `UPDATE vault_protection SET copy_verifier_key_id = $2, copy_verifier_secret_sealed = $3
			WHERE vault_id = $1`, v.ID, k.AccessKeyID, sealed); err != nil {
			return err
		}
		c.verifierKeyID = &k.AccessKeyID
	}
	if _, err := gc.AllowBucketKey(ctx, *c.bucketID, *c.verifierKeyID, garage.PermRead); err != nil {
		return fmt.Errorf("island %q: AllowBucketKey (copy verifier key): %w", c.islandName, err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copy_status = 'active', copy_detail = '', updated_at = now()
			WHERE vault_id = $1`, v.ID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.provision", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"copy_island": c.islandName, "copy_bucket": *c.bucketName,
				"copy_key_id": *c.keyID, "copy_verifier_key_id": *c.verifierKeyID, "max_size": size}})
		return err
	})
}

// s3Client builds an S3 client for an island endpoint URL.
func s3Client(endpoint, region, keyID, secret string) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("S3 endpoint %q: not a URL", endpoint)
	}
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(keyID, secret, ""), Secure: u.Scheme == "https",
		Region: region, BucketLookup: minio.BucketLookupPath})
}

// copyClient returns the S3 client of Archipelago's copy key on the copy bucket.
func (s *Service) copyClient(c copyRow) (*minio.Client, error) {
	if c.keyID == nil || c.secretSealed == nil || c.bucketName == nil {
		return nil, &ConflictError{Problem: "the vault's copy is not provisioned yet"}
	}
	secret, err := s.keys.OpenString(copyPurpose(c.vault.ID), *c.secretSealed)
	if err != nil {
		return nil, fmt.Errorf("copy key of vault %d: open secret: %w", c.vault.ID, err)
	}
	return s3Client(c.s3Endpoint, c.s3Region, *c.keyID, secret)
}

// ReaderKey is a member's read-only key on a vault's copy, with its secret (shown once).
type ReaderKey struct {
	AccessKeyID     string            `json:"access_key_id"`
	SecretAccessKey string            `json:"secret_access_key"`
	Env             map[string]string `json:"env"`
	Snippet         string            `json:"restic_snippet"`
}

// ReaderKeyCreate creates the member's read-only key on the vault's copy, replacing (and
// deleting) the previous one. The secret is in the answer only. The snippet points restic
// at the copy: the same repository path as in the vault.
func (s *Service) ReaderKeyCreate(ctx context.Context, vaultID int64) (ReaderKey, error) {
	c, err := s.loadCopyRow(ctx, s.pool, vaultID)
	if err != nil {
		return ReaderKey{}, err
	}
	if c.status != CopyActive || c.bucketID == nil {
		return ReaderKey{}, &ConflictError{Problem: "the vault has no active protected copy"}
	}
	gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	gc, err := s.garageFor(gctx, *c.islandID)
	if err != nil {
		return ReaderKey{}, &UnreachableError{Island: c.islandName, Operation: "connect", Err: err}
	}
	k, err := gc.CreateKey(gctx, garage.CreateKeyParams{Name: *c.bucketName + "/member-read-only"})
	if err != nil {
		return ReaderKey{}, &UnreachableError{Island: c.islandName, Operation: "CreateKey (reader)", Err: err}
	}
	if _, err := gc.AllowBucketKey(gctx, *c.bucketID, k.AccessKeyID, garage.PermRead); err != nil {
		_ = gc.DeleteKey(context.WithoutCancel(gctx), k.AccessKeyID)
		return ReaderKey{}, &UnreachableError{Island: c.islandName, Operation: "AllowBucketKey (reader)", Err: err}
	}
	v := c.vault
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET reader_key_id = $2, updated_at = now() WHERE vault_id = $1`, v.ID, k.AccessKeyID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.reader_key_create", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"access_key_id": k.AccessKeyID, "permissions": "read",
				"replaces": c.readerKeyID}})
		return err
	})
	if err != nil {
		_ = gc.DeleteKey(context.WithoutCancel(gctx), k.AccessKeyID)
		return ReaderKey{}, fmt.Errorf("reader key of vault %d: %w", v.ID, err)
	}
	if c.readerKeyID != nil {
		if err := gc.DeleteKey(gctx, *c.readerKeyID); err != nil && !errors.Is(err, garage.ErrNotFound) {
			s.log.WarnContext(ctx, "delete the previous reader key of a copy by hand", "vault", v.ID, "access_key_id", *c.readerKeyID, "err", err)
		}
	}
	env := vaults.Snippet(vaults.Vault{S3Endpoint: c.s3Endpoint, S3Region: c.s3Region, BucketName: *c.bucketName},
		s.cfg.SnippetPath, k.AccessKeyID, k.SecretAccessKey)
	snippet := strings.Replace(vaults.SnippetText(env), "# then choose a repository password (RESTIC_PASSWORD_FILE) and run: restic init\n",
		"# read-only (restic needs --no-lock): use your repository's password (RESTIC_PASSWORD_FILE), then e.g.\n# restic --no-lock snapshots && restic --no-lock restore latest --target ./restored\n", 1)
	return ReaderKey{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, Env: env, Snippet: snippet}, nil
}

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{{Table: "vault_protection", IDColumn: "vault_id", Column: "copy_secret_sealed", Purpose: copyPurpose},
		{Table: "vault_protection", IDColumn: "vault_id", Column: "copy_verifier_secret_sealed", Purpose: copyVerifierPurpose}}
}

// CopyVerifierCredentials returns the read-only verifier credentials of a vault's copy
// (the copy island's endpoint, the copy bucket, the copy verifier key with its secret
// unsealed), for restore tests that target the copy. A ConflictError while the copy is
// not active or its verifier key not provisioned yet.
func (s *Service) CopyVerifierCredentials(ctx context.Context, vaultID int64) (vaults.S3Credentials, error) {
	c, err := s.loadCopyRow(ctx, s.pool, vaultID)
	if err != nil {
		return vaults.S3Credentials{}, err
	}
	var sealed *string
	if err := s.pool.QueryRow(ctx, `SELECT copy_verifier_secret_sealed FROM vault_protection WHERE vault_id = $1`, vaultID).Scan(&sealed); err != nil {
		return vaults.S3Credentials{}, fmt.Errorf("copy verifier key of vault %d: %w", vaultID, err)
	}
	if c.status != CopyActive || c.bucketName == nil || c.verifierKeyID == nil || sealed == nil {
		return vaults.S3Credentials{}, &ConflictError{Problem: "the vault's copy has no verifier key yet (copy status " + c.status + ")"}
	}
	secret, err := s.keys.OpenString(copyVerifierPurpose(vaultID), *sealed)
	if err != nil {
		return vaults.S3Credentials{}, fmt.Errorf("copy verifier key of vault %d: open secret: %w", vaultID, err)
	}
	return vaults.S3Credentials{Endpoint: c.s3Endpoint, Region: c.s3Region, Bucket: *c.bucketName,
		AccessKeyID: *c.verifierKeyID, SecretAccessKey: secret}, nil
}
