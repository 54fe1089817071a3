package vaults

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/problem"
)

// Key states, derived from the key's timestamps.
const (
	KeyActive   = "active"   // works
	KeyRetiring = "retiring" // rotated: works until ExpiresAt
	KeyExpired  = "expired"  // past ExpiresAt, not yet deleted from Garage
	KeyRevoked  = "revoked"  // revoked by a person
	KeyDeleted  = "deleted"  // expired and deleted from Garage
)

// MemberKeyPermissions are what a member key may do on its vault's bucket: read and
// write, never owner (which would let it delete the bucket).
const MemberKeyPermissions = garage.PermRead | garage.PermWrite

// Key is a member's S3 key on a vault. Its secret is never stored.
type Key struct {
	ID          int64      `json:"id"`
	VaultID     int64      `json:"vault_id"`
	Name        string     `json:"name"`
	AccessKeyID string     `json:"access_key_id"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	ExpiresAt   *time.Time `json:"expires_at"`
	RotatedFrom *int64     `json:"rotated_from"`
	ReplacedBy  *int64     `json:"replaced_by"`
	RevokedAt   *time.Time `json:"revoked_at"`
	DeletedAt   *time.Time `json:"deleted_at"`
}

// state derives the key's state at now.
func (k *Key) state(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return KeyRevoked
	case k.DeletedAt != nil:
		return KeyDeleted
	case k.ExpiresAt != nil && !k.ExpiresAt.After(now):
		return KeyExpired
	case k.ReplacedBy != nil:
		return KeyRetiring
	}
	return KeyActive
}

// Usable reports whether the key should work now.
func (k Key) Usable() bool { return k.State == KeyActive || k.State == KeyRetiring }

// NewKey is a key just created: the only time its secret exists outside Garage.
type NewKey struct {
	Key
	SecretAccessKey string `json:"secret_access_key"`
	// Snippet is a ready-to-paste shell snippet for restic.
	Snippet string `json:"restic_snippet"`
	// Env holds the snippet's variables.
	Env map[string]string `json:"env"`
}

const keyColumns = `k.id, k.vault_id, k.name, k.access_key_id, k.created_at, k.created_by, k.expires_at, k.rotated_from,
	k.replaced_by, k.revoked_at, k.deleted_at`

func (s *Service) scanKey(r pgx.Row) (Key, error) {
	var k Key
	err := r.Scan(&k.ID, &k.VaultID, &k.Name, &k.AccessKeyID, &k.CreatedAt, &k.CreatedBy, &k.ExpiresAt, &k.RotatedFrom,
		&k.ReplacedBy, &k.RevokedAt, &k.DeletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, ErrNotFound
	}
	k.State = k.state(s.now())
	return k, err
}

// KeyGet returns a key of a vault.
func (s *Service) KeyGetByID(ctx context.Context, vaultID, keyID int64) (Key, error) {
	return s.scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM vault_keys k WHERE k.vault_id = $1 AND k.id = $2`, vaultID, keyID))
}

// KeyList lists a vault's keys, newest first (never their secrets).
func (s *Service) KeyList(ctx context.Context, vaultID int64) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM vault_keys k WHERE k.vault_id = $1 ORDER BY k.id DESC`, vaultID)
	if err != nil {
		return nil, fmt.Errorf("list keys of vault %d: %w", vaultID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return s.scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys of vault %d: %w", vaultID, err)
	}
	return out, nil
}

// KeyPage lists one page of a vault's keys, newest first, paged in SQL (the cursor is the
// last key's id): the page's rows only, never the vault's whole history of keys.
func (s *Service) KeyPage(ctx context.Context, vaultID int64, r paging.Request) (paging.Page[Key], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Key]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return paging.Page[Key]{}, err
	}
	cond := `k.vault_id = $1`
	args := []any{vaultID}
	if before != 0 {
		cond, args = cond+` AND k.id < $2`, append(args, before)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM vault_keys k WHERE `+cond+` ORDER BY k.id DESC LIMIT `+
		strconv.Itoa(size+1), args...)
	if err != nil {
		return paging.Page[Key]{}, fmt.Errorf("list keys of vault %d: %w", vaultID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return s.scanKey(r) })
	if err != nil {
		return paging.Page[Key]{}, fmt.Errorf("list keys of vault %d: %w", vaultID, err)
	}
	return paging.Cut(out, size, func(k Key) []any { return []any{k.ID} }), nil
}

// KeyInput is a new key.
type KeyInput struct {
	Name      string
	ExpiresAt *time.Time // optional
}

func (s *Service) checkKeyInput(in *KeyInput) error {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "" || len(in.Name) > 100:
		return &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
	case strings.ContainsAny(in.Name, "\r\n\t"):
		return &FieldError{Field: "name", Problem: "must be one line"}
	case in.ExpiresAt != nil && !in.ExpiresAt.After(s.now()):
		return &FieldError{Field: "expires_at", Problem: "must be in the future"}
	}
	return nil
}

