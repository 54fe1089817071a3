// Package config owns Archipelago's configuration: it reads ARCHIPELAGO_* environment
// variables (and *_FILE variants for every secret), fills defaults, validates everything
// once at start, and prints the effective configuration with secrets redacted.
//
// It must not read the environment anywhere but in Load, and holds no globals.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/restic"
)

// Config is the validated, effective configuration of one Archipelago process.
type Config struct {
	DatabaseURL     string        // ARCHIPELAGO_DATABASE_URL (secret: may carry a password)
	Listen          string        // ARCHIPELAGO_LISTEN
	PublicURL       string        // ARCHIPELAGO_PUBLIC_URL
	MasterKeyFile   string        // ARCHIPELAGO_MASTER_KEY_FILE
	MasterKey       string        // ARCHIPELAGO_MASTER_KEY (secret; or the content of MasterKeyFile)
	JWTKey          string        // ARCHIPELAGO_JWT_KEY (secret)
	AuditKey        string        // ARCHIPELAGO_AUDIT_SIGNING_KEY (secret)
	LogLevel        slog.Level    // ARCHIPELAGO_LOG_LEVEL
	LogFormat       string        // ARCHIPELAGO_LOG_FORMAT: json or text
	AutoMigrate     bool          // ARCHIPELAGO_AUTO_MIGRATE
	MaxBodyBytes    int64         // ARCHIPELAGO_MAX_BODY_BYTES
	DBConnTimeout   time.Duration // ARCHIPELAGO_DB_CONNECT_TIMEOUT
	DBMaxConns      int32         // ARCHIPELAGO_DB_MAX_CONNS
	ShutdownGrace   time.Duration // ARCHIPELAGO_SHUTDOWN_TIMEOUT
	RunWorkers      bool          // ARCHIPELAGO_RUN_WORKERS
	IslandPollEvery time.Duration // ARCHIPELAGO_ISLAND_POLL_INTERVAL
	JobPollInterval time.Duration // ARCHIPELAGO_JOB_POLL_INTERVAL
	TripwireEvery   time.Duration // ARCHIPELAGO_TRIPWIRE_INTERVAL (protected vaults' lifecycle tripwire)
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed
	// (ARCHIPELAGO_TRUSTED_PROXIES: comma-separated addresses or CIDR prefixes).
	TrustedProxies []netip.Prefix
	// MetricsToken is the bearer token /metrics requires (ARCHIPELAGO_METRICS_TOKEN, secret);
	// unset, /metrics is refused to everyone.
	MetricsToken string
	// MaxPasswordHashes bounds the argon2id computations (64 MiB each) run at once
	// (ARCHIPELAGO_MAX_PASSWORD_HASHES).
	MaxPasswordHashes int
	// PasswordHashMemoryKiB and PasswordHashPasses, when set, are the argon2id cost of the
	// password hashes this process writes (zero: the production cost, 64 MiB and 3 passes).
	// Not read from the environment: test fixtures (internal/apptest), which create hundreds
	// of users per package, set a small cost; a hash records its own cost, so logins verify
	// either kind.
	PasswordHashMemoryKiB, PasswordHashPasses uint32

	// Restore verification.
	ScratchDir         string        // ARCHIPELAGO_SCRATCH_DIR
	RestoreTestTimeout time.Duration // ARCHIPELAGO_RESTORE_TEST_TIMEOUT
	ContentHashCycle   time.Duration // ARCHIPELAGO_CONTENTHASH_CYCLE
	RestoreWorkers     int           // ARCHIPELAGO_RESTORE_WORKERS

	// Notifications and reports.
	SMTPAddr             string        // ARCHIPELAGO_SMTP_ADDR (host:port)
	SMTPUsername         string        // ARCHIPELAGO_SMTP_USERNAME
	SMTPPassword         string        // ARCHIPELAGO_SMTP_PASSWORD (secret)
	SMTPFrom             string        // ARCHIPELAGO_SMTP_FROM
	SMTPTLS              string        // ARCHIPELAGO_SMTP_TLS: starttls, tls or none
	WebhookAllowPrivate  bool          // ARCHIPELAGO_WEBHOOK_ALLOW_PRIVATE
	NotifyDigestInterval time.Duration // ARCHIPELAGO_NOTIFY_DIGEST_INTERVAL

	// Retention of rows that would grow for ever (never the audit log).
	RetainRunLogs              time.Duration // ARCHIPELAGO_RETAIN_RUN_LOGS
	RetainLoginFailures        time.Duration // ARCHIPELAGO_RETAIN_LOGIN_FAILURES
	RetainExpiredSessions      time.Duration // ARCHIPELAGO_RETAIN_EXPIRED_SESSIONS
	RetainDeliveredEvents      time.Duration // ARCHIPELAGO_RETAIN_DELIVERED_EVENTS
	RetainSnapshotObservations time.Duration // ARCHIPELAGO_RETAIN_SNAPSHOT_OBSERVATIONS
	ReportPeriods              []string      // ARCHIPELAGO_REPORT_PERIODS

	// Observability.
	MetricsPerObject bool // ARCHIPELAGO_METRICS_PER_OBJECT
	// DevShortCoolingOff lets the approval cooling-off go below 72 h (sandbox, development).
	DevShortCoolingOff bool // ARCHIPELAGO_DEV_SHORT_COOLING_OFF

	// OIDC login (internal/oidclogin; docs/deploy.md). Off unless OIDCIssuer is set.
	OIDCIssuer       string   // ARCHIPELAGO_OIDC_ISSUER
	OIDCClientID     string   // ARCHIPELAGO_OIDC_CLIENT_ID
	OIDCClientSecret string   // ARCHIPELAGO_OIDC_CLIENT_SECRET (secret; prefer _FILE)
	OIDCName         string   // ARCHIPELAGO_OIDC_NAME: the provider's name on the login button
	OIDCScopes       []string // ARCHIPELAGO_OIDC_SCOPES
	OIDCGroupsClaim  string   // ARCHIPELAGO_OIDC_GROUPS_CLAIM
	// OIDCRoleMap is ARCHIPELAGO_OIDC_ROLE_MAP (or the content of ARCHIPELAGO_OIDC_ROLE_MAP_FILE),
	// checked by internal/app with oidclogin.ParseRoleMap.
	OIDCRoleMap string
	// The coordinator's own backup (internal/selfbackup, docs/deploy.md).
	SelfBackupInterval      time.Duration       // ARCHIPELAGO_SELF_BACKUP_INTERVAL
	SelfBackupCheckInterval time.Duration       // ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL
	SelfBackupKeep          restic.ForgetPolicy // ARCHIPELAGO_SELF_BACKUP_KEEP
	PGDump                  string              // ARCHIPELAGO_PG_DUMP
}

