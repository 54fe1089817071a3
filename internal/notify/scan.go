package notify

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Outbox sources: the tables whose changes notifications are made of.
const (
	SourceRestoreRun  = "restore_test_runs" // ref: the run's id
	SourceVaultEvent  = "vault_events"      // ref: the event's id
	SourceVaultUsage  = "vault_usage"       // ref: the vault's id, at: the observation's time
	SourcePledge      = "pledges"           // ref: the pledge's id
	outboxBatch       = 500
	outboxScanLockKey = 0x6e6f_7466_7363_616e // "notfscan": one outbox consumer at a time
)

// Execer is what OutboxAdd needs of a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// OutboxAdd records, in the producer's transaction tx, that a row of source changed
// (refAt is the observation time of a vault_usage row, nil otherwise). ScanSources turns
// it into events once the transaction has committed and every older transaction has
// ended, whatever its timestamps say.
func OutboxAdd(ctx context.Context, tx Execer, source string, refID int64, refAt *time.Time) error {
	// pg_current_xact_id() is evaluated for the row: the producer's transaction id, which
	// orders the outbox (see ScanSources).
	if _, err := tx.Exec(ctx, `INSERT INTO notify_outbox (source, ref_id, ref_at, xid) VALUES ($1, $2, $3, pg_current_xact_id())`,
		source, refID, refAt); err != nil {
		return fmt.Errorf("notify outbox (%s %d): %w", source, refID, err)
	}
	return nil
}

