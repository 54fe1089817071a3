package vaults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/quota"
)

// Reconciliation is what one vault's reconciliation found and did.
type Reconciliation struct {
	VaultID int64    `json:"vault_id"`
	Skipped bool     `json:"skipped"` // another process holds the vault
	Repairs []string `json:"repairs"` // drift repaired
	Drift   []string `json:"drift"`   // drift that could not be repaired (shown on the vault)
}

// withSystemActor makes background work attributable in the audit log.
func withSystemActor(ctx context.Context, job string) context.Context {
	if _, ok := audit.ActorFrom(ctx); ok {
		return ctx
	}
	return audit.WithActor(ctx, audit.System(job))
}

type vaultRef struct{ ID, IslandID int64 }

// islandParallelism is how many islands a background task works on at once.
const islandParallelism = 4

// byIsland runs fn for each vault (or key) of refs (ordered by island, then id): islands
// in parallel (islandParallelism at a time), each within IslandTimeout. On each island it
// resumes after the last vault the task handled there (its cursor in vault_task_cursors)
// and wraps around, so a run that uses up an island's budget is continued by the next
// and every vault is handled within a few periods, however many the island holds.
// When fn reports an island unreachable, the island's other vaults wait for the next run.
func (s *Service) byIsland(ctx context.Context, task string, refs []vaultRef, fn func(ctx context.Context, id int64) error) error {
	type group struct {
		island int64
		refs   []vaultRef
	}
	var groups []group
	for i := 0; i < len(refs); {
		j := i
		for j < len(refs) && refs[j].IslandID == refs[i].IslandID {
			j++
		}
		groups = append(groups, group{refs[i].IslandID, refs[i:j]})
		i = j
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, islandParallelism)
	)
	for _, g := range groups {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.islandRun(ctx, task, g.island, g.refs, fn); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// islandRun is byIsland's work on one island.
func (s *Service) islandRun(ctx context.Context, task string, island int64, refs []vaultRef, fn func(ctx context.Context, id int64) error) error {
	var after int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT last_id FROM vault_task_cursors WHERE task = $1 AND island_id = $2), 0)`,
		task, island).Scan(&after); err != nil {
		return fmt.Errorf("%s: cursor of island %d: %w", task, island, err)
	}
	start, _ := slices.BinarySearchFunc(refs, after+1, func(r vaultRef, id int64) int { return cmp.Compare(r.ID, id) })
	order := append(slices.Clone(refs[start:]), refs[:start]...)
	ictx, cancel := context.WithTimeout(ctx, s.cfg.IslandTimeout)
	defer cancel()
	var errs []error
	last, handled := after, 0
	for _, r := range order {
		if ictx.Err() != nil {
			s.log.InfoContext(ctx, "island's time budget used up: the next run resumes after the last vault handled",
				"task", task, "island", island, "handled", handled, "left", len(order)-handled)
			break
		}
		err := fn(ictx, r.ID)
		if err != nil && ictx.Err() != nil && ctx.Err() == nil {
			break // the budget ran out during this vault: it is handled again next time
		}
		last, handled = r.ID, handled+1
		if err != nil {
			var ue *UnreachableError
			if errors.As(err, &ue) {
				s.log.WarnContext(ctx, "island skipped until the next run", "island", ue.Island, "err", err)
				break
			}
			errs = append(errs, err)
		}
	}
	if handled > 0 {
		if _, err := s.pool.Exec(context.WithoutCancel(ctx), `INSERT INTO vault_task_cursors (task, island_id, last_id) VALUES ($1, $2, $3)
			ON CONFLICT (task, island_id) DO UPDATE SET last_id = excluded.last_id, updated_at = now()`, task, island, last); err != nil {
			errs = append(errs, fmt.Errorf("%s: save cursor of island %d: %w", task, island, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) vaultRefs(ctx context.Context, sql string, args ...any) ([]vaultRef, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (vaultRef, error) {
		var v vaultRef
		return v, r.Scan(&v.ID, &v.IslandID)
	})
}

// ReconcileAll compares every vault's desired state in PostgreSQL with Garage and repairs
// drift (see ReconcileVault). Pending vaults younger than PendingGrace are left to the
// request creating them. Idempotent, and safe to run from several processes at once:
// each vault is held by an advisory lock while it is reconciled.
func (s *Service) ReconcileAll(ctx context.Context) error {
	ctx = withSystemActor(ctx, "vaults.reconcile")
	refs, err := s.vaultRefs(ctx, `SELECT id, island_id FROM vaults WHERE status IN ('pending', 'active', 'deleting')
		AND (status <> 'pending' OR created_at <= $1) ORDER BY island_id, id`, s.now().Add(-s.cfg.PendingGrace))
	if err != nil {
		return fmt.Errorf("reconcile vaults: %w", err)
	}
	return s.byIsland(ctx, "reconcile", refs, func(ctx context.Context, id int64) error {
		_, err := s.ReconcileVault(ctx, id)
		return err
	})
}

// ReconcileVault brings one vault's Garage state in line with PostgreSQL: a pending
// vault is provisioned; the bucket must exist with its global alias and quotas; only the
// vault's usable member keys (read+write) and its verifier key (read) may have
// permissions on the bucket; expired and revoked keys are deleted; a lost verifier key is
// recreated. What cannot be repaired (the bucket is gone, a member key vanished, the name
// is taken) is recorded on the vault as drift. Repairs are audited.
func (s *Service) ReconcileVault(ctx context.Context, id int64) (Reconciliation, error) {
	ctx = withSystemActor(ctx, "vaults.reconcile")
	rec := Reconciliation{VaultID: id, Repairs: []string{}, Drift: []string{}}
	release, ok, err := s.tryLock(ctx, lockVault<<32|id)
	if err != nil {
		return rec, fmt.Errorf("reconcile vault %d: %w", id, err)
	}
	if !ok {
		rec.Skipped = true
		return rec, nil
	}
	defer release()
	v, err := VaultGetByID(ctx, s.pool, id)
	if err != nil || v.Status == StatusDeleted {
		return rec, err
	}
	vctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	if v.Status == StatusPending {
		if err := s.provision(vctx, &v); err != nil {
			var ce *ConflictError
			if errors.As(err, &ce) {
				rec.Drift = append(rec.Drift, ce.Problem)
				return rec, s.recordReconciliation(ctx, v, rec)
			}
			return rec, err
		}
		rec.Repairs = append(rec.Repairs, "provisioned the pending vault on the island")
		if v, err = VaultGetByID(ctx, s.pool, id); err != nil {
			return rec, err
		}
	}
	if v.GarageBucketID == nil { // a deletion scheduled before provisioning: nothing on Garage
		return rec, s.recordReconciliation(ctx, v, rec)
	}
	gc, err := s.garage(vctx, v.IslandID)
	if err != nil {
		return rec, s.reconcileFailed(ctx, v, unreachable(v.IslandName, "connect", err))
	}
	if err := s.reconcileGarage(vctx, gc, v, &rec); err != nil {
		return rec, s.reconcileFailed(ctx, v, err)
	}
	return rec, s.recordReconciliation(ctx, v, rec)
}

func (s *Service) reconcileGarage(ctx context.Context, gc *garage.Client, v Vault, rec *Reconciliation) error {
	b, err := gc.GetBucketInfo(ctx, garage.BucketLookup{ID: *v.GarageBucketID})
	if errors.Is(err, garage.ErrNotFound) {
		rec.Drift = append(rec.Drift, fmt.Sprintf("bucket %s (%s) does not exist on island %q: it was deleted outside Archipelago and its data is gone; a federation admin must decide what to do",
			v.BucketName, (*v.GarageBucketID)[:12], v.IslandName))
		return nil
	}
	if err != nil {
		return unreachable(v.IslandName, "GetBucketInfo", err)
	}
	// Quotas.
	if !samePtr(b.Quotas.MaxSize, &v.QuotaBytes) || !samePtr(b.Quotas.MaxObjects, v.MaxObjects) {
		if _, err := gc.SetBucketQuotas(ctx, b.ID, garage.Quotas{MaxSize: &v.QuotaBytes, MaxObjects: v.MaxObjects}); err != nil {
			return unreachable(v.IslandName, "UpdateBucket (quotas)", err)
		}
		rec.Repairs = append(rec.Repairs, fmt.Sprintf("quota was %s, set to %s", quotaText(b.Quotas.MaxSize, b.Quotas.MaxObjects),
			quotaText(&v.QuotaBytes, v.MaxObjects)))
	}
	// The global alias S3 clients use.
	if !slices.Contains(b.GlobalAliases, v.BucketName) {
		if _, err := gc.AddBucketAlias(ctx, b.ID, garage.GlobalAlias(v.BucketName)); err != nil {
			if errors.Is(err, garage.ErrInvalidRequest) || errors.Is(err, garage.ErrConflict) {
				rec.Drift = append(rec.Drift, fmt.Sprintf("the bucket lost its name %q, now used by another bucket of the island", v.BucketName))
			} else {
				return unreachable(v.IslandName, "AddBucketAlias", err)
			}
		} else {
			rec.Repairs = append(rec.Repairs, fmt.Sprintf("global alias %q restored", v.BucketName))
		}
	}
	// Keys: expired and revoked ones go first.
	keys, err := s.KeyList(ctx, v.ID)
	if err != nil {
		return err
	}
	memberPerm, err := s.memberKeyPermissions(ctx, v.ID) // read-only while frozen
	if err != nil {
		return err
	}
	want := map[string]garage.Permission{}
	memberKey := map[string]Key{}
	for _, k := range keys {
		if k.DeletedAt != nil {
			continue
		}
		if !k.Usable() {
			if err := s.deleteKeyNow(ctx, gc, v, k); err != nil {
				return err
			}
			continue
		}
		want[k.AccessKeyID], memberKey[k.AccessKeyID] = memberPerm, k
	}
	verifierID := ""
	if v.Verifier != nil {
		verifierID = v.Verifier.AccessKeyID
		want[verifierID] = garage.PermRead
	}
	for _, bk := range b.Keys {
		have, w := bk.Permissions.Permissions(), want[bk.AccessKeyID]
		if have == w {
			continue
		}
		if _, err := gc.SetBucketKeyPermissions(ctx, b.ID, bk.AccessKeyID, w); err != nil {
			return unreachable(v.IslandName, "AllowBucketKey/DenyBucketKey", err)
		}
		what := "a key Archipelago does not manage"
		if _, ok := memberKey[bk.AccessKeyID]; ok {
			what = "member key"
		} else if bk.AccessKeyID == verifierID {
			what = "the verifier key"
		}
		rec.Repairs = append(rec.Repairs, fmt.Sprintf("%s %s had %s on the bucket, set to %s", what, bk.AccessKeyID, have, w))
	}
	for id, w := range want {
		if _, ok := b.Key(id); ok {
			continue
		}
		_, err := gc.AllowBucketKey(ctx, b.ID, id, w)
		switch {
		case err == nil:
			rec.Repairs = append(rec.Repairs, fmt.Sprintf("key %s had no permission on the bucket, granted %s", id, w))
		case errors.Is(err, garage.ErrNotFound) && id == verifierID:
			if err := s.replaceVerifier(ctx, gc, v); err != nil {
				return err
			}
			rec.Repairs = append(rec.Repairs, fmt.Sprintf("verifier key %s no longer existed on the island: replaced", id))
		case errors.Is(err, garage.ErrNotFound):
			rec.Drift = append(rec.Drift, fmt.Sprintf("member key %q (%s) no longer exists on the island: revoke it and create a new one",
				memberKey[id].Name, id))
		default:
			return unreachable(v.IslandName, "AllowBucketKey", err)
		}
	}
	if err := s.reconcileKeyExpiry(ctx, gc, v, memberKey, rec); err != nil {
		return err
	}
	if v.Verifier == nil && v.Status != StatusDeleting {
		if err := s.replaceVerifier(ctx, gc, v); err != nil {
			return err
		}
		rec.Repairs = append(rec.Repairs, "verifier key created")
	}
	return nil
}

// reconcileKeyExpiry makes each member key expire on Garage when Archipelago says it does:
// a key whose expiry was extended or removed on the island would outlive its rotation or
// its owner's choice, and one given an expiry there would stop working unannounced.
func (s *Service) reconcileKeyExpiry(ctx context.Context, gc *garage.Client, v Vault, keys map[string]Key, rec *Reconciliation) error {
	for id, k := range keys {
		info, err := gc.GetKeyInfo(ctx, garage.KeyLookup{ID: id})
		if errors.Is(err, garage.ErrNotFound) {
			continue // reported as drift with the permissions
		}
		if err != nil {
			return unreachable(v.IslandName, "GetKeyInfo", err)
		}
		if sameExpiry(info.Expiration, k.ExpiresAt) {
			continue
		}
		p := garage.UpdateKeyParams{Expiration: k.ExpiresAt, NeverExpires: k.ExpiresAt == nil}
		if _, err := gc.UpdateKey(ctx, id, p); err != nil {
			return unreachable(v.IslandName, "UpdateKey (expiration)", err)
		}
		rec.Repairs = append(rec.Repairs, fmt.Sprintf("member key %q (%s) expired %s on the island, set to %s", k.Name, id,
			expiryText(info.Expiration), expiryText(k.ExpiresAt)))
	}
	return nil
}

// sameExpiry compares expiries to the second (Garage keeps less precision than PostgreSQL).
func sameExpiry(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	d := a.Sub(*b)
	return d < time.Second && d > -time.Second
}

func expiryText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// replaceVerifier creates a new verifier key and replaces the vault's record (the old
// Garage key, if any, is deleted).
func (s *Service) replaceVerifier(ctx context.Context, gc *garage.Client, v Vault) error {
	k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: s.verifierKeyName(v)})
	if err != nil {
		return unreachable(v.IslandName, "CreateKey (verifier)", err)
	}
	if _, err := gc.AllowBucketKey(ctx, *v.GarageBucketID, k.AccessKeyID, garage.PermRead); err != nil {
		s.dropGarageKey(ctx, gc, k.AccessKeyID)
		return unreachable(v.IslandName, "AllowBucketKey (verifier)", err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO vault_verifier_keys (vault_id, access_key_id, secret_sealed) VALUES ($1, $2, $3)
			ON CONFLICT (vault_id) DO UPDATE SET access_key_id = excluded.access_key_id, secret_sealed = excluded.secret_sealed,
			created_at = now(), checked_at = NULL, check_error = ''`,
			v.ID, k.AccessKeyID, s.keys.SealString(verifierPurpose(v.ID), k.SecretAccessKey))
		return err
	})
	if err != nil {
		s.dropGarageKey(ctx, gc, k.AccessKeyID)
		return fmt.Errorf("record verifier key of vault %d: %w", v.ID, err)
	}
	if v.Verifier != nil {
		s.dropGarageKey(ctx, gc, v.Verifier.AccessKeyID)
	}
	return nil
}

