package protection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/vaults"
)

// Freeze makes a vault's member keys read-only on Garage at once and stops deletions in
// its copy, until an unfreeze request has waited the federation's unfreeze delay. Freezing
// a frozen vault cancels a pending unfreeze. The reconciler keeps the keys read-only while
// the vault is frozen (also keys created meanwhile). Audited.
func (s *Service) Freeze(ctx context.Context, vaultID int64, reason string) (State, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > 1000 {
		return State{}, &FieldError{Field: "reason", Problem: "must be at most 1000 characters"}
	}
	v, err := s.usableVault(ctx, vaultID)
	if err != nil {
		return State{}, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := ensureRow(ctx, tx, v.ID); err != nil {
			return err
		}
		var was *time.Time
		var pending *time.Time
		if err := tx.QueryRow(ctx, `SELECT frozen_at, unfreeze_after FROM vault_protection WHERE vault_id = $1 FOR UPDATE`, v.ID).
			Scan(&was, &pending); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET frozen_at = coalesce(frozen_at, $2), frozen_by = $3,
			freeze_reason = $4, unfreeze_after = NULL, unfreeze_requested_by = '', updated_at = now() WHERE vault_id = $1`,
			v.ID, s.now(), actorName(ctx), reason); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault.freeze", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"reason": reason, "already_frozen": was != nil,
				"cancelled_unfreeze_at": pending}})
		return err
	})
	if err != nil {
		return State{}, fmt.Errorf("freeze vault %d: %w", v.ID, err)
	}
	if err := s.setMemberKeys(ctx, v, garage.PermRead); err != nil {
		// Recorded as frozen: the reconciler finishes the job; say so.
		return State{}, &UnreachableError{Island: v.IslandName, Operation: "DenyBucketKey (freeze; the vault is frozen and the reconciler retries)", Err: err}
	}
	return s.State(ctx, v.ID)
}

// RequestUnfreeze schedules the end of a freeze after the federation's unfreeze delay
// (default 24 h): until then the keys stay read-only, and a new Freeze cancels it.
func (s *Service) RequestUnfreeze(ctx context.Context, vaultID int64) (State, error) {
	v, err := s.usableVault(ctx, vaultID)
	if err != nil {
		return State{}, err
	}
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return State{}, err
	}
	at := s.now().Add(st.UnfreezeDelay)
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vault_protection SET unfreeze_after = $2, unfreeze_requested_by = $3, updated_at = now()
			WHERE vault_id = $1 AND frozen_at IS NOT NULL AND unfreeze_after IS NULL`, v.ID, at, actorName(ctx))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &ConflictError{Problem: "the vault is not frozen, or its unfreeze is already scheduled"}
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.unfreeze_request", MemberID: &v.MemberID, TargetType: "vault",
			TargetID: strconv.FormatInt(v.ID, 10), Details: map[string]any{"unfreeze_after": at}})
		return err
	})
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			return State{}, err
		}
		return State{}, fmt.Errorf("unfreeze vault %d: %w", v.ID, err)
	}
	if st.UnfreezeDelay == 0 {
		if err := s.ApplyUnfreezes(ctx); err != nil {
			return State{}, err
		}
	}
	return s.State(ctx, v.ID)
}

// ApplyUnfreezes ends the freezes whose unfreeze request is due: the member keys get
// their write permission back. The tripwire's run calls it.
func (s *Service) ApplyUnfreezes(ctx context.Context) error {
	ctx = withSystemActor(ctx, "protection.unfreeze")
	rows, err := s.pool.Query(ctx, `SELECT vault_id FROM vault_protection WHERE unfreeze_after <= $1 ORDER BY vault_id`, s.now())
	if err != nil {
		return fmt.Errorf("due unfreezes: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("due unfreezes: %w", err)
	}
	var errs []error
	for _, id := range ids {
		var memberID int64
		var frozenAt time.Time
		err := s.tx(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `SELECT v.member_id, p.frozen_at FROM vault_protection p JOIN vaults v ON v.id = p.vault_id
				WHERE p.vault_id = $1 AND p.unfreeze_after <= $2 FOR UPDATE OF p`, id, s.now()).Scan(&memberID, &frozenAt)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE vault_protection SET frozen_at = NULL, unfreeze_after = NULL, frozen_by = '',
				freeze_reason = '', unfreeze_requested_by = '', updated_at = now() WHERE vault_id = $1`, id); err != nil {
				return err
			}
			_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault.unfreeze", MemberID: &memberID, TargetType: "vault",
				TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"frozen_at": frozenAt}})
			return err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			continue // another process did it
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("unfreeze vault %d: %w", id, err))
			continue
		}
		v, err := vaults.VaultGetByID(ctx, s.pool, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.setMemberKeys(ctx, v, vaults.MemberKeyPermissions); err != nil {
			errs = append(errs, fmt.Errorf("vault %d unfrozen, write permission not restored yet (the reconciler retries): %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) usableVault(ctx context.Context, vaultID int64) (vaults.Vault, error) {
	v, err := vaults.VaultGetByID(ctx, s.pool, vaultID)
	if errors.Is(err, vaults.ErrNotFound) || (err == nil && v.Status == vaults.StatusDeleted) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, err
	}
	if v.GarageBucketID == nil {
		return v, &ConflictError{Problem: "the vault is not provisioned yet"}
	}
	return v, nil
}

// setMemberKeys sets the permissions of every usable member key of a vault on Garage.
func (s *Service) setMemberKeys(ctx context.Context, v vaults.Vault, p garage.Permission) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	keys, err := s.vaults.KeyList(ctx, v.ID)
	if err != nil {
		return err
	}
	gc, err := s.garageFor(ctx, v.IslandID)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if !k.Usable() || k.DeletedAt != nil {
			continue
		}
		if _, err := gc.SetBucketKeyPermissions(ctx, *v.GarageBucketID, k.AccessKeyID, p); err != nil && !errors.Is(err, garage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("island %q: key %s: %w", v.IslandName, k.AccessKeyID, err))
		}
	}
	return errors.Join(errs...)
}
