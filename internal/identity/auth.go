package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// Prefixes that make Archipelago's credentials recognisable (for secret scanners, too).
const (
	SessionPrefix  = "arses_"
	APITokenPrefix = "arch_"
)

// LoginResult is what a successful login yields.
type LoginResult struct {
	Principal     *Principal
	SessionSecret string // the refresh token / portal cookie value; shown to the client once
	AccessToken   string
	AccessExpires time.Time
	SessionExpire time.Time
}

// Bounds on login input: an email address has at most 254 characters (RFC 5321), and a
// password longer than the policy allows cannot be right.
const (
	MaxEmailLength    = 254
	MaxPasswordLength = 1024
)

// Login checks credentials and opens a session. Every failure answers
// ErrInvalidCredentials (or ErrThrottled, ErrBusy), whether or not the email exists, in
// about the same time; failures are counted per account and per source address and audited.
//
// The throttle is decided before any password is verified, atomically: each attempt first
// reserves its place among the failures of its account and its address (a login_failures
// row, under locks on both), so parallel attempts cannot all pass before the first failure
// is counted — at most MaxFailures verifications per account and MaxIPFailures per
// address in FailureWindow, however many arrive at once. A successful login gives its
// place back. Verifications themselves are bounded per process (MaxConcurrentHashes: each
// argon2id verification allocates 64 MiB); an attempt that cannot get a slot within
// HashWait answers ErrBusy, and gives its place back too.
func (s *Service) Login(ctx context.Context, email, password, sourceIP, userAgent string) (LoginResult, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if utf8.RuneCountInString(email) > MaxEmailLength {
		return LoginResult{}, problem.Invalid("email", "must be at most %d characters", MaxEmailLength)
	}
	if utf8.RuneCountInString(password) > MaxPasswordLength {
		return LoginResult{}, problem.Invalid("password", "must be at most %d characters", MaxPasswordLength)
	}
	now := s.cfg.Now()
	// The throttle and the account lookup wait at most ThrottleWait for the database:
	// past it the server is overloaded (ErrBusy, 503), not broken.
	wctx, cancelWait := context.WithTimeout(ctx, s.cfg.ThrottleWait)
	defer cancelWait()
	busy := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%w (%w)", ErrBusy, err)
		}
		return err
	}
	attempt, err := s.reserveAttempt(wctx, email, sourceIP, now)
	if err != nil {
		return LoginResult{}, busy(err)
	}
	giveBack := func() {
		if _, err := s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM login_failures WHERE id = $1`, attempt); err != nil {
			s.log.WarnContext(ctx, "login: could not release a throttle reservation", "err", err)
		}
	}
	var (
		userID int64
		hash   = dummyHash
		status string
	)
	err = s.pool.QueryRow(wctx, `SELECT id, password_hash, status FROM users WHERE email = $1`, email).Scan(&userID, &hash, &status)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		giveBack()
		return LoginResult{}, busy(fmt.Errorf("look up user: %w", err))
	}
	known := err == nil
	// A user created by an external login has no password: verify against the dummy hash
	// anyway, so such an account answers in the time of any other (its quick refusal
	// would tell who signs in through the identity provider).
	passwordless := known && hash == unusablePassword
	if passwordless {
		hash = dummyHash
	}
	ok, verr := s.verifyPassword(ctx, hash, password)
	if errors.Is(verr, ErrBusy) || errors.Is(verr, context.Canceled) {
		giveBack()
		return LoginResult{}, verr
	}
	if !known || passwordless || verr != nil || !ok || status != "active" {
		var person *int64
		if known {
			person = &userID
		}
		if ferr := s.recordFailure(ctx, email, person); ferr != nil {
			return LoginResult{}, ferr
		}
		return LoginResult{}, ErrInvalidCredentials
	}
	giveBack()
	p, err := s.principalFor(ctx, userID, "session")
	if err != nil {
		return LoginResult{}, err
	}
	res := LoginResult{Principal: p, SessionSecret: SessionPrefix + randomToken(32), SessionExpire: now.Add(s.cfg.SessionTTL)}
	csrf := randomToken(20)
	actx := WithPrincipal(ctx, p)
	err = pgx.BeginFunc(actx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(actx, `INSERT INTO sessions (user_id, secret_hash, csrf_token, expires_at, user_agent, source_ip)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, userID, sha(res.SessionSecret), csrf, res.SessionExpire,
			truncate(userAgent, 300), sourceIP).Scan(&p.SessionID); err != nil {
			return err
		}
		_, err := audit.Record(actx, tx, audit.Entry{Action: "auth.login", TargetType: "session",
			TargetID: strconv.FormatInt(p.SessionID, 10), Details: map[string]any{"email": email}})
		return err
	})
	if err != nil {
		return LoginResult{}, fmt.Errorf("open session: %w", err)
	}
	p.CSRF = csrf
	res.AccessToken, res.AccessExpires, err = s.issueAccess(p)
	return res, err
}

