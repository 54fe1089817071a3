package protection

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/vaults"
)

// Run is one copy run of a vault (vault_copy_runs).
type Run struct {
	ID               int64     `json:"id"`
	VaultID          int64     `json:"vault_id"`
	StartedAt        time.Time `json:"started_at"`
	FinishedAt       time.Time `json:"finished_at"`
	Status           string    `json:"status"` // ok, partial (some objects failed), error
	ObjectsCopied    int64     `json:"objects_copied"`
	BytesCopied      int64     `json:"bytes_copied"`
	ObjectsInCopy    int64     `json:"objects_in_copy"`
	BytesInCopy      int64     `json:"bytes_in_copy"`
	DeletionsSeen    int64     `json:"deletions_seen"`
	DeletionsPending int64     `json:"deletions_pending"`
	DeletionsApplied int64     `json:"deletions_applied"`
	Overwrites       int64     `json:"overwrites"`
	LagSeconds       int64     `json:"lag_seconds"`
	Errors           []string  `json:"errors"`
}

// Duration is how long the run took.
func (r Run) Duration() time.Duration { return r.FinishedAt.Sub(r.StartedAt) }

const maxRunErrors = 50

func (r *Run) fail(format string, args ...any) {
	if len(r.Errors) < maxRunErrors {
		r.Errors = append(r.Errors, truncate(fmt.Sprintf(format, args...), 1900))
	}
}

// IsLockFile reports whether an object is a restic lock (<repo>/locks/<id>): locks are
// not copied (a copied lock would only block restic on the copy).
func IsLockFile(key string) bool {
	dir := path.Dir(key)
	return path.Base(dir) == "locks"
}

// ContentName returns the SHA-256 an object's name promises, if any: every restic file
// other than config is named by the SHA-256 of its content.
func ContentName(key string) (string, bool) {
	name := path.Base(key)
	if len(name) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(name); err != nil || strings.ToLower(name) != name {
		return "", false
	}
	return name, true
}

type manifestEntry struct {
	size          int64
	etag          string
	missingSince  *time.Time
	overwrittenAt *time.Time
}

type sourceObject struct {
	key  string
	size int64
	etag string
}

// CopyAll is the copy's periodic run: every vault gets its protected copy provisioned if
// it has none, and each copy whose last run is older than the federation's copy interval
// is brought up to date. Vaults are done one after the other, each within CopyTimeout.
func (s *Service) CopyAll(ctx context.Context) error {
	ctx = withSystemActor(ctx, "protection.copy")
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return err
	}
	purgeErr := s.PurgeCopies(ctx)
	rows, err := s.pool.Query(ctx, `SELECT v.id, (SELECT max(r.started_at) FROM vault_copy_runs r WHERE r.vault_id = v.id)
		FROM vaults v WHERE v.status IN ('active', 'deleting') AND v.garage_bucket_id IS NOT NULL ORDER BY v.id`)
	if err != nil {
		return fmt.Errorf("copy: list vaults: %w", err)
	}
	type due struct {
		id   int64
		last *time.Time
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var d due
		return d, r.Scan(&d.id, &d.last)
	})
	if err != nil {
		return fmt.Errorf("copy: list vaults: %w", err)
	}
	now := s.now()
	var errs []error
	for _, d := range list {
		if d.last != nil && now.Sub(*d.last) < st.CopyEvery {
			continue
		}
		status, err := s.EnsureCopy(ctx, d.id)
		if err != nil {
			errs = append(errs, fmt.Errorf("vault %d: %w", d.id, err))
			continue
		}
		if status != CopyActive {
			continue
		}
		if _, err := s.CopyVault(ctx, d.id); err != nil {
			errs = append(errs, fmt.Errorf("vault %d: %w", d.id, err))
		}
	}
	return errors.Join(append(errs, purgeErr)...)
}

