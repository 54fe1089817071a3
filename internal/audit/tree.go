package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// querier is what reading the log needs: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appendEntry assigns le its sequence number and writes it with the tree's new stored
// hashes in tx. rawDetails is the details object as JSON.
//
// One round trip: the server-side function audit_append (migration 003) takes the append
// lock, reads the head of the log and the stored hashes the new leaf combines with, builds
// the leaf (the fields between seq and details come encoded from here, appendLeafMiddle),
// hashes it and the tree's new interior nodes with PostgreSQL's sha256() and inserts the
// entry and its hashes; after it only the commit remains under the lock. The leaf hash it
// returns is checked here against LogEntry.LeafHash, the encoding Verify uses: a server-side
// encoding that ever disagreed fails the append, and so the change, rather than writing a
// log that does not verify.
func appendEntry(ctx context.Context, tx pgx.Tx, le *LogEntry, rawDetails []byte) error {
	mid := le.appendLeafMiddle(make([]byte, 0, 128+len(le.Actor.Name)))
	for attempt := 0; ; attempt++ {
		var (
			seq     *int64
			details *string
			leaf    []byte
		)
		err := tx.QueryRow(ctx, `SELECT seq, details_text, leaf_hash FROM audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)`,
			le.At, string(le.Actor.Kind), le.Actor.ID, le.Actor.Name, le.MemberID, le.Action, le.TargetType, le.TargetID,
			le.RequestID, le.SourceIP, string(rawDetails), mid).Scan(&seq, &details, &leaf)
		if err != nil {
			return err
		}
		if seq == nil {
			// Entries written before the log was a tree (or by hand) have no stored hashes:
			// hash them, still under the append lock, then append.
			if attempt > 0 {
				return errors.New("the tree's stored hashes do not end where the entries do: run `archipelago audit verify`")
			}
			if err := backfillAll(ctx, tx); err != nil {
				return err
			}
			continue
		}
		le.Seq, le.Details = *seq, []byte(*details)
		if h := le.LeafHash(); len(leaf) != tlog.HashSize || tlog.Hash(leaf) != h {
			return fmt.Errorf("the database encoded entry %d's leaf hash as %x, not %x: refusing to append", le.Seq, leaf, h)
		}
		return nil
	}
}

// backfillAll hashes the entries that have no stored hashes. The caller holds the append
// lock.
func backfillAll(ctx context.Context, tx pgx.Tx) error {
	var n, stored int64
	if err := tx.QueryRow(ctx, `SELECT (SELECT coalesce(max(seq) + 1, 0) FROM audit_entries),
	                                   (SELECT coalesce(max(idx) + 1, 0) FROM audit_tree_hashes)`).Scan(&n, &stored); err != nil {
		return fmt.Errorf("read the head of the log: %w", err)
	}
	return backfill(ctx, tx, n, stored)
}

// queueHashes queues the insertion of consecutive stored hashes starting at index first.
func queueHashes(b *pgx.Batch, first int64, hs []tlog.Hash) {
	idx := make([]int64, len(hs))
	raw := make([][]byte, len(hs))
	for i, h := range hs {
		idx[i], raw[i] = first+int64(i), h[:]
	}
	b.Queue(`INSERT INTO audit_tree_hashes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, idx, raw)
}

// backfill writes the stored hashes of entries that have none (entries recorded before
// migration 003), from the first entry without hashes up to n-1.
func backfill(ctx context.Context, tx pgx.Tx, n, stored int64) error {
	first := int64(0)
	for first < n && tlog.StoredHashCount(first) < stored {
		first++
	}
	if tlog.StoredHashCount(first) != stored {
		return fmt.Errorf("the tree's stored hashes (%d) do not end at an entry boundary: run `archipelago audit verify`", stored)
	}
	rows, err := tx.Query(ctx, selectEntriesSQL+` WHERE seq >= $1 AND seq < $2 ORDER BY seq`, first, n)
	if err != nil {
		return err
	}
	entries, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return err
	}
	r := txReader{ctx, tx}
	for i, e := range entries {
		if e.Seq != first+int64(i) {
			return fmt.Errorf("entry %d is missing: run `archipelago audit verify`", first+int64(i))
		}
		hs, err := tlog.StoredHashes(e.Seq, e.Leaf(), r)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		queueHashes(b, tlog.StoredHashCount(e.Seq), hs)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("backfill tree hashes of entry %d: %w", e.Seq, err)
		}
	}
	return nil
}

const selectEntriesSQL = `
	SELECT seq, at, actor_kind, actor_id, actor_name, member_id, action, target_type, target_id,
	       request_id, source_ip, details::text
	FROM audit_entries`

func scanEntry(row pgx.CollectableRow) (LogEntry, error) {
	var (
		e       LogEntry
		kind    string
		details string
	)
	err := row.Scan(&e.Seq, &e.At, &kind, &e.Actor.ID, &e.Actor.Name, &e.MemberID, &e.Action, &e.TargetType,
		&e.TargetID, &e.RequestID, &e.SourceIP, &details)
	e.Actor.Kind, e.Details, e.At = ActorKind(kind), []byte(details), e.At.UTC()
	return e, err
}

// errMissingHash means the tree lacks a stored hash a computation needs.
var errMissingHash = errors.New("the tree lacks a stored hash")

// txReader reads stored hashes from the database.
type txReader struct {
	ctx context.Context
	q   querier
}

func (r txReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	rows, err := r.q.Query(r.ctx, `SELECT idx, hash FROM audit_tree_hashes WHERE idx = ANY ($1)`, indexes)
	if err != nil {
		return nil, err
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	var (
		i int64
		h []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("stored hash %d has %d bytes", i, len(h))
		}
		got[i] = tlog.Hash(h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for k, x := range indexes {
		var ok bool
		if out[k], ok = got[x]; !ok {
			return nil, fmt.Errorf("%w (index %d)", errMissingHash, x)
		}
	}
	return out, nil
}

// memTree is a tree held in memory: its stored hashes in index order. Verify builds one
// from the entries.
type memTree struct {
	hashes []tlog.Hash
	n      int64 // number of leaves
}

func (t *memTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("%w (index %d)", errMissingHash, x)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// add appends a leaf hash and returns the index of its stored hash: the same hashes as
// tlog.StoredHashesForRecordHash, without its allocations (Verify adds millions).
func (t *memTree) add(h tlog.Hash) (int64, error) {
	first := int64(len(t.hashes))
	if first != tlog.StoredHashCount(t.n) {
		return 0, fmt.Errorf("%w: the tree holds %d hashes for %d leaves", errMissingHash, first, t.n)
	}
	t.hashes = append(t.hashes, h)
	for i := 0; (t.n>>i)&1 == 1; i++ {
		h = tlog.NodeHash(t.hashes[tlog.StoredHashIndex(i, t.n>>i-1)], h)
		t.hashes = append(t.hashes, h)
	}
	t.n++
	return first, nil
}
