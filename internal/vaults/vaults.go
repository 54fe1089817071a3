package vaults

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/seal"
)

// Vault statuses (vaults.status).
const (
	StatusPending  = "pending"  // recorded; Garage not fully provisioned (StatusDetail says why)
	StatusActive   = "active"   // provisioned
	StatusDeleting = "deleting" // soft-deleted: bucket kept until PurgeAfter, undo possible
	StatusDeleted  = "deleted"  // removed from Garage
)

// Placement kinds (vaults.placement).
const (
	PlacementAutomatic = "automatic" // chosen by the placement rule
	PlacementChosen    = "chosen"    // an island the member does not operate, chosen by the caller
	PlacementOverride  = "override"  // an island the member operates: a federation admin's audited override
)

// Vault is a member's bucket on an island.
type Vault struct {
	ID              int64      `json:"id"`
	MemberID        int64      `json:"member_id"`
	MemberSlug      string     `json:"member_slug"`
	IslandID        int64      `json:"island_id"`
	IslandName      string     `json:"island_name"`
	S3Endpoint      string     `json:"s3_endpoint"`
	S3Region        string     `json:"s3_region"`
	Name            string     `json:"name"`
	BucketName      string     `json:"bucket_name"`
	GarageBucketID  *string    `json:"garage_bucket_id"`
	QuotaBytes      int64      `json:"quota_bytes"`
	MaxObjects      *int64     `json:"max_objects"`
	Status          string     `json:"status"`
	StatusDetail    string     `json:"status_detail"`
	Placement       string     `json:"placement"`
	PlacementReason string     `json:"placement_reason"`
	Drift           []string   `json:"drift"`
	ReconciledAt    *time.Time `json:"reconciled_at"`
	UsageBytes      *int64     `json:"usage_bytes"`
	UsageObjects    *int64     `json:"usage_objects"`
	UsageAt         *time.Time `json:"usage_at"`
	UsageLevel      int        `json:"usage_level"`
	CreatedBy       string     `json:"created_by"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	DeletedAt       *time.Time `json:"deleted_at"`
	// PurgeAfter is set while a deletion is scheduled (status deleting).
	PurgeAfter *time.Time `json:"purge_after"`
	// Verifier describes the verifier key (never its secret); nil while pending.
	Verifier *VerifierStatus `json:"verifier"`
}

// VerifierStatus is what may be shown of a verifier key.
type VerifierStatus struct {
	AccessKeyID string     `json:"access_key_id"`
	CreatedAt   time.Time  `json:"created_at"`
	CheckedAt   *time.Time `json:"checked_at"`
	CheckError  string     `json:"check_error"`
}

// UsedFraction is usage ÷ quota (0 when unknown).
func (v Vault) UsedFraction() float64 {
	if v.UsageBytes == nil || v.QuotaBytes <= 0 {
		return 0
	}
	return float64(*v.UsageBytes) / float64(v.QuotaBytes)
}

const vaultColumns = `v.id, v.member_id, m.slug, v.island_id, i.name, i.s3_endpoint, i.s3_region, v.name, v.bucket_name,
	v.garage_bucket_id, v.quota_bytes, v.max_objects, v.status, v.status_detail, v.placement, v.placement_reason, v.drift,
	v.reconciled_at, v.usage_bytes, v.usage_objects, v.usage_at, v.usage_level, v.created_by, v.created_at, v.updated_at,
	v.deleted_at, d.purge_after, vk.access_key_id, vk.created_at, vk.checked_at, vk.check_error`

const vaultFrom = ` FROM vaults v JOIN members m ON m.id = v.member_id JOIN islands i ON i.id = v.island_id
	LEFT JOIN vault_deletions d ON d.vault_id = v.id AND d.status = 'scheduled'
	LEFT JOIN vault_verifier_keys vk ON vk.vault_id = v.id `

func scanVault(r pgx.Row) (Vault, error) {
	var v Vault
	var vkID *string
	var vkCreated, vkChecked *time.Time
	var vkErr *string
	err := r.Scan(&v.ID, &v.MemberID, &v.MemberSlug, &v.IslandID, &v.IslandName, &v.S3Endpoint, &v.S3Region, &v.Name,
		&v.BucketName, &v.GarageBucketID, &v.QuotaBytes, &v.MaxObjects, &v.Status, &v.StatusDetail, &v.Placement,
		&v.PlacementReason, &v.Drift, &v.ReconciledAt, &v.UsageBytes, &v.UsageObjects, &v.UsageAt, &v.UsageLevel,
		&v.CreatedBy, &v.CreatedAt, &v.UpdatedAt, &v.DeletedAt, &v.PurgeAfter, &vkID, &vkCreated, &vkChecked, &vkErr)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, err
	}
	if vkID != nil {
		v.Verifier = &VerifierStatus{AccessKeyID: *vkID, CreatedAt: *vkCreated, CheckedAt: vkChecked, CheckError: *vkErr}
	}
	if v.Drift == nil {
		v.Drift = []string{}
	}
	return v, nil
}

// VaultGetByID returns a vault (deleted ones too).
func VaultGetByID(ctx context.Context, q querier, id int64) (Vault, error) {
	v, err := scanVault(q.QueryRow(ctx, `SELECT `+vaultColumns+vaultFrom+`WHERE v.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, fmt.Errorf("vault %d: %w", id, err)
	}
	return v, err
}