// loginLockClass is the first key of the advisory locks that serialise the throttle
// decisions of one source address and of one account ("lgn").
const loginLockClass int32 = 0x6c676e

// reserveAttempt decides the throttle for one attempt and, when it passes, records the
// attempt as a failure until it proves otherwise, all under transaction-scoped locks on
// the address and on the account (always taken in that order), so that concurrent
// attempts are counted one after the other. It returns the reservation's id.
func (s *Service) reserveAttempt(ctx context.Context, email, ip string, now time.Time) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, loginLockClass, "ip:"+ip)
		b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, loginLockClass, "email:"+email)
		b.Queue(`INSERT INTO login_failures (email, source_ip, at) SELECT $1, $2, $3
			WHERE (SELECT count(*) FROM login_failures WHERE email = $1 AND at > $4) < $5
			  AND (SELECT count(*) FROM login_failures WHERE source_ip = $2 AND at > $4) < $6
			RETURNING id`, email, ip, now, now.Add(-s.cfg.FailureWindow), s.cfg.MaxFailures, s.cfg.MaxIPFailures).
			QueryRow(func(r pgx.Row) error { return r.Scan(&id) })
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrThrottled
	}
	if err != nil {
		return 0, fmt.Errorf("login throttle: %w", err)
	}
	return id, nil
}

// recordFailure audits a failed login (its login_failures row is the attempt's
// reservation, kept). The entry is personal: visible to the account's person when the
// email is one (person), else to federation admins only.
func (s *Service) recordFailure(ctx context.Context, email string, person *int64) error {
	actx := audit.WithActor(ctx, audit.Actor{Kind: audit.ActorAnonymous, Name: email})
	return pgx.BeginFunc(actx, s.pool, func(tx pgx.Tx) error {
		_, err := audit.Record(actx, tx, audit.Entry{Action: "auth.login_failed", Person: person, Details: map[string]any{"email": email}})
		return err
	})
}

type accessClaims struct {
	jwt.RegisteredClaims
	SessionID int64 `json:"sid"`
}

func (s *Service) issueAccess(p *Principal) (string, time.Time, error) {
	now := s.cfg.Now()
	exp := now.Add(s.cfg.AccessTTL)
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   strconv.FormatInt(p.UserID, 10),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        randomToken(10),
		},
		SessionID: p.SessionID,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.cfg.JWTKey)
	return tok, exp, err
}

// AccessPrincipal validates an access token (signature with the one pinned algorithm,
// issuer, audience, expiry and issue time) and that its session is still open.
func (s *Service) AccessPrincipal(ctx context.Context, token string) (*Principal, error) {
	var c accessClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.cfg.JWTKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithIssuer(s.cfg.Issuer), jwt.WithAudience(Audience),
		jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(s.cfg.Now))
	if err != nil {
		return nil, fmt.Errorf("access token: %w", err)
	}
	uid, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil {
		return nil, errors.New("access token: bad subject")
	}
	now := s.cfg.Now()
	key := credentialKey("access_token", token)
	if p, ok := s.cache.get(key, now); ok {
		return p, nil
	}
	gen := s.cache.generation()
	var (
		r       principalRow
		expires time.Time
	)
	err = s.pool.QueryRow(ctx, `SELECT s.expires_at, `+principalColumns+` FROM sessions s
		JOIN users u ON u.id = s.user_id`+principalJoin+`
		WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3`, c.SessionID, uid, now).
		Scan(append([]any{&expires}, r.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrSessionExpired
	}
	if err != nil {
		return nil, err
	}
	p, err := r.principal("access_token")
	if err != nil {
		return nil, err
	}
	p.SessionID = c.SessionID
	if c.ExpiresAt != nil && c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt.Time
	}
	s.cache.put(key, gen, p, now, expires)
	return p, nil
}