// OIDCEnabled reports whether login through an identity provider is configured.
func (c *Config) OIDCEnabled() bool { return c.OIDCIssuer != "" }

// Defaults used when a variable is unset.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultMaxBodyBytes  = 1 << 20
	DefaultDBConnTimeout = 5 * time.Second
	DefaultShutdownGrace = 20 * time.Second
	DefaultIslandPoll    = 30 * time.Second
)

// Var describes one configuration variable, for validation messages, the
// README table and the redacted dump.
type Var struct {
	Name    string
	Secret  bool
	Default string
	Help    string
}

// Vars lists every variable Load reads, in display order.
var Vars = []Var{
	{Name: "ARCHIPELAGO_DATABASE_URL", Secret: true, Help: "PostgreSQL connection URL (required for serve, migrate, worker)"},
	{Name: "ARCHIPELAGO_LISTEN", Default: DefaultListen, Help: "address the HTTP server listens on"},
	{Name: "ARCHIPELAGO_PUBLIC_URL", Help: "URL people use to reach the portal; https makes cookies Secure (default http://LISTEN)"},
	{Name: "ARCHIPELAGO_MASTER_KEY_FILE", Help: "file holding the 32-byte master key (hex or base64) that seals secrets at rest"},
	{Name: "ARCHIPELAGO_MASTER_KEY", Secret: true, Help: "the master key itself (prefer the _FILE form)"},
	{Name: "ARCHIPELAGO_JWT_KEY", Secret: true, Help: "HS256 key (≥32 bytes) signing access tokens; derived from the master key when unset"},
	{Name: "ARCHIPELAGO_AUDIT_SIGNING_KEY", Secret: true, Help: "Ed25519 note signer key for audit checkpoints; derived from the master key when unset"},
	{Name: "ARCHIPELAGO_LOG_LEVEL", Default: "info", Help: "debug, info, warn or error"},
	{Name: "ARCHIPELAGO_LOG_FORMAT", Default: "text", Help: "text or json"},
	{Name: "ARCHIPELAGO_AUTO_MIGRATE", Default: "false", Help: "apply pending migrations when serve starts"},
	{Name: "ARCHIPELAGO_MAX_BODY_BYTES", Default: strconv.Itoa(DefaultMaxBodyBytes), Help: "largest request body accepted (bytes)"},
	{Name: "ARCHIPELAGO_DB_CONNECT_TIMEOUT", Default: DefaultDBConnTimeout.String(), Help: "how long to wait for the database at start"},
	{Name: "ARCHIPELAGO_DB_MAX_CONNS", Default: "25", Help: "size of the database connection pool"},
	{Name: "ARCHIPELAGO_SHUTDOWN_TIMEOUT", Default: DefaultShutdownGrace.String(), Help: "how long to drain requests and jobs on SIGTERM"},
	{Name: "ARCHIPELAGO_RUN_WORKERS", Default: "true", Help: "serve also runs the background workers"},
	{Name: "ARCHIPELAGO_ISLAND_POLL_INTERVAL", Default: DefaultIslandPoll.String(), Help: "how often island health is polled"},
	{Name: "ARCHIPELAGO_JOB_POLL_INTERVAL", Default: "1s", Help: "how often workers look for new jobs (besides notifications)"},
	{Name: "ARCHIPELAGO_TRIPWIRE_INTERVAL", Default: "5m", Help: "how often every vault's lifecycle rules are checked (docs/protection.md)"},
	{Name: "ARCHIPELAGO_TRUSTED_PROXIES", Default: "", Help: "reverse proxies (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client; unset: the header is ignored"},
	{Name: "ARCHIPELAGO_METRICS_TOKEN", Secret: true, Help: "bearer token Prometheus sends to scrape /metrics (at least 16 characters); unset: /metrics is refused"},
	{Name: "ARCHIPELAGO_MAX_PASSWORD_HASHES", Default: "2", Help: "password checks (argon2id, 64 MiB each) run at once; more logins wait briefly, then get 503 with Retry-After"},
	{Name: "ARCHIPELAGO_SCRATCH_DIR", Default: "$TMPDIR/archipelago-scratch", Help: "where restore tests restore samples (emptied at worker start)"},
	{Name: "ARCHIPELAGO_RESTORE_TEST_TIMEOUT", Default: "2h", Help: "longest restore test; a dead worker's test is retried after it"},
	{Name: "ARCHIPELAGO_CONTENTHASH_CYCLE", Default: "720h", Help: "the content-hash level reads every object of a repository at least once per cycle (30 days)"},
	{Name: "ARCHIPELAGO_RESTORE_WORKERS", Default: "2", Help: "restore tests run at once by this process"},
	{Name: "ARCHIPELAGO_SMTP_ADDR", Help: "SMTP relay (host:port) for email notifications; unset: email channels fail visibly"},
	{Name: "ARCHIPELAGO_SMTP_USERNAME", Help: "SMTP user name (PLAIN authentication); unset: no authentication"},
	{Name: "ARCHIPELAGO_SMTP_PASSWORD", Secret: true, Help: "SMTP password"},
	{Name: "ARCHIPELAGO_SMTP_FROM", Default: "Archipelago <archipelago@localhost>", Help: "From address of notification emails"},
	{Name: "ARCHIPELAGO_SMTP_TLS", Default: "starttls", Help: "starttls (required), tls (implicit, port 465) or none (a relay on localhost only)"},
	{Name: "ARCHIPELAGO_WEBHOOK_ALLOW_PRIVATE", Default: "false", Help: "let webhooks reach loopback, private and link-local addresses (sandbox, tests); metadata addresses stay refused"},
	{Name: "ARCHIPELAGO_NOTIFY_DIGEST_INTERVAL", Default: "1h", Help: "how often held-back notifications are sent as one digest per channel"},
	{Name: "ARCHIPELAGO_REPORT_PERIODS", Default: "weekly,monthly", Help: "scheduled report periods: weekly, monthly, both, or none"},
	// Retention (the audit log is never pruned).
	{Name: "ARCHIPELAGO_RETAIN_RUN_LOGS", Default: "2160h", Help: "how long a finished restore test's raw log is kept (the run and its outcome stay)"},
	{Name: "ARCHIPELAGO_RETAIN_LOGIN_FAILURES", Default: "720h", Help: "how long failed logins are kept"},
	{Name: "ARCHIPELAGO_RETAIN_EXPIRED_SESSIONS", Default: "168h", Help: "how long sessions are kept after they expired or were revoked"},
	{Name: "ARCHIPELAGO_RETAIN_DELIVERED_EVENTS", Default: "4320h", Help: "how long notification events, finished deliveries and consumed outbox rows are kept"},
	{Name: "ARCHIPELAGO_RETAIN_SNAPSHOT_OBSERVATIONS", Default: "4320h", Help: "how long snapshots seen disappearing are remembered"},
	{Name: "ARCHIPELAGO_DEV_SHORT_COOLING_OFF", Default: "false", Help: "sandbox and development only: let the multi-party approval cooling-off be set below 72 h (the API and portal say so on every request)"},
	{Name: "ARCHIPELAGO_METRICS_PER_OBJECT", Default: "false", Help: "also export /metrics series per repository, vault and pledge (their number grows with the federation; the aggregates per member and island are always exported)"},
	// OIDC login (docs/deploy.md, "Logging in through your identity provider").
	{Name: "ARCHIPELAGO_OIDC_ISSUER", Help: "issuer URL of the identity provider (OpenID Connect discovery); unset: no OIDC login"},
	{Name: "ARCHIPELAGO_OIDC_CLIENT_ID", Help: "Archipelago's client id at the provider (redirect URI to register: PUBLIC_URL/login/oidc/callback)"},
	{Name: "ARCHIPELAGO_OIDC_CLIENT_SECRET", Secret: true, Help: "the client's secret (prefer ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE)"},
	{Name: "ARCHIPELAGO_OIDC_NAME", Default: "SSO", Help: "the provider's name on the login button (\"Log in with NAME\")"},
	{Name: "ARCHIPELAGO_OIDC_SCOPES", Default: "openid,email,profile", Help: "scopes asked for (comma- or space-separated); add groups for providers that need it (Dex)"},
	{Name: "ARCHIPELAGO_OIDC_GROUPS_CLAIM", Default: "groups", Help: "the claim holding a person's groups (a dotted path reads nested claims: realm_access.roles)"},
	{Name: "ARCHIPELAGO_OIDC_ROLE_MAP", Help: "groups to roles: GROUP=federation-admin;GROUP=MEMBER-SLUG:admin;GROUP=MEMBER-SLUG:viewer (or ARCHIPELAGO_OIDC_ROLE_MAP_FILE, one entry a line)"},
	// The coordinator's own backup (archipelago admin backup, docs/deploy.md).
	{Name: "ARCHIPELAGO_SELF_BACKUP_INTERVAL", Default: "24h", Help: "how often the coordinator dumps its own database into its restic repository (once archipelago admin backup init was run)"},
	{Name: "ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL", Default: "168h", Help: "how often the newest dump is restored into a throwaway PostgreSQL and checked"},
	{Name: "ARCHIPELAGO_SELF_BACKUP_KEEP", Default: "daily=14,weekly=8,monthly=12", Help: "retention of the coordinator's dumps (restic forget --prune after each backup): last, daily, weekly, monthly counts, or all"},
	{Name: "ARCHIPELAGO_PG_DUMP", Help: "pg_dump's path (pg_restore beside it); default: ARCHIPELAGO_PG_BIN, the newest /usr/lib/postgresql/*/bin, then PATH"},
}

