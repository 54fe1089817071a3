// Package database owns the connection to PostgreSQL, Archipelago's system of record, and
// the schema's migrations (jackc/tern over the files embedded from migrations/).
//
// It knows nothing of the domain: domain packages keep their own SQL.
package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/chatons/archipelago/migrations"
)

// AcquireTimeout bounds the wait for a pooled connection (and the work done with it) when
// the caller's context has no deadline of its own: no code path may wait forever for the
// pool, whose exhaustion would otherwise hang the process, River included.
const AcquireTimeout = 60 * time.Second

// Bounded returns ctx unchanged (with a no-op cancel) when it already has a deadline, and
// otherwise ctx bounded by d: the deadline every pool acquire needs.
func Bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// acquireDeadline is a pgx tracer that gives every pool acquire a deadline
// (AcquireTimeout) when the caller's context has none: a pool that is exhausted then
// answers an error instead of hanging its caller for ever. Only the wait for a
// connection is bounded; the query itself runs with the caller's context.
type acquireDeadline struct{ d time.Duration }

type acquireCancelKey struct{}

// TraceAcquireStart implements pgxpool.AcquireTracer.
func (a acquireDeadline) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	if _, ok := ctx.Deadline(); ok {
		return ctx
	}
	ctx, cancel := context.WithTimeout(ctx, a.d)
	return context.WithValue(ctx, acquireCancelKey{}, cancel)
}

// TraceAcquireEnd implements pgxpool.AcquireTracer.
func (acquireDeadline) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	if cancel, ok := ctx.Value(acquireCancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

// TraceQueryStart implements pgx.QueryTracer (nothing to do).
func (acquireDeadline) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer (nothing to do).
func (acquireDeadline) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// VersionTable is where tern records the applied schema version.
const VersionTable = "public.schema_version"

// Open connects a pool to url and checks the database answers within timeout. The error
// names ARCHIPELAGO_DATABASE_URL so an operator knows what to fix; it never includes the
// password.
//
// Every acquire from the pool waits at most AcquireTimeout when the caller's context has
// no deadline of its own.
func Open(ctx context.Context, url string, timeout time.Duration, maxConns ...int32) (*pgxpool.Pool, error) {
	n := int32(0)
	if len(maxConns) > 0 {
		n = maxConns[0]
	}
	return OpenWithAcquireTimeout(ctx, url, timeout, n, AcquireTimeout)
}

// OpenWithAcquireTimeout is Open with the pool size (0: pgxpool's default) and the
// longest wait for a connection given explicitly.
func OpenWithAcquireTimeout(ctx context.Context, url string, timeout time.Duration, maxConns int32, acquire time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("ARCHIPELAGO_DATABASE_URL: cannot parse it: %s", scrub(err))
	}
	// pgxpool's default (max(4, CPUs)) is too small for a server whose requests may hold a
	// vault lock on one connection while their transaction uses another; a pool_max_conns in
	// the URL still wins.
	if maxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = timeout
	if cfg.ConnConfig.Tracer == nil {
		cfg.ConnConfig.Tracer = acquireDeadline{acquire}
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "archipelago"
	// PostgreSQL's JIT compiles a query whose estimated cost passes jit_above_cost: for the
	// short aggregate reads of pages, reports and /metrics the compilation costs more than it
	// saves (8 of 10 s of a /metrics read at 10,000 members, docs/scale.md). A jit in the URL
	// ("?jit=on") still wins.
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ARCHIPELAGO_DATABASE_URL: %s", scrub(err))
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ARCHIPELAGO_DATABASE_URL: cannot reach the database at %s:%d: %s",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, scrub(err))
	}
	return pool, nil
}

// scrub keeps the useful part of a connection error without echoing the URL.
func scrub(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timed out"
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return errors.Unwrap(connErr).Error()
	}
	return err.Error()
}

// Migration is one migration file and whether it is applied.
type Migration struct {
	Version int32
	Name    string
	Applied bool
}

// Status is the schema's state compared with the migrations this binary carries.
type Status struct {
	Current    int32
	Latest     int32
	Migrations []Migration
}

// Pending reports whether migrations remain to apply.
func (s Status) Pending() bool { return s.Current < s.Latest }

// ErrSchemaBehind means the database schema is older than this binary expects.
var ErrSchemaBehind = errors.New("the database schema is behind this binary: run `archipelago migrate up` (or set ARCHIPELAGO_AUTO_MIGRATE=true)")

