// Package app is Archipelago's composition root: from a validated configuration it opens
// the database, checks the schema, builds the keyring, the domain services, the API, the
// portal and the background workers, and runs them until its context ends. `serve`,
// `worker` and the sandbox (`dev`) all start Archipelago through it.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/chatons/archipelago/internal/api"
	"github.com/chatons/archipelago/internal/apiref"
	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/metrics"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/oidclogin"
	"github.com/chatons/archipelago/internal/portal"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/selfbackup"
	"github.com/chatons/archipelago/internal/server"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// App is a running Archipelago: its database pool and services.
type App struct {
	Cfg      *config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Keyring  *seal.Keyring
	Server   *server.Server
	Identity *identity.Service
	Islands  *islands.Service
	Verify   *verify.Service
	Vaults   *vaults.Service
	Jobs     *jobs.Runner
	Audit    *audit.Service
	Notify   *notify.Service
	Reports  *reports.Service
	// Protection: lifecycle tripwire, protected copies, freeze (docs/protection.md).
	Protection *protection.Service
	// Attest: member-side agents' keys, attestations and schedules (docs/agent.md).
	Attest *attest.Service
	// Approvals: multi-party approval of protected actions (docs/governance.md).
	Approvals *approvals.Service
	// SelfBackup: the coordinator's own backup into the federation (docs/deploy.md).
	SelfBackup *selfbackup.Service
}

