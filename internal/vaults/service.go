package vaults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/quota"
	"github.com/chatons/archipelago/internal/seal"
)

// Errors of this package.
var (
	// ErrNotFound: no such vault, key or grant.
	ErrNotFound = errors.New("not found")
	// ErrNoVerifier: the vault has no verifier key yet (it is pending).
	ErrNoVerifier = errors.New("the vault has no verifier key yet")
)

// FieldError is bad input, naming the field at fault.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ConflictError is a request that conflicts with the current state (a name already used,
// a key already rotated, a vault that is not active), naming the field when there is one.
type ConflictError struct {
	Field   string
	Problem string
}

func (e *ConflictError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// QuotaError is a quota the policy refuses; Decision holds the arithmetic.
type QuotaError struct {
	Decision quota.Decision
	Message  string
}

func (e *QuotaError) Error() string { return e.Message }

// PlacementError refuses a placement: on an island the member operates without an
// override, or when no island can take the vault.
type PlacementError struct{ Problem string }

func (e *PlacementError) Error() string { return e.Problem }

// UnreachableError means an island's admin API failed: it names the island and the
// Garage operation.
type UnreachableError struct {
	Island    string
	Operation string
	Err       error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("island %q: %s failed: %v", e.Island, e.Operation, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Islands gives Garage admin clients for islands (internal/islands implements it).
type Islands interface {
	GarageClient(ctx context.Context, islandID int64) (*garage.Client, error)
}

// Defaults of Config.
const (
	DefaultGarageTimeout = 20 * time.Second
	DefaultIslandTimeout = 60 * time.Second
	DefaultPendingGrace  = 2 * time.Minute
	DefaultSnippetPath   = "restic"
	DefaultUsageHistory  = 400 * 24 * time.Hour
)

// Config configures the Service.
type Config struct {
	// GarageTimeout bounds the Garage calls of one request (provisioning a vault, creating
	// a key) and of one vault's reconciliation; default 20s.
	GarageTimeout time.Duration
	// IslandTimeout bounds one island's share of a background run; default 60s.
	IslandTimeout time.Duration
	// PendingGrace is how old a pending vault must be before the reconciler takes it
	// over from the request that created it (longer than GarageTimeout); default 2 min.
	PendingGrace time.Duration
	// SnippetPath is the path inside the bucket of the restic repository the snippet
	// proposes; default "restic".
	SnippetPath string
	// UsageHistory is how long usage samples are kept; default 400 days.
	UsageHistory time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Service is the vaults domain.
type Service struct {
	pool    *pgxpool.Pool
	keys    *seal.Keyring
	islands Islands
	log     *slog.Logger
	cfg     Config
}

// New returns a Service.
func New(pool *pgxpool.Pool, keys *seal.Keyring, isl Islands, log *slog.Logger, cfg Config) *Service {
	cfg.GarageTimeout = cmp.Or(cfg.GarageTimeout, DefaultGarageTimeout)
	cfg.IslandTimeout = cmp.Or(cfg.IslandTimeout, DefaultIslandTimeout)
	if cfg.PendingGrace == 0 {
		cfg.PendingGrace = DefaultPendingGrace
	}
	cfg.SnippetPath = cmp.Or(cfg.SnippetPath, DefaultSnippetPath)
	cfg.UsageHistory = cmp.Or(cfg.UsageHistory, DefaultUsageHistory)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, keys: keys, islands: isl, log: log, cfg: cfg}
}

// Pool returns the database pool.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

func (s *Service) now() time.Time { return s.cfg.Now() }

// tx runs fn in a transaction, translating constraint violations into domain errors.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return translate(pgx.BeginFunc(ctx, s.pool, fn))
}

var constraintErrors = map[string]ConflictError{
	"vaults_bucket_name_key":   {"name", "is already used by another vault of the federation"},
	"vaults_member_name_key":   {"name", "is already used by another vault of this member"},
	"vaults_idempotency_key":   {"idempotency_key", "was already used for another vault"},
	"vault_deletions_open_key": {"", "the vault's deletion is already scheduled"},
}

func translate(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505":
		if c, ok := constraintErrors[pe.ConstraintName]; ok {
			return &c
		}
		return &ConflictError{Problem: "already exists"}
	case "23514":
		return &FieldError{Field: checkField(pe.ConstraintName), Problem: "is out of range"}
	}
	return err
}

func checkField(constraint string) string {
	for _, f := range []string{"bucket_name", "quota_bytes", "max_objects", "name", "reason", "bytes", "quota_ratio",
		"overcommit", "key_grace_seconds", "vault_delete_grace_seconds", "idempotency_key"} {
		if strings.Contains(constraint, f) {
			return f
		}
	}
	return ""
}

// Advisory lock namespaces (high 32 bits of the lock key).
const (
	lockAllocation int64 = 0x7661_756c // "vaul": every quota allocation, federation-wide
	lockVault      int64 = 0x7661_6c74 // "valt": one vault's Garage work (+ vault id)
)

// lockAllocations serialises quota allocations (vault creation, quota changes) so that two
// requests cannot both take the last bytes of a member or an island.
func lockAllocations(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAllocation<<32)
	return err
}

// lockVault waits (bounded by ctx) for a vault's lock: the work that changes a vault's
// bucket or keys on Garage (create, key creation and rotation) holds it, so the reconciler,
// which tries the same lock and skips a busy vault, never sees half-made state — a new key
// granted on Garage but not yet recorded would look foreign to it and lose its access.
func (s *Service) lockVault(ctx context.Context, id int64) (release func(), err error) {
	key := lockVault<<32 | id
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock vault %d: %w", id, err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			conn.Conn().Close(uctx) // closing the session releases the lock
		}
		conn.Release()
	}, nil
}

// tryLock takes a session-level advisory lock on its own connection; release ends it.
// ok is false (and release nil) when another process holds it.
func (s *Service) tryLock(ctx context.Context, key int64) (release func(), ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			conn.Conn().Close(uctx) // closing the session releases the lock
		}
		conn.Release()
	}, true, nil
}

func actorName(ctx context.Context) string {
	if a, ok := audit.ActorFrom(ctx); ok {
		return cmp.Or(a.Name, a.ID)
	}
	return ""
}

// garage returns the island's admin client.
func (s *Service) garage(ctx context.Context, islandID int64) (*garage.Client, error) {
	gc, err := s.islands.GarageClient(ctx, islandID)
	if err != nil {
		return nil, fmt.Errorf("garage client for island %d: %w", islandID, err)
	}
	return gc, nil
}

func unreachable(island, op string, err error) error {
	return &UnreachableError{Island: island, Operation: op, Err: err}
}
