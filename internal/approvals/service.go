package approvals

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// Errors of this package, in the shared vocabulary (internal/problem).
var (
	// ErrNotFound: no such request, or one the caller may not see.
	ErrNotFound = problem.NotFound("approval request")
)

// MinCoolingOff is the shortest cooling-off outside the sandbox / development mode.
const MinCoolingOff = 72 * time.Hour

// Limits of the settings.
const (
	MaxApprovalWindow  = 14 * 24 * time.Hour
	MinWindow          = time.Hour
	MaxExecutionWindow = 14 * 24 * time.Hour
	MaxRequired        = 20
)

// Executor performs one protected action once its request is approved, with the
// requester's authority (the context's audit actor is the requester). Hold, when set,
// starts the cooling-off of a data-destroying action (the vault becomes read-only, its
// data kept); Release undoes Hold when the request is cancelled or expires.
type Executor struct {
	Execute func(ctx context.Context, r Request) error
	Hold    func(ctx context.Context, r Request) error
	Release func(ctx context.Context, r Request) error
}

// Config configures the Service.
type Config struct {
	// AllowShortCoolingOff lets the cooling-off be set below 72 h: the sandbox and the
	// development mode only (the API and portal say so when it is).
	AllowShortCoolingOff bool
	// Now is the clock (tests fix it).
	Now func() time.Time
}

// Service is the approvals domain.
type Service struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	cfg   Config
	execs map[Action]Executor
	look  Lookups
}

// New builds the Service; executors are added with Handle.
func New(pool *pgxpool.Pool, log *slog.Logger, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, log: log, cfg: cfg, execs: map[Action]Executor{}}
}

// Handle registers the executor of a protected action (at wiring, before use).
func (s *Service) Handle(a Action, e Executor) { s.execs[a] = e }

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

func withSystemActor(ctx context.Context, job string) context.Context {
	if _, ok := audit.ActorFrom(ctx); ok {
		return ctx
	}
	return audit.WithActor(ctx, audit.System(job))
}

func actorName(ctx context.Context) string {
	if a, ok := audit.ActorFrom(ctx); ok {
		if a.Name != "" {
			return a.Name
		}
		return a.ID
	}
	return ""
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// WithClock returns a Service sharing s's pool, executors and lookups that reads the
// time from now (tests fix the clock with it).
func (s *Service) WithClock(now func() time.Time) *Service {
	c := *s
	c.cfg.Now = now
	return &c
}
