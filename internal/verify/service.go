package verify

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
)

// Enqueuer inserts River jobs in a transaction (*river.Client[pgx.Tx] is one).
type Enqueuer interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Config configures the service. Zero values get defaults.
type Config struct {
	Logger *slog.Logger
	// Restic runs restic; nil means restic is missing on this machine (tests then end in error).
	Restic *restic.Runner
	// ScratchDir holds one directory per process (proc-<pid>-<random>, locked while the
	// process lives) and in it one per running test (restores, restic's cache); the
	// directories of dead processes are reclaimed at start and by the sweeper. Default:
	// $TMPDIR/archipelago-scratch.
	ScratchDir string
	// CacheDir holds restic's cache of each repository (repository-<id>), kept between
	// tests so that they start warm (index, snapshots and trees are not downloaded again);
	// the sweeper removes the caches not used for CacheKeep (default 3 days). Default:
	// ScratchDir/cache.
	CacheDir  string
	CacheKeep time.Duration
	// Worker names this process in runs (default hostname:pid).
	Worker string
	// Credentials returns a vault's endpoint and read-only verifier key. Default: read from
	// the vaults tables and opened with the keyring.
	Credentials func(ctx context.Context, vaultID int64) (Credentials, error)
	// TestTimeout bounds one test (default DefaultTestTimeout). River retries the test of a
	// worker that died once this long has passed since it started.
	TestTimeout time.Duration
	// MaxAttempts of a test whose attempts end in error (default 4); failures never retry.
	MaxAttempts int
	// PostponeDelay is how long a test waits when an exclusive lock is in the repository
	// (default 10m); MaxPostponements of them (default 12) end the test in error.
	PostponeDelay    time.Duration
	MaxPostponements int
	// SlotWait is how long a test waits for a free slot of its island (default 20s, jittered).
	SlotWait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HeartbeatEvery is how often a running test says it is alive (default
	// DefaultHeartbeatEvery); HeartbeatTimeout is how long without a heartbeat makes its
	// worker dead (default DefaultHeartbeatTimeout); SweepEvery is how often the sweeper
	// retries the tests of dead workers and closes runs whose job ended without a result
	// (default DefaultSweepEvery).
	HeartbeatEvery   time.Duration
	HeartbeatTimeout time.Duration
	SweepEvery       time.Duration
	// ClockTolerance is how far in the future a snapshot may be dated before it is reported
	// as "clock ahead" and judged by its upload time instead (default DefaultClockTolerance).
	ClockTolerance time.Duration
	// ContentHashCycle is how often the content-hash level reads every object of a
	// repository at least once (default DefaultContentHashCycle, 30 days).
	ContentHashCycle time.Duration
	// FirstTestDelay is how soon after its registration a repository is tested for the first
	// time, whatever its schedule (default DefaultFirstTestDelay).
	FirstTestDelay time.Duration
}

// DefaultFirstTestDelay is Config.FirstTestDelay's default: the member sees the first
// outcome within minutes of registering, not at the next scheduled window.
const DefaultFirstTestDelay = 2 * time.Minute

// DefaultClockTolerance is Config.ClockTolerance's default.
const DefaultClockTolerance = 15 * time.Minute

// DefaultTestTimeout bounds one test.
const DefaultTestTimeout = 2 * time.Hour

// Service owns repositories, the scheduler and the test worker.
type Service struct {
	pool    *pgxpool.Pool
	keyring *seal.Keyring
	cfg     Config
	log     *slog.Logger
	queue   Enqueuer

	// beforeRecheck is a test seam, nil in production: when set it runs between a restic
	// check that found errors and the re-check that decides whether they are real (a test
	// makes a pack vanish and come back there, as a concurrent prune would). It gets the
	// first check's result.
	beforeRecheck func(first *restic.CheckResult)
	// removeSample is a test seam, nil in production (os.RemoveAll): it removes a test's
	// restored sample.
	removeSample func(dir string) error

	// Island slot connections left idle by finished tests (acquireSlot).
	slotMu   sync.Mutex
	slotIdle []*idleSlot

	// This process's scratch directory, created and locked on first use (procDir).
	scratchMu   sync.Mutex
	scratchDir  string
	scratchLock *os.File

	evidence evidenceSources

	// s3Transport carries the verifier key's requests to the islands, its connections
	// kept open between requests and tests (nil: each client makes its own).
	s3Transport *http.Transport
}

// New builds the service. Call UseQueue before enqueuing tests.
func New(pool *pgxpool.Pool, keyring *seal.Keyring, cfg Config) *Service {
	host, _ := os.Hostname()
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.ScratchDir = cmp.Or(cfg.ScratchDir, os.TempDir()+"/archipelago-scratch")
	cfg.Worker = cmp.Or(cfg.Worker, host+":"+strconv.Itoa(os.Getpid()))
	cfg.CacheDir = cmp.Or(cfg.CacheDir, filepath.Join(cfg.ScratchDir, "cache"))
	cfg.CacheKeep = cmp.Or(cfg.CacheKeep, 3*24*time.Hour)
	cfg.TestTimeout = cmp.Or(cfg.TestTimeout, DefaultTestTimeout)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 4)
	cfg.PostponeDelay = cmp.Or(cfg.PostponeDelay, 10*time.Minute)
	cfg.MaxPostponements = cmp.Or(cfg.MaxPostponements, 12)
	cfg.SlotWait = cmp.Or(cfg.SlotWait, 20*time.Second)
	cfg.HeartbeatEvery = cmp.Or(cfg.HeartbeatEvery, DefaultHeartbeatEvery)
	cfg.HeartbeatTimeout = max(cmp.Or(cfg.HeartbeatTimeout, DefaultHeartbeatTimeout), 3*cfg.HeartbeatEvery)
	cfg.SweepEvery = cmp.Or(cfg.SweepEvery, DefaultSweepEvery)
	cfg.ClockTolerance = cmp.Or(cfg.ClockTolerance, DefaultClockTolerance)
	cfg.ContentHashCycle = cmp.Or(cfg.ContentHashCycle, DefaultContentHashCycle)
	cfg.FirstTestDelay = cmp.Or(cfg.FirstTestDelay, DefaultFirstTestDelay)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{pool: pool, keyring: keyring, cfg: cfg, log: cfg.Logger}
	if tr, err := minio.DefaultTransport(true); err == nil {
		s.s3Transport = tr
	}
	if s.cfg.Credentials == nil {
		s.cfg.Credentials = s.credentialsFromDB
	}
	return s
}

