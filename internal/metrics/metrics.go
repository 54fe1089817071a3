// Package metrics owns Archipelago's domain metrics for Prometheus: restore status, vault
// usage against quota, pledge status, the job queue and the notification outbox. They are
// read from PostgreSQL when /metrics is scraped (a collector, not counters kept in memory),
// so every instance reports the same numbers and a restart loses nothing. deploy/ holds the
// alert rules and the Grafana dashboard built on these names.
//
// A scrape costs a constant number of statements (one per part) over maintained summaries
// (restore_summary, restore_member_summary and vault_summary, kept by triggers: a few rows
// per member and island), never over every repository, vault or the history of runs, and its cardinality is bounded: series are aggregated per member and per
// island (docs/alerts.md lists them and their count). Series per repository, vault and
// pledge are optional (Config.PerObject), for small federations. A part is exported whole
// or not at all: when one cannot be read, archipelago_metrics_collect_success{part} is 0
// and none of its series is exported, so a scrape is never silently partial.
//
// This package only reads; it must never write or hold a secret.
package metrics

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes and pledge statuses exported as one series each.
var (
	outcomes       = []string{"passed", "warning", "failed", "error", "none"}
	pledgeStatuses = []string{"pending", "active", "short", "down"}
)

// Config configures the collector.
type Config struct {
	// PerObject adds the series per repository, per vault and per pledge (their number
	// grows with the federation: about 12 per repository, 3 per vault, 4 per pledge).
	PerObject bool
	// Timeout bounds one collection (default 5 s).
	Timeout time.Duration
	// BackupInterval and RestoreCheckInterval are the coordinator's own backup's schedule
	// (ARCHIPELAGO_SELF_BACKUP_INTERVAL, ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL), exported so
	// that an alert can compare the age of the last success with them; zero: not exported.
	BackupInterval, RestoreCheckInterval time.Duration
}

// Collector reads the metrics from the database at each scrape.
type Collector struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	cfg  Config

	// Aggregates.
	memberRepos, memberStale, memberOldestSuccess, memberVaultUsage, memberVaultQuota, memberVaultsFull *family
	islandRepos, islandVaultUsage, islandVaultQuota, islandVaults, islandPledges                        *family
	repos                                                                                               *family
	// Per object (optional).
	lastSuccess, snapshotAge, rpo, rto, lastOutcome, lastRun, projected *family
	vaultRatio, vaultUsage, vaultQuota                                  *family
	pledgeStatus                                                        *family
	// Operations.
	queueDepth                     *family
	notifyDeliveries, notifyOldest *family
	up                             *family
	// The coordinator's own backup (internal/selfbackup) and the member agents' reports.
	backupConfigured, backupSuccessAge, backupFailed, backupInterval *family
	memberAgentsStale, agentsStale                                   *family
	// Every family, sorted by name (the order of the exposition).
	families []*family
}