// SessionPrincipal returns the principal of an open session (portal cookie or refresh
// token). One SQL statement, or none when the session was resolved less than
// PrincipalCacheTTL ago (see resolve.go).
func (s *Service) SessionPrincipal(ctx context.Context, secret string) (*Principal, error) {
	if !strings.HasPrefix(secret, SessionPrefix) {
		return nil, ErrSessionExpired
	}
	now := s.cfg.Now()
	key := credentialKey("session", secret)
	if p, ok := s.cache.get(key, now); ok {
		return p, nil
	}
	gen := s.cache.generation()
	var (
		r                 principalRow
		id                int64
		csrf              string
		lastSeen, expires time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT s.id, s.csrf_token, s.last_seen_at, s.expires_at, `+principalColumns+`
		FROM sessions s JOIN users u ON u.id = s.user_id`+principalJoin+`
		WHERE s.secret_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2`, sha(secret), now).
		Scan(append([]any{&id, &csrf, &lastSeen, &expires}, r.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrSessionExpired
	}
	if err != nil {
		return nil, err
	}
	p, err := r.principal("session")
	if err != nil {
		return nil, err
	}
	p.SessionID, p.CSRF = id, csrf
	if now.Sub(lastSeen) > time.Minute {
		_, _ = s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id = $1`, id, now)
	}
	s.cache.put(key, gen, p, now, expires)
	return p, nil
}

// Refresh issues a new access token for an open session.
func (s *Service) Refresh(ctx context.Context, sessionSecret string) (string, time.Time, error) {
	p, err := s.SessionPrincipal(ctx, sessionSecret)
	if err != nil {
		return "", time.Time{}, err
	}
	return s.issueAccess(p)
}

// Logout revokes the principal's session, audited. Access tokens of the session stop
// working at once (they are checked against it).
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	if p.SessionID == 0 {
		return errors.New("this credential has no session to log out of")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, p.SessionID, s.cfg.Now()); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "auth.logout", TargetType: "session", TargetID: strconv.FormatInt(p.SessionID, 10)})
		return err
	})
	s.cache.invalidate()
	return err
}

// PasswordChange says what a password change ended, so the person can be told.
type PasswordChange struct {
	SessionsEnded int64 // the user's other open sessions, revoked
	TokensRevoked int   // the user's active API tokens, revoked
}

// ChangePassword checks the current password and the policy, stores the new hash, ends
// every other session of the user and revokes every API token the user created (whoever
// knew the old password may have made some), and audits it all (never the password).
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string) (PasswordChange, error) {
	var out PasswordChange
	if p.Via == "api_token" {
		return out, errors.New("an API token cannot change a password")
	}
	var hash string
	if err := s.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, p.UserID).Scan(&hash); err != nil {
		return out, err
	}
	ok, err := s.verifyPassword(ctx, hash, current)
	if errors.Is(err, ErrBusy) || errors.Is(err, context.Canceled) {
		return out, err
	}
	if !ok {
		return out, &FieldError{Field: "current_password", Problem: "is not your current password"}
	}
	if err := CheckPasswordPolicy(next, p.Email); err != nil {
		return out, &FieldError{Field: "new_password", Problem: err.Error()}
	}
	newHash, err := s.hashPassword(ctx, next)
	if err != nil {
		return out, err
	}
	defer s.cache.invalidate()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = PasswordChange{}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1`, p.UserID, newHash); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, p.UserID, p.SessionID)
		if err != nil {
			return err
		}
		out.SessionsEnded = tag.RowsAffected()
		rows, err := tx.Query(ctx, `UPDATE api_tokens SET revoked_at = now()
			WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
			RETURNING id, member_id, name, prefix`, p.UserID)
		if err != nil {
			return err
		}
		type revoked struct {
			id, member   int64
			name, prefix string
		}
		var toks []revoked
		var t revoked
		if _, err := pgx.ForEachRow(rows, []any{&t.id, &t.member, &t.name, &t.prefix}, func() error { toks = append(toks, t); return nil }); err != nil {
			return err
		}
		out.TokensRevoked = len(toks)
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "user.password_change", TargetType: "user", TargetID: strconv.FormatInt(p.UserID, 10),
			Details: map[string]any{"sessions_ended": out.SessionsEnded, "tokens_revoked": out.TokensRevoked}}); err != nil {
			return err
		}
		for _, t := range toks {
			if _, err := audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", MemberID: &t.member, TargetType: "token",
				TargetID: strconv.FormatInt(t.id, 10),
				Details:  map[string]any{"name": t.name, "prefix": t.prefix, "reason": "its creator changed their password"}}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// CheckCSRF compares a submitted CSRF token with the session's in constant time.
func CheckCSRF(p *Principal, submitted string) bool {
	return p.CSRF != "" && subtle.ConstantTimeCompare([]byte(p.CSRF), []byte(submitted)) == 1
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
