package notify

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/seal"
)

// Config configures notifications.
type Config struct {
	SMTP SMTPConfig
	// Policy decides which addresses webhooks may reach.
	Policy AddressPolicy
	// PublicURL is the portal's URL, for links in messages.
	PublicURL string
	// DigestEvery is how often held-back events are sent as one digest per channel
	// (default 1h).
	DigestEvery time.Duration
	// MaxAttempts bounds delivery attempts before a delivery is marked failed (default 8).
	MaxAttempts int
	// Backoff is the wait after failed attempt n (1-based); default 30s × 4^(n-1), at most 6h.
	Backoff func(attempt int) time.Duration
	// Timeout bounds one webhook request or SMTP conversation (default 10s).
	Timeout time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Catalog holds the messages of every language (default: the embedded catalogs).
	Catalog *i18n.Catalog
}

// Defaults.
const (
	DefaultDigestEvery = time.Hour
	DefaultMaxAttempts = 8
	// DeliverEvery is how often the delivery task looks for due deliveries.
	DeliverEvery = 10 * time.Second
	// ScanEvery is how often other domains' tables are scanned for new events.
	ScanEvery = 30 * time.Second
)

// DefaultBackoff waits 30s, 2m, 8m, 32m, 2h8m, then 6h between attempts.
func DefaultBackoff(attempt int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < 6*time.Hour; i++ {
		d *= 4
	}
	return min(d, 6*time.Hour)
}

// Service manages channels and delivers notifications.
type Service struct {
	pool   *pgxpool.Pool
	keys   *seal.Keyring
	log    *slog.Logger
	cfg    Config
	policy AddressPolicy
	http   *http.Client
	now    func() time.Time
	// catalog says messages in their audience's language (language.go).
	catalog *i18n.Catalog
}

// New returns the notification service.
func New(pool *pgxpool.Pool, keys *seal.Keyring, log *slog.Logger, cfg Config) *Service {
	cfg.DigestEvery = cmp.Or(cfg.DigestEvery, DefaultDigestEvery)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat := cfg.Catalog
	if cat == nil {
		var err error
		if cat, err = i18n.Load(); err != nil {
			panic(err) // the embedded catalogs are checked by internal/i18n's tests
		}
	}
	return &Service{pool: pool, keys: keys, log: log, cfg: cfg, policy: cfg.Policy, http: newHTTPClient(cfg.Policy, cfg.Timeout), now: now,
		catalog: cat}
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Policy returns the webhook address policy.
func (s *Service) Policy() AddressPolicy { return s.policy }

func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}
