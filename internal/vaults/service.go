package vaults

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chatons/archipelago/internal/problem"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/quota"
	"github.com/chatons/archipelago/internal/seal"
)

// Errors of this package.
var (
	// ErrNotFound: no such vault, key or grant.
	ErrNotFound = problem.NotFound("object")
	// ErrNoVerifier: the vault has no verifier key yet (it is pending).
	ErrNoVerifier = problem.Conflict("", "the vault has no verifier key yet")
)

// FieldError is bad input, naming the field at fault.
type FieldError = problem.FieldError

// ConflictError is a request that conflicts with the current state (a name already used,
// a key already rotated, a vault that is not active), naming the field when there is one.
type ConflictError = problem.ConflictError

// QuotaError is a quota the policy refuses; Decision holds the arithmetic. It unwraps to a
// problem.RefusedError (code quota_exceeded, field quota_bytes), which the front ends map.
type QuotaError struct {
	Decision quota.Decision
	Message  string
}

func (e *QuotaError) Error() string { return e.Message }

// Unwrap gives the refusal in the shared vocabulary.
func (e *QuotaError) Unwrap() error {
	return &problem.RefusedError{Code: "quota_exceeded", Field: "quota_bytes", Problem: e.Message}
}

// PlacementError refuses a placement: on an island the member operates without an
// override, or when no island can take the vault. It unwraps to a problem.RefusedError
// (code placement_refused, field island_id).
type PlacementError struct{ Problem string }

func (e *PlacementError) Error() string { return e.Problem }

// Unwrap gives the refusal in the shared vocabulary.
func (e *PlacementError) Unwrap() error {
	return &problem.RefusedError{Code: "placement_refused", Field: "island_id", Problem: e.Problem}
}

// UnreachableError means an island's admin API failed: it names the island and the
// Garage operation.
type UnreachableError = problem.UnreachableError

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
	// lockSlots bounds the connections tied up in vault locks (waiting or held) to half
	// the pool, leaving the lock holders the connections their work needs.
	lockSlots chan struct{}
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
	slots := 1
	if pool != nil {
		slots = max(1, int(pool.Config().MaxConns)/2)
	}
	return &Service{pool: pool, keys: keys, islands: isl, log: log, cfg: cfg, lockSlots: make(chan struct{}, slots)}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// tx runs fn in a transaction, translating constraint violations into domain errors.
// Waiting for a connection is bounded (database.AcquireTimeout when ctx has no deadline).
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	actx, cancel := database.Bounded(ctx, database.AcquireTimeout)
	defer cancel()
	return translate(pgx.BeginFunc(actx, s.pool, fn))
}

var constraints = problem.Constraints{
	Unique: map[string]problem.ConflictError{
		"vaults_bucket_name_key":   {Field: "name", Problem: "is already used by another vault of the federation"},
		"vaults_member_name_key":   {Field: "name", Problem: "is already used by another vault of this member"},
		"vaults_idempotency_key":   {Field: "idempotency_key", Problem: "was already used for another vault"},
		"vault_deletions_open_key": {Problem: "the vault's deletion is already scheduled"},
	},
	CheckFields: []string{"bucket_name", "quota_bytes", "max_objects", "name", "reason", "bytes", "quota_ratio",
		"overcommit", "key_grace_seconds", "vault_delete_grace_seconds", "idempotency_key"},
}

func translate(err error) error { return constraints.Translate(err) }

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

// lockVault waits (bounded by ctx, given a deadline when it has none) for a vault's
// lock: the work that changes a vault's bucket or keys on Garage (create, key creation
// and rotation) holds it, so the reconciler, which tries the same lock and skips a busy
// vault, never sees half-made state — a new key granted on Garage but not yet recorded
// would look foreign to it and lose its access.
//
// Waiting and holding keep one pooled connection (PostgreSQL's lock queue is fair: a
// waiter is not starved by a reconciler trying the lock in a loop), but at most lockSlots
// connections are ever tied up in vault locks, waiting or held: the rest of the pool
// stays free for the holders' own transactions. Before, DB_MAX_CONNS key creations could
// take every connection, each waiting for a lock whose holder needed one more connection.
func (s *Service) lockVault(ctx context.Context, id int64) (release func(), err error) {
	wctx, cancel := database.Bounded(ctx, s.cfg.GarageTimeout)
	defer cancel()
	busy := func(err error) error {
		if wctx.Err() != nil {
			return problem.Conflict("", "vault %d is busy with another operation (%v); try again", id, context.Cause(wctx))
		}
		return fmt.Errorf("lock vault %d: %w", id, err)
	}
	select {
	case s.lockSlots <- struct{}{}:
	case <-wctx.Done():
		return nil, busy(wctx.Err())
	}
	key := lockVault<<32 | id
	conn, err := s.pool.Acquire(wctx)
	if err != nil {
		<-s.lockSlots
		return nil, busy(err)
	}
	if _, err := conn.Exec(wctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Release()
		<-s.lockSlots
		return nil, busy(err)
	}
	return s.unlocker(ctx, conn, key), nil
}

// unlocker releases a session-level advisory lock, its connection and its slot.
func (s *Service) unlocker(ctx context.Context, conn *pgxpool.Conn, key int64) func() {
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			conn.Conn().Close(uctx) // closing the session releases the lock
		}
		conn.Release()
		<-s.lockSlots
	}
}

// tryLock takes a session-level advisory lock on its own connection; release ends it.
// ok is false (and release nil) when another process holds it. Waiting for a lock slot
// and for a connection is bounded by ctx (given a deadline when it has none).
func (s *Service) tryLock(ctx context.Context, key int64) (release func(), ok bool, err error) {
	actx, cancel := database.Bounded(ctx, s.cfg.GarageTimeout)
	defer cancel()
	select {
	case s.lockSlots <- struct{}{}:
	case <-actx.Done():
		return nil, false, fmt.Errorf("wait for a lock slot: %w", context.Cause(actx))
	}
	conn, err := s.pool.Acquire(actx)
	if err != nil {
		<-s.lockSlots
		return nil, false, err
	}
	if err := conn.QueryRow(actx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		<-s.lockSlots
		return nil, false, err
	}
	return s.unlocker(ctx, conn, key), true, nil
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