// New returns the collector.
func New(pool *pgxpool.Pool, log *slog.Logger, cfg Config) *Collector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	repo := []string{"member", "repository", "repository_id", "mode"}
	var fams []*family
	d := func(name, help string, labels ...string) *family {
		f := &family{name: "archipelago_" + name, help: help, labels: labels,
			desc: prometheus.NewDesc("archipelago_"+name, help, labels, nil)}
		fams = append(fams, f)
		return f
	}
	c := &Collector{pool: pool, log: log, cfg: cfg,
		memberRepos: d("member_repositories", "The member's repositories by the outcome of their latest finished restore test "+
			"(none: never tested); only outcomes with at least one repository are exported.", "member", "outcome"),
		memberStale: d("member_repositories_stale", "The member's repositories whose newest snapshot seen by a test is older than "+
			"their RPO; zero counts are not exported.", "member"),
		memberOldestSuccess: d("member_restore_oldest_success_age_seconds", "Over the member's repositories tested successfully "+
			"at least once, the longest time since one's latest success.", "member"),
		memberVaultUsage: d("member_vault_usage_bytes", "Usage of the member's vaults as Garage last counted it.", "member"),
		memberVaultQuota: d("member_vault_quota_bytes", "Quota of the member's vaults.", "member"),
		memberVaultsFull: d("member_vaults_over_ratio", "The member's vaults whose usage is at least ratio of their quota "+
			"(ratio 0.95 and 1); zero counts are not exported.", "member", "ratio"),
		islandRepos: d("island_repositories", "Repositories in vaults on the island by their latest outcome; only non-zero "+
			"counts are exported.", "island", "outcome"),
		islandVaultUsage: d("island_vault_usage_bytes", "Usage of the vaults on the island.", "island"),
		islandVaultQuota: d("island_vault_quota_bytes", "Quota of the vaults on the island.", "island"),
		islandVaults:     d("island_vaults", "Vaults on the island (pending or active).", "island"),
		islandPledges:    d("island_pledges", "Live pledges on the island by status; only non-zero counts are exported.", "island", "status"),
		repos:            d("restore_repositories", "Repositories of the federation by the outcome of their latest test.", "outcome"),

		lastSuccess: d("restore_last_success_timestamp_seconds", "Unix time of the repository's latest passed (or warning) restore test.", repo...),
		snapshotAge: d("restore_snapshot_age_seconds", "Age now of the newest snapshot the latest restore test saw.", repo...),
		rpo:         d("restore_rpo_seconds", "The repository's recovery point objective.", repo...),
		rto:         d("restore_rto_seconds", "The repository's recovery time objective.", repo...),
		projected:   d("restore_projected_full_restore_seconds", "Projected full-restore time from the latest measuring test.", repo...),
		lastOutcome: d("restore_last_outcome", "1 for the outcome of the repository's latest finished test (none: never tested).",
			append(repo, "outcome")...),
		lastRun:      d("restore_last_test_timestamp_seconds", "Unix time of the repository's latest finished restore test.", repo...),
		vaultRatio:   d("vault_usage_ratio", "Vault usage divided by its quota.", "member", "vault", "vault_id", "island"),
		vaultUsage:   d("vault_usage_bytes", "Vault usage as Garage last counted it.", "member", "vault", "vault_id", "island"),
		vaultQuota:   d("vault_quota_bytes", "Vault quota.", "member", "vault", "vault_id", "island"),
		pledgeStatus: d("pledge_status", "1 for the pledge's current status.", "member", "island", "pledge_id", "node", "status"),

		queueDepth: d("job_queue_depth", "Background jobs by queue and state (River).", "queue", "state"),
		notifyDeliveries: d("notify_deliveries", "Notification deliveries not sent: pending (to send or retry) and failed (gave up).",
			"status"),
		notifyOldest: d("notify_oldest_pending_seconds", "Age of the oldest pending notification delivery (0 when none)."),
		backupConfigured: d("coordinator_backup_configured", "1 when the coordinator's own backup is set up "+
			"(archipelago admin backup init), 0 when not."),
		backupSuccessAge: d("coordinator_backup_last_success_age_seconds", "Time since the latest successful run of the "+
			"coordinator's own backup (kind backup) or restore check (kind restore_check), or since the backup was set up when "+
			"none succeeded yet; exported only once it is set up.", "kind"),
		backupFailed: d("coordinator_backup_last_run_failed", "1 when the latest run of this kind failed, 0 when it succeeded; "+
			"not exported before the first run.", "kind"),
		backupInterval: d("coordinator_backup_interval_seconds", "How often this kind runs "+
			"(ARCHIPELAGO_SELF_BACKUP_INTERVAL, ARCHIPELAGO_SELF_BACKUP_CHECK_INTERVAL of the scraped process).", "kind"),
		memberAgentsStale: d("member_agents_stale", "The member's repositories whose agent has not reported for its schedule's "+
			"interval plus grace (the agent.stale alert is raised); zero counts are not exported.", "member"),
		agentsStale: d("agents_stale", "Repositories of the federation whose agent has not reported for its schedule's "+
			"interval plus grace."),
		up: d("metrics_collect_success", "1 when the last collection of this part of the domain metrics succeeded; "+
			"0: none of the part's series is exported.", "part"),
	}
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	c.families = fams
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.families {
		ch <- f.desc
	}
}

// Parts of a collection, each exported whole or not at all.
type part struct {
	name string
	fn   func(context.Context, *batch) error
}

