package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// Two round trips: the first takes the append lock and reads the head of the log, the
// stored hashes this append combines with (audit_append_reads) and how PostgreSQL renders
// the details (the leaf covers that rendering); the second writes the entry and its hashes.
func appendEntry(ctx context.Context, tx pgx.Tx, le *LogEntry, rawDetails []byte) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, appendLockID)
	b.Queue(`
		WITH head AS (SELECT coalesce(max(seq) + 1, 0) AS n FROM audit_entries)
		SELECT head.n,
		       (SELECT coalesce(max(idx) + 1, 0) FROM audit_tree_hashes),
		       $1::jsonb::text,
		       coalesce((SELECT array_agg(h.idx ORDER BY h.idx) FROM audit_tree_hashes h
		                 WHERE h.idx = ANY (audit_append_reads(head.n))), '{}'),
		       coalesce((SELECT array_agg(h.hash ORDER BY h.idx) FROM audit_tree_hashes h
		                 WHERE h.idx = ANY (audit_append_reads(head.n))), '{}')
		FROM head`, string(rawDetails))
	br := tx.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("lock the log: %w", err)
	}
	var (
		n, stored int64
		details   string
		idx       []int64
		hashes    [][]byte
	)
	if err := br.QueryRow().Scan(&n, &stored, &details, &idx, &hashes); err != nil {
		br.Close()
		return fmt.Errorf("read the head of the log: %w", err)
	}
	if err := br.Close(); err != nil {
		return err
	}
	le.Seq, le.Details = n, []byte(details)
	if stored != tlog.StoredHashCount(n) {
		// Entries written before the log was a tree (or by hand): hash them first.
		if err := backfill(ctx, tx, n, stored); err != nil {
			return err
		}
	}
	known := map[int64]tlog.Hash{}
	for i, x := range idx {
		if len(hashes[i]) == tlog.HashSize {
			known[x] = tlog.Hash(hashes[i])
		}
	}
	newHashes, err := tlog.StoredHashes(n, le.Leaf(), prefetched{known, txReader{ctx, tx}})
	if err != nil {
		return fmt.Errorf("compute tree hashes: %w", err)
	}
	b = &pgx.Batch{}
	b.Queue(insertEntrySQL, le.Seq, le.At, string(le.Actor.Kind), le.Actor.ID, le.Actor.Name, le.MemberID,
		le.Action, le.TargetType, le.TargetID, le.RequestID, le.SourceIP, details)
	queueHashes(b, tlog.StoredHashCount(n), newHashes)
	return tx.SendBatch(ctx, b).Close()
}

const insertEntrySQL = `
	INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action,
	                           target_type, target_id, request_id, source_ip, details)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)`

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

// prefetched answers from hashes already read, and asks next for the others.
type prefetched struct {
	known map[int64]tlog.Hash
	next  tlog.HashReader
}

func (p prefetched) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for i, x := range indexes {
		h, ok := p.known[x]
		if !ok {
			missing = append(missing, x)
			continue
		}
		out[i] = h
	}
	if len(missing) == 0 {
		return out, nil
	}
	more, err := p.next.ReadHashes(missing)
	if err != nil {
		return nil, err
	}
	for i, x := range indexes {
		if j := slices.Index(missing, x); j >= 0 {
			out[i] = more[j]
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
