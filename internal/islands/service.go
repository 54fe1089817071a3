package islands

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

	"github.com/chatons/archipelago/internal/seal"
)

// Errors of this package besides ErrNotFound.
var (
	// ErrInUse means the object is still referenced (an island with live pledges, a member
	// operating an island) and cannot be deleted.
	ErrInUse = errors.New("still in use")
)

// FieldError is bad input, naming the field at fault.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ConflictError is a uniqueness violation, naming the field at fault.
type ConflictError struct {
	Field   string
	Problem string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Problem }

// UnreachableError means an island's admin API failed: it names the island and the
// Garage operation that failed.
type UnreachableError struct {
	Island    string
	Operation string
	Err       error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("island %q: %s failed: %v", e.Island, e.Operation, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

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

// Pool returns the database pool (for read helpers taking a Querier).
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// tx runs fn in a transaction, translating constraint violations into domain errors.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return translate(pgx.BeginFunc(ctx, s.pool, fn))
}

// constraintFields maps unique and check constraints to the API field they concern.
var constraintFields = map[string]ConflictError{
	"members_slug_key":      {"slug", "is already used by another member"},
	"islands_name_key":      {"name", "is already used by another island"},
	"pledges_live_node_key": {"node_id", "already has a live pledge on this island"},
}

func translate(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		if c, ok := constraintFields[pe.ConstraintName]; ok {
			return &c
		}
		return &ConflictError{Field: "", Problem: "already exists"}
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: still referenced by %s", ErrInUse, strings.ReplaceAll(pe.TableName, "_", " "))
	case "23514": // check_violation
		return &FieldError{Field: checkField(pe.ConstraintName), Problem: "is out of range"}
	}
	return err
}

func checkField(constraint string) string {
	for _, f := range []string{"slug", "name", "website", "description", "capacity_bytes", "zone", "node_id",
		"s3_region", "replication_factor"} {
		if strings.Contains(constraint, f) {
			return f
		}
	}
	return ""
}