func (c *Collector) parts() []part {
	ps := []part{{"restore", c.restore}, {"vaults", c.vaults}, {"pledges", c.pledges}, {"jobs", c.jobs}, {"notify", c.notify},
		{"coordinator_backup", c.coordinatorBackup}, {"agents", c.agents}}
	if c.cfg.PerObject {
		ps = append(ps, part{"repositories", c.restorePerRepository}, part{"vault_detail", c.vaultsPerVault},
			part{"pledge_detail", c.pledgesPerPledge})
	}
	return ps
}

// family is one metric family (all gauges).
type family struct {
	name, help string
	labels     []string
	desc       *prometheus.Desc
}

// sample is one series of a family: its label values, in the family's order, and value.
type sample struct {
	f      *family
	labels []string
	v      float64
}

// batch gathers one part's series before any is sent.
type batch struct{ ss []sample }

func (b *batch) gauge(f *family, v float64, labels ...string) {
	b.ss = append(b.ss, sample{f: f, labels: labels, v: v})
}

// read reads every part concurrently, each on its own connection, under one deadline
// (Config.Timeout), and returns each part's series: a part that failed has none but its
// archipelago_metrics_collect_success 0 (every part ends with that series).
func (c *Collector) read(ctx context.Context) []batch {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	parts := c.parts()
	batches := make([]batch, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.fn(ctx, &batches[i])
		}()
	}
	wg.Wait()
	for i, p := range parts {
		ok := 1.0
		if errs[i] != nil {
			ok = 0
			c.log.WarnContext(ctx, "collect metrics: part not exported", "part", p.name, "err", errs[i])
			batches[i].ss = nil
		}
		batches[i].gauge(c.up, ok, p.name)
	}
	return batches
}

// Collect implements prometheus.Collector, for registries and tests; /metrics writes the
// same series with WriteText. The parts are read before any series is sent: sending is
// paced by the registry's processing of every series, which must not eat the parts' time
// (at 10,000 members the last parts used to miss the deadline while the first ones' 60,000
// series were being sent).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	batches := c.read(context.Background())
	for _, b := range batches {
		for _, s := range b.ss {
			ch <- prometheus.MustNewConstMetric(s.f.desc, prometheus.GaugeValue, s.v, s.labels...)
		}
	}
}