// usableVault loads a vault on which keys may be created.
func (s *Service) usableVault(ctx context.Context, vaultID int64) (Vault, error) {
	v, err := s.VaultGetByID(ctx, vaultID)
	if err != nil {
		return v, err
	}
	if v.Status != StatusActive {
		return v, problem.Conflict("", "vault %q is %s: keys can be created on active vaults only", v.Name, v.Status)
	}
	return v, nil
}

// createGarageKey creates a member key with read+write on the vault's bucket, deleting it
// again if the grant fails: on error nothing is left on Garage.
func (s *Service) createGarageKey(ctx context.Context, gc *garage.Client, v Vault, in KeyInput) (*garage.KeyInfo, error) {
	k, err := gc.CreateKey(ctx, garage.CreateKeyParams{Name: v.BucketName + "/" + in.Name, Expiration: in.ExpiresAt})
	if err != nil {
		return nil, unreachable(v.IslandName, "CreateKey", err)
	}
	perm, err := s.memberKeyPermissions(ctx, v.ID) // read-only while frozen
	if err != nil {
		s.dropGarageKey(ctx, gc, k.AccessKeyID)
		return nil, err
	}
	if _, err := gc.AllowBucketKey(ctx, *v.GarageBucketID, k.AccessKeyID, perm); err != nil {
		s.dropGarageKey(ctx, gc, k.AccessKeyID)
		return nil, unreachable(v.IslandName, "AllowBucketKey", err)
	}
	return k, nil
}

// dropGarageKey rolls a key back; a failure is logged (the key then has no recorded
// owner: its id is in the log so that an operator can delete it).
func (s *Service) dropGarageKey(ctx context.Context, gc *garage.Client, accessKeyID string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.GarageTimeout)
	defer cancel()
	if err := gc.DeleteKey(dctx, accessKeyID); err != nil && !errors.Is(err, garage.ErrNotFound) {
		s.log.ErrorContext(ctx, "roll back key: delete it by hand", "access_key_id", accessKeyID, "err", err)
	}
}

// KeyCreate creates a member key on a vault: read+write on its bucket only. The secret is
// in the answer only; Archipelago does not keep it.
func (s *Service) KeyCreate(ctx context.Context, vaultID int64, in KeyInput) (NewKey, error) {
	if err := s.checkKeyInput(&in); err != nil {
		return NewKey{}, err
	}
	v, err := s.usableVault(ctx, vaultID)
	if err != nil {
		return NewKey{}, err
	}
	gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	release, err := s.lockVault(gctx, v.ID)
	if err != nil {
		return NewKey{}, err
	}
	defer release()
	gc, err := s.garage(gctx, v.IslandID)
	if err != nil {
		return NewKey{}, unreachable(v.IslandName, "connect", err)
	}
	gk, err := s.createGarageKey(gctx, gc, v, in)
	if err != nil {
		return NewKey{}, err
	}
	var id int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO vault_keys (vault_id, name, access_key_id, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, v.ID, in.Name, gk.AccessKeyID, actorName(ctx), in.ExpiresAt).Scan(&id); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "vault_key.create", MemberID: &v.MemberID, TargetType: "vault_key",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"vault_id": v.ID, "name": in.Name,
				"access_key_id": gk.AccessKeyID, "permissions": MemberKeyPermissions.String(), "expires_at": in.ExpiresAt}})
		return err
	})
	if err != nil {
		s.dropGarageKey(ctx, gc, gk.AccessKeyID)
		return NewKey{}, fmt.Errorf("create key on vault %d: %w", v.ID, err)
	}
	k, err := s.KeyGetByID(ctx, v.ID, id)
	if err != nil {
		return NewKey{}, err
	}
	return s.newKey(v, k, gk.SecretAccessKey), nil
}

func (s *Service) newKey(v Vault, k Key, secret string) NewKey {
	env := Snippet(v, s.cfg.SnippetPath, k.AccessKeyID, secret)
	return NewKey{Key: k, SecretAccessKey: secret, Env: env, Snippet: SnippetText(env)}
}

// Snippet returns restic's environment for a key on a vault:
// RESTIC_REPOSITORY=s3:<endpoint>/<bucket>/<path>, the S3 key and the island's region.
func Snippet(v Vault, path, accessKeyID, secret string) map[string]string {
	endpoint := strings.TrimRight(v.S3Endpoint, "/")
	if u, err := url.Parse(endpoint); err == nil && u.Path != "" && u.Path != "/" {
		endpoint = strings.TrimRight(u.String(), "/")
	}
	return map[string]string{
		"RESTIC_REPOSITORY":     "s3:" + endpoint + "/" + v.BucketName + "/" + strings.Trim(path, "/"),
		"AWS_ACCESS_KEY_ID":     accessKeyID,
		"AWS_SECRET_ACCESS_KEY": secret,
		"AWS_DEFAULT_REGION":    v.S3Region,
	}
}

