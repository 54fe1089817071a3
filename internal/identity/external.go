package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// Logging in through the federation's identity provider (OIDC, internal/oidclogin): the
// provider says who the person is (issuer and subject, email, name) and which roles its
// claims grant; this file finds or creates the user, applies those roles, and opens a
// session, all in one audited transaction.
//
// The rules (docs/deploy.md, "Logging in through your identity provider"):
//
//   - A user is found by (issuer, subject). At the first login of an identity, a user with
//     the same email is linked to it only when the provider says the email is verified;
//     otherwise a new user is created (with no usable password).
//   - Memberships granted by the provider (source 'oidc') are re-derived at every login:
//     one the claims no longer grant is removed, a changed role is changed. Memberships
//     given on the portal (source 'local') are left alone. The federation-admin flag is
//     likewise granted and taken back by the claims, unless it was given locally.
//   - A login whose person ends with no membership and no federation admin is refused
//     (ErrNoAccess) after the removals are committed, and that person's open sessions
//     are ended: access removed at the provider is removed here at the next login.

// ExternalIdentity is what the identity provider said about a person at one login.
type ExternalIdentity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	// FederationAdmin and Roles (member slug → role) are what the claims grant.
	FederationAdmin bool
	Roles           map[string]Role
	// Groups are the claim's values, recorded in the audit entry of the login.
	Groups []string
}

// Errors of an external login, each shown to the person as a sentence of its own.
var (
	// ErrNoAccess: the claims grant no role (and the person has no local one).
	ErrNoAccess = &problem.ForbiddenError{Problem: "the identity provider's claims grant no role in Archipelago"}
	// ErrNoEmail: the provider did not release an email address.
	ErrNoEmail = errors.New("the identity provider did not give an email address")
	// ErrEmailUnverified: a user already has this email, and the provider does not say it
	// verified it, so the identity is not linked to that user.
	ErrEmailUnverified = errors.New("a user already has this email, which the identity provider does not say is verified")
	// ErrUserDisabled: the user is disabled.
	ErrUserDisabled = errors.New("this user is disabled")
)

// unusablePassword is the password hash of users created by an external login: no
// password matches it (VerifyPassword refuses its format), so they log in through the
// provider only, until someone sets them a password.
const unusablePassword = "!oidc"