// ScanSources turns the outbox's rows into events: vault usage thresholds (vault_events,
// vault_usage), pledge status (pledges) and restore-test outcomes (restore_test_runs).
// It is the "notify.scan" task.
//
// Rows are consumed in the order of their transactions' ids, and only once every
// transaction older than the oldest one still running has ended (the row's xid is below
// the snapshot's xmin): a transaction that commits late — a restore test stamped before
// another but committed after it — has its row consumed late, never skipped, because no
// cursor moves past what has not committed yet. Consumed rows are marked in the
// transaction that emits their events, under a lock so two processes never both emit.
func (s *Service) ScanSources(ctx context.Context) error {
	for {
		n := 0
		err := s.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(outboxScanLockKey)); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT id, source, ref_id, ref_at FROM notify_outbox
				WHERE consumed_at IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot())
				ORDER BY xid, id LIMIT $1`, outboxBatch)
			if err != nil {
				return err
			}
			type item struct {
				id, ref int64
				source  string
				at      *time.Time
			}
			items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
				var x item
				err := r.Scan(&x.id, &x.source, &x.ref, &x.at)
				return x, err
			})
			if err != nil {
				return err
			}
			n = len(items)
			ids := make([]int64, 0, len(items))
			for _, x := range items {
				var err error
				switch x.source {
				case SourceRestoreRun:
					err = s.scanRestoreRun(ctx, tx, x.ref)
				case SourceVaultEvent:
					err = s.scanVaultEvent(ctx, tx, x.ref)
				case SourceVaultUsage:
					if x.at != nil {
						err = s.scanVaultFull(ctx, tx, x.ref, *x.at)
					}
				case SourcePledge:
					err = s.scanPledge(ctx, tx, x.ref)
				}
				if err != nil {
					return fmt.Errorf("outbox row %d (%s %d): %w", x.id, x.source, x.ref, err)
				}
				ids = append(ids, x.id)
			}
			_, err = tx.Exec(ctx, `UPDATE notify_outbox SET consumed_at = now() WHERE id = ANY($1)`, ids)
			return err
		})
		if err != nil {
			return fmt.Errorf("scan the notification outbox: %w", err)
		}
		if n < outboxBatch || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func ptr[T any](v T) *T { return &v }

func (s *Service) scanVaultEvent(ctx context.Context, tx pgx.Tx, id int64) error {
	rows, err := tx.Query(ctx, `SELECT e.id, e.vault_id, e.kind, e.detail, e.at, v.member_id, v.name, v.quota_bytes, v.usage_bytes
		FROM vault_events e JOIN vaults v ON v.id = e.vault_id
		WHERE e.id = $1 AND e.kind IN ('usage_80', 'usage_95', 'usage_normal')`, id)
	if err != nil {
		return err
	}
	type row struct {
		id, vault    int64
		kind, detail string
		at           time.Time
		member       int64
		name         string
		quota        int64
		usage        *int64
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.vault, &x.kind, &x.detail, &x.at, &x.member, &x.name, &x.quota, &x.usage)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		subject := "vault/" + strconv.FormatInt(x.vault, 10)
		if x.kind == "usage_normal" {
			if err := Resolve(ctx, tx, subject); err != nil {
				return err
			}
			continue
		}
		kind, pct := KindQuota80, 80
		if x.kind == "usage_95" {
			kind, pct = KindQuota95, 95
		}
		detail := map[string]any{"vault_id": x.vault, "vault": x.name, "quota_bytes": x.quota, "threshold_percent": pct}
		if x.usage != nil {
			detail["usage_bytes"] = *x.usage
		}
		if x.detail != "" {
			detail["detail"] = x.detail
		}
		if _, err := Emit(ctx, tx, Event{Kind: kind, MemberID: &x.member, Subject: subject, At: x.at,
			Title: fmt.Sprintf("Vault %s is over %d%% of its quota", x.name, pct), Detail: detail}); err != nil {
			return err
		}
	}
	return nil
}

// scanVaultFull announces a vault reaching its quota: a usage observation at or above the
// quota whose previous observation was below it.
func (s *Service) scanVaultFull(ctx context.Context, tx pgx.Tx, vaultID int64, at time.Time) error {
	rows, err := tx.Query(ctx, `SELECT u.vault_id, u.observed_at, u.bytes, u.quota_bytes, v.member_id, v.name,
			coalesce((SELECT p.bytes >= p.quota_bytes FROM vault_usage p WHERE p.vault_id = u.vault_id AND p.observed_at < u.observed_at
				ORDER BY p.observed_at DESC LIMIT 1), false)
		FROM vault_usage u JOIN vaults v ON v.id = u.vault_id
		WHERE u.vault_id = $1 AND u.observed_at = $2`, vaultID, at)
	if err != nil {
		return err
	}
	type row struct {
		vault        int64
		at           time.Time
		bytes, quota int64
		member       int64
		name         string
		wasFull      bool
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.vault, &x.at, &x.bytes, &x.quota, &x.member, &x.name, &x.wasFull)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.bytes < x.quota || x.wasFull {
			continue
		}
		if _, err := Emit(ctx, tx, Event{Kind: KindQuota100, MemberID: &x.member, Subject: "vault/" + strconv.FormatInt(x.vault, 10),
			At: x.at, Title: fmt.Sprintf("Vault %s is full: backups into it fail", x.name),
			Detail: map[string]any{"vault_id": x.vault, "vault": x.name, "usage_bytes": x.bytes, "quota_bytes": x.quota}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) scanPledge(ctx context.Context, tx pgx.Tx, id int64) error {
	rows, err := tx.Query(ctx, `SELECT p.id, p.member_id, m.slug, p.island_id, i.name, p.node_id, p.status, p.status_detail,
			p.status_changed_at, p.down_since
		FROM pledges p JOIN islands i ON i.id = p.island_id JOIN members m ON m.id = p.member_id
		WHERE p.id = $1`, id)
	if err != nil {
		return err
	}
	type row struct {
		id, member       int64
		slug             string
		island           int64
		islandName, node string
		status, detail   string
		changed          time.Time
		downSince        *time.Time
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.member, &x.slug, &x.island, &x.islandName, &x.node, &x.status, &x.detail, &x.changed, &x.downSince)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		subject := "pledge/" + strconv.FormatInt(x.id, 10)
		if x.status != "down" {
			if err := Resolve(ctx, tx, subject); err != nil {
				return err
			}
			continue
		}
		detail := map[string]any{"pledge_id": x.id, "island_id": x.island, "island": x.islandName, "node_id": x.node, "detail": x.detail}
		if x.downSince != nil {
			detail["down_since"] = x.downSince.UTC()
		}
		if _, err := Emit(ctx, tx, Event{Kind: KindPledgeDown, MemberID: &x.member, Subject: subject, At: x.changed,
			Title: fmt.Sprintf("Pledged node %.16s of %s on island %s is down", x.node, x.slug, x.islandName), Detail: detail}); err != nil {
			return err
		}
	}
	return nil
}

// scanRestoreRuns turns finished restore tests into events: failed and error outcomes,
// a stale snapshot (the freshness level not passing), and deletions seen. A passing run
// resolves the repository, so its next problem is announced at once.
func (s *Service) scanRestoreRun(ctx context.Context, tx pgx.Tx, id int64) error {
	rows, err := tx.Query(ctx, `SELECT r.id, r.repository_id, p.name, r.member_id, r.status, r.reason, r.finished_at,
			r.snapshot_age_seconds, r.rpo_target_seconds, r.deleted_snapshots,
			coalesce((SELECT l.outcome FROM restore_test_levels l WHERE l.run_id = r.id AND l.level = 'freshness'), ''),
			coalesce((SELECT l.summary FROM restore_test_levels l WHERE l.run_id = r.id AND l.level = 'freshness'), '')
		FROM restore_test_runs r JOIN restic_repositories p ON p.id = r.repository_id
		WHERE r.id = $1 AND r.finished_at IS NOT NULL AND r.status <> 'cancelled'`, id)
	if err != nil {
		return err
	}
	type row struct {
		id, repo                int64
		name                    string
		member                  int64
		status, reason          string
		finished                time.Time
		age                     *int64
		rpo                     int64
		deleted                 int
		freshness, freshnessWhy string
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.repo, &x.name, &x.member, &x.status, &x.reason, &x.finished, &x.age, &x.rpo, &x.deleted,
			&x.freshness, &x.freshnessWhy)
		return x, err
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		subject := "repository/" + strconv.FormatInt(x.repo, 10)
		base := map[string]any{"repository_id": x.repo, "repository": x.name, "run_id": x.id, "outcome": x.status}
		if x.reason != "" {
			base["reason"] = x.reason
		}
		if x.age != nil {
			base["snapshot_age_seconds"] = *x.age
		}
		base["rpo_seconds"] = x.rpo
		var evs []Event
		switch x.status {
		case "failed":
			evs = append(evs, Event{Kind: KindRestoreFailed, Title: fmt.Sprintf("Restore test of %s failed: %s", x.name, orText(x.reason, "see the run"))})
		case "error":
			evs = append(evs, Event{Kind: KindRestoreError, Title: fmt.Sprintf("Restore test of %s could not run: %s", x.name, orText(x.reason, "see the run"))})
		}
		if x.freshness == "failed" || x.freshness == "warning" {
			evs = append(evs, Event{Kind: KindSnapshotStale, Title: fmt.Sprintf("Newest snapshot of %s is older than its RPO: %s", x.name, orText(x.freshnessWhy, "stale"))})
		}
		if x.deleted > 0 {
			evs = append(evs, Event{Kind: KindDeletionsSeen, Title: fmt.Sprintf("%d snapshots of %s disappeared since the previous test", x.deleted, x.name),
				Detail: map[string]any{"deleted_snapshots": x.deleted}})
		}
		if len(evs) == 0 && (x.status == "passed" || x.status == "warning") {
			if err := Resolve(ctx, tx, subject); err != nil {
				return err
			}
			continue
		}
		for _, e := range evs {
			d := map[string]any{}
			for k, v := range base {
				d[k] = v
			}
			for k, v := range e.Detail {
				d[k] = v
			}
			e.Detail, e.MemberID, e.Subject, e.At = d, ptr(x.member), subject, x.finished
			if _, err := Emit(ctx, tx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
