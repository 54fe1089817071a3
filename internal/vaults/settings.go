package vaults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/quota"
)

// Settings are the federation settings of the quota policy and grace periods.
type Settings struct {
	QuotaRatio       float64       `json:"quota_ratio"`
	Overcommit       float64       `json:"overcommit"`
	KeyGrace         time.Duration `json:"-"`
	VaultDeleteGrace time.Duration `json:"-"`
	UpdatedAt        time.Time     `json:"updated_at"`
}

// Policy returns the quota package's view of the settings.
func (st Settings) Policy() quota.Settings {
	return quota.Settings{Ratio: st.QuotaRatio, Overcommit: st.Overcommit}
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func loadSettings(ctx context.Context, q querier) (Settings, error) {
	var st Settings
	var kg, vg int64
	err := q.QueryRow(ctx, `SELECT quota_ratio, overcommit, key_grace_seconds, vault_delete_grace_seconds, updated_at
		FROM federation_settings WHERE id`).Scan(&st.QuotaRatio, &st.Overcommit, &kg, &vg, &st.UpdatedAt)
	if err != nil {
		return st, fmt.Errorf("read federation settings: %w", err)
	}
	st.KeyGrace, st.VaultDeleteGrace = time.Duration(kg)*time.Second, time.Duration(vg)*time.Second
	return st, nil
}

// SettingsGet returns the federation settings.
func (s *Service) SettingsGet(ctx context.Context) (Settings, error) {
	return loadSettings(ctx, s.pool)
}

// SettingsInput changes settings; nil fields are left unchanged.
type SettingsInput struct {
	QuotaRatio       *float64
	Overcommit       *float64
	KeyGrace         *time.Duration
	VaultDeleteGrace *time.Duration
}

// SettingsUpdate changes the federation settings (federation admins; audited).
func (s *Service) SettingsUpdate(ctx context.Context, in SettingsInput) (Settings, error) {
	details := map[string]any{}
	if in.QuotaRatio != nil {
		if *in.QuotaRatio <= 0 || *in.QuotaRatio > 100 {
			return Settings{}, &FieldError{Field: "quota_ratio", Problem: "must be more than 0 and at most 100"}
		}
		details["quota_ratio"] = *in.QuotaRatio
	}
	if in.Overcommit != nil {
		if *in.Overcommit <= 0 || *in.Overcommit > 100 {
			return Settings{}, &FieldError{Field: "overcommit", Problem: "must be more than 0 and at most 100"}
		}
		details["overcommit"] = *in.Overcommit
	}
	var kg, vg *int64
	if in.KeyGrace != nil {
		if *in.KeyGrace < 0 || *in.KeyGrace > 365*24*time.Hour {
			return Settings{}, &FieldError{Field: "key_grace_seconds", Problem: "must be from 0 to 365 days"}
		}
		v := int64(*in.KeyGrace / time.Second)
		kg = &v
		details["key_grace_seconds"] = v
	}
	if in.VaultDeleteGrace != nil {
		if *in.VaultDeleteGrace < 0 || *in.VaultDeleteGrace > 365*24*time.Hour {
			return Settings{}, &FieldError{Field: "vault_delete_grace_seconds", Problem: "must be from 0 to 365 days"}
		}
		v := int64(*in.VaultDeleteGrace / time.Second)
		vg = &v
		details["vault_delete_grace_seconds"] = v
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE federation_settings SET quota_ratio = coalesce($1, quota_ratio),
			overcommit = coalesce($2, overcommit), key_grace_seconds = coalesce($3, key_grace_seconds),
			vault_delete_grace_seconds = coalesce($4, vault_delete_grace_seconds), updated_at = now() WHERE id`,
			in.QuotaRatio, in.Overcommit, kg, vg); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "federation.settings_update", TargetType: "federation_settings",
			TargetID: "1", Details: details})
		return err
	})
	if err != nil {
		return Settings{}, fmt.Errorf("update federation settings: %w", err)
	}
	return s.SettingsGet(ctx)
}

// Grant is extra quota granted to a member by a federation admin.
type Grant struct {
	ID         int64      `json:"id"`
	MemberID   int64      `json:"member_id"`
	MemberSlug string     `json:"member_slug"`
	Bytes      int64      `json:"bytes"`
	Reason     string     `json:"reason"`
	GrantedBy  string     `json:"granted_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Live reports whether the grant counts at now.
func (g Grant) Live(now time.Time) bool {
	return g.RevokedAt == nil && (g.ExpiresAt == nil || g.ExpiresAt.After(now))
}

const grantColumns = `g.id, g.member_id, m.slug, g.bytes, g.reason, g.granted_by, g.created_at, g.expires_at, g.revoked_at`

func scanGrant(r pgx.Row) (Grant, error) {
	var g Grant
	err := r.Scan(&g.ID, &g.MemberID, &g.MemberSlug, &g.Bytes, &g.Reason, &g.GrantedBy, &g.CreatedAt, &g.ExpiresAt, &g.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, ErrNotFound
	}
	return g, err
}

// GrantGet returns a grant.
func (s *Service) GrantGetByID(ctx context.Context, id int64) (Grant, error) {
	return scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM quota_grants g JOIN members m ON m.id = g.member_id
		WHERE g.id = $1`, id))
}

// GrantFilter selects grants: every member's (All, federation admins) or MemberIDs'.
type GrantFilter struct {
	All       bool
	MemberIDs []int64
}

// GrantPage lists one page of grants, newest first (internal/paging's style; the cursor is
// the grant id). Nothing is cut: a long history is read page by page.
func (s *Service) GrantPage(ctx context.Context, f GrantFilter, r paging.Request) (paging.Page[Grant], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Grant]{}, err
	}
	var before int64
	after, err := r.Keys(&before)
	if err != nil {
		return paging.Page[Grant]{}, err
	}
	if !f.All && len(f.MemberIDs) == 0 {
		return paging.Page[Grant]{Items: []Grant{}}, nil
	}
	var w database.Where
	if !f.All {
		w.And("g.member_id = ANY(?)", f.MemberIDs)
	}
	if after {
		w.And("g.id < ?", before)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM quota_grants g JOIN members m ON m.id = g.member_id`+
		w.String()+` ORDER BY g.id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[Grant]{}, fmt.Errorf("list grants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grant, error) { return scanGrant(r) })
	if err != nil {
		return paging.Page[Grant]{}, fmt.Errorf("list grants: %w", err)
	}
	return paging.Cut(out, size, func(g Grant) []any { return []any{g.ID} }), nil
}

// GrantList lists every grant of a member (every member's when memberID is 0), newest
// first: all the pages of GrantPage, an error rather than a partial list.
func (s *Service) GrantList(ctx context.Context, memberID int64) ([]Grant, error) {
	f := GrantFilter{All: memberID == 0}
	if memberID != 0 {
		f.MemberIDs = []int64{memberID}
	}
	return paging.All(ctx, maxWholeList, func(ctx context.Context, r paging.Request) (paging.Page[Grant], error) {
		return s.GrantPage(ctx, f, r)
	})
}

// GrantInput is a new grant.
type GrantInput struct {
	MemberID  int64
	Bytes     int64
	Reason    string
	ExpiresAt *time.Time
}

// GrantCreate grants extra quota to a member (federation admins; audited with the reason).
func (s *Service) GrantCreate(ctx context.Context, in GrantInput) (Grant, error) {
	in.Reason = strings.TrimSpace(in.Reason)
	switch {
	case in.Bytes <= 0:
		return Grant{}, &FieldError{Field: "bytes", Problem: "must be a positive number of bytes"}
	case in.Reason == "" || len(in.Reason) > 1000:
		return Grant{}, &FieldError{Field: "reason", Problem: "is required: say why (1 to 1000 characters)"}
	case in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()):
		return Grant{}, &FieldError{Field: "expires_at", Problem: "must be in the future"}
	}
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO quota_grants (member_id, bytes, reason, granted_by, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, in.MemberID, in.Bytes, in.Reason, actorName(ctx), in.ExpiresAt).Scan(&id); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "quota.grant", MemberID: &in.MemberID, TargetType: "quota_grant",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"bytes": in.Bytes, "reason": in.Reason, "expires_at": in.ExpiresAt}})
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("grant quota: %w", err)
	}
	return s.GrantGetByID(ctx, id)
}

// GrantRevoke ends a grant (idempotent; audited once). Vaults already allocated keep
// their quota: the member is then over its limit until it pledges or shrinks a vault.
func (s *Service) GrantRevoke(ctx context.Context, id int64) (Grant, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var member int64
		err := tx.QueryRow(ctx, `UPDATE quota_grants SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
			RETURNING member_id`, id).Scan(&member)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "quota.grant_revoke", MemberID: &member, TargetType: "quota_grant",
			TargetID: strconv.FormatInt(id, 10)})
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("revoke grant %d: %w", id, err)
	}
	return s.GrantGetByID(ctx, id)
}