// defaultOf is the Default of the variable named in Vars ("" when it has none).
func defaultOf(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// Error names the variable that is wrong and what is wrong with it.
type Error struct {
	Var     string
	Problem string
}

func (e *Error) Error() string { return e.Var + ": " + e.Problem }

// Getenv is the environment lookup Load uses; os.LookupEnv in production.
type Getenv func(string) (string, bool)

// Load reads the configuration from env and validates it. All problems found are
// returned together, each naming its variable.
func Load(env Getenv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	var errs []error
	// get returns the variable, or its Default from Vars when unset: defaults are
	// declared once, in Vars.
	get := func(name string) string {
		v, _ := env(name)
		if v = strings.TrimSpace(v); v == "" {
			return defaultOf(name)
		}
		return v
	}
	secret := func(name string) string {
		v, ok := env(name)
		file, fok := env(name + "_FILE")
		if ok && fok && v != "" && file != "" {
			errs = append(errs, &Error{name, "set both " + name + " and " + name + "_FILE; keep one"})
			return ""
		}
		if fok && file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, &Error{name + "_FILE", fmt.Sprintf("cannot read %s: %v", file, errors.Unwrap(err))})
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		return strings.TrimSpace(v)
	}
	duration := func(name string) time.Duration {
		s := get(name)
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, &Error{name, fmt.Sprintf("%q is not a positive duration like 30s or 5m", s)})
			d, _ = time.ParseDuration(defaultOf(name))
		}
		return d
	}
	boolean := func(name string) bool {
		s := get(name)
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, &Error{name, fmt.Sprintf("%q is not true or false", s)})
			b, _ = strconv.ParseBool(defaultOf(name))
		}
		return b
	}

	c := &Config{
		DatabaseURL:        secret("ARCHIPELAGO_DATABASE_URL"),
		Listen:             get("ARCHIPELAGO_LISTEN"),
		PublicURL:          get("ARCHIPELAGO_PUBLIC_URL"),
		MasterKeyFile:      get("ARCHIPELAGO_MASTER_KEY_FILE"),
		JWTKey:             secret("ARCHIPELAGO_JWT_KEY"),
		AuditKey:           secret("ARCHIPELAGO_AUDIT_SIGNING_KEY"),
		LogFormat:          strings.ToLower(get("ARCHIPELAGO_LOG_FORMAT")),
		AutoMigrate:        boolean("ARCHIPELAGO_AUTO_MIGRATE"),
		DBConnTimeout:      duration("ARCHIPELAGO_DB_CONNECT_TIMEOUT"),
		ShutdownGrace:      duration("ARCHIPELAGO_SHUTDOWN_TIMEOUT"),
		RunWorkers:         boolean("ARCHIPELAGO_RUN_WORKERS"),
		IslandPollEvery:    duration("ARCHIPELAGO_ISLAND_POLL_INTERVAL"),
		JobPollInterval:    duration("ARCHIPELAGO_JOB_POLL_INTERVAL"),
		TripwireEvery:      duration("ARCHIPELAGO_TRIPWIRE_INTERVAL"),
		ScratchDir:         strings.Replace(get("ARCHIPELAGO_SCRATCH_DIR"), "$TMPDIR", os.TempDir(), 1),
		RestoreTestTimeout: duration("ARCHIPELAGO_RESTORE_TEST_TIMEOUT"),
		ContentHashCycle:   duration("ARCHIPELAGO_CONTENTHASH_CYCLE"),

		// Notifications and reports.
		SMTPAddr:             get("ARCHIPELAGO_SMTP_ADDR"),
		SMTPUsername:         get("ARCHIPELAGO_SMTP_USERNAME"),
		SMTPPassword:         secret("ARCHIPELAGO_SMTP_PASSWORD"),
		SMTPFrom:             get("ARCHIPELAGO_SMTP_FROM"),
		SMTPTLS:              strings.ToLower(get("ARCHIPELAGO_SMTP_TLS")),
		WebhookAllowPrivate:  boolean("ARCHIPELAGO_WEBHOOK_ALLOW_PRIVATE"),
		NotifyDigestInterval: duration("ARCHIPELAGO_NOTIFY_DIGEST_INTERVAL"),

		// Retention.
		RetainRunLogs:              duration("ARCHIPELAGO_RETAIN_RUN_LOGS"),
		RetainLoginFailures:        duration("ARCHIPELAGO_RETAIN_LOGIN_FAILURES"),
		RetainExpiredSessions:      duration("ARCHIPELAGO_RETAIN_EXPIRED_SESSIONS"),
		RetainDeliveredEvents:      duration("ARCHIPELAGO_RETAIN_DELIVERED_EVENTS"),
		RetainSnapshotObservations: duration("ARCHIPELAGO_RETAIN_SNAPSHOT_OBSERVATIONS"),
		MetricsPerObject:           boolean("ARCHIPELAGO_METRICS_PER_OBJECT"),
		DevShortCoolingOff:         boolean("ARCHIPELAGO_DEV_SHORT_COOLING_OFF"),

		SelfBackupInterval:      duration("ARCHIPELAGO_SELF_BACKUP_INTERVAL"),
		SelfBackupCheckInterval: duration("ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL"),
		PGDump:                  get("ARCHIPELAGO_PG_DUMP"),
	}
	if keep, err := restic.ParseForgetPolicy(get("ARCHIPELAGO_SELF_BACKUP_KEEP")); err != nil {
		errs = append(errs, &Error{"ARCHIPELAGO_SELF_BACKUP_KEEP", err.Error()})
	} else {
		c.SelfBackupKeep = keep
	}
	c.loadOIDC(get, secret, env, &errs)
	for _, s := range strings.Split(get("ARCHIPELAGO_TRUSTED_PROXIES"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, &Error{"ARCHIPELAGO_TRUSTED_PROXIES", fmt.Sprintf("%q is not an IP address or a CIDR prefix like 10.0.0.0/8", s)})
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	c.MetricsToken = secret("ARCHIPELAGO_METRICS_TOKEN")
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		errs = append(errs, &Error{"ARCHIPELAGO_METRICS_TOKEN", "is shorter than 16 characters; generate one with `openssl rand -hex 24`"})
	}
	if s := get("ARCHIPELAGO_MAX_PASSWORD_HASHES"); s != "" { // (default from Vars)
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 64 {
			errs = append(errs, &Error{"ARCHIPELAGO_MAX_PASSWORD_HASHES", fmt.Sprintf("%q is not a number from 1 to 64", s)})
		} else {
			c.MaxPasswordHashes = n
		}
	}
	if s := get("ARCHIPELAGO_RESTORE_WORKERS"); s != "" {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 64 {
			errs = append(errs, &Error{"ARCHIPELAGO_RESTORE_WORKERS", fmt.Sprintf("%q is not a number from 1 to 64", s)})
		} else {
			c.RestoreWorkers = n
		}
	}
	if s := get("ARCHIPELAGO_REPORT_PERIODS"); s == "" {
		c.ReportPeriods = []string{"weekly", "monthly"}
	} else {
		c.ReportPeriods = []string{}
		for _, p := range strings.Split(strings.ToLower(s), ",") {
			switch p = strings.TrimSpace(p); p {
			case "weekly", "monthly":
				c.ReportPeriods = append(c.ReportPeriods, p)
			case "none", "":
			default:
				errs = append(errs, &Error{"ARCHIPELAGO_REPORT_PERIODS", fmt.Sprintf("%q is not weekly, monthly or none", p)})
			}
		}
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, c.SMTPTLS) {
		errs = append(errs, &Error{"ARCHIPELAGO_SMTP_TLS", fmt.Sprintf("%q is not starttls, tls or none", c.SMTPTLS)})
	}
	if c.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.SMTPAddr); err != nil {
			errs = append(errs, &Error{"ARCHIPELAGO_SMTP_ADDR", fmt.Sprintf("%q is not host:port", c.SMTPAddr)})
		}
	}
	// The master key: either inline, or in the file named by ARCHIPELAGO_MASTER_KEY_FILE.
	if v, ok := env("ARCHIPELAGO_MASTER_KEY"); ok && strings.TrimSpace(v) != "" {
		if c.MasterKeyFile != "" {
			errs = append(errs, &Error{"ARCHIPELAGO_MASTER_KEY", "set both ARCHIPELAGO_MASTER_KEY and ARCHIPELAGO_MASTER_KEY_FILE; keep one"})
		}
		c.MasterKey = strings.TrimSpace(v)
	} else if c.MasterKeyFile != "" {
		b, err := os.ReadFile(c.MasterKeyFile)
		if err != nil {
			errs = append(errs, &Error{"ARCHIPELAGO_MASTER_KEY_FILE", fmt.Sprintf("cannot read %s: %v", c.MasterKeyFile, errors.Unwrap(err))})
		}
		c.MasterKey = strings.TrimSpace(string(b))
	}

	if s := get("ARCHIPELAGO_DB_MAX_CONNS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 4 || n > 1000 {
			errs = append(errs, &Error{"ARCHIPELAGO_DB_MAX_CONNS", fmt.Sprintf("%q is not a whole number between 4 and 1000", s)})
		} else {
			c.DBMaxConns = int32(n)
		}
	}
	if s := get("ARCHIPELAGO_MAX_BODY_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1024 {
			errs = append(errs, &Error{"ARCHIPELAGO_MAX_BODY_BYTES", fmt.Sprintf("%q is not a whole number of bytes ≥ 1024", s)})
		} else {
			c.MaxBodyBytes = n
		}
	}
	switch lvl := strings.ToLower(get("ARCHIPELAGO_LOG_LEVEL")); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		errs = append(errs, &Error{"ARCHIPELAGO_LOG_LEVEL", fmt.Sprintf("%q is not one of debug, info, warn, error", lvl)})
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		errs = append(errs, &Error{"ARCHIPELAGO_LOG_FORMAT", fmt.Sprintf("%q is not text or json", c.LogFormat)})
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, &Error{"ARCHIPELAGO_LISTEN", fmt.Sprintf("%q is not host:port", c.Listen)})
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &Error{"ARCHIPELAGO_PUBLIC_URL", fmt.Sprintf("%q is not an http(s) URL", c.PublicURL)})
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, &Error{"ARCHIPELAGO_DATABASE_URL", "is not a postgres:// URL"})
		}
	}
	if c.JWTKey != "" && len(c.JWTKey) < 32 {
		errs = append(errs, &Error{"ARCHIPELAGO_JWT_KEY", "is shorter than 32 bytes"})
	}
	return c, errors.Join(errs...)
}

