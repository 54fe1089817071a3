// Package identity owns who is calling: users and their memberships in member
// organisations, password hashing (argon2id) and policy, portal sessions, short-lived
// access tokens (JWT, HS256), opaque API tokens, and login throttling. It turns a request's
// credentials into a Principal; what a principal may do is decided by internal/authz.
//
// It never stores a password, session secret or API token in clear, and never logs one.
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (TokenGetByID, PersonList);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// Role is a user's role in a member organisation.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleViewer }

// AtLeast reports whether r grants everything want grants.
func (r Role) AtLeast(want Role) bool { return r == RoleAdmin || r == want }

// Errors of this package.
var (
	ErrNotFound           = problem.NotFound("object")
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrEmailTaken         = problem.Conflict("email", "a user with this email already exists")
	ErrThrottled          = &problem.ThrottledError{Problem: "too many failed attempts; wait a few minutes and try again"}
	ErrSessionExpired     = errors.New("session expired or revoked")
	// ErrBusy means too many passwords are being checked at once in this process: try
	// again in a moment (the HTTP layer answers 503 with Retry-After).
	ErrBusy = errors.New("too many logins are being checked right now; try again in a moment")
	// ErrTokenCannotMint means an API token tried to create an API token.
	ErrTokenCannotMint = &problem.ForbiddenError{Problem: "an API token cannot create API tokens: log in with your password (a session or an access token) to create one"}
)

// MemberRef is a membership as shown to people.
type MemberRef struct {
	ID   int64  `json:"member_id"`
	Slug string `json:"member_slug"`
	Name string `json:"member_name"`
	Role Role   `json:"role"`
}

// Principal is an authenticated caller.
type Principal struct {
	UserID          int64
	Email           string
	DisplayName     string
	FederationAdmin bool
	Members         []MemberRef // the memberships in effect for this credential
	Via             string      // "session", "access_token" or "api_token"
	SessionID       int64
	TokenID         int64
	TokenName       string
	CSRF            string // the session's CSRF token (portal sessions only)
	// Language is the user's own language setting ("en", "fr"; "" when they have not chosen
	// one), read with the principal so answering in it costs no statement (issue 18).
	Language string
}

// RoleIn returns the principal's role in a member.
func (p *Principal) RoleIn(memberID int64) (Role, bool) {
	for _, m := range p.Members {
		if m.ID == memberID {
			return m.Role, true
		}
	}
	return "", false
}

// MemberIDs lists the members the principal belongs to.
func (p *Principal) MemberIDs() []int64 {
	ids := make([]int64, 0, len(p.Members))
	for _, m := range p.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

// Actor is the audit actor for this principal.
func (p *Principal) Actor() audit.Actor {
	if p.Via == "api_token" {
		return audit.Actor{Kind: audit.ActorToken, ID: strconv.FormatInt(p.TokenID, 10), Name: p.Email + " (token " + p.TokenName + ")"}
	}
	return audit.Actor{Kind: audit.ActorUser, ID: strconv.FormatInt(p.UserID, 10), Name: p.Email}
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p (and p's audit actor).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return audit.WithActor(context.WithValue(ctx, ctxKey{}, p), p.Actor())
}

// PrincipalFrom returns the principal in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}

// Config configures the Service.
type Config struct {
	JWTKey        []byte        // HS256 key, ≥ 32 bytes
	Issuer        string        // the public URL
	AccessTTL     time.Duration // default 15 minutes
	SessionTTL    time.Duration // default 10 hours: a working day
	MaxFailures   int           // per account in FailureWindow, default 5
	MaxIPFailures int           // per source address in FailureWindow, default 30
	FailureWindow time.Duration // default 15 minutes
	// MaxConcurrentHashes bounds the argon2id computations (64 MiB each) this process runs
	// at once; default DefaultMaxConcurrentHashes.
	MaxConcurrentHashes int
	// PasswordCost is the argon2id cost of the hashes this Service writes; zero fields take
	// the production cost (64 MiB, 3 passes). Only test fixtures lower it.
	PasswordCost PasswordCost
	// HashWait is how long a login waits for a hashing slot before ErrBusy; default 2 s.
	HashWait time.Duration
	// ThrottleWait is how long a login waits for the database to decide its throttle and
	// find its account before ErrBusy (a flood of logins from one address queues on that
	// address's lock); default 20 s, well below the pool's own acquire deadline, so an
	// overloaded server answers 503 with Retry-After rather than a 500 or nothing.
	ThrottleWait time.Duration
	// PrincipalCacheTTL is how long a resolved credential is reused without asking the
	// database (default 2 s; negative disables the cache). Revocations through this Service
	// take effect at once; revocations by another process within this time.
	PrincipalCacheTTL time.Duration
	Now               func() time.Time
}

// DefaultMaxConcurrentHashes is the default bound on concurrent password hashing: two
// argon2id computations hold 128 MiB.
const DefaultMaxConcurrentHashes = 2

// Audience is the JWT audience of Archipelago's access tokens.
const Audience = "archipelago-api"

// Service implements identity over PostgreSQL.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	cfg  Config
	// hashSlots holds one token per argon2id computation running (MaxConcurrentHashes).
	hashSlots chan struct{}
	// hashes counts password verifications, for metrics and tests.
	hashes atomic.Int64
	cache  *principalCache
}

// New returns a Service. It panics on an unusable JWT key: configuration validation
// guarantees one.
func New(pool *pgxpool.Pool, log *slog.Logger, cfg Config) *Service {
	if len(cfg.JWTKey) < 32 {
		panic("identity: JWT key shorter than 32 bytes")
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 10 * time.Hour
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.MaxIPFailures == 0 {
		cfg.MaxIPFailures = 30
	}
	if cfg.FailureWindow == 0 {
		cfg.FailureWindow = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = DefaultMaxConcurrentHashes
	}
	if cfg.ThrottleWait <= 0 {
		cfg.ThrottleWait = 20 * time.Second
	}
	if cfg.HashWait <= 0 {
		cfg.HashWait = 2 * time.Second
	}
	if cfg.PrincipalCacheTTL == 0 {
		cfg.PrincipalCacheTTL = 2 * time.Second
	}
	return &Service{pool: pool, log: log, cfg: cfg, hashSlots: make(chan struct{}, cfg.MaxConcurrentHashes),
		cache: newPrincipalCache(cfg.PrincipalCacheTTL)}
}

// User is a person who can log in.
type User struct {
	ID              int64     `json:"id"`
	Email           string    `json:"email"`
	DisplayName     string    `json:"display_name"`
	Status          string    `json:"status"`
	FederationAdmin bool      `json:"federation_admin"`
	CreatedAt       time.Time `json:"created_at"`
}

// NormalizeEmail lower-cases and trims an email, and checks its shape.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(e, " \t\r\n<>\"") || len(e) > 254 {
		return "", errors.New("is not an email address")
	}
	return e, nil
}

