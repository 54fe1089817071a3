package protection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
)

// The copy of a purged vault (docs/protection.md, "When a vault is purged"):
//
//   - at the first copy run after the vault's purge (within a minute), the member's
//     read-only key on the copy is revoked (deleted on Garage) and the copy is scheduled
//     for deletion the deletion grace period later: a purge ordered with a stolen admin account still leaves the grace period
//     to notice and ask a federation admin to keep the copy;
//   - until then the copy is kept as it was (no more copy runs, nothing deleted);
//   - past that date its objects, its bucket, the copy key and the copy verifier key are
//     deleted, with a write-ahead audit entry (vault_copy.purge.begin) before the first
//     destructive call and the outcome after (vault_copy.purge);
//   - a frozen vault's copy is never purged (a federation admin froze it on purpose).

type purgeRow struct {
	vaultID, memberID int64
	vaultName         string
	frozen            bool
	purgeAfter        *time.Time
	readerKeyID       *string
	verifierKeyID     *string
}

// PurgeCopies handles the copies of purged vaults: it schedules each one's deletion (and
// revokes the member's read-only key) once, and deletes the copies whose date is past.
// CopyAll calls it at each run.
func (s *Service) PurgeCopies(ctx context.Context) error {
	ctx = withSystemActor(ctx, "protection.copy")
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT v.id, v.member_id, v.name, p.frozen_at IS NOT NULL,
		p.copy_purge_after, p.reader_key_id, p.copy_verifier_key_id
		FROM vault_protection p JOIN vaults v ON v.id = p.vault_id
		WHERE v.status = 'deleted' AND p.copy_purged_at IS NULL AND p.copy_island_id IS NOT NULL ORDER BY v.id`)
	if err != nil {
		return fmt.Errorf("copies of purged vaults: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (purgeRow, error) {
		var p purgeRow
		return p, r.Scan(&p.vaultID, &p.memberID, &p.vaultName, &p.frozen, &p.purgeAfter, &p.readerKeyID, &p.verifierKeyID)
	})
	if err != nil {
		return fmt.Errorf("copies of purged vaults: %w", err)
	}
	var errs []error
	for _, p := range list {
		if p.purgeAfter == nil {
			if err := s.scheduleCopyPurge(ctx, p, s.now().Add(st.DeletionGrace)); err != nil {
				errs = append(errs, fmt.Errorf("vault %d: %w", p.vaultID, err))
			}
			continue
		}
		if p.frozen || s.now().Before(*p.purgeAfter) {
			continue
		}
		if err := s.purgeCopy(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("vault %d: %w", p.vaultID, err))
		}
	}
	return errors.Join(errs...)
}

// scheduleCopyPurge records the copy's deletion date and revokes the member's reader key.
func (s *Service) scheduleCopyPurge(ctx context.Context, p purgeRow, after time.Time) error {
	c, err := s.loadCopyRow(ctx, s.pool, p.vaultID)
	if err != nil {
		return err
	}
	// Write-ahead: the schedule and the revocation are recorded before the key is deleted;
	// a failed deletion leaves reader_key_id set and is retried at the next run.
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copy_purge_after = $2, updated_at = now() WHERE vault_id = $1`,
			p.vaultID, after); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.purge_scheduled", MemberID: &p.memberID, TargetType: "vault",
			TargetID: strconv.FormatInt(p.vaultID, 10), Details: map[string]any{"name": p.vaultName, "copy_bucket": c.bucketName,
				"purge_after": after.UTC().Format(time.RFC3339), "reader_key_revoked": p.readerKeyID}})
		return err
	})
	if err != nil {
		return fmt.Errorf("schedule the purge of the copy: %w", err)
	}
	return s.revokeReaderKey(ctx, c)
}

