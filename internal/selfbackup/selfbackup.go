package selfbackup

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Errors of the domain.
var (
	// ErrNotConfigured: `archipelago admin backup init` has not been run.
	ErrNotConfigured = problem.NotFound("coordinator backup")
	// ErrConfigured: init was already run (the kit was given then).
	ErrConfigured = problem.Conflict("vault_id", "the coordinator's backup is already set up; its recovery kit was printed then")
	// ErrBusy: another backup of the coordinator is running.
	ErrBusy = errors.New("another backup of the coordinator is running")
)

// Run kinds.
const (
	KindBackup       = "backup"
	KindRestoreCheck = "restore_check"
)

// Sealing purposes of the two stored secrets.
const (
	purposeSecret   = "coordinator_backup/s3_secret"
	purposePassword = "coordinator_backup/password"
)

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{
		{Table: "coordinator_backup", IDColumn: "id", Column: "secret_sealed", Purpose: func(int64) string { return purposeSecret }},
		{Table: "coordinator_backup", IDColumn: "id", Column: "password_sealed", Purpose: func(int64) string { return purposePassword }},
	}
}

// Config configures the service. Zero values get defaults.
type Config struct {
	Logger *slog.Logger
	// Restic runs restic; nil makes every backup and check fail, saying so.
	Restic *restic.Runner
	// DatabaseURL is the coordinator's own database, which pg_dump dumps.
	DatabaseURL string
	// PGDump is pg_dump's path (ARCHIPELAGO_PG_DUMP); empty: FindPGTool. pg_restore is
	// looked for beside it.
	PGDump string
	// Keep is the retention applied after each backup (restic forget --prune); empty:
	// every snapshot is kept.
	Keep restic.ForgetPolicy
	// LockWaitTimeout is pg_dump's --lock-wait-timeout: a table locked exclusively this
	// long (a migration) fails the backup instead of holding it. Default 10 minutes.
	LockWaitTimeout time.Duration
	// ScratchDir holds the restore check's dump and throwaway PostgreSQL; empty: $TMPDIR.
	ScratchDir string
	// Host is the host name recorded in snapshots. Default "archipelago-coordinator".
	Host string
	// Now is the clock (tests).
	Now func() time.Time
}

// Service owns the coordinator's backup.
type Service struct {
	pool    *pgxpool.Pool
	keyring *seal.Keyring
	cfg     Config
	log     *slog.Logger
}

// New builds the service.
func New(pool *pgxpool.Pool, keyring *seal.Keyring, cfg Config) *Service {
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.LockWaitTimeout = cmp.Or(cfg.LockWaitTimeout, 10*time.Minute)
	cfg.Host = cmp.Or(cfg.Host, "archipelago-coordinator")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{pool: pool, keyring: keyring, cfg: cfg, log: cfg.Logger.With("component", "selfbackup")}
}