// UseQueue sets where tests are enqueued (the River client; set once at wiring).
func (s *Service) UseQueue(q Enqueuer) { s.queue = q }

// credentialsFromDB reads the vault's island endpoint and its verifier key (the secret is
// sealed by internal/vaults under "vault/<id>/verifier_secret").
func (s *Service) credentialsFromDB(ctx context.Context, vaultID int64) (Credentials, error) {
	var c Credentials
	var sealed string
	err := s.pool.QueryRow(ctx, `SELECT i.s3_endpoint, i.s3_region, v.bucket_name, k.access_key_id, k.secret_sealed
		FROM vaults v JOIN islands i ON i.id = v.island_id JOIN vault_verifier_keys k ON k.vault_id = v.id
		WHERE v.id = $1`, vaultID).Scan(&c.Endpoint, &c.Region, &c.Bucket, &c.AccessKeyID, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("vault %d has no verifier key yet", vaultID)
	}
	if err != nil {
		return c, fmt.Errorf("read verifier key of vault %d: %w", vaultID, err)
	}
	c.SecretAccessKey, err = s.keyring.OpenString(fmt.Sprintf("vault/%d/verifier_secret", vaultID), sealed)
	if err != nil {
		return c, fmt.Errorf("open verifier key of vault %d: %w", vaultID, err)
	}
	return c, nil
}

func passwordPurpose(repoID int64) string { return fmt.Sprintf("repository/%d/password", repoID) }

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{{Table: "restic_repositories", IDColumn: "id", Column: "password_sealed", Purpose: passwordPurpose}}
}

// NewCanaryToken returns a fresh canary token.
func NewCanaryToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "archipelago-canary-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:26]
}

// RepositoryInput creates a repository.
type RepositoryInput struct {
	MemberID int64
	VaultID  int64
	Name     string
	Path     string
	// Mode is blind, attested or full; empty means full with a password, blind without.
	Mode string
	// Password of the restic key the member added for Archipelago: full mode only.
	Password string
	// FullModeConsent must be FullModeStatementVersion in full mode (the member read
	// FullModeStatement and accepts it); the consent is recorded with who and when.
	FullModeConsent string
	Policy          Policy
}