// snippetOrder is the order of the snippet's lines.
var snippetOrder = []string{"RESTIC_REPOSITORY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}

// SnippetText writes env as POSIX shell export lines, values single-quoted.
func SnippetText(env map[string]string) string {
	var b strings.Builder
	for _, k := range snippetOrder {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(env[k]))
	}
	b.WriteString("# then choose a repository password (RESTIC_PASSWORD_FILE) and run: restic init\n")
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// KeyRotate replaces a usable key: a new key now (returned with its secret), and the old
// one keeps working until the federation's grace period (default 7 days) ends, after which
// DeleteExpiredKeys deletes it. The old key's expiry is also set on Garage.
func (s *Service) KeyRotate(ctx context.Context, vaultID, keyID int64, in KeyInput) (NewKey, error) {
	old, err := s.KeyGetByID(ctx, vaultID, keyID)
	if err != nil {
		return NewKey{}, err
	}
	if old.State != KeyActive {
		return NewKey{}, problem.Conflict("", "key %q is %s: only an active key can be rotated", old.Name, old.State)
	}
	if in.Name == "" {
		in.Name = old.Name
	}
	if err := s.checkKeyInput(&in); err != nil {
		return NewKey{}, err
	}
	v, err := s.usableVault(ctx, vaultID)
	if err != nil {
		return NewKey{}, err
	}
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return NewKey{}, err
	}
	retire := s.now().Add(st.KeyGrace).UTC().Truncate(time.Second)
	if old.ExpiresAt != nil && old.ExpiresAt.Before(retire) {
		retire = *old.ExpiresAt
	}
	gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	release, err := s.lockVault(gctx, v.ID)
	if err != nil {
		return NewKey{}, err
	}
	defer release()
	gc, err := s.garage(gctx, v.IslandID)
	if err != nil {
		return NewKey{}, unreachable(v.IslandName, "connect", err)
	}
	gk, err := s.createGarageKey(gctx, gc, v, in)
	if err != nil {
		return NewKey{}, err
	}
	if _, err := gc.UpdateKey(gctx, old.AccessKeyID, garage.UpdateKeyParams{Expiration: &retire}); err != nil {
		s.dropGarageKey(ctx, gc, gk.AccessKeyID)
		return NewKey{}, unreachable(v.IslandName, "UpdateKey (expiration of the old key)", err)
	}
	var id int64
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO vault_keys (vault_id, name, access_key_id, created_by, expires_at, rotated_from)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, v.ID, in.Name, gk.AccessKeyID, actorName(ctx), in.ExpiresAt, old.ID).Scan(&id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE vault_keys SET replaced_by = $2, expires_at = $3 WHERE id = $1 AND replaced_by IS NULL AND revoked_at IS NULL`,
			old.ID, id, retire)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return problem.Conflict("", "key %q was rotated or revoked meanwhile", old.Name)
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault_key.rotate", MemberID: &v.MemberID, TargetType: "vault_key",
			TargetID: strconv.FormatInt(old.ID, 10), Details: map[string]any{"vault_id": v.ID, "old_access_key_id": old.AccessKeyID,
				"old_expires_at": retire, "new_key_id": id, "new_access_key_id": gk.AccessKeyID, "expires_at": in.ExpiresAt}})
		return err
	})
	if err != nil {
		s.dropGarageKey(ctx, gc, gk.AccessKeyID)
		return NewKey{}, fmt.Errorf("rotate key %d: %w", keyID, err)
	}
	k, err := s.KeyGetByID(ctx, v.ID, id)
	if err != nil {
		return NewKey{}, err
	}
	return s.newKey(v, k, gk.SecretAccessKey), nil
}

// KeyRevoke stops a key at once: it is deleted from Garage, then recorded as revoked.
// Revoking a revoked or deleted key does nothing. When the island does not answer the
// key is not recorded as revoked (it may still work) and the error says so.
func (s *Service) KeyRevoke(ctx context.Context, vaultID, keyID int64) (Key, error) {
	k, err := s.KeyGetByID(ctx, vaultID, keyID)
	if err != nil {
		return k, err
	}
	if k.RevokedAt != nil {
		return k, nil
	}
	v, err := VaultGetByID(ctx, s.pool, vaultID)
	if err != nil {
		return k, err
	}
	if k.DeletedAt == nil {
		gctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
		defer cancel()
		gc, err := s.garage(gctx, v.IslandID)
		if err != nil {
			return k, unreachable(v.IslandName, "connect", err)
		}
		if err := s.garageDeleteKey(gctx, gc, v, k.AccessKeyID, fmt.Sprintf("revoke key %d (%s)", k.ID, k.Name)); err != nil {
			return k, err
		}
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE vault_keys SET revoked_at = now(), deleted_at = coalesce(deleted_at, now())
			WHERE id = $1 AND revoked_at IS NULL`, k.ID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "vault_key.revoke", MemberID: &v.MemberID, TargetType: "vault_key",
			TargetID: strconv.FormatInt(k.ID, 10), Details: map[string]any{"vault_id": v.ID, "access_key_id": k.AccessKeyID}})
		return err
	})
	if err != nil {
		return k, fmt.Errorf("revoke key %d: %w", keyID, err)
	}
	return s.KeyGetByID(ctx, vaultID, keyID)
}