// VaultGet returns a vault that is not deleted (ErrNotFound otherwise).
func (s *Service) VaultGetByID(ctx context.Context, id int64) (Vault, error) {
	v, err := VaultGetByID(ctx, s.pool, id)
	if err == nil && v.Status == StatusDeleted {
		return Vault{}, ErrNotFound
	}
	return v, err
}

// VaultFilter selects vaults for VaultList.
type VaultFilter struct {
	// All lists every member's vaults (federation admins); otherwise only MemberIDs'.
	All       bool
	MemberIDs []int64
	IslandID  int64
	Status    string
	// WithDeleted includes deleted vaults.
	WithDeleted bool
}

// VaultList lists every vault f selects, by member and name (all the pages of VaultPage;
// an error, never a partial list, beyond maxWholeList).
func (s *Service) VaultList(ctx context.Context, f VaultFilter) ([]Vault, error) {
	return paging.All(ctx, maxWholeList, func(ctx context.Context, r paging.Request) (paging.Page[Vault], error) {
		return s.VaultPage(ctx, f, r)
	})
}

// maxWholeList bounds the lists read whole inside the domain (a federation has far fewer).
const maxWholeList = 1 << 20

// CreateInput is a new vault.
type CreateInput struct {
	MemberID   int64
	Name       string // the S3 bucket name (global alias on the island)
	QuotaBytes int64
	MaxObjects *int64
	// IslandID chooses the island; 0 lets the placement rule choose.
	IslandID int64
	// OverrideReason allows an island the member operates. Only federation admins may
	// give one: the caller checks that before.
	OverrideReason string
	// IdempotencyKey makes a repeated create return the first vault.
	IdempotencyKey string
}

