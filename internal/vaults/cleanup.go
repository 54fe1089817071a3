package vaults

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
)

// DeleteExpiredKeys deletes from Garage the member keys past their expiry (rotated keys
// after their grace period, keys with an expiry) and revoked keys whose deletion failed
// earlier, and records them deleted (audited). Idempotent and safe to run concurrently: a
// key already deleted on Garage counts as deleted, and only one run records it.
func (s *Service) DeleteExpiredKeys(ctx context.Context) error {
	ctx = withSystemActor(ctx, "vaults.delete-expired-keys")
	rows, err := s.pool.Query(ctx, `SELECT k.vault_id, v.island_id, k.id FROM vault_keys k JOIN vaults v ON v.id = k.vault_id
		WHERE k.deleted_at IS NULL AND (k.revoked_at IS NOT NULL OR k.expires_at <= $1) ORDER BY v.island_id, k.id`, s.now())
	if err != nil {
		return fmt.Errorf("delete expired keys: %w", err)
	}
	type ref struct{ vault, island, key int64 }
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ref, error) {
		var x ref
		return x, r.Scan(&x.vault, &x.island, &x.key)
	})
	if err != nil {
		return fmt.Errorf("delete expired keys: %w", err)
	}
	refs := make([]vaultRef, len(keys))
	byID := map[int64]ref{}
	for i, k := range keys {
		refs[i] = vaultRef{ID: k.key, IslandID: k.island}
		byID[k.key] = k
	}
	return s.byIsland(ctx, "expired_keys", refs, func(ctx context.Context, keyID int64) error {
		r := byID[keyID]
		v, err := VaultGetByID(ctx, s.pool, r.vault)
		if err != nil {
			return err
		}
		k, err := s.KeyGetByID(ctx, r.vault, keyID)
		if err != nil {
			return err
		}
		gc, err := s.garage(ctx, v.IslandID)
		if err != nil {
			return unreachable(v.IslandName, "connect", err)
		}
		return s.deleteKeyNow(ctx, gc, v, k)
	})
}

// PurgeDeletedVaults executes the vault deletions whose grace period is over: the bucket
// is emptied (through S3, with a temporary key) and deleted, the vault's keys deleted,
// and the vault recorded deleted (audited). A later multi-party approval adds one
// condition to the selection below. Idempotent; each vault under an advisory lock.
func (s *Service) PurgeDeletedVaults(ctx context.Context) error {
	ctx = withSystemActor(ctx, "vaults.purge")
	refs, err := s.vaultRefs(ctx, `SELECT v.id, v.island_id FROM vault_deletions d JOIN vaults v ON v.id = d.vault_id
		WHERE d.status = 'scheduled' AND d.purge_after <= $1 AND v.status = 'deleting' ORDER BY v.island_id, v.id`, s.now())
	if err != nil {
		return fmt.Errorf("purge vaults: %w", err)
	}
	return s.byIsland(ctx, "purge", refs, s.purgeVault)
}