// ExternalLogin logs a person in from what the identity provider said: it finds, links
// or creates the user, applies the roles of the claims, and opens a session (auth_method
// 'oidc'), all audited in one transaction. See the rules above.
func (s *Service) ExternalLogin(ctx context.Context, id ExternalIdentity, sourceIP, userAgent string) (LoginResult, error) {
	if id.Issuer == "" || id.Subject == "" || utf8.RuneCountInString(id.Subject) > 255 || len(id.Issuer) > 2048 {
		return LoginResult{}, errors.New("external login: missing or oversized issuer or subject")
	}
	email, err := NormalizeEmail(id.Email)
	if err != nil {
		return LoginResult{}, ErrNoEmail
	}
	name := strings.TrimSpace(strings.ReplaceAll(id.Name, "\n", " "))
	if utf8.RuneCountInString(name) > 200 {
		name = string([]rune(name)[:200])
	}
	now := s.cfg.Now()
	var (
		res     LoginResult
		userID  int64
		refused bool
		changes []map[string]any
	)
	// Entries are written as the person (known once the user is): "who logged in".
	asUser := func(uid int64) context.Context {
		return audit.WithActor(ctx, audit.Actor{Kind: audit.ActorUser, ID: strconv.FormatInt(uid, 10), Name: email})
	}
	defer s.cache.invalidate()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res, refused, changes = LoginResult{}, false, nil
		var status string
		err := tx.QueryRow(ctx, `SELECT id, status FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2 FOR UPDATE`,
			id.Issuer, id.Subject).Scan(&userID, &status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			var linked bool
			if userID, status, linked, err = s.externalFirstLogin(ctx, tx, id, email, name); err != nil {
				return err
			}
			if linked {
				changes = append(changes, map[string]any{"linked": true})
			}
		case err != nil:
			return fmt.Errorf("find user of %s: %w", id.Issuer, err)
		default:
			// The provider's email may have changed: follow it unless another user has it.
			if _, err := tx.Exec(ctx, `UPDATE users SET email = $2, updated_at = now()
				WHERE id = $1 AND email <> $2 AND NOT EXISTS (SELECT 1 FROM users WHERE email = $2)`, userID, email); err != nil {
				return fmt.Errorf("update email of user %d: %w", userID, err)
			}
		}
		if status != "active" {
			return ErrUserDisabled
		}
		actx := asUser(userID)
		ch, err := s.applyExternalRoles(actx, tx, userID, id)
		if err != nil {
			return err
		}
		changes = append(changes, ch...)
		var fed bool
		var count int
		if err := tx.QueryRow(ctx, `SELECT u.federation_admin, (SELECT count(*) FROM memberships WHERE user_id = u.id)
			FROM users u WHERE u.id = $1`, userID).Scan(&fed, &count); err != nil {
			return err
		}
		if !fed && count == 0 {
			refused = true
			tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, now)
			if err != nil {
				return err
			}
			_, err = audit.Record(actx, tx, audit.Entry{Action: "auth.login_refused", Person: &userID,
				Details: map[string]any{"email": email, "via": "oidc", "issuer": id.Issuer, "groups": groupsOrEmpty(id.Groups),
					"reason": "the claims grant no role", "sessions_ended": tag.RowsAffected()}})
			return err
		}
		res = LoginResult{SessionSecret: SessionPrefix + randomToken(32), SessionExpire: now.Add(s.cfg.SessionTTL)}
		var sessionID int64
		if err := tx.QueryRow(ctx, `INSERT INTO sessions (user_id, secret_hash, csrf_token, expires_at, user_agent, source_ip, auth_method)
			VALUES ($1, $2, $3, $4, $5, $6, 'oidc') RETURNING id`, userID, sha(res.SessionSecret), randomToken(20), res.SessionExpire,
			truncate(userAgent, 300), sourceIP).Scan(&sessionID); err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		_, err = audit.Record(actx, tx, audit.Entry{Action: "auth.login", TargetType: "session",
			TargetID: strconv.FormatInt(sessionID, 10),
			Details:  map[string]any{"email": email, "via": "oidc", "issuer": id.Issuer, "groups": groupsOrEmpty(id.Groups)}})
		return err
	})
	if errors.Is(err, ErrEmailUnverified) || errors.Is(err, ErrUserDisabled) {
		// Audited like a failed password login (the transaction changed nothing).
		actx := audit.WithActor(ctx, audit.Actor{Kind: audit.ActorAnonymous, Name: email})
		if ferr := pgx.BeginFunc(actx, s.pool, func(tx pgx.Tx) error {
			_, err := audit.Record(actx, tx, audit.Entry{Action: "auth.login_failed",
				Details: map[string]any{"email": email, "via": "oidc", "issuer": id.Issuer, "reason": err.Error()}})
			return err
		}); ferr != nil {
			return LoginResult{}, ferr
		}
		return LoginResult{}, err
	}
	if err != nil {
		return LoginResult{}, err
	}
	if len(changes) > 0 {
		s.log.InfoContext(ctx, "oidc login changed roles", "user", userID, "changes", len(changes))
	}
	if refused {
		return LoginResult{}, ErrNoAccess
	}
	s.cache.invalidate()
	p, err := s.SessionPrincipal(ctx, res.SessionSecret)
	if err != nil {
		return LoginResult{}, err
	}
	res.Principal = p
	res.AccessToken, res.AccessExpires, err = s.issueAccess(p)
	return res, err
}

