package verify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// SnapshotSeen is a snapshot the tests of a repository saw: when it was taken, when a test
// first saw it, and when a test found it gone (deleted, or forgotten by the member's
// retention policy).
type SnapshotSeen struct {
	ID        string     `json:"id"`
	Time      time.Time  `json:"time"`
	FirstSeen time.Time  `json:"first_seen"`
	GoneAt    *time.Time `json:"gone_at"`
}

// SnapshotTimeline lists the snapshots of a repository taken, or found gone, since `since`,
// oldest first: the newest limit of them, and whether older ones were left out.
func SnapshotTimeline(ctx context.Context, q querier, repoID int64, since time.Time, limit int) ([]SnapshotSeen, bool, error) {
	rows, err := q.Query(ctx, `SELECT snapshot_id, snapshot_time, first_seen_at, gone_at FROM restore_test_snapshots
		WHERE repository_id = $1 AND (snapshot_time >= $2 OR gone_at >= $2)
		ORDER BY snapshot_time DESC, snapshot_id LIMIT $3`, repoID, since, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot timeline of repository %d: %w", repoID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SnapshotSeen, error) {
		var s SnapshotSeen
		return s, r.Scan(&s.ID, &s.Time, &s.FirstSeen, &s.GoneAt)
	})
	if err != nil {
		return nil, false, fmt.Errorf("snapshot timeline of repository %d: %w", repoID, err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	slices.Reverse(out)
	return out, more, nil
}
