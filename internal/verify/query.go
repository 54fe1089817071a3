package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Read helpers for the API and the portal (they decide who may see what; these only read).

// VaultOwner returns the member owning a live vault (not deleted or being deleted), or
// ErrNotFound.
func VaultOwner(ctx context.Context, q querier, vaultID int64) (int64, error) {
	var member int64
	err := q.QueryRow(ctx, `SELECT member_id FROM vaults WHERE id = $1 AND status IN ('pending', 'active')`,
		vaultID).Scan(&member)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("vault %d: %w", vaultID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read vault %d: %w", vaultID, err)
	}
	return member, nil
}

// VaultChoice is a vault a repository can be registered in, with what a member needs to
// point restic at it.
type VaultChoice struct {
	ID         int64  `json:"id"`
	MemberID   int64  `json:"member_id"`
	Name       string `json:"name"`
	BucketName string `json:"bucket_name"`
	IslandName string `json:"island_name"`
	S3Endpoint string `json:"s3_endpoint"`
}

// VaultChoices lists the live vaults of the given members (nil: every member), by name.
func VaultChoices(ctx context.Context, q querier, memberIDs []int64) ([]VaultChoice, error) {
	rows, err := q.Query(ctx, `SELECT v.id, v.member_id, v.name, v.bucket_name, i.name, i.s3_endpoint
		FROM vaults v JOIN islands i ON i.id = v.island_id
		WHERE v.status IN ('pending', 'active') AND ($1::bigint[] IS NULL OR v.member_id = ANY($1))
		ORDER BY v.member_id, lower(v.name)`, memberIDs)
	if err != nil {
		return nil, fmt.Errorf("list vaults for repositories: %w", err)
	}
	defer rows.Close()
	var out []VaultChoice
	for rows.Next() {
		var v VaultChoice
		if err := rows.Scan(&v.ID, &v.MemberID, &v.Name, &v.BucketName, &v.IslandName, &v.S3Endpoint); err != nil {
			return nil, fmt.Errorf("list vaults for repositories: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// RunProgress is the live state of one run, small enough to poll every second or two.
type RunProgress struct {
	ID           int64      `json:"id"`
	RepositoryID int64      `json:"repository_id"`
	Status       string     `json:"status"`
	Final        bool       `json:"final"`
	Reason       string     `json:"reason"`
	Progress     Progress   `json:"progress"`
	ProgressAt   *time.Time `json:"progress_at"`
}

// RunProgressGet reads a run's status and progress without its levels or log.
func RunProgressGet(ctx context.Context, q querier, id int64) (RunProgress, int64, error) {
	var p RunProgress
	var member int64
	err := q.QueryRow(ctx, `SELECT id, repository_id, member_id, status, reason, progress, progress_at
		FROM restore_test_runs WHERE id = $1`, id).Scan(&p.ID, &p.RepositoryID, &member, &p.Status, &p.Reason,
		&p.Progress, &p.ProgressAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, 0, fmt.Errorf("restore test %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, 0, fmt.Errorf("read progress of restore test %d: %w", id, err)
	}
	p.Final = Run{Status: p.Status}.Final()
	return p, member, nil
}
