package vaults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/quota"
)

// Usage thresholds, in percent of the quota; crossing one upwards is recorded as an event.
const (
	ThresholdWarn     = 80
	ThresholdCritical = 95
)

// UsageLevel is the highest threshold reached by bytes of quota: 0, 80 or 95.
func UsageLevel(bytes, quota int64) int {
	switch {
	case quota <= 0:
		return 0
	case bytes*100 >= quota*ThresholdCritical:
		return ThresholdCritical
	case bytes*100 >= quota*ThresholdWarn:
		return ThresholdWarn
	}
	return 0
}

// UsageSample is one observation of a vault's usage.
type UsageSample struct {
	At         time.Time `json:"at"`
	Bytes      int64     `json:"bytes"`
	Objects    int64     `json:"objects"`
	QuotaBytes int64     `json:"quota_bytes"`
}

// Event is something that happened to a vault (thresholds crossed, drift).
type Event struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// UsageHistory returns a vault's usage samples since a time, oldest first (at most max).
func (s *Service) UsageHistory(ctx context.Context, vaultID int64, since time.Time, max int) ([]UsageSample, error) {
	rows, err := s.pool.Query(ctx, `SELECT observed_at, bytes, objects, quota_bytes FROM (
		SELECT * FROM vault_usage WHERE vault_id = $1 AND observed_at >= $2 ORDER BY observed_at DESC LIMIT $3) u
		ORDER BY observed_at`, vaultID, since, max)
	if err != nil {
		return nil, fmt.Errorf("usage of vault %d: %w", vaultID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageSample, error) {
		var u UsageSample
		return u, r.Scan(&u.At, &u.Bytes, &u.Objects, &u.QuotaBytes)
	})
}

// UsageCounts says how many usage samples a vault has since a time and how many events it
// has in all: what UsageHistory and Events answer is bounded (at most max of each), and a
// reader is told when there are more.
func (s *Service) UsageCounts(ctx context.Context, vaultID int64, since time.Time) (samples, events int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM vault_usage WHERE vault_id = $1 AND observed_at >= $2),
		(SELECT count(*) FROM vault_events WHERE vault_id = $1)`, vaultID, since).Scan(&samples, &events)
	if err != nil {
		return 0, 0, fmt.Errorf("usage counts of vault %d: %w", vaultID, err)
	}
	return samples, events, nil
}

// Events returns a vault's latest events, newest first.
func (s *Service) Events(ctx context.Context, vaultID int64, max int) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, kind, detail FROM vault_events WHERE vault_id = $1 ORDER BY at DESC, id DESC LIMIT $2`,
		vaultID, max)
	if err != nil {
		return nil, fmt.Errorf("events of vault %d: %w", vaultID, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		return e, r.Scan(&e.ID, &e.At, &e.Kind, &e.Detail)
	})
}

// CollectUsage reads every provisioned vault's bytes and objects from Garage into the
// usage history, and records crossing 80% and 95% of the quota as events (and going
// back under 80%). Each island within IslandTimeout. Safe to run from several processes:
// samples are per observation time, and RecordUsage locks the vault's row, so a
// threshold is recorded once whoever observes it.
func (s *Service) CollectUsage(ctx context.Context) error {
	refs, err := s.vaultRefs(ctx, `SELECT id, island_id FROM vaults WHERE status IN ('active', 'deleting')
		AND garage_bucket_id IS NOT NULL ORDER BY island_id, id`)
	if err != nil {
		return fmt.Errorf("collect usage: %w", err)
	}
	var mu sync.Mutex // islands run in parallel
	clients := map[int64]*garage.Client{}
	err = s.byIsland(ctx, "usage", refs, func(ctx context.Context, id int64) error {
		v, err := VaultGetByID(ctx, s.pool, id)
		if err != nil || v.GarageBucketID == nil {
			return err
		}
		mu.Lock()
		gc := clients[v.IslandID]
		mu.Unlock()
		if gc == nil {
			if gc, err = s.garage(ctx, v.IslandID); err != nil {
				return unreachable(v.IslandName, "connect", err)
			}
			mu.Lock()
			clients[v.IslandID] = gc
			mu.Unlock()
		}
		b, err := gc.GetBucketInfo(ctx, garage.BucketLookup{ID: *v.GarageBucketID})
		if errors.Is(err, garage.ErrNotFound) {
			return nil // the reconciler reports it
		}
		if err != nil {
			return unreachable(v.IslandName, "GetBucketInfo", err)
		}
		// Unfinished multipart uploads take disk but escape Garage's quota: counted here.
		return s.RecordUsage(ctx, v.ID, b.Bytes+b.UnfinishedMultipartUploadBytes, b.Objects, s.now())
	})
	if _, derr := s.pool.Exec(ctx, `DELETE FROM vault_usage WHERE observed_at < $1`, s.now().Add(-s.cfg.UsageHistory)); derr != nil {
		err = errors.Join(err, derr)
	}
	return err
}

// RecordUsage stores one usage sample of a vault observed at a time and records the
// thresholds it crossed. CollectUsage calls it; the sandbox uses it to seed history.
func (s *Service) RecordUsage(ctx context.Context, vaultID, bytes, objects int64, at time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var prev int
		var quotaBytes int64
		if err := tx.QueryRow(ctx, `SELECT usage_level, quota_bytes FROM vaults WHERE id = $1 FOR UPDATE`, vaultID).Scan(&prev, &quotaBytes); err != nil {
			return err
		}
		level := UsageLevel(bytes, quotaBytes)
		tag, err := tx.Exec(ctx, `INSERT INTO vault_usage (vault_id, observed_at, bytes, objects, quota_bytes) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, vaultID, at, bytes, objects, quotaBytes)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			if err := notify.OutboxAdd(ctx, tx, notify.SourceVaultUsage, vaultID, &at); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE vaults SET usage_bytes = $2, usage_objects = $3, usage_at = $4, usage_level = $5
			WHERE id = $1 AND (usage_at IS NULL OR usage_at <= $4)`, vaultID, bytes, objects, at, level); err != nil {
			return err
		}
		pct := func() string {
			return fmt.Sprintf("%d%% of the quota used (%s of %s)", bytes*100/max(quotaBytes, 1), quota.Bytes(bytes), quota.Bytes(quotaBytes))
		}
		for _, t := range []int{ThresholdWarn, ThresholdCritical} {
			if prev < t && level >= t {
				var id int64
				if err := tx.QueryRow(ctx, `INSERT INTO vault_events (vault_id, at, kind, detail) VALUES ($1, $2, $3, $4) RETURNING id`,
					vaultID, at, fmt.Sprintf("usage_%d", t), pct()).Scan(&id); err != nil {
					return err
				}
				if err := notify.OutboxAdd(ctx, tx, notify.SourceVaultEvent, id, nil); err != nil {
					return err
				}
			}
		}
		if prev > 0 && level == 0 {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO vault_events (vault_id, at, kind, detail) VALUES ($1, $2, 'usage_normal', $3) RETURNING id`,
				vaultID, at, pct()).Scan(&id); err != nil {
				return err
			}
			if err := notify.OutboxAdd(ctx, tx, notify.SourceVaultEvent, id, nil); err != nil {
				return err
			}
		}
		return nil
	})
}
