package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/problem"
)

// ErrNotFound means no such entry (or one the caller may not see), or no checkpoint yet.
var ErrNotFound = problem.NotFound("audit entry")

// ErrBadRange means proof parameters outside the log.
var ErrBadRange = errors.New("outside the log")

// ErrInconsistent means the stored log does not hold what its signed checkpoints say (it
// was truncated, rewritten or forked): the server refuses to sign a checkpoint over it or to
// prove anything from it. The error's text names what does not hold.
var ErrInconsistent = errors.New("the stored audit log does not extend its signed checkpoints")

// Service reads the log, signs checkpoints and serves proofs.
type Service struct {
	pool *pgxpool.Pool
	keys Keys
	log  *slog.Logger
}

// NewService returns the log's service, signing checkpoints with keys.
func NewService(pool *pgxpool.Pool, keys Keys, log *slog.Logger) *Service {
	return &Service{pool: pool, keys: keys, log: log}
}

// Keys returns the checkpoint keys (the verifier key is public).
func (s *Service) Keys() Keys { return s.keys }

// Visibility says which entries a reader may see: federation-level entries (no member)
// always; member-private entries of MemberIDs, or all of them with All (federation admins);
// personal entries (Personal: authentication and account entries) only when they concern
// UserID or a person belonging to one of AdminOf (the members the reader administers).
type Visibility struct {
	All       bool
	MemberIDs []int64
	UserID    int64
	AdminOf   []int64
}

// Sees reports whether a non-personal entry of memberID (nil: federation-level) is visible.
func (v Visibility) Sees(memberID *int64) bool {
	return v.All || memberID == nil || slices.Contains(v.MemberIDs, *memberID)
}

// where appends the SQL condition (on audit_entries) selecting what v may see.
func (v Visibility) where(arg func(any) string) string {
	if v.All {
		return "true"
	}
	return `(CASE WHEN NOT EXISTS (SELECT 1 FROM audit_entry_people pe WHERE pe.seq = audit_entries.seq)
			THEN member_id IS NULL OR member_id = ANY (` + arg(nonNilIDs(v.MemberIDs)) + `::bigint[])
		ELSE EXISTS (SELECT 1 FROM audit_entry_people pe WHERE pe.seq = audit_entries.seq AND (pe.person_id = ` + arg(v.UserID) + `
			OR pe.person_id IN (SELECT ms.user_id FROM memberships ms WHERE ms.member_id = ANY (` + arg(nonNilIDs(v.AdminOf)) + `::bigint[]))))
		END)`
}

func nonNilIDs(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// Filter selects entries; zero fields do not filter.
type Filter struct {
	Since, Until time.Time // at >= Since, at < Until
	Actor        string    // actor id or name
	ActorKind    ActorKind
	MemberID     *int64 // entries of this member
	Federation   bool   // federation-level entries only
	Action       string // exact, or a prefix when it ends in ".*" ("island.*")
	TargetType   string
	TargetID     string
	Before       int64 // entries with seq < Before (the page cursor); 0: from the newest
	Limit        int   // 1..500, default 50
}

// Page is one page of entries, newest first.
type Page struct {
	Entries []LogEntry
	// NextBefore is the cursor of the next page (0 when this is the last).
	NextBefore int64
}

// List returns the entries matching f that v may see, newest first.
func (s *Service) List(ctx context.Context, f Filter, v Visibility) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	var (
		where []string
		args  []any
	)
	arg := func(x any) string { args = append(args, x); return "$" + strconv.Itoa(len(args)) }
	if !v.All {
		where = append(where, v.where(arg))
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < "+arg(f.Until))
	}
	if f.Actor != "" {
		p := arg(f.Actor)
		where = append(where, "(actor_id = "+p+" OR actor_name = "+p+")")
	}
	if f.ActorKind != "" {
		where = append(where, "actor_kind = "+arg(string(f.ActorKind)))
	}
	if f.MemberID != nil {
		where = append(where, "member_id = "+arg(*f.MemberID))
	}
	if f.Federation {
		where = append(where, "member_id IS NULL")
	}
	if prefix, ok := strings.CutSuffix(f.Action, ".*"); ok {
		where = append(where, "starts_with(action, "+arg(prefix+".")+")")
	} else if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.TargetType != "" {
		where = append(where, "target_type = "+arg(f.TargetType))
	}
	if f.TargetID != "" {
		where = append(where, "target_id = "+arg(f.TargetID))
	}
	if f.Before > 0 {
		where = append(where, "seq < "+arg(f.Before))
	}
	q := selectEntriesSQL
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list audit entries: %w", err)
	}
	entries, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return Page{}, fmt.Errorf("list audit entries: %w", err)
	}
	p := Page{Entries: entries}
	if len(entries) > limit {
		p.Entries = entries[:limit]
		p.NextBefore = p.Entries[limit-1].Seq
	}
	return p, nil
}

