package islands

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/chatons/archipelago/internal/problem"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/seal"
)

// Errors of this package besides ErrNotFound: aliases of the shared vocabulary
// (internal/problem), which both front ends map.
var (
	// ErrInUse means the object is still referenced (an island with live pledges, a member
	// operating an island) and cannot be deleted.
	ErrInUse = problem.ErrInUse
)

// FieldError is bad input, naming the field at fault.
type FieldError = problem.FieldError

// ConflictError is a uniqueness violation, naming the field at fault.
type ConflictError = problem.ConflictError

// UnreachableError means an island's admin API failed: it names the island and the
// Garage operation that failed.
type UnreachableError = problem.UnreachableError

// Defaults of Config.
const (
	DefaultPollTimeout = 10 * time.Second
	DefaultCallTimeout = 5 * time.Second
	DefaultHistory     = 30 * 24 * time.Hour
)

// Config configures the Service.
type Config struct {
	// PollTimeout bounds one island's poll (all its admin API calls); default 10s.
	PollTimeout time.Duration
	// CallTimeout bounds one admin API call made on behalf of a request (checking an
	// island when it is registered, a node when it is pledged); default 5s.
	CallTimeout time.Duration
	// DownAfter is how long Garage must report a node unreachable before its pledge is
	// "down". Zero (the default) means at the first poll that sees it down: Garage itself
	// only reports a node down after its pings failed.
	DownAfter time.Duration
	// History is how long observations are kept; default 30 days.
	History time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Service is the islands domain over PostgreSQL and the islands' Garage admin APIs.
type Service struct {
	pool *pgxpool.Pool
	keys *seal.Keyring
	log  *slog.Logger
	cfg  Config
}

// New returns a Service.
func New(pool *pgxpool.Pool, keys *seal.Keyring, log *slog.Logger, cfg Config) *Service {
	cfg.PollTimeout = cmp.Or(cfg.PollTimeout, DefaultPollTimeout)
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, DefaultCallTimeout)
	cfg.History = cmp.Or(cfg.History, DefaultHistory)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, keys: keys, log: log, cfg: cfg}
}

// tx runs fn in a transaction, translating constraint violations into domain errors.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return translate(pgx.BeginFunc(ctx, s.pool, fn))
}

// constraints maps unique and check constraints to the API field they concern.
var constraints = problem.Constraints{
	Unique: map[string]problem.ConflictError{
		"members_slug_key":      {Field: "slug", Problem: "is already used by another member"},
		"islands_name_key":      {Field: "name", Problem: "is already used by another island"},
		"pledges_live_node_key": {Field: "node_id", Problem: "already has a live pledge on this island"},
	},
	CheckFields: []string{"slug", "name", "website", "description", "capacity_bytes", "zone", "node_id",
		"s3_region", "replication_factor"},
}

func translate(err error) error { return constraints.Translate(err) }