// Open connects to the database, checks (or, with AutoMigrate, applies) the schema and
// builds every service. The caller must Close it.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *App, err error) {
	if err := errors.Join(cfg.RequireDatabase(), cfg.RequireMasterKey()); err != nil {
		return nil, err
	}
	kr, err := seal.ParseKeyring(cfg.MasterKey)
	if err != nil {
		return nil, &config.Error{Var: "ARCHIPELAGO_MASTER_KEY_FILE", Problem: err.Error()}
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBConnTimeout, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	if cfg.AutoMigrate {
		if err := database.MigrateUp(ctx, pool, func(v int32, name string) {
			log.InfoContext(ctx, "applying migration", "version", v, "name", name)
		}); err != nil {
			return nil, err
		}
	}
	if err := database.CheckCurrent(ctx, pool); err != nil {
		return nil, err
	}
	a := &App{Cfg: cfg, Log: log, Pool: pool, Keyring: kr}
	if err := a.build(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	jwtKey := []byte(a.Cfg.JWTKey)
	if len(jwtKey) == 0 {
		jwtKey = a.Keyring.Derive("jwt-hs256")
	}
	a.Identity = identity.New(a.Pool, a.Log, identity.Config{JWTKey: jwtKey, Issuer: a.Cfg.PublicURL,
		MaxConcurrentHashes: a.Cfg.MaxPasswordHashes,
		PasswordCost:        identity.PasswordCost{MemoryKiB: a.Cfg.PasswordHashMemoryKiB, Passes: a.Cfg.PasswordHashPasses}})
	auditKeys, err := audit.LoadKeys(ctx, a.Pool, a.Cfg.AuditKey, a.Keyring.Derive)
	if errors.Is(err, audit.ErrBadSigningKey) {
		return &config.Error{Var: "ARCHIPELAGO_AUDIT_SIGNING_KEY", Problem: err.Error()}
	}
	if err != nil {
		return err
	}
	a.Audit = audit.NewService(a.Pool, auditKeys, a.Log)
	a.Islands = islands.New(a.Pool, a.Keyring, a.Log, islands.Config{PollTimeout: min(islands.DefaultPollTimeout, a.Cfg.IslandPollEvery)})
	a.Notify = notify.New(a.Pool, a.Keyring, a.Log, notify.Config{PublicURL: a.Cfg.PublicURL, DigestEvery: a.Cfg.NotifyDigestInterval,
		Policy: notify.AddressPolicy{AllowPrivate: a.Cfg.WebhookAllowPrivate},
		SMTP: notify.SMTPConfig{Addr: a.Cfg.SMTPAddr, Username: a.Cfg.SMTPUsername, Password: a.Cfg.SMTPPassword,
			From: a.Cfg.SMTPFrom, TLS: a.Cfg.SMTPTLS}})
	a.Vaults = vaults.New(a.Pool, a.Keyring, a.Islands, a.Log, vaults.Config{})
	a.Protection = protection.New(a.Pool, a.Keyring, a.Islands, a.Vaults, a.Log, protection.Config{TempDir: a.Cfg.ScratchDir})
	a.Reports = reports.New(a.Pool, a.Audit, a.Log, reports.Config{Periods: a.Cfg.ReportPeriods})
	// Restore verification: restic may be missing on a machine that only serves HTTP;
	// its tests then end in error, saying so.
	rr, rerr := restic.New(context.Background(), restic.Config{Logger: a.Log, TempDir: a.Cfg.ScratchDir})
	if rerr != nil {
		a.Log.Warn("restic unavailable: restore tests run by this process will end in error", "err", rerr)
		rr = nil
	}
	a.Verify = verify.New(a.Pool, a.Keyring, verify.Config{Logger: a.Log, Restic: rr, ScratchDir: a.Cfg.ScratchDir,
		TestTimeout: a.Cfg.RestoreTestTimeout, ContentHashCycle: a.Cfg.ContentHashCycle})
	a.SelfBackup = selfbackup.New(a.Pool, a.Keyring, selfbackup.Config{Logger: a.Log, Restic: rr, DatabaseURL: a.Cfg.DatabaseURL,
		PGDump: a.Cfg.PGDump, Keep: a.Cfg.SelfBackupKeep, ScratchDir: a.Cfg.ScratchDir})
	a.Attest = attest.New(a.Pool, a.Log, attest.Config{})
	a.Verify.AddEvidenceSource(a.Attest.Evidence) // "attested by the member" beside the federation's levels
	a.buildApprovals()
	apiH, err := api.New(api.Deps{Attest: a.Attest, Logger: a.Log, Pool: a.Pool, Identity: a.Identity, SecureCookies: a.Cfg.SecureCookies(),
		Audit: a.Audit, Islands: a.Islands, Notify: a.Notify, Reports: a.Reports, Vaults: a.Vaults, Verify: a.Verify, Protection: a.Protection,
		Approvals: a.Approvals})
	if err != nil {
		return fmt.Errorf("build API: %w", err)
	}
	ref, err := apiref.Read(apiH.Document())
	if err != nil {
		return fmt.Errorf("build API reference: %w", err)
	}
	oidcClient, err := a.buildOIDC()
	if err != nil {
		return err
	}
	p, err := portal.New(portal.Deps{OIDC: oidcClient, APIReference: ref, Attest: a.Attest, Logger: a.Log, Version: api.Version, Pool: a.Pool, Identity: a.Identity,
		SecureCookies: a.Cfg.SecureCookies(), Islands: a.Islands, Notify: a.Notify, Reports: a.Reports, Audit: a.Audit, Vaults: a.Vaults, Verify: a.Verify,
		Protection: a.Protection, Approvals: a.Approvals})
	if err != nil {
		return fmt.Errorf("build portal: %w", err)
	}
	registry := server.NewRegistry()
	// Restore status, vault usage, pledges (aggregated per member and island), job queue, outbox.
	// (written by /metrics as text directly, after the registry's families: internal/metrics).
	domain := metrics.New(a.Pool, a.Log, metrics.Config{PerObject: a.Cfg.MetricsPerObject,
		BackupInterval: a.Cfg.SelfBackupInterval, RestoreCheckInterval: a.Cfg.SelfBackupCheckInterval})
	registry.MustRegister(protection.NewCollector(a.Pool, a.Log, a.Cfg.MetricsPerObject)) // copy lag, pending deletions, freeze, tripwire
	registry.MustRegister(approvals.NewCollector(a.Pool, a.Log))                          // open approval requests, reachable approvers
	// This process's audit appends, by who computed the tree (audit.Appender).
	if ap := audit.AppenderFrom(ctx); ap != nil {
		for _, by := range []string{"process", "database"} {
			registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "archipelago_audit_appends_total",
				Help: "Audit entries this process appended, by who computed the tree: the process (from the head it predicted) " +
					"or the database (the process's first append, after another process's, a rollback or a clock off by over a second).",
				ConstLabels: prometheus.Labels{"by": by}}, func() float64 {
				predicted, redone := ap.AppendCounts()
				if by == "process" {
					return float64(predicted)
				}
				return float64(redone)
			}))
		}
	}
	a.Server, err = server.New(server.Deps{Logger: a.Log, Pool: a.Pool, Registry: registry, API: apiH, Portal: p,
		MaxBodyBytes: a.Cfg.MaxBodyBytes, SecureCookies: a.Cfg.SecureCookies(), TrustedProxies: a.Cfg.TrustedProxies,
		MetricsToken: a.Cfg.MetricsToken, Expositions: []server.Exposition{domain}})
	if err != nil {
		return err
	}
	a.Jobs, err = jobs.New(a.Pool, jobs.Config{Logger: a.Log, Work: true, FetchPollInterval: a.Cfg.JobPollInterval,
		RestoreWorkers: a.Cfg.RestoreWorkers, Register: []func(*river.Workers){a.Verify.Register},
		Periodic: a.Verify.PeriodicJobs()}, a.tasks()...)
	if err != nil {
		return err
	}
	a.Verify.UseQueue(a.Jobs.Client())
	return nil
}