var repoPath = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`)

func validatePath(p string) error {
	if !repoPath.MatchString(p) {
		return &FieldError{Field: "path", Problem: "must be a path inside the bucket such as \"restic/web01\" (letters, digits, . _ - and /, no leading or trailing /)"}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return &FieldError{Field: "path", Problem: "must not contain . or .. segments"}
		}
	}
	return nil
}

func validatePassword(pw string) error {
	if len(pw) < 8 || len(pw) > 4096 {
		return &FieldError{Field: "password", Problem: "must be 8 to 4096 bytes (the password of the key you added with `restic key add`)"}
	}
	return nil
}

// validatePolicy checks the values that are set.
func validatePolicy(p Policy) error {
	if p.Schedule != nil {
		if _, err := ParseSchedule(*p.Schedule); err != nil {
			return &FieldError{Field: "policy.schedule", Problem: err.Error()}
		}
	}
	check := func(field string, v *int, lo, hi int) error {
		if v != nil && (*v < lo || *v > hi) {
			return problem.Invalid("policy."+field, "must be between %d and %d", lo, hi)
		}
		return nil
	}
	check64 := func(field string, v *int64, lo, hi int64) error {
		if v != nil && (*v < lo || *v > hi) {
			return problem.Invalid("policy."+field, "must be between %d and %d", lo, hi)
		}
		return nil
	}
	if err := errors.Join(
		check("window_start_minute", p.WindowStartMinute, 0, 1439), check("window_minutes", p.WindowMinutes, 0, 1440),
		check("jitter_seconds", p.JitterSeconds, 0, 7*86400), check64("rpo_seconds", p.RPOSeconds, 60, 365*86400),
		check64("rto_seconds", p.RTOSeconds, 60, 365*86400), check("sample_files", p.SampleFiles, 0, 100000),
		check64("sample_bytes", p.SampleBytes, 0, 1<<50), check("check_every_runs", p.CheckEveryRuns, 1, 1000),
		check("check_subsets", p.CheckSubsets, 1, 10000), check("full_restore_days", p.FullRestoreDays, 0, 3650),
	); err != nil {
		var fe *FieldError
		errors.As(err, &fe)
		return fe
	}
	if p.CanaryPath != nil && (len(*p.CanaryPath) == 0 || len(*p.CanaryPath) > 1000 || strings.ContainsRune(*p.CanaryPath, 0)) {
		return &FieldError{Field: "policy.canary_path", Problem: "must be a file name or an absolute path in the snapshot (1-1000 bytes)"}
	}
	return validateTarget(p.Target)
}

// checkPassword proves the password opens the repository (restic cat config with the
// verifier key). Only a wrong password or a missing repository is refused: when the island
// cannot be reached the repository is accepted and the first test will tell.
func (s *Service) checkPassword(ctx context.Context, vaultID int64, path, password string) error {
	if s.cfg.Restic == nil {
		return nil
	}
	creds, err := s.cfg.Credentials(ctx, vaultID)
	if err != nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "archipelago-pwcheck-")
	if err != nil {
		return nil
	}
	defer os.RemoveAll(dir)
	t := target{prefix: path, creds: creds, password: password, scratch: dir}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = s.cfg.Restic.CatConfig(cctx, t.resticRepo())
	switch {
	case errors.Is(err, restic.ErrWrongPassword):
		return &FieldError{Field: "password", Problem: "does not open the repository at this path: give the password of the key you added with `restic key add`"}
	case errors.Is(err, restic.ErrRepositoryNotFound):
		return &FieldError{Field: "path", Problem: "there is no restic repository at this path of the vault"}
	}
	return nil
}

// RepositoryCreate registers a repository (audited). The password, when given, is sealed.
func (s *Service) RepositoryCreate(ctx context.Context, in RepositoryInput) (Repository, error) {
	in.Name = strings.TrimSpace(in.Name)
	if l := len(in.Name); l < 1 || l > 100 {
		return Repository{}, &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
	}
	in.Path = strings.Trim(strings.TrimSpace(in.Path), "/")
	if err := validatePath(in.Path); err != nil {
		return Repository{}, err
	}
	mode := in.Mode
	if mode == "" {
		mode = ModeBlind
		if in.Password != "" {
			mode = ModeFull
		}
	}
	switch mode {
	case ModeFull:
		if err := validatePassword(in.Password); err != nil {
			return Repository{}, err
		}
		if err := checkConsent(in.FullModeConsent); err != nil {
			return Repository{}, err
		}
	case ModeBlind, ModeAttested:
		if in.Password != "" {
			return Repository{}, &FieldError{Field: "password", Problem: "must be empty in " + mode + " mode: the federation holds no password"}
		}
	default:
		return Repository{}, &FieldError{Field: "mode", Problem: "must be blind, attested or full"}
	}
	if err := validatePolicy(in.Policy); err != nil {
		return Repository{}, err
	}
	var vaultMember int64
	var vaultStatus string
	err := s.pool.QueryRow(ctx, `SELECT member_id, status FROM vaults WHERE id = $1`, in.VaultID).Scan(&vaultMember, &vaultStatus)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (vaultMember != in.MemberID || vaultStatus == "deleted" || vaultStatus == "deleting")) {
		return Repository{}, &FieldError{Field: "vault_id", Problem: "no such vault of this member"}
	}
	if err != nil {
		return Repository{}, fmt.Errorf("read vault %d: %w", in.VaultID, err)
	}
	notice, err := s.checkPath(ctx, in.VaultID, in.Path)
	if err != nil {
		return Repository{}, err
	}
	if mode == ModeFull && notice == "" {
		if err := s.checkPassword(ctx, in.VaultID, in.Path, in.Password); err != nil {
			return Repository{}, err
		}
	}
	actor, _ := audit.ActorFrom(ctx)
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p := in.Policy
		err := tx.QueryRow(ctx, `INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, password_sealed,
			password_set_at, canary_token, schedule, window_start_minute, window_minutes, jitter_seconds, rpo_seconds,
			rto_seconds, sample_files, sample_bytes, check_every_runs, check_subsets, full_restore_days, canary_path, created_by)
			VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'full' THEN 'pending' END, CASE WHEN $5 = 'full' THEN now() END, $6,
			$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id`,
			in.MemberID, in.VaultID, in.Name, in.Path, mode, NewCanaryToken(), p.Schedule, p.WindowStartMinute,
			p.WindowMinutes, p.JitterSeconds, p.RPOSeconds, p.RTOSeconds, p.SampleFiles, p.SampleBytes, p.CheckEveryRuns,
			p.CheckSubsets, p.FullRestoreDays, p.CanaryPath, actor.Name).Scan(&id)
		if err != nil {
			return constraints.Translate(err)
		}
		if err := setTestTarget(ctx, tx, id, p.Target); err != nil {
			return err
		}
		details := map[string]any{"name": in.Name, "vault_id": in.VaultID, "path": in.Path, "mode": mode, "policy": policyDetails(in.Policy)}
		if mode == ModeFull {
			if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET password_sealed = $2 WHERE id = $1`,
				id, s.keyring.SealString(passwordPurpose(id), in.Password)); err != nil {
				return err
			}
			if err := recordConsent(ctx, tx, id, actor.Name); err != nil {
				return err
			}
			details["full_mode_consent"] = FullModeStatementVersion
		}
		if err := s.scheduleNext(ctx, tx, id); err != nil {
			return err
		}
		// The first test comes within minutes, not at the next window of the schedule.
		if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET next_run_at = least(next_run_at, $2) WHERE id = $1`,
			id, s.cfg.Now().Add(s.cfg.FirstTestDelay)); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.create", MemberID: &in.MemberID,
			TargetType: "restic_repository", TargetID: strconv.FormatInt(id, 10),
			Details: details})
		return err
	})
	if err != nil {
		return Repository{}, err
	}
	repo, err := RepositoryGetByID(ctx, s.pool, id)
	repo.Notice = notice
	return repo, err
}

// checkPath looks, with the vault's read-only verifier key, for the repository's config
// object at path. Nothing there is the member's mistake and is refused (a FieldError on
// path); an island or a key that does not answer is the verifier's problem: the repository
// is registered and the returned notice says the path could not be checked.
func (s *Service) checkPath(ctx context.Context, vaultID int64, prefix string) (notice string, err error) {
	const unchecked = "the path could not be checked (the island did not answer the verifier): the first test will tell"
	creds, err := s.cfg.Credentials(ctx, vaultID)
	if err != nil {
		s.log.WarnContext(ctx, "repository path not checked at registration", "vault_id", vaultID, "error", err)
		return unchecked, nil
	}
	err = probe(ctx, creds, prefix)
	if err == nil {
		return "", nil
	}
	if er := (minio.ErrorResponse{}); errors.As(err, &er) && er.Code == "NoSuchKey" {
		return "", problem.Invalid("path", "no restic repository at %q of the vault (no %s/config): run `restic init` first, or check the path", prefix, prefix)
	}
	s.log.WarnContext(ctx, "repository path not checked at registration", "vault_id", vaultID, "error", err)
	return unchecked, nil
}

// constraints says what the repositories' constraints mean: a duplicate name or path is a
// conflict (409) naming the field, as a duplicate is everywhere in the API.
var constraints = problem.Constraints{Unique: map[string]problem.ConflictError{
	"restic_repositories_member_name_key": {Field: "name", Problem: "a repository of this member already has this name"},
	"restic_repositories_vault_path_key":  {Field: "path", Problem: "a repository is already registered at this path of the vault"},
}}

// policyDetails lists the set policy values for the audit log.
func policyDetails(p Policy) map[string]any {
	out := map[string]any{}
	add := func(k string, set bool, v any) {
		if set {
			out[k] = v
		}
	}
	deref := func(v any) any { return v }
	if p.Schedule != nil {
		add("schedule", true, *p.Schedule)
	}
	if p.RPOSeconds != nil {
		add("rpo_seconds", true, *p.RPOSeconds)
	}
	if p.RTOSeconds != nil {
		add("rto_seconds", true, *p.RTOSeconds)
	}
	if p.FullRestoreDays != nil {
		add("full_restore_days", true, *p.FullRestoreDays)
	}
	if p.CanaryPath != nil {
		add("canary_path", true, deref(*p.CanaryPath))
	}
	if p.SampleFiles != nil {
		add("sample_files", true, *p.SampleFiles)
	}
	if p.SampleBytes != nil {
		add("sample_bytes", true, *p.SampleBytes)
	}
	if p.CheckSubsets != nil {
		add("check_subsets", true, *p.CheckSubsets)
	}
	if p.CheckEveryRuns != nil {
		add("check_every_runs", true, *p.CheckEveryRuns)
	}
	if p.WindowStartMinute != nil {
		add("window_start_minute", true, *p.WindowStartMinute)
	}
	if p.WindowMinutes != nil {
		add("window_minutes", true, *p.WindowMinutes)
	}
	if p.JitterSeconds != nil {
		add("jitter_seconds", true, *p.JitterSeconds)
	}
	if p.Target != nil {
		add("target", true, *p.Target)
	}
	return out
}

// scheduleNext sets the repository's next start from its policy.
func (s *Service) scheduleNext(ctx context.Context, tx pgx.Tx, id int64) error {
	r, err := RepositoryGetByID(ctx, tx, id)
	if err != nil {
		return err
	}
	next, err := r.Effective.next(id, s.cfg.Now())
	if err != nil {
		return &FieldError{Field: "policy.schedule", Problem: err.Error()}
	}
	_, err = tx.Exec(ctx, `UPDATE restic_repositories SET next_run_at = $2 WHERE id = $1`, id, next)
	return err
}

// PolicyUpdate replaces the repository's policy (nil values: federation defaults) and its
// paused flag and name when given (audited).
func (s *Service) PolicyUpdate(ctx context.Context, id int64, name *string, p Policy, paused *bool) (Repository, error) {
	if err := validatePolicy(p); err != nil {
		return Repository{}, err
	}
	if name != nil {
		*name = strings.TrimSpace(*name)
		if l := len(*name); l < 1 || l > 100 {
			return Repository{}, &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := RepositoryGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE restic_repositories SET name = coalesce($2, name), schedule = $3,
			window_start_minute = $4, window_minutes = $5, jitter_seconds = $6, rpo_seconds = $7, rto_seconds = $8,
			sample_files = $9, sample_bytes = $10, check_every_runs = $11, check_subsets = $12, full_restore_days = $13,
			canary_path = $14, paused = coalesce($15, paused), updated_at = now() WHERE id = $1`,
			id, name, p.Schedule, p.WindowStartMinute, p.WindowMinutes, p.JitterSeconds, p.RPOSeconds, p.RTOSeconds,
			p.SampleFiles, p.SampleBytes, p.CheckEveryRuns, p.CheckSubsets, p.FullRestoreDays, p.CanaryPath, paused)
		if err != nil {
			return constraints.Translate(err)
		}
		if err := setTestTarget(ctx, tx, id, p.Target); err != nil {
			return err
		}
		if err := s.scheduleNext(ctx, tx, id); err != nil {
			return err
		}
		d := map[string]any{"policy": policyDetails(p)}
		if name != nil {
			d["name"] = *name
		}
		if paused != nil {
			d["paused"] = *paused
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.update", MemberID: &r.MemberID,
			TargetType: "restic_repository", TargetID: strconv.FormatInt(id, 10), Details: d})
		return err
	})
	if err != nil {
		return Repository{}, err
	}
	return RepositoryGetByID(ctx, s.pool, id)
}