// restore reads the restore summaries kept by triggers (migration 018): repositories per
// member, island and latest outcome (restore_summary), each member's oldest latest success
// (restore_member_summary), and the stale repositories found through the freshness indexes
// (only the stale ones and those with their own RPO are read). One statement; its cost
// follows the members and islands, not the repositories or their runs.
func (c *Collector) restore(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT 'o', m.slug, i.name, s.outcome, s.repositories, NULL::float8
		FROM restore_summary s JOIN members m ON m.id = s.member_id JOIN islands i ON i.id = s.island_id
		WHERE s.repositories > 0
		UNION ALL
		SELECT 's', m.slug, '', '', x.n, NULL FROM (
			SELECT r.member_id, count(*) n FROM (
				SELECT r.member_id FROM restic_repositories r CROSS JOIN restore_settings st
				WHERE r.deleted_at IS NULL AND r.rpo_seconds IS NULL
					AND r.last_snapshot_time < now() - make_interval(secs => st.rpo_seconds::float8)
				UNION ALL
				SELECT r.member_id FROM restic_repositories r
				WHERE r.deleted_at IS NULL AND r.rpo_seconds IS NOT NULL
					AND r.last_snapshot_time < now() - make_interval(secs => r.rpo_seconds::float8)) r
			GROUP BY r.member_id) x JOIN members m ON m.id = x.member_id
		UNION ALL
		SELECT 'a', m.slug, '', '', 0, extract(epoch FROM now() - ms.oldest_success_at)::float8
		FROM restore_member_summary ms JOIN members m ON m.id = ms.member_id WHERE ms.oldest_success_at IS NOT NULL`)
	if err != nil {
		return err
	}
	type agg struct {
		byOutcome map[string]int64
		stale     int64
		oldest    *float64
	}
	members, islands := map[string]*agg{}, map[string]*agg{}
	get := func(m map[string]*agg, k string) *agg {
		a := m[k]
		if a == nil {
			a = &agg{byOutcome: map[string]int64{}}
			m[k] = a
		}
		return a
	}
	fed := map[string]int64{}
	var (
		kind, member, island, outcome string
		n                             int64
		age                           *float64
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &member, &island, &outcome, &n, &age}, func() error {
		switch kind {
		case "s":
			get(members, member).stale = n
			return nil
		case "a":
			if age != nil {
				v := *age
				get(members, member).oldest = &v
			}
			return nil
		}
		if outcome == "cancelled" || outcome == "" {
			outcome = "none"
		}
		get(members, member).byOutcome[outcome] += n
		get(islands, island).byOutcome[outcome] += n
		fed[outcome] += n
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range slices.Sorted(maps.Keys(members)) { // sorted: the same scrape, the same text
		a := members[m]
		for _, o := range slices.Sorted(maps.Keys(a.byOutcome)) {
			b.gauge(c.memberRepos, float64(a.byOutcome[o]), m, o)
		}
		if a.stale > 0 { // zeros left out: 10,000 members exported 10,000 zeros (alerts test > 0)
			b.gauge(c.memberStale, float64(a.stale), m)
		}
		if a.oldest != nil {
			b.gauge(c.memberOldestSuccess, *a.oldest, m)
		}
	}
	for _, i := range slices.Sorted(maps.Keys(islands)) {
		a := islands[i]
		for _, o := range slices.Sorted(maps.Keys(a.byOutcome)) {
			b.gauge(c.islandRepos, float64(a.byOutcome[o]), i, o)
		}
	}
	for _, o := range outcomes { // every outcome, zeros included: a handful of series
		b.gauge(c.repos, float64(fed[o]), o)
	}
	return nil
}

// vaults aggregates the vaults' last counted usage and quota per member and per island, from
// vault_summary (kept by a trigger on vaults, migration 018): one row per member and island.
func (c *Collector) vaults(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, i.name, s.vaults, s.quota_bytes::float8, s.usage_bytes::float8,
			s.over95, s.over100
		FROM vault_summary s JOIN members m ON m.id = s.member_id JOIN islands i ON i.id = s.island_id
		WHERE s.vaults > 0`)
	if err != nil {
		return err
	}
	type sums struct{ n, quota, usage, over95, over100 float64 }
	members, islands := map[string]*sums{}, map[string]*sums{}
	var (
		member, island     string
		n, over95, over100 int64
		quota, usage       float64
	)
	_, err = pgx.ForEachRow(rows, []any{&member, &island, &n, &quota, &usage, &over95, &over100}, func() error {
		for _, x := range []struct {
			m map[string]*sums
			k string
		}{{members, member}, {islands, island}} {
			s := x.m[x.k]
			if s == nil {
				s = &sums{}
				x.m[x.k] = s
			}
			s.n += float64(n)
			s.quota += quota
			s.usage += usage
			s.over95 += float64(over95)
			s.over100 += float64(over100)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range slices.Sorted(maps.Keys(members)) {
		s := members[m]
		b.gauge(c.memberVaultUsage, s.usage, m)
		b.gauge(c.memberVaultQuota, s.quota, m)
		if s.over95 > 0 {
			b.gauge(c.memberVaultsFull, s.over95, m, "0.95")
		}
		if s.over100 > 0 {
			b.gauge(c.memberVaultsFull, s.over100, m, "1")
		}
	}
	for _, i := range slices.Sorted(maps.Keys(islands)) {
		s := islands[i]
		b.gauge(c.islandVaultUsage, s.usage, i)
		b.gauge(c.islandVaultQuota, s.quota, i)
		b.gauge(c.islandVaults, s.n, i)
	}
	return nil
}

// pledges counts live pledges per island and status.
func (c *Collector) pledges(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT i.name, p.status, count(*) FROM pledges p JOIN islands i ON i.id = p.island_id
		WHERE p.withdrawn_at IS NULL GROUP BY i.name, p.status`)
	if err != nil {
		return err
	}
	var (
		island, status string
		n              int64
	)
	_, err = pgx.ForEachRow(rows, []any{&island, &status, &n}, func() error {
		b.gauge(c.islandPledges, float64(n), island, status)
		return nil
	})
	return err
}

// restorePerRepository exports the optional series per repository.
func (c *Collector) restorePerRepository(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, r.name, r.id, r.mode,
			coalesce(r.rpo_seconds, s.rpo_seconds), coalesce(r.rto_seconds, s.rto_seconds),
			ls.finished_at, lr.status, lr.finished_at, lr.snapshot_time, lr.rto_estimate_seconds
		FROM restic_repositories r JOIN members m ON m.id = r.member_id CROSS JOIN restore_settings s
		LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
		LEFT JOIN LATERAL (SELECT x.finished_at FROM restore_test_runs x
			WHERE x.repository_id = r.id AND x.status IN ('passed', 'warning') ORDER BY x.id DESC LIMIT 1) ls ON true
		WHERE r.deleted_at IS NULL`)
	if err != nil {
		return err
	}
	now := time.Now()
	var (
		member, name, mode string
		id, rpo, rto       int64
		lastOK, lastAt     *time.Time
		snapAt             *time.Time
		status             *string
		projected          *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&member, &name, &id, &mode, &rpo, &rto, &lastOK, &status, &lastAt, &snapAt, &projected}, func() error {
		l := []string{member, name, strconv.FormatInt(id, 10), mode}
		b.gauge(c.rpo, float64(rpo), l...)
		b.gauge(c.rto, float64(rto), l...)
		if lastOK != nil {
			b.gauge(c.lastSuccess, float64(lastOK.Unix()), l...)
		}
		if lastAt != nil {
			b.gauge(c.lastRun, float64(lastAt.Unix()), l...)
		}
		if snapAt != nil {
			b.gauge(c.snapshotAge, now.Sub(*snapAt).Seconds(), l...)
		}
		if projected != nil {
			b.gauge(c.projected, float64(*projected), l...)
		}
		cur := "none"
		if status != nil && *status != "cancelled" {
			cur = *status
		}
		for _, o := range outcomes {
			v := 0.0
			if o == cur {
				v = 1
			}
			b.gauge(c.lastOutcome, v, append(l, o)...)
		}
		return nil
	})
	return err
}