// Create records a vault and provisions it on Garage: the bucket with its quota and the
// verifier key. created is false when IdempotencyKey named an existing vault, which is
// returned as it is.
//
// When Garage fails (unreachable, timeout, 5xx) the vault stays pending, with what failed
// in StatusDetail, and the reconciler finishes it; no Garage object is left unrecorded. A
// bucket name already taken on the island by a bucket Archipelago did not create rolls
// the vault back (ConflictError).
func (s *Service) Create(ctx context.Context, in CreateInput) (v Vault, created bool, err error) {
	in.Name = strings.TrimSpace(in.Name)
	in.OverrideReason = strings.TrimSpace(in.OverrideReason)
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	if p := BucketNameProblem(in.Name); p != "" {
		return Vault{}, false, &FieldError{Field: "name", Problem: p}
	}
	switch {
	case in.QuotaBytes <= 0:
		return Vault{}, false, &FieldError{Field: "quota_bytes", Problem: "must be a positive number of bytes"}
	case in.MaxObjects != nil && *in.MaxObjects <= 0:
		return Vault{}, false, &FieldError{Field: "max_objects", Problem: "must be a positive number, or absent for no limit"}
	case len(in.OverrideReason) > 1000:
		return Vault{}, false, &FieldError{Field: "override_reason", Problem: "must be at most 1000 characters"}
	case len(in.IdempotencyKey) > 200:
		return Vault{}, false, &FieldError{Field: "idempotency_key", Problem: "must be at most 200 characters"}
	}
	var id int64
	existing := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockAllocations(ctx, tx); err != nil {
			return err
		}
		if in.IdempotencyKey != "" {
			err := tx.QueryRow(ctx, `SELECT id FROM vaults WHERE member_id = $1 AND idempotency_key = $2`, in.MemberID, in.IdempotencyKey).Scan(&id)
			if err == nil {
				existing = true
				return nil
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM vaults WHERE bucket_name = $1 AND status <> 'deleted')`, in.Name).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return problem.Conflict("name", "a vault named %q already exists in the federation", in.Name)
		}
		st, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		m, err := memberNumbers(ctx, tx, in.MemberID, 0, s.now())
		if err != nil {
			return err
		}
		cands, err := islandNumbers(ctx, tx, in.MemberID, in.IslandID, 0)
		if err != nil {
			return err
		}
		placement := PlacementAutomatic
		var chosen islandCandidate
		if in.IslandID != 0 {
			if len(cands) == 0 {
				return &FieldError{Field: "island_id", Problem: "no such island"}
			}
			chosen, placement = cands[0], PlacementChosen
			if chosen.Operated {
				if in.OverrideReason == "" {
					return &PlacementError{Problem: fmt.Sprintf("member %q operates island %q: its vault must be on an island it does not operate, so that its own admins cannot wipe its backups; only a federation admin may override this, with a written reason",
						m.Name, chosen.Quota.Name)}
				}
				placement = PlacementOverride
			}
			if !chosen.placeable() {
				return &PlacementError{Problem: fmt.Sprintf("island %q cannot take vaults now (status %s%s)", chosen.Quota.Name, chosen.Status,
					map[bool]string{true: "", false: ", layout capacity not yet known"}[chosen.Known])}
			}
			if d := quotaCheck(st, m, chosen, in.QuotaBytes); !d.Allowed {
				return &QuotaError{Decision: d, Message: d.Refusal}
			}
		} else {
			if in.OverrideReason != "" {
				return &FieldError{Field: "override_reason", Problem: "applies only to an island chosen with island_id"}
			}
			c, _, err := place(st, m, cands, in.QuotaBytes)
			if err != nil {
				return err
			}
			chosen = c
		}
		reason := ""
		if placement == PlacementOverride {
			reason = in.OverrideReason
		}
		var ikey *string
		if in.IdempotencyKey != "" {
			ikey = &in.IdempotencyKey
		}
		if err := tx.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, quota_bytes, max_objects,
			placement, placement_reason, idempotency_key, created_by, status_detail)
			VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, 'being provisioned') RETURNING id`,
			in.MemberID, chosen.ID, in.Name, in.QuotaBytes, in.MaxObjects, placement, reason, ikey, actorName(ctx)).Scan(&id); err != nil {
			return err
		}
		details := map[string]any{"name": in.Name, "island_id": chosen.ID, "island": chosen.Quota.Name, "quota_bytes": in.QuotaBytes,
			"placement": placement}
		if in.MaxObjects != nil {
			details["max_objects"] = *in.MaxObjects
		}
		if reason != "" {
			details["override_reason"] = reason
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.create", MemberID: &in.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(id, 10), Details: details})
		return err
	})
	if err != nil {
		return Vault{}, false, fmt.Errorf("create vault %q: %w", in.Name, err)
	}
	if existing {
		v, err := VaultGetByID(ctx, s.pool, id)
		return v, false, err
	}
	v, err = VaultGetByID(ctx, s.pool, id)
	if err != nil {
		return v, true, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	release, err := s.lockVault(pctx, v.ID)
	if err != nil {
		s.log.WarnContext(ctx, "vault left pending for the reconciler", "vault", v.ID, "err", err)
		v, err = VaultGetByID(ctx, s.pool, id)
		return v, true, err
	}
	err = s.provision(pctx, &v)
	release()
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			if rerr := s.rollbackCreate(context.WithoutCancel(ctx), v, ce.Problem); rerr != nil {
				s.log.ErrorContext(ctx, "roll back vault", "vault", v.ID, "err", rerr)
			}
			return Vault{}, false, err
		}
		s.log.WarnContext(ctx, "vault left pending for the reconciler", "vault", v.ID, "island", v.IslandName, "err", err)
	}
	v, err = VaultGetByID(ctx, s.pool, id)
	return v, true, err
}