// NewUser is what UserCreate needs.
type NewUser struct {
	Email           string
	DisplayName     string
	Password        string
	FederationAdmin bool
}

// UserCreate creates a user after checking the email and the password policy, and audits it.
func (s *Service) UserCreate(ctx context.Context, tx pgx.Tx, u NewUser) (User, error) {
	email, err := NormalizeEmail(u.Email)
	if err != nil {
		return User{}, &FieldError{Field: "email", Problem: err.Error()}
	}
	if err := CheckPasswordPolicy(u.Password, email); err != nil {
		return User{}, &FieldError{Field: "password", Problem: err.Error()}
	}
	hash, err := s.hashPassword(ctx, u.Password)
	if err != nil {
		return User{}, err
	}
	var out User
	err = tx.QueryRow(ctx, `INSERT INTO users (email, display_name, password_hash, federation_admin)
		VALUES ($1, $2, $3, $4) RETURNING id, email, display_name, status, federation_admin, created_at`,
		email, strings.TrimSpace(u.DisplayName), hash, u.FederationAdmin).
		Scan(&out.ID, &out.Email, &out.DisplayName, &out.Status, &out.FederationAdmin, &out.CreatedAt)
	if isUniqueViolation(err) {
		return User{}, ErrEmailTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	_, err = audit.Record(ctx, tx, audit.Entry{Action: "user.create", TargetType: "user", TargetID: strconv.FormatInt(out.ID, 10),
		Details: map[string]any{"email": out.Email, "federation_admin": out.FederationAdmin}})
	return out, err
}

// MembershipSet gives a user a role in a member (or changes it), audited.
func (s *Service) MembershipSet(ctx context.Context, tx pgx.Tx, userID, memberID int64, role Role) error {
	if !role.Valid() {
		return &FieldError{Field: "role", Problem: "must be admin or viewer"}
	}
	_, err := tx.Exec(ctx, `INSERT INTO memberships (user_id, member_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, member_id) DO UPDATE SET role = excluded.role`, userID, memberID, string(role))
	if err != nil {
		return fmt.Errorf("set membership: %w", err)
	}
	_, err = audit.Record(ctx, tx, audit.Entry{Action: "membership.set", MemberID: &memberID, TargetType: "user",
		TargetID: strconv.FormatInt(userID, 10), Details: map[string]any{"role": role}})
	s.cache.invalidate()
	return err
}

// UserByID returns a user.
func (s *Service) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.pool.QueryRow(ctx, `SELECT id, email, display_name, status, federation_admin, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Email, &u.DisplayName, &u.Status, &u.FederationAdmin, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// principalFor builds the principal of an active user (one statement).
func (s *Service) principalFor(ctx context.Context, userID int64, via string) (*Principal, error) {
	var r principalRow
	err := s.pool.QueryRow(ctx, `SELECT `+principalColumns+` FROM users u`+principalJoin+` WHERE u.id = $1`, userID).Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return r.principal(via)
}

// FieldError is a validation problem with a named input field.
type FieldError = problem.FieldError

func isUniqueViolation(err error) bool { return problem.IsUniqueViolation(err) }

// randomToken returns n random bytes in lower-case base32 without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