// CopyVault brings one vault's copy up to date now and records the run:
//
//   - objects new in the vault are copied by name; restic files are first verified
//     against the SHA-256 in their name (a mismatch is not copied and is reported);
//   - an object whose content changed under the same name (an overwrite) is never copied
//     over the good one: it is reported, and the copy keeps the good one;
//   - lock files are not copied;
//   - objects gone from the vault are kept and listed as pending deletions; those gone
//     for longer than the grace period are deleted from the copy, unless the vault is
//     frozen.
//
// Two processes never copy the same vault at once (the second returns at once).
func (s *Service) CopyVault(ctx context.Context, vaultID int64) (Run, error) {
	ctx = withSystemActor(ctx, "protection.copy")
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CopyTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return Run{}, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('protection.copy'), $1::int)`, vaultID).Scan(&locked); err != nil {
		return Run{}, fmt.Errorf("lock copy of vault %d: %w", vaultID, err)
	}
	if !locked {
		return Run{}, &ConflictError{Problem: "a copy run of this vault is already under way"}
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('protection.copy'), $1::int)`, vaultID)
	}()

	c, err := s.loadCopyRow(ctx, s.pool, vaultID)
	if err != nil {
		return Run{}, err
	}
	if c.status != CopyActive {
		return Run{}, problem.Conflict("", "the vault's copy is %s", c.status)
	}
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return Run{}, err
	}
	run := Run{VaultID: vaultID, StartedAt: s.now(), Errors: []string{}}
	if c.through != nil {
		run.LagSeconds = int64(run.StartedAt.Sub(*c.through) / time.Second)
	}
	err = s.copyObjects(ctx, c, st, &run)
	if err != nil {
		run.fail("%v", err)
	}
	run.FinishedAt = s.now()
	switch {
	case err != nil:
		run.Status = "error"
	case len(run.Errors) > 0:
		run.Status = "partial"
	default:
		run.Status = "ok"
	}
	if rerr := s.recordRun(context.WithoutCancel(ctx), c.vault, &run); rerr != nil {
		return run, errors.Join(err, rerr)
	}
	s.log.InfoContext(ctx, "copy run", "vault", vaultID, "status", run.Status, "copied", run.ObjectsCopied, "bytes", run.BytesCopied,
		"deletions_seen", run.DeletionsSeen, "deletions_applied", run.DeletionsApplied, "overwrites", run.Overwrites,
		"errors", len(run.Errors))
	return run, err
}

func (s *Service) copyObjects(ctx context.Context, c copyRow, st Settings, run *Run) error {
	v := c.vault
	src, err := s.vaults.VerifierCredentials(ctx, v.ID)
	if err != nil {
		return fmt.Errorf("read-only credentials of the vault: %w", err)
	}
	sc, err := s3Client(src.Endpoint, src.Region, src.AccessKeyID, src.SecretAccessKey)
	if err != nil {
		return err
	}
	dc, err := s.copyClient(c)
	if err != nil {
		return err
	}
	// The whole listing first: deletions are only inferred from a complete listing.
	var objects []sourceObject
	present := map[string]bool{}
	for o := range sc.ListObjects(ctx, src.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list vault %s on island %q: %w", src.Bucket, v.IslandName, o.Err)
		}
		if IsLockFile(o.Key) {
			continue
		}
		present[o.Key] = true
		objects = append(objects, sourceObject{key: o.Key, size: o.Size, etag: o.ETag})
	}
	manifest, err := s.loadManifest(ctx, v.ID)
	if err != nil {
		return err
	}
	var overwritten []string
	for _, o := range objects {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, known := manifest[o.key]
		switch {
		case !known:
			if err := s.copyOne(ctx, sc, dc, src.Bucket, *c.bucketName, o, v.ID, run); err != nil {
				run.fail("%s: %v", o.key, err)
			}
		case m.etag == o.etag && m.size == o.size:
			if m.missingSince != nil || m.overwrittenAt != nil {
				// Back, unchanged: no longer a pending deletion nor an overwrite.
				if _, err := s.pool.Exec(ctx, `UPDATE vault_copy_objects SET source_missing_since = NULL, overwritten_at = NULL,
					overwrite_detail = '' WHERE vault_id = $1 AND key = $2`, v.ID, o.key); err != nil {
					return err
				}
			}
		default:
			same, detail := s.sameContent(ctx, sc, src.Bucket, o)
			if same {
				if _, err := s.pool.Exec(ctx, `UPDATE vault_copy_objects SET source_etag = $3, size = $4, source_missing_since = NULL,
					overwritten_at = NULL, overwrite_detail = '' WHERE vault_id = $1 AND key = $2`, v.ID, o.key, o.etag, o.size); err != nil {
					return err
				}
				continue
			}
			run.Overwrites++
			if m.overwrittenAt == nil {
				overwritten = append(overwritten, o.key)
				if _, err := s.pool.Exec(ctx, `UPDATE vault_copy_objects SET overwritten_at = $3, overwrite_detail = $4
					WHERE vault_id = $1 AND key = $2`, v.ID, o.key, run.StartedAt, detail); err != nil {
					return err
				}
			}
		}
	}
	// Deletions: mark what disappeared, then apply what stayed deleted past the grace period.
	var seen []string
	for key, m := range manifest {
		if !present[key] && m.missingSince == nil {
			seen = append(seen, key)
		}
	}
	if len(seen) > 0 {
		if _, err := s.pool.Exec(ctx, `UPDATE vault_copy_objects SET source_missing_since = $3
			WHERE vault_id = $1 AND key = ANY($2) AND source_missing_since IS NULL`, v.ID, seen, run.StartedAt); err != nil {
			return err
		}
		run.DeletionsSeen = int64(len(seen))
	}
	frozen, err := s.frozen(ctx, v.ID)
	if err != nil {
		return err
	}
	if !frozen {
		if err := s.applyDeletions(ctx, dc, *c.bucketName, v.ID, run.StartedAt.Add(-st.DeletionGrace), run); err != nil {
			return err
		}
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(size), 0)::bigint,
		count(*) FILTER (WHERE source_missing_since IS NOT NULL) FROM vault_copy_objects WHERE vault_id = $1`, v.ID).
		Scan(&run.ObjectsInCopy, &run.BytesInCopy, &run.DeletionsPending); err != nil {
		return err
	}
	return s.report(ctx, v, st, seen, overwritten, run)
}

func (s *Service) loadManifest(ctx context.Context, vaultID int64) (map[string]manifestEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, size, source_etag, source_missing_since, overwritten_at
		FROM vault_copy_objects WHERE vault_id = $1`, vaultID)
	if err != nil {
		return nil, fmt.Errorf("copy manifest of vault %d: %w", vaultID, err)
	}
	defer rows.Close()
	out := map[string]manifestEntry{}
	for rows.Next() {
		var k string
		var m manifestEntry
		if err := rows.Scan(&k, &m.size, &m.etag, &m.missingSince, &m.overwrittenAt); err != nil {
			return nil, err
		}
		out[k] = m
	}
	return out, rows.Err()
}