// vaultsPerVault exports the optional series per vault.
func (c *Collector) vaultsPerVault(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, v.name, v.id, i.name, v.quota_bytes, v.usage_bytes
		FROM vaults v JOIN members m ON m.id = v.member_id JOIN islands i ON i.id = v.island_id WHERE v.status IN ('pending', 'active')`)
	if err != nil {
		return err
	}
	var (
		member, name, island string
		id, quota            int64
		usage                *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&member, &name, &id, &island, &quota, &usage}, func() error {
		l := []string{member, name, strconv.FormatInt(id, 10), island}
		b.gauge(c.vaultQuota, float64(quota), l...)
		if usage != nil {
			b.gauge(c.vaultUsage, float64(*usage), l...)
			if quota > 0 {
				b.gauge(c.vaultRatio, float64(*usage)/float64(quota), l...)
			}
		}
		return nil
	})
	return err
}

// pledgesPerPledge exports the optional series per pledge.
func (c *Collector) pledgesPerPledge(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, i.name, p.id, left(p.node_id, 16), p.status
		FROM pledges p JOIN members m ON m.id = p.member_id JOIN islands i ON i.id = p.island_id WHERE p.withdrawn_at IS NULL`)
	if err != nil {
		return err
	}
	var (
		member, island, node, status string
		id                           int64
	)
	_, err = pgx.ForEachRow(rows, []any{&member, &island, &id, &node, &status}, func() error {
		for _, s := range pledgeStatuses {
			v := 0.0
			if s == status {
				v = 1
			}
			b.gauge(c.pledgeStatus, v, member, island, strconv.FormatInt(id, 10), node, s)
		}
		return nil
	})
	return err
}

func (c *Collector) jobs(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running', 'pending') GROUP BY queue, state`)
	if err != nil {
		return err
	}
	seen := map[[2]string]bool{}
	var (
		q, s string
		n    int64
	)
	_, err = pgx.ForEachRow(rows, []any{&q, &s, &n}, func() error {
		seen[[2]string{q, s}] = true
		b.gauge(c.queueDepth, float64(n), q, s)
		return nil
	})
	if err != nil {
		return err
	}
	// Always export the main series, so alerts see 0 rather than nothing.
	for _, q := range []string{"default", "restore"} {
		for _, s := range []string{"available", "running", "retryable"} {
			if !seen[[2]string{q, s}] {
				b.gauge(c.queueDepth, 0, q, s)
			}
		}
	}
	return nil
}

