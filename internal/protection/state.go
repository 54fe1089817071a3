package protection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// State is what may be shown of a vault's protection (never a secret).
type State struct {
	VaultID     int64  `json:"vault_id"`
	CopyEnabled bool   `json:"copy_enabled"`
	CopyStatus  string `json:"copy_status"`
	CopyDetail  string `json:"copy_detail"`
	// CopyIslandID and CopyIslandName name the island holding the copy (nil/"" when none).
	CopyIslandID   *int64 `json:"copy_island_id"`
	CopyIslandName string `json:"copy_island_name"`
	CopyBucket     string `json:"copy_bucket"`
	// CopyEverySeconds is the copy schedule; DeletionGraceSeconds the delay before a
	// deletion reaches the copy.
	CopyEverySeconds     int64 `json:"copy_every_seconds"`
	DeletionGraceSeconds int64 `json:"deletion_grace_seconds"`
	// CopiedThrough: every object the vault held then is in the copy.
	CopiedThrough *time.Time `json:"copied_through"`
	// LagSeconds is now − CopiedThrough (nil before the first complete run).
	LagSeconds *int64 `json:"lag_seconds"`
	// Behind is true when the copy is late on its schedule (more than two intervals old,
	// or in error): the vault page shows it in red.
	Behind  bool `json:"behind"`
	LastRun *Run `json:"last_run"`
	// PendingDeletions lists (up to 100 of) the objects deleted from the vault and still
	// kept by the copy, with the date they leave it.
	PendingDeletions     []PendingDeletion `json:"pending_deletions"`
	PendingDeletionCount int64             `json:"pending_deletion_count"`
	// Overwrites lists (up to 100 of, the oldest first) the objects whose vault content no
	// longer matches; the copy keeps the good one. OverwriteCount is how many there are.
	Overwrites     []Overwrite `json:"overwrites"`
	OverwriteCount int64       `json:"overwrite_count"`
	ReaderKeyID    *string     `json:"reader_key_id"`
	// CopyVerifierKeyID is Archipelago's read-only key on the copy for restore tests of
	// the copy (its secret is never shown).
	CopyVerifierKeyID *string    `json:"copy_verifier_key_id"`
	Frozen            bool       `json:"frozen"`
	FrozenAt          *time.Time `json:"frozen_at"`
	FrozenBy          string     `json:"frozen_by"`
	FreezeReason      string     `json:"freeze_reason"`
	UnfreezeAfter     *time.Time `json:"unfreeze_after"`
	// Lifecycle tripwire.
	LifecycleCheckedAt *time.Time `json:"lifecycle_checked_at"`
	LifecycleTrippedAt *time.Time `json:"lifecycle_tripped_at"`
	LifecycleDetail    string     `json:"lifecycle_detail"`
	// MultipartBytes are unfinished multipart upload bytes (not counted by Garage's quota).
	MultipartBytes int64 `json:"multipart_bytes"`
}

// PendingDeletion is an object deleted from a vault that its copy still keeps.
type PendingDeletion struct {
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	DeletedAt   time.Time `json:"deleted_at"` // first seen missing
	DeleteAfter time.Time `json:"delete_after"`
}