// Setup is where the coordinator backs itself up (no secret).
type Setup struct {
	VaultID       int64     `json:"vault_id"`
	RepositoryID  int64     `json:"repository_id"`
	RepositoryURL string    `json:"repository_url"`
	S3Region      string    `json:"s3_region"`
	AccessKeyID   string    `json:"access_key_id"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// SetupGet reads the setup, or ErrNotConfigured.
func SetupGet(ctx context.Context, q querier) (Setup, error) {
	var s Setup
	err := q.QueryRow(ctx, `SELECT vault_id, repository_id, repository_url, s3_region, access_key_id, created_by, created_at
		FROM coordinator_backup WHERE id = 1`).Scan(&s.VaultID, &s.RepositoryID, &s.RepositoryURL, &s.S3Region,
		&s.AccessKeyID, &s.CreatedBy, &s.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotConfigured
	}
	if err != nil {
		return s, fmt.Errorf("read the coordinator backup setup: %w", err)
	}
	return s, nil
}

// repo opens the stored secrets: the repository as the backup writes it.
func (s *Service) repo(ctx context.Context) (Setup, restic.Repo, error) {
	var secret, password string
	st, err := SetupGet(ctx, s.pool)
	if err != nil {
		return st, restic.Repo{}, err
	}
	if err := s.pool.QueryRow(ctx, `SELECT secret_sealed, password_sealed FROM coordinator_backup WHERE id = 1`).
		Scan(&secret, &password); err != nil {
		return st, restic.Repo{}, fmt.Errorf("read the coordinator backup secrets: %w", err)
	}
	sk, err := s.keyring.OpenString(purposeSecret, secret)
	if err != nil {
		return st, restic.Repo{}, fmt.Errorf("open the backup's S3 secret: %w", err)
	}
	pw, err := s.keyring.OpenString(purposePassword, password)
	if err != nil {
		return st, restic.Repo{}, fmt.Errorf("open the backup's repository password: %w", err)
	}
	return st, restic.Repo{URL: st.RepositoryURL, Password: pw, S3AccessKey: st.AccessKeyID, S3SecretKey: sk,
		S3Region: st.S3Region, CacheDir: s.cacheDir()}, nil
}

func (s *Service) cacheDir() string {
	if s.cfg.ScratchDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.ScratchDir, "cache", "coordinator-backup")
}

// InitInput says where the coordinator backs itself up: a vault (of the member that
// stands for the federation, on an island) and a read+write key of that vault.
type InitInput struct {
	VaultID         int64
	AccessKeyID     string
	SecretAccessKey string
	// Path is the repository's path in the vault; default "archipelago-coordinator".
	Path string
	// Name is the repository's name in restore tests; default "Coordinator database".
	Name string
}

// Registrar registers a repository for restore tests (*verify.Service).
type Registrar interface {
	RepositoryCreate(ctx context.Context, in verify.RepositoryInput) (verify.Repository, error)
}

// Init sets the backup up (audited): it creates the restic repository in the vault with a
// new random password, registers it for restore tests in full mode (the federation consents
// for its own data; the canary is the dump itself, which holds the repository's canary
// token), stores the key's secret and the password sealed, and returns the recovery kit.
// The kit is never shown again.
func (s *Service) Init(ctx context.Context, reg Registrar, in InitInput) (Kit, error) {
	if s.cfg.Restic == nil {
		return Kit{}, errors.New("restic is not available")
	}
	if _, err := SetupGet(ctx, s.pool); err == nil {
		return Kit{}, ErrConfigured
	} else if !errors.Is(err, ErrNotConfigured) {
		return Kit{}, err
	}
	in.Path = strings.Trim(cmp.Or(in.Path, "archipelago-coordinator"), "/")
	in.Name = cmp.Or(in.Name, "Coordinator database")
	if in.AccessKeyID == "" {
		return Kit{}, problem.Invalid("access_key_id", "is required: a read+write key of the vault (archipelago keys create --vault ID)")
	}
	if in.SecretAccessKey == "" {
		return Kit{}, problem.Invalid("secret_access_key", "is required (the key's secret, shown once when it was created)")
	}
	v, err := vaults.VaultGetByID(ctx, s.pool, in.VaultID)
	if errors.Is(err, vaults.ErrNotFound) {
		return Kit{}, problem.Invalid("vault_id", "no such vault")
	}
	if err != nil {
		return Kit{}, err
	}
	if v.Status != vaults.StatusActive {
		return Kit{}, problem.Invalid("vault_id", "the vault is %s, not active", v.Status)
	}
	kit := Kit{RepositoryURL: "s3:" + strings.TrimRight(v.S3Endpoint, "/") + "/" + v.BucketName + "/" + in.Path,
		Password: newPassword(), AccessKeyID: in.AccessKeyID, SecretAccessKey: in.SecretAccessKey, Region: v.S3Region,
		CreatedAt: s.cfg.Now()}
	if _, err := s.cfg.Restic.Init(ctx, kit.Repo(s.cacheDir())); err != nil {
		return Kit{}, fmt.Errorf("create the restic repository %s: %w", kit.RepositoryURL, err)
	}
	canary := "/" + DumpFile
	repo, err := reg.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: v.MemberID, VaultID: v.ID, Name: in.Name,
		Path: in.Path, Mode: verify.ModeFull, Password: kit.Password, FullModeConsent: verify.FullModeStatementVersion,
		Policy: verify.Policy{CanaryPath: &canary}})
	if err != nil {
		return Kit{}, fmt.Errorf("register the repository for restore tests: %w", err)
	}
	actor, _ := audit.ActorFrom(ctx)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO coordinator_backup (vault_id, repository_id, repository_url, s3_region,
			access_key_id, secret_sealed, password_sealed, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			v.ID, repo.ID, kit.RepositoryURL, kit.Region, kit.AccessKeyID,
			s.keyring.SealString(purposeSecret, kit.SecretAccessKey), s.keyring.SealString(purposePassword, kit.Password),
			actor.Name); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "coordinator_backup.init", MemberID: &v.MemberID,
			TargetType: "coordinator_backup", TargetID: "1", Details: map[string]any{"vault_id": v.ID,
				"repository_id": repo.ID, "repository_url": kit.RepositoryURL, "access_key_id": kit.AccessKeyID}})
		return err
	})
	if err != nil {
		return Kit{}, fmt.Errorf("store the coordinator backup setup: %w", err)
	}
	s.log.InfoContext(ctx, "coordinator backup set up", "vault_id", v.ID, "repository_id", repo.ID)
	return kit, nil
}

// newPassword is a repository password: 256 random bits.
func newPassword() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Result is one backup or restore check.
type Result struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger"`
	SnapshotID string    `json:"snapshot_id,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Metadata   Metadata  `json:"metadata"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Forgotten are the snapshots retention removed after this backup.
	Forgotten []string `json:"forgotten,omitempty"`
}

