package protection

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatons/archipelago/internal/metrics"
)

// Collector exports the protection state to Prometheus, read from PostgreSQL at each scrape
// in one statement (deploy/prometheus/archipelago-alerts.yml alerts on them). By default the
// series are aggregated per member (six series a member, whatever its number of vaults);
// per-vault series come only with perObject (ARCHIPELAGO_METRICS_PER_OBJECT), as for
// internal/metrics.
type Collector struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	now       func() time.Time
	perObject bool
	// Per vault (perObject only).
	lag, behind, pending, frozen, tripped, mpu *prometheus.Desc
	// Per member.
	mLag, mBehind, mPending, mFrozen, mTripped, mMPU *prometheus.Desc
	up                                               *prometheus.Desc
}

// NewCollector returns the protection collector.
func NewCollector(pool *pgxpool.Pool, log *slog.Logger, perObject bool) *Collector {
	labels := []string{"member", "vault", "vault_id", "copy_island"}
	d := func(name, help string, l ...string) *prometheus.Desc {
		return prometheus.NewDesc("archipelago_"+name, help, l, nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{pool: pool, log: log, now: time.Now, perObject: perObject,
		lag:      d("vault_copy_lag_seconds", "Age of the vault's protected copy: now minus the start of its last complete copy run (absent before the first).", labels...),
		behind:   d("vault_copy_behind", "1 when the vault's copy is more than two copy intervals old or in error.", labels...),
		pending:  d("vault_copy_pending_deletions", "Objects deleted from the vault that its copy still keeps (grace period).", labels...),
		frozen:   d("vault_frozen", "1 while the vault is frozen (member keys read-only).", labels...),
		tripped:  d("vault_lifecycle_tripped_timestamp_seconds", "Unix time the tripwire last removed a lifecycle rule Archipelago did not set.", labels...),
		mpu:      d("vault_multipart_bytes", "Bytes of unfinished multipart uploads (not counted by Garage's quota).", labels...),
		mLag:     d("member_copy_lag_max_seconds", "Largest age of the member's protected copies (vaults with a complete copy run).", "member"),
		mBehind:  d("member_vaults_copy_behind", "Vaults of the member whose copy is more than two copy intervals old or in error.", "member"),
		mPending: d("member_copy_pending_deletions", "Objects deleted from the member's vaults that their copies still keep (grace period).", "member"),
		mFrozen:  d("member_vaults_frozen", "Vaults of the member that are frozen (member keys read-only).", "member"),
		mTripped: d("member_lifecycle_tripped_timestamp_seconds", "Unix time the tripwire last removed a lifecycle rule Archipelago did not set from one of the member's vaults.", "member"),
		mMPU:     d("member_vault_multipart_bytes", "Bytes of unfinished multipart uploads in the member's vaults (not counted by Garage's quota).", "member"),
		up:       d("protection_collect_success", "1 when the last collection of protection metrics succeeded."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lag, c.behind, c.pending, c.frozen, c.tripped, c.mpu,
		c.mLag, c.mBehind, c.mPending, c.mFrozen, c.mTripped, c.mMPU, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed collection exports no partial state:
// only protection_collect_success 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	metrics.CollectAllOrNothing(ch, c.up, c.log, "protection", c.collect)
}

// memberProtection accumulates one member's aggregate series.
type memberProtection struct {
	lag                          float64
	hasLag                       bool
	behind, pending, frozen, mpu float64
	tripped                      *time.Time
}

func (c *Collector) collect(ctx context.Context, emit func(prometheus.Metric)) error {
	st, err := loadSettings(ctx, c.pool)
	if err != nil {
		return err
	}
	rows, err := c.pool.Query(ctx, `SELECT m.slug, v.name, v.id, coalesce(i.name, ''), p.copy_enabled, p.copy_status, p.copied_through,
		v.created_at, p.frozen_at IS NOT NULL, p.lifecycle_tripped_at, p.multipart_bytes, coalesce(g.pending, 0)
		FROM vault_protection p JOIN vaults v ON v.id = p.vault_id JOIN members m ON m.id = v.member_id
		LEFT JOIN islands i ON i.id = p.copy_island_id
		LEFT JOIN (SELECT vault_id, count(*) AS pending FROM vault_copy_objects
			WHERE source_missing_since IS NOT NULL GROUP BY vault_id) g ON g.vault_id = v.id
		WHERE v.status IN ('active', 'deleting') ORDER BY m.slug, v.id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	now := c.now()
	members := map[string]*memberProtection{}
	var order []string
	for rows.Next() {
		var member, vault, island, status string
		var id, mpu, pending int64
		var enabled, frozen bool
		var through, tripped *time.Time
		var created time.Time
		if err := rows.Scan(&member, &vault, &id, &island, &enabled, &status, &through, &created, &frozen, &tripped, &mpu, &pending); err != nil {
			return err
		}
		agg := members[member]
		if agg == nil {
			agg = &memberProtection{}
			members[member] = agg
			order = append(order, member)
		}
		l := []string{member, vault, strconv.FormatInt(id, 10), island}
		gauge := func(d *prometheus.Desc, v float64) {
			if c.perObject {
				emit(prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...))
			}
		}
		if enabled && status != CopyNone {
			ref := created
			behind := 0.0
			if through != nil {
				ref = *through
				lag := now.Sub(*through).Seconds()
				gauge(c.lag, lag)
				if !agg.hasLag || lag > agg.lag {
					agg.lag, agg.hasLag = lag, true
				}
			}
			if status == CopyError || now.Sub(ref) > 2*st.CopyEvery {
				behind = 1
			}
			gauge(c.behind, behind)
			gauge(c.pending, float64(pending))
			agg.behind += behind
			agg.pending += float64(pending)
		}
		gauge(c.frozen, b2f(frozen))
		gauge(c.mpu, float64(mpu))
		agg.frozen += b2f(frozen)
		agg.mpu += float64(mpu)
		if tripped != nil {
			gauge(c.tripped, float64(tripped.Unix()))
			if agg.tripped == nil || tripped.After(*agg.tripped) {
				agg.tripped = tripped
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, member := range order {
		agg := members[member]
		g := func(d *prometheus.Desc, v float64) {
			emit(prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, member))
		}
		if agg.hasLag {
			g(c.mLag, agg.lag)
		}
		g(c.mBehind, agg.behind)
		g(c.mPending, agg.pending)
		g(c.mFrozen, agg.frozen)
		g(c.mMPU, agg.mpu)
		if agg.tripped != nil {
			g(c.mTripped, float64(agg.tripped.Unix()))
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