// Overwrite is a vault object whose content changed under the same name.
type Overwrite struct {
	Key    string    `json:"key"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
}

const runColumns = `id, vault_id, started_at, finished_at, status, objects_copied, bytes_copied, objects_in_copy, bytes_in_copy,
	deletions_seen, deletions_pending, deletions_applied, overwrites, lag_seconds, errors`

func scanRun(r pgx.Row) (Run, error) {
	var run Run
	err := r.Scan(&run.ID, &run.VaultID, &run.StartedAt, &run.FinishedAt, &run.Status, &run.ObjectsCopied, &run.BytesCopied,
		&run.ObjectsInCopy, &run.BytesInCopy, &run.DeletionsSeen, &run.DeletionsPending, &run.DeletionsApplied, &run.Overwrites,
		&run.LagSeconds, &run.Errors)
	if run.Errors == nil {
		run.Errors = []string{}
	}
	return run, err
}

// State returns a vault's protection state. A vault not yet seen by the protection jobs
// has the federation's defaults and no copy yet.
func (s *Service) State(ctx context.Context, vaultID int64) (State, error) {
	v, err := s.usableVault(ctx, vaultID)
	var ce *ConflictError
	if err != nil && !errors.As(err, &ce) {
		return State{}, err
	}
	st, err := loadSettings(ctx, s.pool)
	if err != nil {
		return State{}, err
	}
	out := State{VaultID: v.ID, CopyEnabled: st.CopyByDefault, CopyStatus: CopyPending, CopyEverySeconds: int64(st.CopyEvery / time.Second),
		DeletionGraceSeconds: int64(st.DeletionGrace / time.Second), PendingDeletions: []PendingDeletion{}, Overwrites: []Overwrite{}}
	var bucket, island *string
	err = s.pool.QueryRow(ctx, `SELECT p.copy_enabled, p.copy_status, p.copy_detail, p.copy_island_id, i.name, p.copy_bucket_name,
		p.copied_through, p.reader_key_id, p.frozen_at, p.frozen_by, p.freeze_reason, p.unfreeze_after, p.lifecycle_checked_at,
		p.lifecycle_tripped_at, p.lifecycle_detail, p.multipart_bytes, p.copy_verifier_key_id
		FROM vault_protection p LEFT JOIN islands i ON i.id = p.copy_island_id WHERE p.vault_id = $1`, v.ID).Scan(
		&out.CopyEnabled, &out.CopyStatus, &out.CopyDetail, &out.CopyIslandID, &island, &bucket, &out.CopiedThrough, &out.ReaderKeyID,
		&out.FrozenAt, &out.FrozenBy, &out.FreezeReason, &out.UnfreezeAfter, &out.LifecycleCheckedAt, &out.LifecycleTrippedAt,
		&out.LifecycleDetail, &out.MultipartBytes, &out.CopyVerifierKeyID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return State{}, fmt.Errorf("protection of vault %d: %w", v.ID, err)
	}
	if island != nil {
		out.CopyIslandName = *island
	}
	if bucket != nil {
		out.CopyBucket = *bucket
	}
	out.Frozen = out.FrozenAt != nil
	now := s.now()
	if out.CopiedThrough != nil {
		lag := int64(now.Sub(*out.CopiedThrough) / time.Second)
		out.LagSeconds = &lag
	}
	if out.CopyEnabled {
		switch {
		case out.CopyStatus == CopyError:
			out.Behind = true
		case out.CopyStatus == CopyActive && out.CopiedThrough != nil:
			out.Behind = now.Sub(*out.CopiedThrough) > 2*st.CopyEvery
		case out.CopyStatus != CopyNone:
			out.Behind = now.Sub(v.CreatedAt) > 2*st.CopyEvery
		}
	}
	if run, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM vault_copy_runs WHERE vault_id = $1
		ORDER BY started_at DESC, id DESC LIMIT 1`, v.ID)); err == nil {
		out.LastRun = &run
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return State{}, err
	}
	rows, err := s.pool.Query(ctx, `SELECT key, size, source_missing_since FROM vault_copy_objects
		WHERE vault_id = $1 AND source_missing_since IS NOT NULL ORDER BY source_missing_since, key LIMIT 100`, v.ID)
	if err != nil {
		return State{}, err
	}
	out.PendingDeletions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingDeletion, error) {
		var p PendingDeletion
		err := r.Scan(&p.Key, &p.Size, &p.DeletedAt)
		p.DeleteAfter = p.DeletedAt.Add(st.DeletionGrace)
		return p, err
	})
	if err != nil {
		return State{}, err
	}
	if out.PendingDeletions == nil {
		out.PendingDeletions = []PendingDeletion{}
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM vault_copy_objects WHERE vault_id = $1 AND source_missing_since IS NOT NULL`,
		v.ID).Scan(&out.PendingDeletionCount); err != nil {
		return State{}, err
	}
	rows, err = s.pool.Query(ctx, `SELECT key, overwritten_at, overwrite_detail FROM vault_copy_objects
		WHERE vault_id = $1 AND overwritten_at IS NOT NULL ORDER BY overwritten_at, key LIMIT 100`, v.ID)
	if err != nil {
		return State{}, err
	}
	out.Overwrites, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Overwrite, error) {
		var o Overwrite
		return o, r.Scan(&o.Key, &o.At, &o.Detail)
	})
	if err != nil {
		return State{}, err
	}
	if out.Overwrites == nil {
		out.Overwrites = []Overwrite{}
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM vault_copy_objects WHERE vault_id = $1 AND overwritten_at IS NOT NULL`,
		v.ID).Scan(&out.OverwriteCount); err != nil {
		return State{}, err
	}
	return out, nil
}

// Runs returns a vault's latest copy runs, newest first (at most max).
func (s *Service) Runs(ctx context.Context, vaultID int64, max int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM vault_copy_runs WHERE vault_id = $1
		ORDER BY started_at DESC, id DESC LIMIT $2`, vaultID, max)
	if err != nil {
		return nil, err
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if runs == nil {
		runs = []Run{}
	}
	return runs, err
}
