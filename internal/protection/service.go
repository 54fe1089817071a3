package protection

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/vaults"
)

// Errors of this package, in the shared vocabulary (internal/problem).
var (
	// ErrNotFound: no such vault (or it is deleted).
	ErrNotFound = problem.NotFound("vault")
)

// FieldError is bad input, naming the field at fault.
type FieldError = problem.FieldError

// ConflictError is a request the vault's current state refuses (no copy yet, not frozen).
type ConflictError = problem.ConflictError

// UnreachableError means an island's Garage failed during a request; what was recorded
// stays recorded and the background jobs finish the work.
type UnreachableError = problem.UnreachableError

// Islands gives Garage admin clients for islands (internal/islands implements it).
type Islands interface {
	GarageClient(ctx context.Context, islandID int64) (*garage.Client, error)
}

// Vaults gives the read-only verifier credentials of a vault and its member keys
// (internal/vaults implements it): the copy reads the vault with the verifier key, never
// with a key that can write; freeze changes the member keys' permissions.
type Vaults interface {
	VerifierCredentials(ctx context.Context, vaultID int64) (vaults.S3Credentials, error)
	KeyList(ctx context.Context, vaultID int64) ([]vaults.Key, error)
}

// Defaults of Config.
const (
	DefaultTripwireEvery = 5 * time.Minute
	DefaultGarageTimeout = 20 * time.Second
	DefaultCopyTimeout   = 30 * time.Minute
	// AbortMultipartDays is the age at which Archipelago's lifecycle rule aborts an
	// unfinished multipart upload.
	AbortMultipartDays = 1
	// AbortRuleID names Archipelago's own lifecycle rule on every vault.
	AbortRuleID = "archipelago-abort-incomplete-multipart"
)

// Config configures the Service.
type Config struct {
	// GarageTimeout bounds the Garage calls for one vault; default 20s.
	GarageTimeout time.Duration
	// CopyTimeout bounds one vault's copy run; default 30 min.
	CopyTimeout time.Duration
	// TempDir holds objects while they are verified before upload; default os.TempDir().
	TempDir string
	// SnippetPath is the repository path inside the bucket the restic snippet proposes;
	// default vaults.DefaultSnippetPath.
	SnippetPath string
	// Now is the clock (tests move it).
	Now func() time.Time
}

// Service is the protection domain.
type Service struct {
	pool    *pgxpool.Pool
	keys    *seal.Keyring
	islands Islands
	vaults  Vaults
	log     *slog.Logger
	cfg     Config
}

// New builds the Service.
func New(pool *pgxpool.Pool, keys *seal.Keyring, isl Islands, v Vaults, log *slog.Logger, cfg Config) *Service {
	cfg.GarageTimeout = cmp.Or(cfg.GarageTimeout, DefaultGarageTimeout)
	cfg.CopyTimeout = cmp.Or(cfg.CopyTimeout, DefaultCopyTimeout)
	cfg.SnippetPath = cmp.Or(cfg.SnippetPath, vaults.DefaultSnippetPath)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, keys: keys, islands: isl, vaults: v, log: log, cfg: cfg}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// withSystemActor makes background work attributable in the audit log.
func withSystemActor(ctx context.Context, job string) context.Context {
	if _, ok := audit.ActorFrom(ctx); ok {
		return ctx
	}
	return audit.WithActor(ctx, audit.System(job))
}

func actorName(ctx context.Context) string {
	if a, ok := audit.ActorFrom(ctx); ok {
		return cmp.Or(a.Name, a.ID)
	}
	return ""
}