// rollbackCreate removes a vault whose bucket name turned out to be taken on the island.
func (s *Service) rollbackCreate(ctx context.Context, v Vault, why string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM vaults WHERE id = $1 AND status = 'pending' AND garage_bucket_id IS NULL`, v.ID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.create_rolled_back", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"name": v.Name, "reason": why}})
		return err
	})
}

// provision brings a pending vault to active: bucket (created or, after a lost answer,
// found again), quotas, verifier key. Whatever it created is recorded, also on failure;
// it is idempotent and shared by Create and the reconciler. The caller bounds ctx.
func (s *Service) provision(ctx context.Context, v *Vault) (err error) {
	var (
		bucketID       string
		verifierID     string
		verifierSealed string
	)
	defer func() {
		// Record what exists on Garage now, and the outcome, in one transaction.
		detail := ""
		if err != nil {
			detail = err.Error() + "; the reconciler will retry"
		}
		wctx := context.WithoutCancel(ctx)
		werr := s.tx(wctx, func(tx pgx.Tx) error {
			if bucketID != "" {
				if _, err := tx.Exec(wctx, `UPDATE vaults SET garage_bucket_id = $2 WHERE id = $1`, v.ID, bucketID); err != nil {
					return err
				}
			}
			if verifierID != "" {
				if _, err := tx.Exec(wctx, `INSERT INTO vault_verifier_keys (vault_id, access_key_id, secret_sealed) VALUES ($1, $2, $3)`,
					v.ID, verifierID, verifierSealed); err != nil {
					return err
				}
			}
			if err == nil {
				_, e := tx.Exec(wctx, `UPDATE vaults SET status = 'active', status_detail = '', updated_at = now() WHERE id = $1 AND status = 'pending'`, v.ID)
				return e
			}
			_, e := tx.Exec(wctx, `UPDATE vaults SET status_detail = $2, updated_at = now() WHERE id = $1`, v.ID, detail)
			return e
		})
		if werr != nil {
			s.log.ErrorContext(ctx, "record vault provisioning", "vault", v.ID, "bucket", bucketID, "verifier_key", verifierID, "err", werr)
			err = errors.Join(err, werr)
		}
	}()
	gc, err := s.garage(ctx, v.IslandID)
	if err != nil {
		return unreachable(v.IslandName, "connect", err)
	}
	if v.GarageBucketID == nil {
		b, err := gc.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: v.BucketName})
		if errors.Is(err, garage.ErrBucketAlreadyExists) {
			b, err = s.adoptBucket(ctx, gc, *v)
		}
		if err != nil {
			var ce *ConflictError
			if errors.As(err, &ce) {
				return err
			}
			return unreachable(v.IslandName, "CreateBucket", err)
		}
		bucketID = b.ID
		v.GarageBucketID = &b.ID
	}
	if _, err := gc.SetBucketQuotas(ctx, *v.GarageBucketID, garage.Quotas{MaxSize: &v.QuotaBytes, MaxObjects: v.MaxObjects}); err != nil {
		return unreachable(v.IslandName, "UpdateBucket (quotas)", err)
	}
	if v.Verifier == nil {
		k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: s.verifierKeyName(*v)})
		if err != nil {
			return unreachable(v.IslandName, "CreateKey (verifier)", err)
		}
		verifierID, verifierSealed = k.AccessKeyID, s.keys.SealString(verifierPurpose(v.ID), k.SecretAccessKey)
		v.Verifier = &VerifierStatus{AccessKeyID: k.AccessKeyID}
	}
	if _, err := gc.AllowBucketKey(ctx, *v.GarageBucketID, v.Verifier.AccessKeyID, garage.PermRead); err != nil {
		return unreachable(v.IslandName, "AllowBucketKey (verifier)", err)
	}
	return nil
}

// adoptBucket returns the bucket holding the vault's name when it is one Archipelago
// created for this vault and lost the answer (or the commit) of: created after the vault
// was recorded (a minute of clock skew allowed), and either without any key or with only
// verifier keys bearing this Archipelago's marker for this vault (the database commit
// that recorded them failed: their secrets are lost, so they are deleted — audited
// first — and provision makes a new one). Otherwise the name is taken.
func (s *Service) adoptBucket(ctx context.Context, gc *garage.Client, v Vault) (*garage.BucketInfo, error) {
	b, err := gc.GetBucketInfo(ctx, garage.BucketLookup{GlobalAlias: v.BucketName})
	if err != nil {
		return nil, err
	}
	taken := problem.Conflict("name", "bucket name %q is already taken on island %q by a bucket Archipelago did not create", v.BucketName, v.IslandName)
	if !b.Created.After(v.CreatedAt.Add(-time.Minute)) {
		return nil, taken
	}
	var orphans []string
	for _, k := range b.Keys {
		if k.Name != s.verifierKeyName(v) {
			return nil, taken
		}
		if v.Verifier == nil || k.AccessKeyID != v.Verifier.AccessKeyID {
			orphans = append(orphans, k.AccessKeyID)
		}
	}
	for _, id := range orphans {
		if err := s.garageDeleteKey(ctx, gc, v, id, "orphan verifier key of an adopted bucket (its commit was lost)"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// garageDeleteKey deletes a key on Garage with a write-ahead audit entry: the intent is
// recorded (and must be) before the call, its outcome after it.
func (s *Service) garageDeleteKey(ctx context.Context, gc *garage.Client, v Vault, accessKeyID, why string) error {
	details := map[string]any{"vault_id": v.ID, "access_key_id": accessKeyID, "reason": why}
	if err := s.auditAhead(ctx, v, "garage.key_delete.begin", "vault", details); err != nil {
		return err
	}
	err := gc.DeleteKey(ctx, accessKeyID)
	if errors.Is(err, garage.ErrNotFound) {
		err = nil
	}
	s.auditOutcome(ctx, v, "garage.key_delete", "vault", details, err)
	if err != nil {
		return unreachable(v.IslandName, "DeleteKey", err)
	}
	return nil
}

// auditAhead records, in its own transaction, the intent of a destructive call on Garage
// before it is made (write-ahead): when it cannot be recorded the call is not made.
func (s *Service) auditAhead(ctx context.Context, v Vault, action, targetType string, details map[string]any) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := audit.Record(ctx, tx, audit.Entry{Action: action, MemberID: &v.MemberID, TargetType: targetType,
			TargetID: strconv.FormatInt(v.ID, 10), Details: details})
		return err
	})
	if err != nil {
		return fmt.Errorf("record %s before calling the island: %w", action, err)
	}
	return nil
}

// auditOutcome records the outcome of a destructive call announced by auditAhead:
// action with "outcome" ok, or action+".failed" with the error. A failure to record it is
// logged (the intent entry stays as the trace).
func (s *Service) auditOutcome(ctx context.Context, v Vault, action, targetType string, details map[string]any, callErr error) {
	d := map[string]any{}
	for k, x := range details {
		d[k] = x
	}
	d["outcome"] = "ok"
	if callErr != nil {
		action += ".failed"
		d["outcome"], d["error"] = "error", truncate(callErr.Error(), 1000)
	}
	wctx := context.WithoutCancel(ctx)
	err := s.tx(wctx, func(tx pgx.Tx) error {
		_, err := audit.Record(wctx, tx, audit.Entry{Action: action, MemberID: &v.MemberID, TargetType: targetType,
			TargetID: strconv.FormatInt(v.ID, 10), Details: d})
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record the outcome of a destructive island call", "action", action, "vault", v.ID, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// verifierKeyName names a vault's verifier key on Garage. It carries the marker of this
// Archipelago (bucketMarker), so that a bucket whose only keys bear it is recognised as
// one this Archipelago created, even when the commit that recorded it was lost.
func (s *Service) verifierKeyName(v Vault) string {
	return fmt.Sprintf("archipelago-verifier-vault-%d-%s", v.ID, s.bucketMarker(v.BucketName))
}

// bucketMarker is this Archipelago's mark for a bucket name: an HMAC of the name under a
// key derived from the master key, which no one without the master key can forge.
func (s *Service) bucketMarker(bucket string) string {
	mac := hmac.New(sha256.New, s.keys.Derive("vaults/bucket-marker"))
	mac.Write([]byte(bucket))
	return hex.EncodeToString(mac.Sum(nil))[:20]
}

func verifierPurpose(vaultID int64) string { return fmt.Sprintf("vault/%d/verifier_secret", vaultID) }

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{{Table: "vault_verifier_keys", IDColumn: "vault_id", Column: "secret_sealed", Purpose: verifierPurpose}}
}

// UpdateInput changes a vault's limits; nil fields are left unchanged. ClearMaxObjects
// removes the object limit.
type UpdateInput struct {
	QuotaBytes      *int64
	MaxObjects      *int64
	ClearMaxObjects bool
}

// Update changes a vault's quota (checked against the policy; lowering it is always
// allowed) and object limit, then applies them on Garage. When Garage fails the change is
// kept (PostgreSQL is the desired state), StatusDetail says so and the reconciler applies it.
func (s *Service) Update(ctx context.Context, id int64, in UpdateInput) (Vault, error) {
	switch {
	case in.QuotaBytes != nil && *in.QuotaBytes <= 0:
		return Vault{}, &FieldError{Field: "quota_bytes", Problem: "must be a positive number of bytes"}
	case in.MaxObjects != nil && *in.MaxObjects <= 0:
		return Vault{}, &FieldError{Field: "max_objects", Problem: "must be a positive number, or null for no limit"}
	}
	var v Vault
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := lockAllocations(ctx, tx); err != nil {
			return err
		}
		var err error
		if v, err = VaultGetByID(ctx, tx, id); err != nil {
			return err
		}
		if v.Status == StatusDeleted || v.Status == StatusDeleting {
			return problem.Conflict("", "vault %q is %s", v.Name, v.Status)
		}
		details := map[string]any{}
		if in.QuotaBytes != nil && *in.QuotaBytes != v.QuotaBytes {
			if *in.QuotaBytes > v.QuotaBytes {
				st, err := loadSettings(ctx, tx)
				if err != nil {
					return err
				}
				m, err := memberNumbers(ctx, tx, v.MemberID, v.ID, s.now())
				if err != nil {
					return err
				}
				cands, err := islandNumbers(ctx, tx, v.MemberID, v.IslandID, v.ID)
				if err != nil || len(cands) == 0 {
					return cmpErr(err, ErrNotFound)
				}
				if d := quotaCheck(st, m, cands[0], *in.QuotaBytes); !d.Allowed {
					return &QuotaError{Decision: d, Message: d.Refusal}
				}
			}
			details["quota_bytes"], details["previous_quota_bytes"] = *in.QuotaBytes, v.QuotaBytes
			v.QuotaBytes = *in.QuotaBytes
		}
		if in.ClearMaxObjects {
			v.MaxObjects, details["max_objects"] = nil, nil
		} else if in.MaxObjects != nil {
			v.MaxObjects, details["max_objects"] = in.MaxObjects, *in.MaxObjects
		}
		if len(details) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET quota_bytes = $2, max_objects = $3, updated_at = now() WHERE id = $1`,
			id, v.QuotaBytes, v.MaxObjects); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.update", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(id, 10), Details: details})
		return err
	})
	if err != nil {
		return Vault{}, fmt.Errorf("update vault %d: %w", id, err)
	}
	if v.Status == StatusActive && v.GarageBucketID != nil {
		gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
		defer cancel()
		detail := ""
		if gc, err := s.garage(gctx, v.IslandID); err != nil {
			detail = err.Error()
		} else if _, err := gc.SetBucketQuotas(gctx, *v.GarageBucketID, garage.Quotas{MaxSize: &v.QuotaBytes, MaxObjects: v.MaxObjects}); err != nil {
			detail = unreachable(v.IslandName, "UpdateBucket (quotas)", err).Error()
		}
		if detail != "" {
			detail = "the new limits are not applied yet: " + detail + "; the reconciler will apply them"
		}
		if _, err := s.pool.Exec(ctx, `UPDATE vaults SET status_detail = $2 WHERE id = $1`, id, detail); err != nil {
			return Vault{}, fmt.Errorf("update vault %d: %w", id, err)
		}
	}
	return VaultGetByID(ctx, s.pool, id)
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// Delete deletes a vault without ever destroying data at once: an empty vault (Garage
// agrees to delete its bucket) is deleted immediately with its keys; otherwise — or when
// the island does not answer — the deletion is scheduled after the federation's grace
// period, the bucket and keys are kept, and Restore undoes it until then. immediate says
// which happened.
func (s *Service) Delete(ctx context.Context, id int64, reason string) (v Vault, immediate bool, err error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > 1000 {
		return Vault{}, false, &FieldError{Field: "reason", Problem: "must be at most 1000 characters"}
	}
	v, err = s.VaultGetByID(ctx, id)
	if err != nil {
		return v, false, err
	}
	if v.Status == StatusDeleting {
		return v, false, problem.Conflict("", "the deletion of vault %q is already scheduled (purge after %s); restore it to undo", v.Name, v.PurgeAfter.Format(time.RFC3339))
	}
	release, ok, err := s.tryLock(ctx, lockVault<<32|v.ID)
	if err != nil {
		return v, false, err
	}
	if !ok {
		return v, false, &ConflictError{Field: "", Problem: "the vault is being changed by another operation; try again"}
	}
	defer release()

	gone := v.GarageBucketID == nil // never provisioned: nothing on Garage to keep
	if !gone {
		gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
		defer cancel()
		gc, gerr := s.garage(gctx, v.IslandID)
		if gerr == nil {
			details := map[string]any{"name": v.Name, "bucket_id": *v.GarageBucketID}
			if err := s.auditAhead(ctx, v, "garage.bucket_delete.begin", "vault", details); err != nil {
				return v, false, err
			}
			gerr = gc.DeleteBucket(gctx, *v.GarageBucketID)
			if gerr == nil || errors.Is(gerr, garage.ErrNotFound) {
				gone = true
				s.auditOutcome(ctx, v, "garage.bucket_delete", "vault", details, nil)
				s.deleteVaultKeys(gctx, gc, v)
			} else {
				s.auditOutcome(ctx, v, "garage.bucket_delete", "vault", details, gerr)
			}
		}
		if !gone && !errors.Is(gerr, garage.ErrBucketNotEmpty) {
			s.log.WarnContext(ctx, "vault deletion scheduled: the island did not delete the bucket", "vault", v.ID, "err", gerr)
		}
	}
	if gone {
		err = s.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE vaults SET status = 'deleted', deleted_at = now(), updated_at = now(), status_detail = ''
				WHERE id = $1`, v.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE vault_keys SET deleted_at = coalesce(deleted_at, now()), revoked_at = coalesce(revoked_at, now())
				WHERE vault_id = $1`, v.ID); err != nil {
				return err
			}
			_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.delete", MemberID: &v.MemberID, TargetType: "vault",
				TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"name": v.Name, "mode": "immediate", "reason": reason}})
			return err
		})
		if err != nil {
			return v, false, fmt.Errorf("delete vault %d: %w", id, err)
		}
		v, err = VaultGetByID(ctx, s.pool, id)
		return v, true, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		st, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		purge := s.now().Add(st.VaultDeleteGrace)
		tag, err := tx.Exec(ctx, `UPDATE vaults SET status = 'deleting', updated_at = now() WHERE id = $1 AND status IN ('active', 'pending')`, v.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &ConflictError{Field: "", Problem: "the vault changed meanwhile; reload it"}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO vault_deletions (vault_id, requested_by, reason, purge_after) VALUES ($1, $2, $3, $4)`,
			v.ID, actorName(ctx), reason, purge); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.delete", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"name": v.Name, "mode": "scheduled", "purge_after": purge, "reason": reason}})
		return err
	})
	if err != nil {
		return v, false, fmt.Errorf("delete vault %d: %w", id, err)
	}
	v, err = VaultGetByID(ctx, s.pool, id)
	return v, false, err
}

// deleteVaultKeys deletes a vault's member and verifier keys from Garage (best effort:
// what fails stays recorded and is retried by DeleteExpiredKeys / the purge).
func (s *Service) deleteVaultKeys(ctx context.Context, gc *garage.Client, v Vault) {
	rows, err := s.pool.Query(ctx, `SELECT access_key_id FROM vault_keys WHERE vault_id = $1 AND deleted_at IS NULL
		UNION ALL SELECT access_key_id FROM vault_verifier_keys WHERE vault_id = $1`, v.ID)
	if err != nil {
		s.log.WarnContext(ctx, "list vault keys to delete", "vault", v.ID, "err", err)
		return
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, k := range ids {
		if err := gc.DeleteKey(ctx, k); err != nil && !errors.Is(err, garage.ErrNotFound) {
			s.log.WarnContext(ctx, "delete key of deleted vault", "vault", v.ID, "access_key_id", k, "err", err)
			continue
		}
		if _, err := s.pool.Exec(ctx, `UPDATE vault_keys SET deleted_at = now(), revoked_at = coalesce(revoked_at, now()) WHERE access_key_id = $1`, k); err != nil {
			s.log.WarnContext(ctx, "record deleted key", "access_key_id", k, "err", err)
		}
	}
}

// Restore undoes a scheduled deletion: the vault is active again. It holds the vault's
// lock (so it never interleaves with a running purge) and is refused once the purge has
// started: part of the repository may already be deleted.
func (s *Service) Restore(ctx context.Context, id int64) (Vault, error) {
	release, err := s.lockVault(ctx, id)
	if err != nil {
		return Vault{}, fmt.Errorf("restore vault %d: %w", id, err)
	}
	defer release()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		v, err := VaultGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.Status == StatusDeleted {
			return ErrNotFound
		}
		if v.Status != StatusDeleting {
			return problem.Conflict("", "vault %q is %s, not scheduled for deletion", v.Name, v.Status)
		}
		var started *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(purge_started_at) FROM vault_deletions WHERE vault_id = $1 AND status = 'scheduled'`,
			id).Scan(&started); err != nil {
			return err
		}
		if started != nil {
			return &ConflictError{Field: "", Problem: fmt.Sprintf("the purge of vault %q started at %s: its data may be partly deleted, it cannot be restored",
				v.Name, started.UTC().Format(time.RFC3339))}
		}
		if _, err := tx.Exec(ctx, `UPDATE vault_deletions SET status = 'cancelled', closed_at = now(), closed_by = $2
			WHERE vault_id = $1 AND status = 'scheduled'`, id, actorName(ctx)); err != nil {
			return err
		}
		next := StatusActive
		if v.GarageBucketID == nil {
			next = StatusPending
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET status = $2, updated_at = now() WHERE id = $1`, id, next); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.restore", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": v.Name}})
		return err
	})
	if err != nil {
		return Vault{}, fmt.Errorf("restore vault %d: %w", id, err)
	}
	return VaultGetByID(ctx, s.pool, id)
}

// ResetForNewIsland forgets a vault's Garage objects after its island was rebuilt empty
// (a new cluster behind the same island): the vault becomes pending, its member keys are
// recorded deleted (they vanished with the old cluster), its verifier key is dropped, and
// the reconciler provisions it again. Audited.
func (s *Service) ResetForNewIsland(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		v, err := VaultGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if v.Status == StatusDeleted {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET status = CASE WHEN status = 'deleting' THEN status ELSE 'pending' END,
			garage_bucket_id = NULL, drift = '{}', status_detail = 'the island was rebuilt: being provisioned again', updated_at = now()
			WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE vault_keys SET deleted_at = coalesce(deleted_at, now()), revoked_at = coalesce(revoked_at, now())
			WHERE vault_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM vault_verifier_keys WHERE vault_id = $1`, id); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.reset", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": v.Name, "island": v.IslandName}})
		return err
	})
	if err != nil {
		return fmt.Errorf("reset vault %d: %w", id, err)
	}
	return nil
}