// Backup dumps the coordinator's database into the repository (audited, recorded), then
// applies the retention. The dump is taken in the snapshot where the schema version and the
// row counts are read (pg_export_snapshot, pg_dump --snapshot), so the snapshot's tags
// describe exactly what it holds. pg_dump writes the custom format uncompressed: restic
// compresses and deduplicates it, so unchanged tables cost nothing the next day.
func (s *Service) Backup(ctx context.Context, trigger string) (Result, error) {
	res := Result{Kind: KindBackup, Trigger: trigger, StartedAt: s.cfg.Now()}
	st, repo, err := s.repo(ctx)
	if err != nil {
		return res, err
	}
	err = s.backup(ctx, repo, &res)
	if errors.Is(err, ErrBusy) {
		return res, err // the other backup records its own run
	}
	if err == nil && !s.cfg.Keep.Empty() {
		err = s.forget(ctx, st, repo, &res)
	}
	return s.finish(ctx, res, err)
}

func (s *Service) backup(ctx context.Context, repo restic.Repo, res *Result) error {
	if s.cfg.Restic == nil {
		return errors.New("restic is not available")
	}
	pgDump := s.cfg.PGDump
	if pgDump == "" {
		var err error
		if pgDump, err = FindPGTool("pg_dump"); err != nil {
			return err
		}
	}
	conn, password, err := libpqConn(s.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	// One read-only transaction holds the snapshot pg_dump dumps, and the lock that keeps
	// two backups (the periodic job and the command) from running at once.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin the dump's transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('archipelago.coordinator_backup'))`).Scan(&locked); err != nil {
		return fmt.Errorf("take the backup lock: %w", err)
	}
	if !locked {
		return ErrBusy
	}
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return fmt.Errorf("export the dump's snapshot: %w", err)
	}
	if res.Metadata, err = readMetadata(ctx, tx); err != nil {
		return err
	}
	sum, err := s.cfg.Restic.BackupCommand(ctx, repo, restic.CommandBackupOptions{
		Command: []string{pgDump, "--format=custom", "--compress=0", "--no-password", "--snapshot=" + snapshot,
			"--lock-wait-timeout=" + strconv.FormatInt(s.cfg.LockWaitTimeout.Milliseconds(), 10), "--dbname=" + conn},
		Env:      []string{"PGPASSWORD=" + password},
		Filename: DumpFile, Tags: res.Metadata.tags(), Host: s.cfg.Host,
	})
	if err != nil {
		if !strings.Contains(err.Error(), "pg_dump") {
			err = fmt.Errorf("pg_dump into restic: %w", err)
		}
		return err
	}
	res.SnapshotID, res.Bytes = sum.SnapshotID, int64(sum.TotalBytesProcessed)
	return nil
}