// Settings are the federation's protection settings.
type Settings struct {
	CopyByDefault bool          `json:"copy_by_default"`
	CopyEvery     time.Duration `json:"-"`
	DeletionGrace time.Duration `json:"-"`
	UnfreezeDelay time.Duration `json:"-"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

// Limits of the settings.
const (
	MinDeletionGrace = 3 * 24 * time.Hour
	MinCopyEvery     = time.Minute
	MaxCopyEvery     = 7 * 24 * time.Hour
	MaxUnfreezeDelay = 30 * 24 * time.Hour
)

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loadSettings(ctx context.Context, q querier) (Settings, error) {
	var st Settings
	var every, grace, delay int64
	err := q.QueryRow(ctx, `SELECT copy_by_default, copy_every_seconds, deletion_grace_seconds, unfreeze_delay_seconds, updated_at
		FROM protection_settings`).Scan(&st.CopyByDefault, &every, &grace, &delay, &st.UpdatedAt)
	if err != nil {
		return st, fmt.Errorf("protection settings: %w", err)
	}
	st.CopyEvery, st.DeletionGrace, st.UnfreezeDelay = time.Duration(every)*time.Second, time.Duration(grace)*time.Second, time.Duration(delay)*time.Second
	return st, nil
}

// SettingsGet returns the federation's protection settings.
func (s *Service) SettingsGet(ctx context.Context) (Settings, error) {
	return loadSettings(ctx, s.pool)
}

// SettingsInput changes the settings; nil fields are left unchanged.
type SettingsInput struct {
	CopyByDefault *bool
	CopyEvery     *time.Duration
	DeletionGrace *time.Duration
	UnfreezeDelay *time.Duration
}

// Validate refuses settings outside their bounds, naming the field: the deletion grace
// period is never under three days. SettingsUpdate calls it; so does the approval gate, so a
// change that could never apply is refused at once instead of waiting for votes.
func (in SettingsInput) Validate() error {
	switch {
	case in.CopyEvery != nil && (*in.CopyEvery < MinCopyEvery || *in.CopyEvery > MaxCopyEvery):
		return &FieldError{Field: "copy_every_seconds", Problem: "must be between 60 seconds and 7 days"}
	case in.DeletionGrace != nil && *in.DeletionGrace < MinDeletionGrace:
		return &FieldError{Field: "deletion_grace_seconds", Problem: "must be at least 3 days (259200 seconds)"}
	case in.UnfreezeDelay != nil && (*in.UnfreezeDelay < 0 || *in.UnfreezeDelay > MaxUnfreezeDelay):
		return &FieldError{Field: "unfreeze_delay_seconds", Problem: "must be between 0 and 30 days"}
	}
	return nil
}

// SettingsUpdate changes the federation's protection settings (audited). The deletion
// grace period is never under three days.
func (s *Service) SettingsUpdate(ctx context.Context, in SettingsInput) (Settings, error) {
	if err := in.Validate(); err != nil {
		return Settings{}, err
	}
	var out Settings
	err := s.tx(ctx, func(tx pgx.Tx) error {
		old, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		st := old
		if in.CopyByDefault != nil {
			st.CopyByDefault = *in.CopyByDefault
		}
		if in.CopyEvery != nil {
			st.CopyEvery = *in.CopyEvery
		}
		if in.DeletionGrace != nil {
			st.DeletionGrace = *in.DeletionGrace
		}
		if in.UnfreezeDelay != nil {
			st.UnfreezeDelay = *in.UnfreezeDelay
		}
		if _, err := tx.Exec(ctx, `UPDATE protection_settings SET copy_by_default = $1, copy_every_seconds = $2,
			deletion_grace_seconds = $3, unfreeze_delay_seconds = $4, updated_at = now()`, st.CopyByDefault,
			int64(st.CopyEvery/time.Second), int64(st.DeletionGrace/time.Second), int64(st.UnfreezeDelay/time.Second)); err != nil {
			return err
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: "protection_settings.update", TargetType: "protection_settings",
			TargetID: "federation", Details: map[string]any{
				"copy_by_default":        st.CopyByDefault,
				"copy_every_seconds":     int64(st.CopyEvery / time.Second),
				"deletion_grace_seconds": int64(st.DeletionGrace / time.Second),
				"unfreeze_delay_seconds": int64(st.UnfreezeDelay / time.Second),
				"before": map[string]any{"copy_by_default": old.CopyByDefault, "copy_every_seconds": int64(old.CopyEvery / time.Second),
					"deletion_grace_seconds": int64(old.DeletionGrace / time.Second), "unfreeze_delay_seconds": int64(old.UnfreezeDelay / time.Second)},
			}}); err != nil {
			return err
		}
		out, err = loadSettings(ctx, tx)
		return err
	})
	return out, err
}

// garageFor returns an island's admin client.
func (s *Service) garageFor(ctx context.Context, islandID int64) (*garage.Client, error) {
	gc, err := s.islands.GarageClient(ctx, islandID)
	if err != nil {
		return nil, fmt.Errorf("island %d: admin client: %w", islandID, err)
	}
	return gc, nil
}

// truncate caps a text stored or shown (details, errors) at n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}