// Get returns entry seq if v may see it (ErrNotFound otherwise).
func (s *Service) Get(ctx context.Context, seq int64, v Visibility) (LogEntry, error) {
	args := []any{seq}
	arg := func(x any) string { args = append(args, x); return "$" + strconv.Itoa(len(args)) }
	rows, err := s.pool.Query(ctx, selectEntriesSQL+` WHERE seq = $1 AND `+v.where(arg), args...)
	if err != nil {
		return LogEntry{}, fmt.Errorf("get audit entry %d: %w", seq, err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEntry)
	if errors.Is(err, pgx.ErrNoRows) {
		return LogEntry{}, fmt.Errorf("audit entry %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return LogEntry{}, fmt.Errorf("get audit entry %d: %w", seq, err)
	}
	return e, nil
}

// LatestCheckpoint returns the latest stored checkpoint (ErrNotFound when there is none).
func (s *Service) LatestCheckpoint(ctx context.Context) (Checkpoint, error) {
	return latestCheckpoint(ctx, s.pool, s.keys)
}

func latestCheckpoint(ctx context.Context, q Querier, k Keys) (Checkpoint, error) {
	var (
		msg string
		at  time.Time
	)
	err := q.QueryRow(ctx, `SELECT note, created_at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1`).Scan(&msg, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read the latest audit checkpoint: %w", err)
	}
	c, err := k.Open([]byte(msg))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("the latest stored checkpoint: %w", err)
	}
	c.CreatedAt = at
	return c, nil
}

// Checkpoint returns a checkpoint covering the whole log: the latest one, or a new one
// signed now when the log has grown since. Before signing it checks that the stored tree
// extends the previous checkpoint and that every entry added since matches its leaf hash,
// so the server never signs over tampering it can see.
func (s *Service) Checkpoint(ctx context.Context) (Checkpoint, error) {
	// Two signers racing (the periodic task and a report, say) make one of the repeatable-read
	// transactions fail to serialise; its retry sees the other's checkpoint and returns it.
	for attempt := 1; ; attempt++ {
		cp, err := s.checkpointOnce(ctx)
		var pgErr *pgconn.PgError
		if attempt < 5 && errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
			continue
		}
		return cp, err
	}
}

func (s *Service) checkpointOnce(ctx context.Context) (Checkpoint, error) {
	var out Checkpoint
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM audit_entries`).Scan(&n); err != nil {
			return err
		}
		prev, err := latestCheckpoint(ctx, tx, s.keys)
		hasPrev := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if hasPrev && prev.Size == n {
			out = prev
			return nil
		}
		if hasPrev && prev.Size > n {
			return fmt.Errorf("%w: the log has %d entries but checkpoint %d covers %d (truncated); refusing to sign", ErrInconsistent, n, prev.Size, prev.Size)
		}
		r := txReader{ctx, tx}
		root, err := tlog.TreeHash(n, r)
		if errors.Is(err, errMissingHash) {
			return fmt.Errorf("%w: the tree of %d entries lacks stored hashes (%v): entries were deleted; refusing to sign", ErrInconsistent, n, err)
		}
		if err != nil {
			return fmt.Errorf("tree hash of %d entries: %w", n, err)
		}
		from := int64(0)
		if hasPrev && prev.Size > 0 {
			proof, err := tlog.ProveTree(n, prev.Size, r)
			if err == nil {
				err = tlog.CheckTree(proof, n, root, prev.Size, prev.Root)
			}
			if err != nil {
				return fmt.Errorf("%w: the stored tree of %d entries does not extend checkpoint %d (%v): rewritten or forked; refusing to sign", ErrInconsistent, n, prev.Size, err)
			}
			from = prev.Size
		}
		if err := checkLeaves(ctx, tx, from, n); err != nil {
			return err
		}
		msg, err := SignCheckpoint(s.keys, n, root)
		if err != nil {
			return err
		}
		var at time.Time
		err = tx.QueryRow(ctx, `
			INSERT INTO audit_checkpoints (tree_size, root_hash, note) VALUES ($1, $2, $3)
			ON CONFLICT (tree_size) DO NOTHING
			RETURNING created_at`, n, root[:], string(msg)).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			// Signed concurrently by another process: serve that one.
			return tx.QueryRow(ctx, `SELECT note, created_at FROM audit_checkpoints WHERE tree_size = $1`, n).Scan(&msg, &at)
		}
		if err != nil {
			return err
		}
		out = Checkpoint{Origin: s.keys.Name(), Size: n, Root: root, Note: msg, CreatedAt: at}
		return nil
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	if out.Note != nil && out.CreatedAt.IsZero() {
		out.CreatedAt = time.Now()
	}
	return out, nil
}

// checkLeaves checks entries [from, to) against the leaf hashes stored with them.
func checkLeaves(ctx context.Context, q Querier, from, to int64) error {
	if from >= to {
		return nil
	}
	rows, err := q.Query(ctx, selectEntriesWithHashesSQL+` WHERE seq >= $1 AND seq < $2 ORDER BY seq`, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	next := from
	for ; rows.Next(); next++ {
		e, hs, err := scanEntryWithHashes(rows)
		if err != nil {
			return err
		}
		if e.Seq != next {
			return fmt.Errorf("%w: entry %d is missing (deleted); refusing to sign", ErrInconsistent, next)
		}
		if len(hs) < tlog.HashSize || tlog.Hash(hs) != e.LeafHash() {
			return fmt.Errorf("%w: entry %d does not match its leaf hash (edited or forged); refusing to sign", ErrInconsistent, e.Seq)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if next != to {
		return fmt.Errorf("%w: entry %d is missing (deleted); refusing to sign", ErrInconsistent, next)
	}
	return nil
}

// treeSize is the number of entries (the next sequence number).
func treeSize(ctx context.Context, q Querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM audit_entries`).Scan(&n)
	return n, err
}