// revokeReaderKey deletes the member's read-only key on the copy, if any.
func (s *Service) revokeReaderKey(ctx context.Context, c copyRow) error {
	if c.readerKeyID == nil || c.islandID == nil {
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	gc, err := s.garageFor(gctx, *c.islandID)
	if err != nil {
		return err
	}
	if err := gc.DeleteKey(gctx, *c.readerKeyID); err != nil && !errors.Is(err, garage.ErrNotFound) {
		return &UnreachableError{Island: c.islandName, Operation: "DeleteKey (reader)", Err: err}
	}
	_, err = s.pool.Exec(ctx, `UPDATE vault_protection SET reader_key_id = NULL, updated_at = now() WHERE vault_id = $1 AND reader_key_id = $2`,
		c.vault.ID, *c.readerKeyID)
	return err
}

// purgeCopy deletes a purged vault's copy: objects, bucket, copy and verifier keys.
func (s *Service) purgeCopy(ctx context.Context, p purgeRow) error {
	c, err := s.loadCopyRow(ctx, s.pool, p.vaultID)
	if err != nil {
		return err
	}
	if err := s.revokeReaderKey(ctx, c); err != nil {
		return err
	}
	target := strconv.FormatInt(p.vaultID, 10)
	if err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copy_purge_started_at = coalesce(copy_purge_started_at, $2)
			WHERE vault_id = $1`, p.vaultID, s.now()); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.purge.begin", MemberID: &p.memberID, TargetType: "vault",
			TargetID: target, Details: map[string]any{"name": p.vaultName, "copy_bucket": c.bucketName, "copy_island": c.islandName}})
		return err
	}); err != nil {
		return fmt.Errorf("record the start of the purge of the copy: %w", err)
	}
	removed := 0
	fail := func(err error) error {
		wctx := context.WithoutCancel(ctx)
		if aerr := s.tx(wctx, func(tx pgx.Tx) error {
			_, err := audit.Record(wctx, tx, audit.Entry{Action: "vault_copy.purge.failed", MemberID: &p.memberID,
				TargetType: "vault", TargetID: target, Details: map[string]any{"name": p.vaultName, "objects_removed": removed,
					"outcome": "error", "error": truncate(err.Error(), 1000)}})
			return err
		}); aerr != nil {
			s.log.ErrorContext(ctx, "record the outcome of a copy purge", "vault", p.vaultID, "err", aerr)
		}
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, s.cfg.CopyTimeout)
	defer cancel()
	gc, err := s.garageFor(gctx, *c.islandID)
	if err != nil {
		return fail(err)
	}
	if c.bucketID != nil {
		if c.keyID != nil {
			dc, err := s.copyClient(c)
			if err != nil {
				return fail(err)
			}
			if removed, err = emptyCopy(gctx, dc, *c.bucketName); err != nil {
				return fail(fmt.Errorf("island %q: empty %s: %w", c.islandName, *c.bucketName, err))
			}
		}
		if err := gc.DeleteBucket(gctx, *c.bucketID); err != nil && !errors.Is(err, garage.ErrNotFound) {
			return fail(&UnreachableError{Island: c.islandName, Operation: "DeleteBucket (copy)", Err: err})
		}
	}
	for _, k := range []*string{c.keyID, c.verifierKeyID} {
		if k == nil {
			continue
		}
		if err := gc.DeleteKey(gctx, *k); err != nil && !errors.Is(err, garage.ErrNotFound) {
			return fail(&UnreachableError{Island: c.islandName, Operation: "DeleteKey (copy)", Err: err})
		}
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copy_purged_at = $2, copy_status = 'none',
			copy_detail = 'the vault was purged; its copy was deleted after the grace period', copy_garage_bucket_id = NULL,
			copy_key_id = NULL, copy_secret_sealed = NULL, copy_verifier_key_id = NULL, copy_verifier_secret_sealed = NULL,
			updated_at = now() WHERE vault_id = $1`, p.vaultID, s.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vault_copy_objects WHERE vault_id = $1`, p.vaultID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.purge", MemberID: &p.memberID, TargetType: "vault",
			TargetID: target, Details: map[string]any{"name": p.vaultName, "copy_bucket": c.bucketName, "objects_removed": removed}})
		return err
	})
}

// emptyCopy deletes every object (and unfinished upload) of a copy bucket.
func emptyCopy(ctx context.Context, dc *minio.Client, bucket string) (int, error) {
	var keys []string
	for o := range dc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return 0, o.Err
		}
		keys = append(keys, o.Key)
	}
	removed := 0
	for _, k := range keys {
		if err := dc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
			return removed, err
		}
		removed++
	}
	for u := range dc.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err == nil {
			_ = dc.RemoveIncompleteUpload(ctx, bucket, u.Key)
		}
	}
	return removed, nil
}