// tasks lists the periodic background tasks, each a domain function run on River.
func (a *App) tasks() []jobs.Task {
	return []jobs.Task{
		{Name: "audit.checkpoint", Every: auditCheckpointEvery, Run: func(ctx context.Context) error {
			_, err := a.Audit.Checkpoint(ctx)
			return err
		}},
		// Island health: every island polled concurrently, each within its own timeout.
		{Name: "islands.poll", Every: a.Cfg.IslandPollEvery, Timeout: 2*a.Cfg.IslandPollEvery + islands.DefaultPollTimeout,
			Run: a.Islands.PollAll},
		// Notifications: turn other domains' new rows into events, send due deliveries
		// (retrying with backoff), and send each channel's digest of held-back events.
		{Name: "notify.scan", Every: notify.ScanEvery, Run: a.Notify.ScanSources},
		{Name: "notify.deliver", Every: notify.DeliverEvery, Timeout: 5 * time.Minute, Run: a.Notify.DeliverDue},
		{Name: "notify.digest", Every: a.Cfg.NotifyDigestInterval, Run: a.Notify.SendDigests},
		// Reports of the latest complete weekly and monthly periods.
		{Name: "reports.schedule", Every: reports.ScheduleEvery, Timeout: 30 * time.Minute, Run: a.Reports.RunSchedule},
		// Vaults: repair drift against Garage, collect usage, delete expired keys, purge
		// deletions past their grace period (each idempotent, each island time-bounded).
		{Name: "vaults.reconcile", Every: 5 * time.Minute, Timeout: 15 * time.Minute, Run: a.Vaults.ReconcileAll},
		{Name: "vaults.usage", Every: 15 * time.Minute, Timeout: 15 * time.Minute, Run: a.Vaults.CollectUsage},
		{Name: "vaults.expired_keys", Every: 10 * time.Minute, Run: a.Vaults.DeleteExpiredKeys},
		{Name: "vaults.purge", Every: time.Hour, Timeout: 30 * time.Minute, Run: a.Vaults.PurgeDeletedVaults},
		// Retention of run logs, login failures, expired sessions, delivered events and
		// snapshot observations (never the audit log).
		jobs.RetentionTask(a.Pool, jobs.Retention{RunLogs: a.Cfg.RetainRunLogs, LoginFailures: a.Cfg.RetainLoginFailures,
			ExpiredSessions: a.Cfg.RetainExpiredSessions, DeliveredEvents: a.Cfg.RetainDeliveredEvents,
			SnapshotObservations: a.Cfg.RetainSnapshotObservations}, a.Log),
		// Protected vaults: the lifecycle tripwire (and due unfreezes) on a short period, long
		// before Garage's midnight lifecycle worker; copies checked every minute, each vault
		// copied when its copy interval (a federation setting, default 1 h) has passed.
		{Name: "protection.tripwire", Every: cmp.Or(a.Cfg.TripwireEvery, protection.DefaultTripwireEvery), Run: a.Protection.CheckLifecycle},
		{Name: "protection.copy", Every: time.Minute, Timeout: time.Hour, Run: a.Protection.CopyAll},
		// Member-side agents: an agent silent past its schedule + grace raises agent.stale.
		{Name: "attest.stale", Every: attest.StaleEvery, Run: func(ctx context.Context) error {
			_, err := a.Attest.CheckStale(ctx)
			return err
		}},
		// Multi-party approval: expire requests, execute approved ones after their
		// cooling-off; check that enough approvers can be reached.
		{Name: "approvals.tick", Every: approvals.TickEvery, Timeout: 30 * time.Minute, Run: a.Approvals.Tick},
		{Name: "approvals.liveness", Every: approvals.LivenessEvery, Run: a.Approvals.CheckLiveness},
		// The coordinator's own backup, once `archipelago admin backup init` was run: a dump
		// when the last good one is older than the interval (looked at hourly, so a restart
		// does not dump again), and a restore of the newest into a throwaway PostgreSQL.
		{Name: "selfbackup.backup", Every: min(a.Cfg.SelfBackupInterval, time.Hour), Timeout: 3 * time.Hour,
			Run: func(ctx context.Context) error { return a.SelfBackup.BackupIfDue(ctx, a.Cfg.SelfBackupInterval) }},
		{Name: "selfbackup.restore_check", Every: min(a.Cfg.SelfBackupCheckInterval, time.Hour), Timeout: 3 * time.Hour,
			Run: func(ctx context.Context) error {
				return a.SelfBackup.RestoreCheckIfDue(ctx, a.Cfg.SelfBackupCheckInterval)
			}},
	}
}

