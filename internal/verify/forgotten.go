package verify

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

// SnapshotsForgotten records, in tx, that the federation itself removed these snapshots
// of a repository (the coordinator's own backup retention, internal/selfbackup): they leave
// the snapshots the deletion watch compares with, so the next test does not report them as
// disappeared, and the removal is audited instead (repository.snapshots_forgotten, naming
// them and why). Only a repository's own writer calls it; a member's forget stays a warning.
func SnapshotsForgotten(ctx context.Context, tx pgx.Tx, repoID int64, snapshotIDs []string, why string) error {
	if len(snapshotIDs) == 0 {
		return nil
	}
	var memberID int64
	if err := tx.QueryRow(ctx, `SELECT member_id FROM restic_repositories WHERE id = $1`, repoID).Scan(&memberID); err != nil {
		return fmt.Errorf("repository %d: %w", repoID, err)
	}
	tag, err := tx.Exec(ctx, `UPDATE restore_test_snapshots SET gone_at = now()
		WHERE repository_id = $1 AND snapshot_id = ANY($2) AND gone_at IS NULL`, repoID, snapshotIDs)
	if err != nil {
		return fmt.Errorf("record forgotten snapshots of repository %d: %w", repoID, err)
	}
	_, err = audit.Record(ctx, tx, audit.Entry{Action: "repository.snapshots_forgotten", MemberID: &memberID,
		TargetType: "restic_repository", TargetID: strconv.FormatInt(repoID, 10),
		Details: map[string]any{"snapshots": snapshotIDs, "known": tag.RowsAffected(), "why": why}})
	return err
}
