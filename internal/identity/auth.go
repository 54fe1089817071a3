package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
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

// Login checks credentials and opens a session. Every failure answers
// ErrInvalidCredentials (or ErrThrottled), whether or not the email exists, in about the
// same time; failures are counted per account and per source address and audited.
func (s *Service) Login(ctx context.Context, email, password, sourceIP, userAgent string) (LoginResult, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	now := s.cfg.Now()
	var byEmail, byIP int
	if err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE email = $1), count(*) FILTER (WHERE source_ip = $2)
		FROM login_failures WHERE at > $3 AND (email = $1 OR source_ip = $2)`,
		email, sourceIP, now.Add(-s.cfg.FailureWindow)).Scan(&byEmail, &byIP); err != nil {
		return LoginResult{}, fmt.Errorf("count login failures: %w", err)
	}
	if byEmail >= s.cfg.MaxFailures || byIP >= s.cfg.MaxIPFailures {
		return LoginResult{}, ErrThrottled
	}
	var (
		userID int64
		hash   = dummyHash
		status string
	)
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash, status FROM users WHERE email = $1`, email).Scan(&userID, &hash, &status)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return LoginResult{}, fmt.Errorf("look up user: %w", err)
	}
	ok, verr := VerifyPassword(hash, password)
	if errors.Is(err, pgx.ErrNoRows) || verr != nil || !ok || status != "active" {
		if ferr := s.recordFailure(ctx, email, sourceIP); ferr != nil {
			return LoginResult{}, ferr
		}
		return LoginResult{}, ErrInvalidCredentials
	}
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

func (s *Service) recordFailure(ctx context.Context, email, ip string) error {
	actx := audit.WithActor(ctx, audit.Actor{Kind: audit.ActorAnonymous, Name: email})
	return pgx.BeginFunc(actx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(actx, `INSERT INTO login_failures (email, source_ip) VALUES ($1, $2)`, email, ip); err != nil {
			return err
		}
		_, err := audit.Record(actx, tx, audit.Entry{Action: "auth.login_failed", Details: map[string]any{"email": email}})
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
	var open bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2
		AND revoked_at IS NULL AND expires_at > $3)`, c.SessionID, uid, s.cfg.Now()).Scan(&open); err != nil {
		return nil, err
	}
	if !open {
		return nil, ErrSessionExpired
	}
	p, err := s.principalFor(ctx, uid, "access_token")
	if err != nil {
		return nil, err
	}
	p.SessionID = c.SessionID
	return p, nil
}

// SessionPrincipal returns the principal of an open session (portal cookie or refresh token).
func (s *Service) SessionPrincipal(ctx context.Context, secret string) (*Principal, error) {
	if !strings.HasPrefix(secret, SessionPrefix) {
		return nil, ErrSessionExpired
	}
	var (
		id, uid  int64
		csrf     string
		lastSeen time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, csrf_token, last_seen_at FROM sessions
		WHERE secret_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, sha(secret), s.cfg.Now()).Scan(&id, &uid, &csrf, &lastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrSessionExpired
	}
	if err != nil {
		return nil, err
	}
	p, err := s.principalFor(ctx, uid, "session")
	if err != nil {
		return nil, err
	}
	p.SessionID, p.CSRF = id, csrf
	if s.cfg.Now().Sub(lastSeen) > time.Minute {
		_, _ = s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id = $1`, id, s.cfg.Now())
	}
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, p.SessionID, s.cfg.Now()); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "auth.logout", TargetType: "session", TargetID: strconv.FormatInt(p.SessionID, 10)})
		return err
	})
}

// ChangePassword checks the current password and the policy, stores the new hash, revokes
// every other session of the user, and audits the change (never the password).
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string) error {
	var hash string
	if err := s.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, p.UserID).Scan(&hash); err != nil {
		return err
	}
	if ok, _ := VerifyPassword(hash, current); !ok {
		return &FieldError{Field: "current_password", Problem: "is not your current password"}
	}
	if err := CheckPasswordPolicy(next, p.Email); err != nil {
		return &FieldError{Field: "new_password", Problem: err.Error()}
	}
	newHash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() WHERE id = $1`, p.UserID, newHash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL`, p.UserID, p.SessionID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "user.password_change", TargetType: "user", TargetID: strconv.FormatInt(p.UserID, 10)})
		return err
	})
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
