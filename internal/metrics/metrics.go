// Package metrics owns Archipelago's domain metrics for Prometheus: restore status per
// repository (last success, snapshot age, last outcome), vault usage against quota,
// pledge status, the job queue and the notification outbox. They are read from
// PostgreSQL when /metrics is scraped (a collector, not counters kept in memory), so
// every instance reports the same numbers and a restart loses nothing. deploy/ holds the
// alert rules and the Grafana dashboard built on these names.
//
// This package only reads; it must never write or hold a secret.
package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes and pledge statuses exported as one series each (value 1 for the current one).
var (
	outcomes       = []string{"passed", "warning", "failed", "error", "none"}
	pledgeStatuses = []string{"pending", "active", "short", "down"}
)

// Collector reads the metrics from the database at each scrape.
type Collector struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	timeout time.Duration

	lastSuccess, snapshotAge, rpo, rto, lastOutcome, lastRun, projected *prometheus.Desc
	vaultRatio, vaultUsage, vaultQuota                                  *prometheus.Desc
	pledgeStatus                                                        *prometheus.Desc
	queueDepth                                                          *prometheus.Desc
	notifyDeliveries, notifyOldest                                      *prometheus.Desc
	up                                                                  *prometheus.Desc
}

// New returns the collector.
func New(pool *pgxpool.Pool, log *slog.Logger) *Collector {
	repo := []string{"member", "repository", "repository_id", "mode"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("archipelago_"+name, help, labels, nil)
	}
	return &Collector{pool: pool, log: log, timeout: 5 * time.Second,
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
		queueDepth:   d("job_queue_depth", "Background jobs by queue and state (River).", "queue", "state"),
		notifyDeliveries: d("notify_deliveries", "Notification deliveries not sent: pending (to send or retry) and failed (gave up).",
			"status"),
		notifyOldest: d("notify_oldest_pending_seconds", "Age of the oldest pending notification delivery (0 when none)."),
		up:           d("metrics_collect_success", "1 when the last collection of domain metrics from the database succeeded.", "part"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lastSuccess, c.snapshotAge, c.rpo, c.rto, c.projected, c.lastOutcome, c.lastRun,
		c.vaultRatio, c.vaultUsage, c.vaultQuota, c.pledgeStatus, c.queueDepth, c.notifyDeliveries, c.notifyOldest, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, part := range []struct {
		name string
		fn   func(context.Context, chan<- prometheus.Metric) error
	}{{"restore", c.restore}, {"vaults", c.vaults}, {"pledges", c.pledges}, {"jobs", c.jobs}, {"notify", c.notify}} {
		ok := 1.0
		if err := part.fn(ctx, ch); err != nil {
			ok = 0
			c.log.WarnContext(ctx, "collect metrics", "part", part.name, "err", err)
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok, part.name)
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *Collector) restore(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, r.name, r.id, r.mode,
			coalesce(r.rpo_seconds, s.rpo_seconds), coalesce(r.rto_seconds, s.rto_seconds),
			(SELECT max(x.finished_at) FROM restore_test_runs x WHERE x.repository_id = r.id AND x.status IN ('passed', 'warning')),
			l.status, l.finished_at, l.snapshot_time, l.rto_estimate_seconds
		FROM restic_repositories r JOIN members m ON m.id = r.member_id CROSS JOIN restore_settings s
		LEFT JOIN LATERAL (SELECT status, finished_at, snapshot_time, rto_estimate_seconds FROM restore_test_runs x
			WHERE x.repository_id = r.id AND x.status IN ('passed', 'warning', 'failed', 'error')
			ORDER BY x.finished_at DESC, x.id DESC LIMIT 1) l ON true
		WHERE r.deleted_at IS NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var (
			member, name, mode string
			id, rpo, rto       int64
			lastOK, lastAt     *time.Time
			snapAt             *time.Time
			status             *string
			projected          *int64
		)
		if err := rows.Scan(&member, &name, &id, &mode, &rpo, &rto, &lastOK, &status, &lastAt, &snapAt, &projected); err != nil {
			return err
		}
		l := []string{member, name, strconv.FormatInt(id, 10), mode}
		gauge(ch, c.rpo, float64(rpo), l...)
		gauge(ch, c.rto, float64(rto), l...)
		if lastOK != nil {
			gauge(ch, c.lastSuccess, float64(lastOK.Unix()), l...)
		}
		if lastAt != nil {
			gauge(ch, c.lastRun, float64(lastAt.Unix()), l...)
		}
		if snapAt != nil {
			gauge(ch, c.snapshotAge, now.Sub(*snapAt).Seconds(), l...)
		}
		if projected != nil {
			gauge(ch, c.projected, float64(*projected), l...)
		}
		cur := "none"
		if status != nil {
			cur = *status
		}
		for _, o := range outcomes {
			v := 0.0
			if o == cur {
				v = 1
			}
			gauge(ch, c.lastOutcome, v, append(l, o)...)
		}
	}
	return rows.Err()
}

func (c *Collector) vaults(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, v.name, v.id, i.name, v.quota_bytes, v.usage_bytes
		FROM vaults v JOIN members m ON m.id = v.member_id JOIN islands i ON i.id = v.island_id WHERE v.status IN ('pending', 'active')`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var member, name, island string
		var id, quota int64
		var usage *int64
		if err := rows.Scan(&member, &name, &id, &island, &quota, &usage); err != nil {
			return err
		}
		l := []string{member, name, strconv.FormatInt(id, 10), island}
		gauge(ch, c.vaultQuota, float64(quota), l...)
		if usage != nil {
			gauge(ch, c.vaultUsage, float64(*usage), l...)
			if quota > 0 {
				gauge(ch, c.vaultRatio, float64(*usage)/float64(quota), l...)
			}
		}
	}
	return rows.Err()
}

func (c *Collector) pledges(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.pool.Query(ctx, `SELECT m.slug, i.name, p.id, left(p.node_id, 16), p.status
		FROM pledges p JOIN members m ON m.id = p.member_id JOIN islands i ON i.id = p.island_id WHERE p.withdrawn_at IS NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var member, island, node, status string
		var id int64
		if err := rows.Scan(&member, &island, &id, &node, &status); err != nil {
			return err
		}
		for _, s := range pledgeStatuses {
			v := 0.0
			if s == status {
				v = 1
			}
			gauge(ch, c.pledgeStatus, v, member, island, strconv.FormatInt(id, 10), node, s)
		}
	}
	return rows.Err()
}

func (c *Collector) jobs(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running', 'pending') GROUP BY queue, state`)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := map[[2]string]bool{}
	for rows.Next() {
		var q, s string
		var n int64
		if err := rows.Scan(&q, &s, &n); err != nil {
			return err
		}
		seen[[2]string{q, s}] = true
		gauge(ch, c.queueDepth, float64(n), q, s)
	}
	// Always export the main series, so alerts see 0 rather than nothing.
	for _, q := range []string{"default", "restore"} {
		for _, s := range []string{"available", "running", "retryable"} {
			if !seen[[2]string{q, s}] {
				gauge(ch, c.queueDepth, 0, q, s)
			}
		}
	}
	return rows.Err()
}

func (c *Collector) notify(ctx context.Context, ch chan<- prometheus.Metric) error {
	var pending, failed int64
	var oldest float64
	err := c.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed'),
		coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8
		FROM notify_deliveries`).Scan(&pending, &failed, &oldest)
	if err != nil {
		return err
	}
	gauge(ch, c.notifyDeliveries, float64(pending), "pending")
	gauge(ch, c.notifyDeliveries, float64(failed), "failed")
	gauge(ch, c.notifyOldest, oldest)
	return nil
}