// forget applies the retention to the coordinator's snapshots and tells the restore tests
// which snapshots the federation forgot itself, so that their deletion watch keeps warning
// only of deletions nobody recorded.
func (s *Service) forget(ctx context.Context, st Setup, repo restic.Repo, res *Result) error {
	keep := s.cfg.Keep
	keep.Tags = []string{Tag}
	fr, err := s.cfg.Restic.Forget(ctx, repo, keep, true)
	if err != nil {
		return fmt.Errorf("backup %s made; retention (restic forget --prune) failed: %w", short(res.SnapshotID), err)
	}
	res.Forgotten = fr.Removed
	if len(fr.Removed) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return verify.SnapshotsForgotten(ctx, tx, st.RepositoryID, fr.Removed, "the coordinator's backup retention")
	})
}

// finish records the run and its audit entry; it returns err (or the recording's error).
func (s *Service) finish(ctx context.Context, res Result, runErr error) (Result, error) {
	res.FinishedAt = s.cfg.Now()
	res.Status = "ok"
	if runErr != nil {
		res.Status, res.Error = "failed", cut(runErr.Error(), 4000)
	}
	details := map[string]any{"kind": res.Kind, "status": res.Status, "trigger": res.Trigger,
		"schema_version": res.Metadata.SchemaVersion, "rows": res.Metadata.Rows}
	if res.SnapshotID != "" {
		details["snapshot_id"], details["bytes"] = res.SnapshotID, res.Bytes
	}
	if len(res.Forgotten) > 0 {
		details["forgotten"] = res.Forgotten
	}
	if res.Error != "" {
		details["error"] = res.Error
	}
	var snap *string
	if res.SnapshotID != "" {
		snap = &res.SnapshotID
	}
	ctx = context.WithoutCancel(ctx) // a cancelled run is still recorded
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO coordinator_backup_runs (kind, status, trigger, snapshot_id, bytes, metadata,
			error, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			res.Kind, res.Status, res.Trigger, snap, nullIfZero(res.Bytes), res.Metadata, res.Error, res.StartedAt,
			res.FinishedAt).Scan(&res.ID); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "coordinator_backup." + res.Kind, TargetType: "coordinator_backup",
			TargetID: "1", Details: details})
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record the coordinator backup run", "kind", res.Kind, "err", err)
		return res, errors.Join(runErr, fmt.Errorf("record the run: %w", err))
	}
	if runErr != nil {
		s.log.WarnContext(ctx, "coordinator "+res.Kind+" failed", "err", runErr)
	} else {
		s.log.InfoContext(ctx, "coordinator "+res.Kind+" done", "snapshot", short(res.SnapshotID), "bytes", res.Bytes)
	}
	return res, runErr
}

func nullIfZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// RestoreCheck restores the newest dump into a throwaway PostgreSQL (internal/pgcluster:
// PostgreSQL's server programs must be installed; no service runs) and compares its schema
// version and row counts with the snapshot's (recorded, audited).
func (s *Service) RestoreCheck(ctx context.Context, trigger string) (Result, error) {
	res := Result{Kind: KindRestoreCheck, Trigger: trigger, StartedAt: s.cfg.Now()}
	_, repo, err := s.repo(ctx)
	if err != nil {
		return res, err
	}
	err = s.restoreCheck(ctx, repo, &res)
	return s.finish(ctx, res, err)
}