// RequireDatabase reports an error naming ARCHIPELAGO_DATABASE_URL when it is unset.
func (c *Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return &Error{"ARCHIPELAGO_DATABASE_URL", "is not set (e.g. postgres://archipelago@127.0.0.1:5432/archipelago)"}
	}
	return nil
}

// RequireMasterKey reports an error naming ARCHIPELAGO_MASTER_KEY_FILE when no master key is configured.
func (c *Config) RequireMasterKey() error {
	if c.MasterKey == "" {
		return &Error{"ARCHIPELAGO_MASTER_KEY_FILE", "is not set: generate one with `archipelago keygen > master.key` and point this variable at it"}
	}
	return nil
}

func prefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

// SecureCookies reports whether cookies must carry the Secure flag.
func (c *Config) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Redacted returns the effective configuration as name → value pairs in Vars order,
// with every secret replaced by "(set, redacted)" or "(unset)".
func (c *Config) Redacted() [][2]string {
	val := map[string]string{
		"ARCHIPELAGO_DATABASE_URL":         redactURL(c.DatabaseURL),
		"ARCHIPELAGO_LISTEN":               c.Listen,
		"ARCHIPELAGO_PUBLIC_URL":           c.PublicURL,
		"ARCHIPELAGO_MASTER_KEY_FILE":      c.MasterKeyFile,
		"ARCHIPELAGO_MASTER_KEY":           setOrNot(c.MasterKey),
		"ARCHIPELAGO_JWT_KEY":              setOrNot(c.JWTKey),
		"ARCHIPELAGO_AUDIT_SIGNING_KEY":    setOrNot(c.AuditKey),
		"ARCHIPELAGO_LOG_LEVEL":            strings.ToLower(c.LogLevel.String()),
		"ARCHIPELAGO_LOG_FORMAT":           c.LogFormat,
		"ARCHIPELAGO_AUTO_MIGRATE":         strconv.FormatBool(c.AutoMigrate),
		"ARCHIPELAGO_MAX_BODY_BYTES":       strconv.FormatInt(c.MaxBodyBytes, 10),
		"ARCHIPELAGO_DB_CONNECT_TIMEOUT":   c.DBConnTimeout.String(),
		"ARCHIPELAGO_DB_MAX_CONNS":         strconv.Itoa(int(c.DBMaxConns)),
		"ARCHIPELAGO_SHUTDOWN_TIMEOUT":     c.ShutdownGrace.String(),
		"ARCHIPELAGO_RUN_WORKERS":          strconv.FormatBool(c.RunWorkers),
		"ARCHIPELAGO_ISLAND_POLL_INTERVAL": c.IslandPollEvery.String(),
		"ARCHIPELAGO_JOB_POLL_INTERVAL":    c.JobPollInterval.String(),
		"ARCHIPELAGO_TRIPWIRE_INTERVAL":    c.TripwireEvery.String(),
		"ARCHIPELAGO_TRUSTED_PROXIES":      prefixes(c.TrustedProxies),
		"ARCHIPELAGO_METRICS_TOKEN":        setOrNot(c.MetricsToken),
		"ARCHIPELAGO_MAX_PASSWORD_HASHES":  strconv.Itoa(c.MaxPasswordHashes),
		"ARCHIPELAGO_SCRATCH_DIR":          c.ScratchDir,
		"ARCHIPELAGO_RESTORE_TEST_TIMEOUT": c.RestoreTestTimeout.String(),
		"ARCHIPELAGO_CONTENTHASH_CYCLE":    c.ContentHashCycle.String(),
		"ARCHIPELAGO_RESTORE_WORKERS":      strconv.Itoa(c.RestoreWorkers),

		// Notifications and reports.
		"ARCHIPELAGO_SMTP_ADDR":              c.SMTPAddr,
		"ARCHIPELAGO_SMTP_USERNAME":          c.SMTPUsername,
		"ARCHIPELAGO_SMTP_PASSWORD":          setOrNot(c.SMTPPassword),
		"ARCHIPELAGO_SMTP_FROM":              c.SMTPFrom,
		"ARCHIPELAGO_SMTP_TLS":               c.SMTPTLS,
		"ARCHIPELAGO_WEBHOOK_ALLOW_PRIVATE":  strconv.FormatBool(c.WebhookAllowPrivate),
		"ARCHIPELAGO_NOTIFY_DIGEST_INTERVAL": c.NotifyDigestInterval.String(),
		"ARCHIPELAGO_REPORT_PERIODS":         strings.Join(c.ReportPeriods, ","),

		// Retention.
		"ARCHIPELAGO_RETAIN_RUN_LOGS":              c.RetainRunLogs.String(),
		"ARCHIPELAGO_RETAIN_LOGIN_FAILURES":        c.RetainLoginFailures.String(),
		"ARCHIPELAGO_RETAIN_EXPIRED_SESSIONS":      c.RetainExpiredSessions.String(),
		"ARCHIPELAGO_RETAIN_DELIVERED_EVENTS":      c.RetainDeliveredEvents.String(),
		"ARCHIPELAGO_RETAIN_SNAPSHOT_OBSERVATIONS": c.RetainSnapshotObservations.String(),
		"ARCHIPELAGO_METRICS_PER_OBJECT":           strconv.FormatBool(c.MetricsPerObject),
		"ARCHIPELAGO_DEV_SHORT_COOLING_OFF":        strconv.FormatBool(c.DevShortCoolingOff),

		// OIDC login.
		"ARCHIPELAGO_OIDC_ISSUER":                c.OIDCIssuer,
		"ARCHIPELAGO_OIDC_CLIENT_ID":             c.OIDCClientID,
		"ARCHIPELAGO_OIDC_CLIENT_SECRET":         setOrNot(c.OIDCClientSecret),
		"ARCHIPELAGO_OIDC_NAME":                  c.OIDCName,
		"ARCHIPELAGO_OIDC_SCOPES":                strings.Join(c.OIDCScopes, ","),
		"ARCHIPELAGO_OIDC_GROUPS_CLAIM":          c.OIDCGroupsClaim,
		"ARCHIPELAGO_OIDC_ROLE_MAP":              strings.ReplaceAll(strings.TrimSpace(c.OIDCRoleMap), "\n", ";"),
		"ARCHIPELAGO_SELF_BACKUP_INTERVAL":       c.SelfBackupInterval.String(),
		"ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL": c.SelfBackupCheckInterval.String(),
		"ARCHIPELAGO_SELF_BACKUP_KEEP":           c.SelfBackupKeep.String(),
		"ARCHIPELAGO_PG_DUMP":                    c.PGDump,
	}
	out := make([][2]string, 0, len(Vars))
	for _, v := range Vars {
		out = append(out, [2]string{v.Name, val[v.Name]})
	}
	return out
}

