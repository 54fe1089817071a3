package approvals

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatons/archipelago/internal/metrics"
)

// Collector exports the approval requests and the approvers' liveness to Prometheus,
// read from PostgreSQL at each scrape.
type Collector struct {
	pool                                  *pgxpool.Pool
	log                                   *slog.Logger
	requests, oldest, reachable, required *prometheus.Desc
	up                                    *prometheus.Desc
}

// NewCollector returns the approvals collector.
func NewCollector(pool *pgxpool.Pool, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, l ...string) *prometheus.Desc {
		return prometheus.NewDesc("archipelago_"+name, help, l, nil)
	}
	return &Collector{pool: pool, log: log,
		requests:  d("approval_requests_open", "Open approval requests: pending (waiting for votes) or approved (cooling off, waiting for execution).", "status", "action"),
		oldest:    d("approval_request_oldest_pending_seconds", "Age of the oldest pending approval request (0 when none)."),
		reachable: d("approvers_reachable", "Approver organisations that can be reached (login or acknowledged ping within the liveness window), at the last check."),
		required:  d("approvals_required", "M: approvals from distinct organisations a protected action needs."),
		up:        d("approvals_collect_success", "1 when the last collection of approval metrics succeeded."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.oldest, c.reachable, c.required, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	metrics.CollectAllOrNothing(ch, c.up, c.log, "approval", c.collect)
}

func (c *Collector) collect(ctx context.Context, emit func(prometheus.Metric)) error {
	rows, err := c.pool.Query(ctx, `SELECT s.status, k.action, count(r.id)
		FROM (VALUES ('pending'), ('approved')) s (status)
		CROSS JOIN unnest($1::text[]) k (action)
		LEFT JOIN approval_requests r ON r.status = s.status AND r.action = k.action
		GROUP BY 1, 2`, actions())
	if err != nil {
		return err
	}
	type row struct {
		status, action string
		n              int64
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.status, &x.action, &x.n)
	})
	if err != nil {
		return err
	}
	for _, x := range counts {
		emit(prometheus.MustNewConstMetric(c.requests, prometheus.GaugeValue, float64(x.n), x.status, x.action))
	}
	var oldest float64
	var reachable, required int
	if err := c.pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
		FROM approval_requests WHERE status = 'pending'`).Scan(&oldest); err != nil {
		return err
	}
	if err := c.pool.QueryRow(ctx, `SELECT l.reachable, s.required_approvals FROM approval_liveness l, approval_settings s`).
		Scan(&reachable, &required); err != nil {
		return err
	}
	emit(prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest))
	emit(prometheus.MustNewConstMetric(c.reachable, prometheus.GaugeValue, float64(reachable)))
	emit(prometheus.MustNewConstMetric(c.required, prometheus.GaugeValue, float64(required)))
	return nil
}

func actions() []string {
	out := make([]string, len(Catalogue))
	for i, k := range Catalogue {
		out[i] = string(k.Action)
	}
	return out
}