func (s *Service) restoreCheck(ctx context.Context, repo restic.Repo, res *Result) error {
	pgRestore := ""
	if s.cfg.PGDump != "" {
		pgRestore = filepath.Join(filepath.Dir(s.cfg.PGDump), "pg_restore")
	}
	dir, err := os.MkdirTemp(cmp.Or(s.cfg.ScratchDir, os.TempDir()), "archipelago-restorecheck-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), Logger: s.log})
	if err != nil {
		return fmt.Errorf("start a throwaway PostgreSQL: %w", err)
	}
	defer c.Stop()
	url, err := c.CreateDatabase(ctx, "archipelago_restore_check")
	if err != nil {
		return fmt.Errorf("create the throwaway database: %w", err)
	}
	r, err := Restore(ctx, RestoreOptions{Restic: s.cfg.Restic, Repo: repo, DatabaseURL: url, PGRestore: pgRestore, ScratchDir: dir})
	res.SnapshotID, res.Bytes, res.Metadata = r.Snapshot.ID, r.DumpBytes, r.Found
	if err != nil && r.Found.Rows == nil {
		res.Metadata = r.Expected
	}
	return err
}

// BackupIfDue runs Backup when the last successful one is older than nine tenths of every
// (a restart does not back up again), for the periodic task; without a setup it does nothing.
func (s *Service) BackupIfDue(ctx context.Context, every time.Duration) error {
	return s.ifDue(ctx, KindBackup, every, s.Backup)
}

// RestoreCheckIfDue is BackupIfDue for the restore check.
func (s *Service) RestoreCheckIfDue(ctx context.Context, every time.Duration) error {
	return s.ifDue(ctx, KindRestoreCheck, every, s.RestoreCheck)
}

func (s *Service) ifDue(ctx context.Context, kind string, every time.Duration, run func(context.Context, string) (Result, error)) error {
	if _, err := SetupGet(ctx, s.pool); errors.Is(err, ErrNotConfigured) {
		return nil
	} else if err != nil {
		return err
	}
	var last *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(finished_at) FROM coordinator_backup_runs WHERE kind = $1 AND status = 'ok'`,
		kind).Scan(&last); err != nil {
		return err
	}
	if last != nil && s.cfg.Now().Sub(*last) < every*9/10 {
		return nil
	}
	_, err := run(ctx, "schedule")
	if errors.Is(err, ErrBusy) {
		return nil
	}
	return err
}

// Status is the setup and the latest runs of each kind.
type Status struct {
	Setup *Setup `json:"setup"`
	// Last and LastOK are the latest run and the latest successful run of each kind.
	Last   map[string]Result `json:"last"`
	LastOK map[string]Result `json:"last_ok"`
}

// StatusGet reads the status (Setup nil: not set up).
func StatusGet(ctx context.Context, q querier) (Status, error) {
	st := Status{Last: map[string]Result{}, LastOK: map[string]Result{}}
	setup, err := SetupGet(ctx, q)
	switch {
	case err == nil:
		st.Setup = &setup
	case !errors.Is(err, ErrNotConfigured):
		return st, err
	}
	rows, err := q.Query(ctx, `(SELECT DISTINCT ON (kind) false, id, kind, status, trigger, coalesce(snapshot_id, ''),
			coalesce(bytes, 0), metadata, error, started_at, finished_at FROM coordinator_backup_runs ORDER BY kind, finished_at DESC, id DESC)
		UNION ALL
		(SELECT DISTINCT ON (kind) true, id, kind, status, trigger, coalesce(snapshot_id, ''), coalesce(bytes, 0), metadata,
			error, started_at, finished_at FROM coordinator_backup_runs WHERE status = 'ok' ORDER BY kind, finished_at DESC, id DESC)`)
	if err != nil {
		return st, fmt.Errorf("read the coordinator backup runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ok bool
		var r Result
		if err := rows.Scan(&ok, &r.ID, &r.Kind, &r.Status, &r.Trigger, &r.SnapshotID, &r.Bytes, &r.Metadata, &r.Error,
			&r.StartedAt, &r.FinishedAt); err != nil {
			return st, err
		}
		if ok {
			st.LastOK[r.Kind] = r
		} else {
			st.Last[r.Kind] = r
		}
	}
	return st, rows.Err()
}