func setOrNot(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set, redacted)"
}

// redactURL keeps a database URL readable but hides its password.
func redactURL(s string) string {
	if s == "" {
		return "(unset)"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(set, redacted)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// NewLogger builds the process logger from the configured level and format.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadOIDC reads the OIDC login variables. They are checked only when
// ARCHIPELAGO_OIDC_ISSUER is set; the role map's syntax is checked by internal/app.
func (c *Config) loadOIDC(get func(string) string, secret func(string) string, env Getenv, errs *[]error) {
	c.OIDCIssuer = get("ARCHIPELAGO_OIDC_ISSUER") // as given: compared byte for byte with the provider's
	c.OIDCClientID = get("ARCHIPELAGO_OIDC_CLIENT_ID")
	c.OIDCClientSecret = secret("ARCHIPELAGO_OIDC_CLIENT_SECRET")
	c.OIDCName = get("ARCHIPELAGO_OIDC_NAME")
	c.OIDCGroupsClaim = get("ARCHIPELAGO_OIDC_GROUPS_CLAIM")
	c.OIDCScopes = strings.FieldsFunc(get("ARCHIPELAGO_OIDC_SCOPES"), func(r rune) bool { return r == ',' || r == ' ' })
	c.OIDCRoleMap = get("ARCHIPELAGO_OIDC_ROLE_MAP")
	if file, ok := env("ARCHIPELAGO_OIDC_ROLE_MAP_FILE"); ok && strings.TrimSpace(file) != "" {
		if c.OIDCRoleMap != "" {
			*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_ROLE_MAP", "set both ARCHIPELAGO_OIDC_ROLE_MAP and ARCHIPELAGO_OIDC_ROLE_MAP_FILE; keep one"})
		}
		b, err := os.ReadFile(strings.TrimSpace(file))
		if err != nil {
			*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_ROLE_MAP_FILE", fmt.Sprintf("cannot read %s: %v", file, errors.Unwrap(err))})
		}
		c.OIDCRoleMap = string(b)
	}
	if c.OIDCIssuer == "" {
		return
	}
	u, err := url.Parse(c.OIDCIssuer)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_ISSUER", fmt.Sprintf("%q is not an http(s) URL", c.OIDCIssuer)})
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_ISSUER", fmt.Sprintf("%q: an identity provider must be reached over https (http only on loopback, for tests)", c.OIDCIssuer)})
	}
	if c.OIDCClientID == "" {
		*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_CLIENT_ID", "is required when ARCHIPELAGO_OIDC_ISSUER is set"})
	}
	if c.OIDCClientSecret == "" {
		*errs = append(*errs, &Error{"ARCHIPELAGO_OIDC_CLIENT_SECRET", "is required when ARCHIPELAGO_OIDC_ISSUER is set (prefer ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE)"})
	}
	if c.OIDCGroupsClaim == "" {
		c.OIDCGroupsClaim = "groups"
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
