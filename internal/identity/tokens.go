package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// APIToken is an API token as listed: never its secret.
type APIToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	MemberID   int64      `json:"member_id"`
	MemberSlug string     `json:"member_slug"`
	Role       Role       `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	userID     int64
}

// Active reports whether the token can still be used at now.
func (t APIToken) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now))
}

// NewToken is what TokenCreate needs.
type NewToken struct {
	Name      string
	MemberID  int64
	Role      Role
	ExpiresAt *time.Time
}

// TokenCreate creates an API token scoped to one member and one role, never more than the
// creator holds in that member (federation admins may create any). It returns the token
// with its secret, which is shown this once: only a hash is stored.
//
// An API token cannot create tokens (ErrTokenCannotMint): a leaked token must not be able
// to mint itself successors, non-expiring ones included.
func (s *Service) TokenCreate(ctx context.Context, creator *Principal, nt NewToken) (APIToken, string, error) {
	if creator.Via == "api_token" {
		return APIToken{}, "", ErrTokenCannotMint
	}
	nt.Name = strings.TrimSpace(nt.Name)
	if nt.Name == "" || len(nt.Name) > 100 {
		return APIToken{}, "", &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
	}
	if !nt.Role.Valid() {
		return APIToken{}, "", &FieldError{Field: "role", Problem: "must be admin or viewer"}
	}
	if nt.ExpiresAt != nil && !nt.ExpiresAt.After(s.cfg.Now()) {
		return APIToken{}, "", &FieldError{Field: "expires_at", Problem: "must be in the future"}
	}
	if !creator.FederationAdmin {
		have, ok := creator.RoleIn(nt.MemberID)
		if !ok {
			return APIToken{}, "", ErrNotFound
		}
		if !have.AtLeast(nt.Role) {
			return APIToken{}, "", problem.Invalid("role", "cannot exceed your own role in this member (%s)", have)
		}
	}
	prefix := randomToken(5)[:8]
	secret := APITokenPrefix + prefix + "_" + randomToken(32)
	var t APIToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO api_tokens (prefix, secret_hash, name, user_id, member_id, role, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at`,
			prefix, sha(secret), nt.Name, creator.UserID, nt.MemberID, string(nt.Role), nt.ExpiresAt).Scan(&t.ID, &t.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert token: %w", err)
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "token.create", MemberID: &nt.MemberID, TargetType: "token",
			TargetID: strconv.FormatInt(t.ID, 10), Details: map[string]any{"name": nt.Name, "role": nt.Role, "prefix": prefix,
				"expires_at": nt.ExpiresAt}})
		return err
	})
	if err != nil {
		return APIToken{}, "", err
	}
	t, err = s.TokenGetByID(ctx, t.ID)
	return t, secret, err
}

const tokenColumns = `t.id, t.name, t.prefix, t.member_id, m.slug, t.role, u.email, t.created_at, t.expires_at,
	t.last_used_at, t.revoked_at, t.user_id`

func scanToken(r pgx.Row) (APIToken, error) {
	var t APIToken
	err := r.Scan(&t.ID, &t.Name, &t.Prefix, &t.MemberID, &t.MemberSlug, &t.Role, &t.CreatedBy, &t.CreatedAt,
		&t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt, &t.userID)
	return t, err
}

// TokenGetByID returns a token (without secret).
func (s *Service) TokenGetByID(ctx context.Context, id int64) (APIToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens t
		JOIN members m ON m.id = t.member_id JOIN users u ON u.id = t.user_id WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIToken{}, ErrNotFound
	}
	return t, err
}

// TokenList lists the tokens p may see: its own, every token of members it administers,
// and all of them for a federation admin. Newest first.
func (s *Service) TokenList(ctx context.Context, p *Principal) ([]APIToken, error) {
	var adminOf []int64
	for _, m := range p.Members {
		if m.Role == RoleAdmin {
			adminOf = append(adminOf, m.ID)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens t
		JOIN members m ON m.id = t.member_id JOIN users u ON u.id = t.user_id
		WHERE $1 OR t.user_id = $2 OR t.member_id = ANY($3) ORDER BY t.id DESC`, p.FederationAdmin, p.UserID, adminOf)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) { return scanToken(r) })
}

// CanManageToken reports whether p may see and revoke t: its creator, an admin of its
// member, or a federation admin.
func CanManageToken(p *Principal, t APIToken) bool {
	if p.FederationAdmin || t.userID == p.UserID {
		return true
	}
	r, ok := p.RoleIn(t.MemberID)
	return ok && r == RoleAdmin
}

// TokenRevoke revokes a token at once, audited. Revoking a revoked token is a no-op.
func (s *Service) TokenRevoke(ctx context.Context, t APIToken) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, t.ID, s.cfg.Now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", MemberID: &t.MemberID, TargetType: "token",
			TargetID: strconv.FormatInt(t.ID, 10), Details: map[string]any{"name": t.Name, "prefix": t.Prefix}})
		return err
	})
	s.cache.invalidate()
	return err
}

// TokenPrincipal authenticates an API token. Its principal holds only the token's member,
// with the lesser of the token's role and the user's current role there, so a token stops
// working when its creator loses the membership. One SQL statement, or none when the token
// was resolved less than PrincipalCacheTTL ago (see resolve.go).
func (s *Service) TokenPrincipal(ctx context.Context, token string) (*Principal, error) {
	rest, ok := strings.CutPrefix(token, APITokenPrefix)
	prefix, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(prefix) != 8 {
		return nil, ErrInvalidCredentials
	}
	now := s.cfg.Now()
	key := credentialKey("api_token", token)
	if p, ok := s.cache.get(key, now); ok {
		return p, nil
	}
	gen := s.cache.generation()
	var (
		hash               []byte
		t                  APIToken
		memberName, status string
		email, display     string
		federationAdmin    bool
		have               *string
	)
	err := s.pool.QueryRow(ctx, `SELECT t.secret_hash, `+tokenColumns+`, m.name, u.status, u.display_name,
			u.federation_admin, x.role
		FROM api_tokens t JOIN members m ON m.id = t.member_id JOIN users u ON u.id = t.user_id
		LEFT JOIN memberships x ON x.user_id = t.user_id AND x.member_id = t.member_id
		WHERE t.prefix = $1`, prefix).
		Scan(&hash, &t.ID, &t.Name, &t.Prefix, &t.MemberID, &t.MemberSlug, &t.Role, &email, &t.CreatedAt,
			&t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt, &t.userID, &memberName, &status, &display, &federationAdmin, &have)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = subtle.ConstantTimeCompare(sha(token), sha("x"))
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(hash, sha(token)) != 1 || !t.Active(now) || status != "active" {
		return nil, ErrInvalidCredentials
	}
	role := t.Role
	switch {
	case have == nil && !federationAdmin:
		return nil, ErrInvalidCredentials
	case have != nil && !Role(*have).AtLeast(role):
		role = Role(*have)
	}
	p := &Principal{UserID: t.userID, Email: email, DisplayName: display, Via: "api_token",
		Members: []MemberRef{{ID: t.MemberID, Slug: t.MemberSlug, Name: memberName, Role: role}},
		TokenID: t.ID, TokenName: t.Name}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		_, _ = s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, now)
	}
	var expires time.Time
	if t.ExpiresAt != nil {
		expires = *t.ExpiresAt
	}
	s.cache.put(key, gen, p, now, expires)
	return p, nil
}