func (c *Collector) notify(ctx context.Context, b *batch) error {
	var pending, failed int64
	var oldest float64
	err := c.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed'),
		coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8
		FROM notify_deliveries`).Scan(&pending, &failed, &oldest)
	if err != nil {
		return err
	}
	b.gauge(c.notifyDeliveries, float64(pending), "pending")
	b.gauge(c.notifyDeliveries, float64(failed), "failed")
	b.gauge(c.notifyOldest, oldest)
	return nil
}

// Kinds of the coordinator's own backup runs (selfbackup.KindBackup, KindRestoreCheck).
var backupKinds = []string{"backup", "restore_check"}

// coordinatorBackup reads the coordinator's own backup: whether it is set up, and per kind
// the latest success and whether the latest run failed. One statement of a few index
// lookups (coordinator_backup_runs_kind_idx, newest first), whatever the runs' history.
func (c *Collector) coordinatorBackup(ctx context.Context, b *batch) error {
	for _, k := range []struct {
		kind  string
		every time.Duration
	}{{"backup", c.cfg.BackupInterval}, {"restore_check", c.cfg.RestoreCheckInterval}} {
		if k.every > 0 {
			b.gauge(c.backupInterval, k.every.Seconds(), k.kind)
		}
	}
	rows, err := c.pool.Query(ctx, `SELECT k.kind, extract(epoch FROM now() - b.created_at)::float8,
			extract(epoch FROM now() - (SELECT max(r.finished_at) FROM coordinator_backup_runs r
				WHERE r.kind = k.kind AND r.status = 'ok'))::float8,
			(SELECT r.status = 'failed' FROM coordinator_backup_runs r WHERE r.kind = k.kind
				ORDER BY r.finished_at DESC, r.id DESC LIMIT 1)
		FROM unnest($1::text[]) k(kind) LEFT JOIN coordinator_backup b ON b.id = 1
		ORDER BY k.kind`, backupKinds)
	if err != nil {
		return err
	}
	configured := 0.0
	var (
		kind          string
		sinceSetup    *float64
		sinceOK       *float64
		lastRunFailed *bool
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &sinceSetup, &sinceOK, &lastRunFailed}, func() error {
		if sinceSetup == nil {
			return nil // not set up: nothing is late
		}
		configured = 1
		age := *sinceSetup
		if sinceOK != nil {
			age = *sinceOK
		}
		b.gauge(c.backupSuccessAge, max(age, 0), kind)
		if lastRunFailed != nil {
			v := 0.0
			if *lastRunFailed {
				v = 1
			}
			b.gauge(c.backupFailed, v, kind)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.gauge(c.backupConfigured, configured)
	return nil
}

// agents counts, per member, the repositories whose agent is stale: agent_schedules rows
// whose stale alert is raised (attest.CheckStale sets alerted_at every minute and clears it
// when the agent reports). One statement; it reads agent_schedules, one narrow row per
// repository that has an agent schedule (a few milliseconds at 20,000), not the
// attestations. A partial index on alerted_at IS NOT NULL would make it follow the stale
// agents only, if agent schedules ever became that many.
func (c *Collector) agents(ctx context.Context, b *batch) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, count(*) FROM agent_schedules s
		JOIN restic_repositories r ON r.id = s.repository_id AND r.deleted_at IS NULL JOIN members m ON m.id = r.member_id
		WHERE s.alerted_at IS NOT NULL GROUP BY m.slug ORDER BY m.slug`)
	if err != nil {
		return err
	}
	var (
		member string
		n      int64
		total  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&member, &n}, func() error {
		b.gauge(c.memberAgentsStale, float64(n), member)
		total += n
		return nil
	})
	if err != nil {
		return err
	}
	b.gauge(c.agentsStale, float64(total)) // always, zero included: a single series
	return nil
}