// PasswordSet replaces (or, for a blind or attested repository, adds) the password: the
// repository becomes full mode. Entering full mode needs consent (FullModeStatementVersion,
// recorded with who and when); replacing the password of a full repository keeps its
// consent unless a new one is given. The password is checked against the repository first,
// sealed, and never shown again (audited without it).
func (s *Service) PasswordSet(ctx context.Context, id int64, password, consent string) (Repository, error) {
	if err := validatePassword(password); err != nil {
		return Repository{}, err
	}
	r, err := RepositoryGetByID(ctx, s.pool, id)
	if err != nil {
		return r, err
	}
	if r.Mode != ModeFull || consent != "" {
		if err := checkConsent(consent); err != nil {
			return r, err
		}
	}
	if err := s.checkPassword(ctx, r.VaultID, r.Path, password); err != nil {
		return r, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE restic_repositories SET mode = 'full', password_sealed = $2, password_set_at = now(),
			updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, id, s.keyring.SealString(passwordPurpose(id), password))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		action := "repository.password_replace"
		if !r.HasPassword {
			action = "repository.password_set"
		}
		d := map[string]any{"mode": ModeFull, "from": r.Mode}
		if consent != "" {
			actor, _ := audit.ActorFrom(ctx)
			if err := recordConsent(ctx, tx, id, actor.Name); err != nil {
				return err
			}
			d["full_mode_consent"] = FullModeStatementVersion
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: action, MemberID: &r.MemberID, TargetType: "restic_repository",
			TargetID: strconv.FormatInt(id, 10), Details: d})
		return err
	})
	if err != nil {
		return Repository{}, err
	}
	return RepositoryGetByID(ctx, s.pool, id)
}