// RecordProof proves entry seq is in the tree of treeSize entries.
type RecordProof struct {
	Seq      int64
	TreeSize int64
	LeafHash tlog.Hash
	Proof    tlog.RecordProof
}

// ProveEntry returns the inclusion proof of entry seq in the tree of treeSize entries
// (treeSize 0: the current checkpoint's size, signing one if the log has grown).
func (s *Service) ProveEntry(ctx context.Context, seq, treeSize int64) (RecordProof, error) {
	if treeSize == 0 {
		c, err := s.Checkpoint(ctx)
		if err != nil {
			return RecordProof{}, err
		}
		treeSize = c.Size
	}
	n, err := treeSize0(ctx, s.pool)
	if err != nil {
		return RecordProof{}, err
	}
	if seq < 0 || treeSize > n || seq >= treeSize {
		return RecordProof{}, fmt.Errorf("entry %d in a tree of %d (the log has %d): %w", seq, treeSize, n, ErrBadRange)
	}
	r := txReader{ctx, s.pool}
	proof, err := tlog.ProveRecord(treeSize, seq, r)
	if err != nil {
		return RecordProof{}, fmt.Errorf("prove entry %d in %d: %w", seq, treeSize, inconsistent(err))
	}
	leaf, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, seq)})
	if err != nil {
		return RecordProof{}, fmt.Errorf("prove entry %d in %d: %w", seq, treeSize, inconsistent(err))
	}
	return RecordProof{Seq: seq, TreeSize: treeSize, LeafHash: leaf[0], Proof: proof}, nil
}

func treeSize0(ctx context.Context, q Querier) (int64, error) {
	n, err := treeSize(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("audit tree size: %w", err)
	}
	return n, nil
}

// ProveConsistency returns the proof that the tree of from entries is a prefix of the tree
// of to entries (1 <= from <= to <= the log's size).
func (s *Service) ProveConsistency(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	n, err := treeSize0(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	if from < 1 || from > to || to > n {
		return nil, fmt.Errorf("consistency of %d with %d (the log has %d): %w", from, to, n, ErrBadRange)
	}
	p, err := tlog.ProveTree(to, from, txReader{ctx, s.pool})
	if err != nil {
		return nil, fmt.Errorf("prove %d is a prefix of %d: %w", from, to, inconsistent(err))
	}
	return p, nil
}

// RunCheckpointer signs a checkpoint every interval while the log grows, until ctx ends.
func RunCheckpointer(ctx context.Context, s *Service, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if c, err := s.Checkpoint(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "audit checkpoint failed", "err", err)
		} else {
			s.log.DebugContext(ctx, "audit checkpoint", "tree_size", c.Size)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// inconsistent marks a missing stored hash (entries deleted from the middle of the log) as
// ErrInconsistent.
func inconsistent(err error) error {
	if errors.Is(err, errMissingHash) {
		return fmt.Errorf("%w: %w", ErrInconsistent, err)
	}
	return err
}