// externalFirstLogin finds the user of an identity seen for the first time: the user with
// its email when the provider says it is verified (linked, audited), else a new user.
func (s *Service) externalFirstLogin(ctx context.Context, tx pgx.Tx, id ExternalIdentity, email, name string) (userID int64, status string, linked bool, err error) {
	var issuer *string
	err = tx.QueryRow(ctx, `SELECT id, status, oidc_issuer FROM users WHERE email = $1 FOR UPDATE`, email).Scan(&userID, &status, &issuer)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = tx.QueryRow(ctx, `INSERT INTO users (email, display_name, password_hash, oidc_issuer, oidc_subject)
			VALUES ($1, $2, $3, $4, $5) RETURNING id, status`, email, name, unusablePassword, id.Issuer, id.Subject).Scan(&userID, &status)
		if err != nil {
			return 0, "", false, fmt.Errorf("create user for %s: %w", email, err)
		}
		_, err = audit.Record(audit.WithActor(ctx, audit.Actor{Kind: audit.ActorUser, ID: strconv.FormatInt(userID, 10), Name: email}), tx,
			audit.Entry{Action: "user.create", TargetType: "user", TargetID: strconv.FormatInt(userID, 10),
				Details: map[string]any{"email": email, "federation_admin": false, "via": "oidc", "issuer": id.Issuer, "subject": id.Subject}})
		return userID, status, false, err
	case err != nil:
		return 0, "", false, fmt.Errorf("find user %s: %w", email, err)
	}
	// A user already has this email. Another identity of a provider is never replaced, and
	// an unverified email never links.
	if issuer != nil || !id.EmailVerified {
		return 0, "", false, ErrEmailUnverified
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET oidc_issuer = $2, oidc_subject = $3, updated_at = now() WHERE id = $1`,
		userID, id.Issuer, id.Subject); err != nil {
		return 0, "", false, fmt.Errorf("link user %d: %w", userID, err)
	}
	_, err = audit.Record(audit.WithActor(ctx, audit.Actor{Kind: audit.ActorUser, ID: strconv.FormatInt(userID, 10), Name: email}), tx,
		audit.Entry{Action: "user.oidc_link", TargetType: "user", TargetID: strconv.FormatInt(userID, 10), Person: &userID,
			Details: map[string]any{"email": email, "issuer": id.Issuer, "subject": id.Subject, "reason": "verified email"}})
	return userID, status, true, err
}

// applyExternalRoles makes the user's provider-granted roles those of the claims, audited
// one entry per change (membership added, re-roled or removed; federation admin granted
// or taken back). Slugs naming no member are skipped with a warning.
func (s *Service) applyExternalRoles(ctx context.Context, tx pgx.Tx, userID int64, id ExternalIdentity) ([]map[string]any, error) {
	var changes []map[string]any
	uid := strconv.FormatInt(userID, 10)
	// Members named by the claims.
	want := map[int64]Role{}
	slugOf := map[int64]string{}
	if len(id.Roles) > 0 {
		slugs := slices.Sorted(maps.Keys(id.Roles))
		rows, err := tx.Query(ctx, `SELECT id, slug FROM members WHERE slug = ANY($1)`, slugs)
		if err != nil {
			return nil, fmt.Errorf("find members of the claims: %w", err)
		}
		var mid int64
		var slug string
		if _, err := pgx.ForEachRow(rows, []any{&mid, &slug}, func() error {
			want[mid], slugOf[mid] = id.Roles[slug], slug
			return nil
		}); err != nil {
			return nil, err
		}
		found := slices.Collect(maps.Values(slugOf))
		for _, sl := range slugs {
			if !slices.Contains(found, sl) {
				s.log.WarnContext(ctx, "oidc role map names a member that does not exist", "member", sl)
			}
		}
	}
	// Current memberships.
	type cur struct {
		role   Role
		source string
		slug   string
	}
	have := map[int64]cur{}
	rows, err := tx.Query(ctx, `SELECT x.member_id, x.role, x.source, m.slug FROM memberships x JOIN members m ON m.id = x.member_id
		WHERE x.user_id = $1 FOR UPDATE OF x`, userID)
	if err != nil {
		return nil, fmt.Errorf("memberships of user %d: %w", userID, err)
	}
	var (
		mid          int64
		role, source string
		slug         string
	)
	if _, err := pgx.ForEachRow(rows, []any{&mid, &role, &source, &slug}, func() error {
		have[mid] = cur{Role(role), source, slug}
		return nil
	}); err != nil {
		return nil, err
	}
	record := func(action string, memberID int64, details map[string]any) error {
		details["via"] = "oidc"
		details["issuer"] = id.Issuer
		m := memberID
		_, err := audit.Record(ctx, tx, audit.Entry{Action: action, MemberID: &m, TargetType: "user", TargetID: uid, Details: details})
		changes = append(changes, details)
		return err
	}
	// Removed: granted by the provider before, not any more.
	for _, m := range slices.Sorted(maps.Keys(have)) {
		c := have[m]
		if _, ok := want[m]; ok || c.source != "oidc" {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND member_id = $2`, userID, m); err != nil {
			return nil, err
		}
		// The person's API tokens for that member go with the membership, as on the People page.
		rows, err := tx.Query(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND member_id = $2
			AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) RETURNING id, name, prefix`, userID, m)
		if err != nil {
			return nil, err
		}
		type revoked struct {
			id           int64
			name, prefix string
		}
		var t revoked
		var toks []revoked
		if _, err := pgx.ForEachRow(rows, []any{&t.id, &t.name, &t.prefix}, func() error { toks = append(toks, t); return nil }); err != nil {
			return nil, fmt.Errorf("revoke tokens: %w", err)
		}
		if err := record("member_user.remove", m, map[string]any{"member": c.slug, "role": c.role, "tokens_revoked": len(toks),
			"reason": "the identity provider's claims no longer grant it"}); err != nil {
			return nil, err
		}
		for _, t := range toks {
			mm := m
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", MemberID: &mm, TargetType: "token",
				TargetID: strconv.FormatInt(t.id, 10),
				Details:  map[string]any{"name": t.name, "prefix": t.prefix, "reason": "its creator lost the membership at the identity provider"}}); err != nil {
				return nil, err
			}
		}
	}
	// Added or re-roled: the claims' role, and the provider owns the membership from now on.
	for _, m := range slices.Sorted(maps.Keys(want)) {
		r := want[m]
		c, ok := have[m]
		if ok && c.role == r && c.source == "oidc" {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (user_id, member_id, role, source) VALUES ($1, $2, $3, 'oidc')
			ON CONFLICT (user_id, member_id) DO UPDATE SET role = excluded.role, source = 'oidc'`, userID, m, string(r)); err != nil {
			return nil, fmt.Errorf("set membership: %w", err)
		}
		action, details := "member_user.add", map[string]any{"member": slugOf[m], "role": r}
		if ok {
			action, details["previous_role"] = "member_user.role", c.role
		}
		if err := record(action, m, details); err != nil {
			return nil, err
		}
	}
	// Federation admin.
	var fed, fedOIDC bool
	if err := tx.QueryRow(ctx, `SELECT federation_admin, federation_admin_oidc FROM users WHERE id = $1`, userID).Scan(&fed, &fedOIDC); err != nil {
		return nil, err
	}
	var fedChange string
	switch {
	case id.FederationAdmin && !fed:
		_, err = tx.Exec(ctx, `UPDATE users SET federation_admin = true, federation_admin_oidc = true, updated_at = now() WHERE id = $1`, userID)
		fedChange = "granted"
	case !id.FederationAdmin && fed && fedOIDC:
		_, err = tx.Exec(ctx, `UPDATE users SET federation_admin = false, federation_admin_oidc = false, updated_at = now() WHERE id = $1`, userID)
		fedChange = "revoked"
	}
	if err != nil {
		return nil, err
	}
	if fedChange != "" {
		details := map[string]any{"federation_admin": fedChange == "granted", "via": "oidc", "issuer": id.Issuer}
		if fedChange == "revoked" {
			details["reason"] = "the identity provider's claims no longer grant it"
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "user.federation_admin", TargetType: "user", TargetID: uid, Details: details}); err != nil {
			return nil, err
		}
		changes = append(changes, details)
	}
	return changes, nil
}

func groupsOrEmpty(g []string) []string {
	if g == nil {
		return []string{}
	}
	if len(g) > 50 {
		return g[:50]
	}
	return g
}

// SessionAuthMethod says how a session was opened: "password" or "oidc".
func (s *Service) SessionAuthMethod(ctx context.Context, sessionID int64) (string, error) {
	var m string
	err := s.pool.QueryRow(ctx, `SELECT auth_method FROM sessions WHERE id = $1`, sessionID).Scan(&m)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return m, err
}