// Run serves HTTP on l (when not nil) and runs the background workers (when configured)
// until ctx ends, then drains both.
func (a *App) Run(ctx context.Context, l net.Listener, workers bool) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if l != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Server.Serve(ctx, l, a.Cfg.ShutdownGrace); err != nil {
				errs <- fmt.Errorf("http server: %w", err)
				cancel()
			}
		}()
	}
	if workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.runWorkers(ctx); err != nil {
				errs <- fmt.Errorf("workers: %w", err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// runWorkers runs the background jobs until ctx ends.
func (a *App) runWorkers(ctx context.Context) error {
	var wg sync.WaitGroup
	var jobsErr error
	if err := a.Verify.ReclaimStale(ctx); err != nil {
		a.Log.WarnContext(ctx, "reclaim restore-test scratch space", "err", err)
	}
	wg.Go(func() { jobsErr = a.Jobs.Run(ctx, a.Cfg.ShutdownGrace) })
	<-ctx.Done()
	wg.Wait()
	return jobsErr
}

// auditCheckpointEvery is how often the audit log gets a signed checkpoint while it grows.
const auditCheckpointEvery = time.Minute

// Close releases the database pool.
func (a *App) Close() { a.Pool.Close() }

// buildOIDC builds the login through the identity provider when ARCHIPELAGO_OIDC_ISSUER is
// set (nil otherwise). The provider is contacted at the first login, not here.
func (a *App) buildOIDC() (*oidclogin.Client, error) {
	if !a.Cfg.OIDCEnabled() {
		return nil, nil
	}
	rm, err := oidclogin.ParseRoleMap(a.Cfg.OIDCRoleMap)
	if err != nil {
		return nil, &config.Error{Var: "ARCHIPELAGO_OIDC_ROLE_MAP", Problem: err.Error()}
	}
	return oidclogin.New(oidclogin.Config{Issuer: a.Cfg.OIDCIssuer, ClientID: a.Cfg.OIDCClientID, ClientSecret: a.Cfg.OIDCClientSecret,
		Name: a.Cfg.OIDCName, Scopes: a.Cfg.OIDCScopes, GroupsClaim: a.Cfg.OIDCGroupsClaim, RoleMap: rm, PublicURL: a.Cfg.PublicURL,
		CookieKey: a.Keyring.Derive("oidc-flow-cookie"), Secure: a.Cfg.SecureCookies()}, a.Log)
}