// PasswordRemove forgets the password: the repository becomes blind (audited).
func (s *Service) PasswordRemove(ctx context.Context, id int64) (Repository, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := RepositoryGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !r.HasPassword {
			return ErrNoPassword
		}
		if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET mode = 'blind', password_sealed = NULL, password_set_at = NULL,
			updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.password_remove", MemberID: &r.MemberID,
			TargetType: "restic_repository", TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"mode": ModeBlind}})
		return err
	})
	if err != nil {
		return Repository{}, err
	}
	return RepositoryGetByID(ctx, s.pool, id)
}

// RepositoryDelete removes a repository from testing (audited); its history is kept, its
// password is erased, and a waiting test is cancelled when it starts.
func (s *Service) RepositoryDelete(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := RepositoryGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE restic_repositories SET deleted_at = now(), mode = 'blind', password_sealed = NULL,
			password_set_at = NULL, next_run_at = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.delete", MemberID: &r.MemberID,
			TargetType: "restic_repository", TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": r.Name}})
		return err
	})
}

// TestArgs are the arguments of one restore test job.
type TestArgs struct {
	RepositoryID int64 `json:"repository_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (TestArgs) Kind() string { return "restore_test" }

func (s *Service) insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: queueRestore, MaxAttempts: s.cfg.MaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// enqueue inserts the test job of a repository and its run row, in tx. When a test of the
// repository is already waiting or running it returns that run and false.
func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, r Repository, trigger, requestedBy string) (int64, bool, error) {
	if s.queue == nil {
		return 0, false, errors.New("restore tests: no job queue configured")
	}
	// A test already waiting or running (River's unique states, insertOpts) is answered
	// without an insert: River notifies its workers of every insert, a duplicate skipped or
	// not, at most once per FetchCooldown, so a duplicate (a second "run now", a client
	// polling) would swallow the notification of the next real test, which then waited for
	// River's poll (up to FetchPollInterval, 1 s by default) to be picked up.
	// Only one such job exists per repository, and no run is added while it does: it is the
	// newest run's (when not, River's own check below still finds it).
	var waiting int64
	err := tx.QueryRow(ctx, `SELECT r.id FROM (SELECT id, river_job_id FROM restore_test_runs WHERE repository_id = $1
		ORDER BY id DESC LIMIT 1) r JOIN river_job j ON j.id = r.river_job_id
		WHERE j.state IN ('available', 'pending', 'running', 'retryable', 'scheduled')`, r.ID).Scan(&waiting)
	if err == nil {
		return waiting, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("find the waiting test of repository %d: %w", r.ID, err)
	}
	res, err := s.queue.InsertTx(ctx, tx, TestArgs{RepositoryID: r.ID}, s.insertOpts())
	if err != nil {
		return 0, false, fmt.Errorf("enqueue restore test of repository %d: %w", r.ID, err)
	}
	var runID int64
	if res.UniqueSkippedAsDuplicate {
		err := tx.QueryRow(ctx, `SELECT id FROM restore_test_runs WHERE river_job_id = $1`, res.Job.ID).Scan(&runID)
		if err != nil {
			return 0, false, fmt.Errorf("find the waiting test of repository %d: %w", r.ID, err)
		}
		return runID, false, nil
	}
	err = tx.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, river_job_id, trigger,
		requested_by, mode, rpo_target_seconds, rto_target_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		r.ID, r.MemberID, r.IslandID, res.Job.ID, trigger, requestedBy, r.Mode, r.Effective.RPOSeconds,
		r.Effective.RTOSeconds).Scan(&runID)
	if err != nil {
		return 0, false, fmt.Errorf("record restore test of repository %d: %w", r.ID, err)
	}
	return runID, true, nil
}

// RunNow enqueues a test of the repository now (audited). When one is already waiting or
// running it returns that one and false.
func (s *Service) RunNow(ctx context.Context, id int64) (Run, bool, error) {
	actor, _ := audit.ActorFrom(ctx)
	// A test of this repository whose worker died is retried (or closed) first, so that
	// "run now" never answers with a run nobody is working on.
	if _, err := s.sweep(ctx, id); err != nil {
		return Run{}, false, err
	}
	var runID int64
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := RepositoryGetByID(ctx, tx, id)
		if err != nil {
			return err
		}
		runID, created, err = s.enqueue(ctx, tx, r, "manual", actor.Name)
		if err != nil || !created {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "restore_test.run", MemberID: &r.MemberID,
			TargetType: "restore_test", TargetID: strconv.FormatInt(runID, 10),
			Details: map[string]any{"repository_id": id}})
		return err
	})
	if err != nil {
		return Run{}, false, err
	}
	run, err := RunGetByID(ctx, s.pool, runID)
	return run, created, err
}

// ScheduleDue enqueues a test for every repository whose next start has come and moves its
// next start on. It is the body of the periodic scheduler job; two schedulers running at
// once skip each other's rows.
func (s *Service) ScheduleDue(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM restic_repositories WHERE deleted_at IS NULL AND NOT paused
			AND next_run_at <= $1 ORDER BY next_run_at LIMIT 500 FOR UPDATE SKIP LOCKED`, now)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := RepositoryGetByID(ctx, tx, id)
			if err != nil {
				return err
			}
			if _, created, err := s.enqueue(ctx, tx, r, "schedule", "scheduler"); err != nil {
				return err
			} else if created {
				n++
			}
			if err := s.scheduleNext(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("schedule restore tests: %w", err)
	}
	return n, nil
}