func (s *Service) purgeVault(ctx context.Context, id int64) error {
	release, ok, err := s.tryLock(ctx, lockVault<<32|id)
	if err != nil || !ok {
		return err
	}
	defer release()
	v, err := VaultGetByID(ctx, s.pool, id)
	if err != nil {
		return err
	}
	if v.Status != StatusDeleting {
		return nil // restored or purged meanwhile
	}
	removed := 0
	if v.GarageBucketID != nil {
		gc, err := s.garage(ctx, v.IslandID)
		if err != nil {
			return unreachable(v.IslandName, "connect", err)
		}
		// Write-ahead: the purge is recorded as started (a restore is refused from now
		// on) and audited before the first destructive call; its outcome follows.
		if err := s.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE vault_deletions SET purge_started_at = coalesce(purge_started_at, now())
				WHERE vault_id = $1 AND status = 'scheduled'`, id); err != nil {
				return err
			}
			_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.purge.begin", MemberID: &v.MemberID, TargetType: "vault",
				TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": v.Name, "bucket_id": *v.GarageBucketID}})
			return err
		}); err != nil {
			return fmt.Errorf("record the start of the purge of vault %d: %w", id, err)
		}
		fail := func(err error) error {
			s.auditOutcome(ctx, v, "vault.purge", "vault", map[string]any{"name": v.Name, "objects_removed": removed}, err)
			return err
		}
		if removed, err = s.emptyBucket(ctx, gc, v); err != nil {
			return fail(err)
		}
		if err := gc.DeleteBucket(ctx, *v.GarageBucketID); err != nil && !errors.Is(err, garage.ErrNotFound) {
			return fail(unreachable(v.IslandName, "DeleteBucket", err))
		}
		s.deleteVaultKeys(ctx, gc, v)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vaults SET status = 'deleted', deleted_at = now(), updated_at = now() WHERE id = $1 AND status = 'deleting'`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Cannot happen under the vault lock (a restore takes it too); recorded anyway.
			_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.purge", MemberID: &v.MemberID, TargetType: "vault",
				TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": v.Name, "objects_removed": removed,
					"note": "the vault was no longer being deleted when the purge ended"}})
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE vault_deletions SET status = 'done', closed_at = now(), closed_by = 'vaults.purge'
			WHERE vault_id = $1 AND status = 'scheduled'`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE vault_keys SET revoked_at = coalesce(revoked_at, now()) WHERE vault_id = $1`, id); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.purge", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": v.Name, "objects_removed": removed}})
		return err
	})
}

// emptyBucket deletes every object of a vault's bucket through S3 with a temporary
// read+write key, deleted afterwards. Garage's admin API cannot delete objects.
func (s *Service) emptyBucket(ctx context.Context, gc *garage.Client, v Vault) (int, error) {
	k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: fmt.Sprintf("archipelago-purge-vault-%d", v.ID)})
	if err != nil {
		return 0, unreachable(v.IslandName, "CreateKey (purge)", err)
	}
	defer s.dropGarageKey(ctx, gc, k.AccessKeyID)
	if _, err := gc.AllowBucketKey(ctx, *v.GarageBucketID, k.AccessKeyID, garage.PermRead|garage.PermWrite); err != nil {
		if errors.Is(err, garage.ErrNotFound) {
			return 0, nil // the bucket is gone already
		}
		return 0, unreachable(v.IslandName, "AllowBucketKey (purge)", err)
	}
	u, err := url.Parse(v.S3Endpoint)
	if err != nil {
		return 0, fmt.Errorf("island %q: S3 endpoint %q: %w", v.IslandName, v.S3Endpoint, err)
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(k.AccessKeyID, k.SecretAccessKey, ""),
		Secure: u.Scheme == "https", Region: v.S3Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return 0, fmt.Errorf("island %q: S3 client: %w", v.IslandName, err)
	}
	// A fresh key can take a moment to be usable; the listing retries inside minio-go.
	objects := make(chan minio.ObjectInfo)
	listErr := make(chan error, 1)
	go func() {
		defer close(objects)
		for o := range mc.ListObjects(ctx, v.BucketName, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				listErr <- o.Err
				return
			}
			objects <- o
		}
		listErr <- nil
	}()
	removed := 0
	counted := make(chan minio.ObjectInfo)
	go func() {
		defer close(counted)
		for o := range objects {
			removed++
			counted <- o
		}
	}()
	var rmErr error
	for e := range mc.RemoveObjects(ctx, v.BucketName, counted, minio.RemoveObjectsOptions{}) {
		rmErr = errors.Join(rmErr, e.Err)
	}
	if err := errors.Join(<-listErr, rmErr); err != nil {
		return removed, fmt.Errorf("island %q: empty bucket %s through S3: %w", v.IslandName, v.BucketName, err)
	}
	for u := range mc.ListIncompleteUploads(ctx, v.BucketName, "", true) {
		if u.Err == nil {
			_ = mc.RemoveIncompleteUpload(ctx, v.BucketName, u.Key)
		}
	}
	return removed, nil
}