// copyOne downloads an object into a temporary file while hashing it, verifies it
// against its name, uploads it to the copy and records it in the manifest.
func (s *Service) copyOne(ctx context.Context, sc, dc *minio.Client, srcBucket, dstBucket string, o sourceObject, vaultID int64, run *Run) error {
	f, err := os.CreateTemp(s.cfg.TempDir, "archipelago-copy-*")
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	obj, err := sc.GetObject(ctx, srcBucket, o.key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("read from the vault: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), obj)
	obj.Close()
	if err != nil {
		return fmt.Errorf("read from the vault: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want, ok := ContentName(o.key); ok && want != sum {
		run.Overwrites++
		return fmt.Errorf("content does not match its name (SHA-256 %s): not copied", sum[:16])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := dc.PutObject(ctx, dstBucket, o.key, f, n, minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("write to the copy: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO vault_copy_objects (vault_id, key, size, source_etag, sha256, copied_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vault_id, key) DO UPDATE SET size = $3, source_etag = $4, sha256 = $5,
		copied_at = $6, source_missing_since = NULL, overwritten_at = NULL, overwrite_detail = ''`,
		vaultID, o.key, n, o.etag, sum, s.now()); err != nil {
		return err
	}
	run.ObjectsCopied++
	run.BytesCopied += n
	return nil
}

// sameContent reports whether a source object whose ETag changed still holds the content
// its name promises (e.g. uploaded again in parts); otherwise it says what is wrong.
func (s *Service) sameContent(ctx context.Context, sc *minio.Client, bucket string, o sourceObject) (bool, string) {
	want, ok := ContentName(o.key)
	if !ok {
		return false, "changed under the same name (it has no content hash in its name to check)"
	}
	obj, err := sc.GetObject(ctx, bucket, o.key, minio.GetObjectOptions{})
	if err != nil {
		return false, "changed, and could not be read: " + err.Error()
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return false, "changed, and could not be read: " + err.Error()
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return false, "overwritten: its content (SHA-256 " + got[:16] + "…) no longer matches its name"
	}
	return true, ""
}

func (s *Service) applyDeletions(ctx context.Context, dc *minio.Client, bucket string, vaultID int64, before time.Time, run *Run) error {
	rows, err := s.pool.Query(ctx, `SELECT key FROM vault_copy_objects WHERE vault_id = $1 AND source_missing_since <= $2 ORDER BY key`,
		vaultID, before)
	if err != nil {
		return err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := dc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
			run.fail("%s: delete from the copy: %v", k, err)
			continue
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM vault_copy_objects WHERE vault_id = $1 AND key = $2`, vaultID, k); err != nil {
			return err
		}
		run.DeletionsApplied++
	}
	return nil
}

func (s *Service) frozen(ctx context.Context, vaultID int64) (bool, error) {
	var frozen bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT frozen_at IS NOT NULL FROM vault_protection WHERE vault_id = $1), false)`, vaultID).Scan(&frozen)
	return frozen, err
}

// report emits the run's notifications: deletions seen (kept for the grace period) and
// overwrites (the copy keeps the good object).
func (s *Service) report(ctx context.Context, v vaults.Vault, st Settings, seen, overwritten []string, run *Run) error {
	if len(seen) == 0 && len(overwritten) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if len(seen) > 0 {
			if _, err := notify.Emit(ctx, tx, notify.Event{Kind: notify.KindCopyDeletions, MemberID: &v.MemberID,
				Subject: fmt.Sprintf("vault/%d/copy-deletions", v.ID), At: run.StartedAt,
				Title: fmt.Sprintf("%d objects were deleted from vault %s; its protected copy keeps them until %s",
					len(seen), v.Name, run.StartedAt.Add(st.DeletionGrace).UTC().Format("2006-01-02 15:04 MST")),
				Detail: map[string]any{"vault_id": v.ID, "vault": v.Name, "deleted": len(seen), "examples": first(seen, 20),
					"delete_from_copy_after": run.StartedAt.Add(st.DeletionGrace)}}); err != nil {
				return err
			}
		}
		if len(overwritten) > 0 {
			if _, err := notify.Emit(ctx, tx, notify.Event{Kind: notify.KindCopyOverwrite, MemberID: &v.MemberID,
				Subject: fmt.Sprintf("vault/%d/copy-overwrite", v.ID), At: run.StartedAt,
				Title:  fmt.Sprintf("%d objects of vault %s were overwritten; the protected copy keeps the good ones", len(overwritten), v.Name),
				Detail: map[string]any{"vault_id": v.ID, "vault": v.Name, "overwritten": len(overwritten), "examples": first(overwritten, 20)}}); err != nil {
				return err
			}
		}
		return nil
	})
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Service) recordRun(ctx context.Context, v vaults.Vault, run *Run) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO vault_copy_runs (vault_id, started_at, finished_at, status, objects_copied, bytes_copied,
			objects_in_copy, bytes_in_copy, deletions_seen, deletions_pending, deletions_applied, overwrites, lag_seconds, errors)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`, v.ID, run.StartedAt, run.FinishedAt,
			run.Status, run.ObjectsCopied, run.BytesCopied, run.ObjectsInCopy, run.BytesInCopy, run.DeletionsSeen, run.DeletionsPending,
			run.DeletionsApplied, run.Overwrites, run.LagSeconds, run.Errors).Scan(&run.ID); err != nil {
			return err
		}
		if run.Status == "ok" {
			if _, err := tx.Exec(ctx, `UPDATE vault_protection SET copied_through = $2, updated_at = now() WHERE vault_id = $1
				AND (copied_through IS NULL OR copied_through < $2)`, v.ID, run.StartedAt); err != nil {
				return err
			}
		} else {
			if _, err := notify.Emit(ctx, tx, notify.Event{Kind: notify.KindCopyFailed, MemberID: &v.MemberID,
				Subject: fmt.Sprintf("vault/%d/copy", v.ID), At: run.StartedAt,
				Title: fmt.Sprintf("The protected copy of vault %s is incomplete: %d errors", v.Name, len(run.Errors)),
				Detail: map[string]any{"vault_id": v.ID, "vault": v.Name, "run_id": run.ID, "errors": first(run.Errors, 10),
					"error_count": len(run.Errors)}}); err != nil {
				return err
			}
		}
		if run.DeletionsApplied == 0 {
			return nil
		}
		// Deleting from the copy is the one destructive thing the copy does: audited.
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_copy.deletions_applied", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"run_id": run.ID, "deleted": run.DeletionsApplied}})
		return err
	})
}