// deleteKeyNow deletes an expired or revoked member key from Garage and records it.
func (s *Service) deleteKeyNow(ctx context.Context, gc *garage.Client, v Vault, k Key) error {
	if err := gc.DeleteKey(ctx, k.AccessKeyID); err != nil && !errors.Is(err, garage.ErrNotFound) {
		return unreachable(v.IslandName, "DeleteKey", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vault_keys SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, k.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault_key.delete", MemberID: &v.MemberID, TargetType: "vault_key",
			TargetID: strconv.FormatInt(k.ID, 10), Details: map[string]any{"vault_id": v.ID, "access_key_id": k.AccessKeyID,
				"state": k.State, "expires_at": k.ExpiresAt}})
		return err
	})
}

// reconcileFailed records why a vault could not be checked and returns err.
func (s *Service) reconcileFailed(ctx context.Context, v Vault, err error) error {
	msg := "last reconciliation failed: " + err.Error()
	if _, werr := s.pool.Exec(ctx, `UPDATE vaults SET status_detail = $2 WHERE id = $1`, v.ID, msg); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// recordReconciliation stores the drift found, the repairs as events, and audits repairs.
func (s *Service) recordReconciliation(ctx context.Context, v Vault, rec Reconciliation) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var prev []string
		if err := tx.QueryRow(ctx, `SELECT drift FROM vaults WHERE id = $1 FOR UPDATE`, v.ID).Scan(&prev); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET drift = $2, reconciled_at = now(),
			status_detail = CASE WHEN status = 'pending' THEN status_detail ELSE '' END WHERE id = $1`, v.ID, rec.Drift); err != nil {
			return err
		}
		for _, r := range rec.Repairs {
			if _, err := tx.Exec(ctx, `INSERT INTO vault_events (vault_id, kind, detail) VALUES ($1, 'drift_repaired', $2)`, v.ID, r); err != nil {
				return err
			}
		}
		for _, d := range rec.Drift {
			if !slices.Contains(prev, d) {
				if _, err := tx.Exec(ctx, `INSERT INTO vault_events (vault_id, kind, detail) VALUES ($1, 'drift_found', $2)`, v.ID, d); err != nil {
					return err
				}
			}
		}
		if len(rec.Repairs) == 0 && slices.Equal(prev, rec.Drift) {
			return nil
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.reconcile", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"repairs": rec.Repairs, "drift": rec.Drift}})
		return err
	})
}

func samePtr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func quotaText(size, objects *int64) string {
	var parts []string
	if size == nil {
		parts = append(parts, "no size limit")
	} else {
		parts = append(parts, quota.Bytes(*size))
	}
	if objects != nil {
		parts = append(parts, strconv.FormatInt(*objects, 10)+" objects")
	}
	return strings.Join(parts, ", ")
}
