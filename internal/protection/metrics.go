package protection

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the protection state of every vault to Prometheus, read from
// PostgreSQL at each scrape (deploy/prometheus/archipelago-alerts.yml alerts on them).
type Collector struct {
	pool                                           *pgxpool.Pool
	log                                            *slog.Logger
	now                                            func() time.Time
	lag, behind, pending, frozen, tripped, mpu, up *prometheus.Desc
}

// NewCollector returns the protection collector.
func NewCollector(pool *pgxpool.Pool, log *slog.Logger) *Collector {
	labels := []string{"member", "vault", "vault_id", "copy_island"}
	d := func(name, help string, l ...string) *prometheus.Desc {
		return prometheus.NewDesc("archipelago_"+name, help, l, nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{pool: pool, log: log, now: time.Now,
		lag:     d("vault_copy_lag_seconds", "Age of the vault's protected copy: now minus the start of its last complete copy run (absent before the first).", labels...),
		behind:  d("vault_copy_behind", "1 when the vault's copy is more than two copy intervals old or in error.", labels...),
		pending: d("vault_copy_pending_deletions", "Objects deleted from the vault that its copy still keeps (grace period).", labels...),
		frozen:  d("vault_frozen", "1 while the vault is frozen (member keys read-only).", labels...),
		tripped: d("vault_lifecycle_tripped_timestamp_seconds", "Unix time the tripwire last removed a lifecycle rule Archipelago did not set.", labels...),
		mpu:     d("vault_multipart_bytes", "Bytes of unfinished multipart uploads (not counted by Garage's quota).", labels...),
		up:      d("protection_collect_success", "1 when the last collection of protection metrics succeeded."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.behind, c.pending, c.frozen, c.tripped, c.mpu, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok := 1.0
	if err := c.collect(ctx, ch); err != nil {
		c.log.WarnContext(ctx, "collect protection metrics", "err", err)
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}

func (c *Collector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	st, err := loadSettings(ctx, c.pool)
	if err != nil {
		return err
	}
	rows, err := c.pool.Query(ctx, `SELECT m.slug, v.name, v.id, coalesce(i.name, ''), p.copy_enabled, p.copy_status, p.copied_through,
		v.created_at, p.frozen_at IS NOT NULL, p.lifecycle_tripped_at, p.multipart_bytes,
		(SELECT count(*) FROM vault_copy_objects o WHERE o.vault_id = v.id AND o.source_missing_since IS NOT NULL)
		FROM vault_protection p JOIN vaults v ON v.id = p.vault_id JOIN members m ON m.id = v.member_id
		LEFT JOIN islands i ON i.id = p.copy_island_id WHERE v.status IN ('active', 'deleting') ORDER BY v.id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	now := c.now()
	for rows.Next() {
		var member, vault, island, status string
		var id, mpu, pending int64
		var enabled, frozen bool
		var through, tripped *time.Time
		var created time.Time
		if err := rows.Scan(&member, &vault, &id, &island, &enabled, &status, &through, &created, &frozen, &tripped, &mpu, &pending); err != nil {
			return err
		}
		l := []string{member, vault, strconv.FormatInt(id, 10), island}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		behind := 0.0
		if enabled && status != CopyNone {
			ref := created
			if through != nil {
				ref = *through
				gauge(c.lag, now.Sub(*through).Seconds())
			}
			if status == CopyError || now.Sub(ref) > 2*st.CopyEvery {
				behind = 1
			}
			gauge(c.behind, behind)
			gauge(c.pending, float64(pending))
		}
		gauge(c.frozen, b2f(frozen))
		gauge(c.mpu, float64(mpu))
		if tripped != nil {
			gauge(c.tripped, float64(tripped.Unix()))
		}
	}
	return rows.Err()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