// ErrSchemaAhead means the database was migrated by a newer binary.
var ErrSchemaAhead = errors.New("the database schema is newer than this binary: upgrade archipelago")

func loadMigrations(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigratorEx(ctx, conn, VersionTable, &migrate.MigratorOptions{})
	if err != nil {
		return nil, fmt.Errorf("prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(migrationsFS()); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return m, nil
}

func migrationsFS() fs.FS { return migrations.FS }

// LatestVersion is the highest migration this binary carries.
func LatestVersion() (int32, error) {
	names, err := migrate.FindMigrations(migrationsFS())
	if err != nil {
		return 0, err
	}
	return int32(len(names)), nil
}

// CurrentVersion reads the applied version without creating anything (0 for an empty
// database).
func CurrentVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int32, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, VersionTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int32
	if err := q.QueryRow(ctx, `SELECT version FROM `+VersionTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// CheckCurrent returns ErrSchemaBehind or ErrSchemaAhead when the schema does not match.
func CheckCurrent(ctx context.Context, pool *pgxpool.Pool) error {
	cur, err := CurrentVersion(ctx, pool)
	if err != nil {
		return err
	}
	latest, err := LatestVersion()
	if err != nil {
		return err
	}
	switch {
	case cur < latest:
		return fmt.Errorf("schema at version %d, binary expects %d: %w", cur, latest, ErrSchemaBehind)
	case cur > latest:
		return fmt.Errorf("schema at version %d, binary expects %d: %w", cur, latest, ErrSchemaAhead)
	}
	if pending, err := riverPending(ctx, pool); err != nil {
		return err
	} else if pending {
		return fmt.Errorf("the job queue schema is behind: %w", ErrSchemaBehind)
	}
	return nil
}

// MigrateStatus lists the migrations and which are applied.
func MigrateStatus(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	cur, err := CurrentVersion(ctx, pool)
	if err != nil {
		return Status{}, err
	}
	names, err := migrate.FindMigrations(migrationsFS())
	if err != nil {
		return Status{}, err
	}
	st := Status{Current: cur, Latest: int32(len(names))}
	for i, n := range names {
		v := int32(i + 1)
		st.Migrations = append(st.Migrations, Migration{Version: v, Name: n, Applied: v <= cur})
	}
	return st, nil
}

// MigrateUp applies every pending migration, each in its own transaction, under tern's
// advisory lock so concurrent starts do not race. onApply, when set, is told each one.
func MigrateUp(ctx context.Context, pool *pgxpool.Pool, onApply func(version int32, name string)) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for migrations: %w", err)
	}
	defer conn.Release()
	m, err := loadMigrations(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if onApply != nil {
		m.OnStart = func(seq int32, name, _, _ string) { onApply(seq, name) }
	}
	cur, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return err
	}
	if latest := int32(len(m.Migrations)); cur > latest {
		return fmt.Errorf("schema at version %d, binary expects %d: %w", cur, latest, ErrSchemaAhead)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// River's own tables (the job queue), managed by River's migrator.
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("migrate river job queue: %w", err)
	}
	if onApply != nil {
		for _, v := range res.Versions {
			onApply(int32(v.Version), "river job queue: "+v.Name)
		}
	}
	return nil
}

// riverPending reports whether River's job-queue schema needs migrations.
func riverPending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	rm, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return false, err
	}
	res, err := rm.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{DryRun: true})
	if err != nil {
		return false, fmt.Errorf("check river job queue schema: %w", err)
	}
	return len(res.Versions) > 0, nil
}

// ExtraSchemaVersion names schema that MigrateUp installs besides migrations/ (River's);
// it keys test templates so they are rebuilt when it changes.
const ExtraSchemaVersion = "river-v0.51.0"

// Unavailable reports whether err means that the database could not be reached or went
// away (restarting, shutting down, connection refused, reset or cut mid-query) rather
// than refusing the statement: the request may succeed once PostgreSQL is back, so the
// API answers 503 with Retry-After instead of a 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01 admin_shutdown, 57P02 crash_shutdown,
		// 57P03 cannot_connect_now (starting up or in recovery).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr *net.OpError
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	// pgx reports a connection it closed after a failure as "conn closed".
	return strings.Contains(err.Error(), "conn closed")
}
