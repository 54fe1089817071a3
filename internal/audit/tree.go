package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"
)

// appendStatement is the statement by which the database appends an entry with the tree's
// new stored hashes (without an Appender, or when its prediction was not the log's head),
// in one statement, reading the head of the log from head: appendSQL reads it as the log's
// last row; appendFirstSQL, sent only when appendSQL found no row, as the empty log's (an
// entry -1 that is not stored). The caller holds the append lock, taken by an earlier
// statement so that this one's snapshot sees every append committed before.
//
// The entry's seq follows the head's. Its time is statement_timestamp(): the time the
// server took up this statement, after the lock statement sent before it (in the same
// pipeline) had been granted the lock — or the head's time, if that is later (a clock
// stepped back, or a client sending both statements in one simple-protocol message, whose
// time is the message's): every entry's time comes from one clock, the database's, and never
// goes back from one entry to the next (whatever the clocks of the processes that write
// them). It is a stable function, read once per statement, so the statement needs no layer
// of its own to read the time once.
//
// Its leaf is leafHead (0x00, the leaf's version line), the seq field and the time field
// (each a decimal of at most 19 digits: its length is its one-byte varint), then $11 (the
// fields after the time, encoded by LogEntry.appendLeafRest); its leaf hash is SHA-256 of
// that, computed in the same row of the head subquery (so it is an input of the outer row,
// not an expression repeated wherever it is used). An even seq stores its leaf hash alone;
// an odd one also the interior nodes its trailing 1 bits close, from the sibling hashes
// stored in earlier rows: the sibling at level 0 is the head's leaf hash (the first 32 bytes
// of its tree_hashes), so a seq ending in 01 (1 append in 4) combines it in the statement;
// one ending in 11 (1 in 4) calls audit_tree_hashes (migration 003), which reads every
// sibling from the rows that hold them. A missing sibling makes the hashes NULL, and the
// insert fails on tree_hashes' NOT NULL rather than write a broken tree.
//
// Every piece of a statement is set up again at each execution, under the lock, even a
// piece that does nothing: the statement is the head read (the plain insert's max(seq)),
// one projection and the insert. A personal entry (migration 010) is also recorded in
// audit_entry_people with its person ($12, may be NULL), in the same statement (personal).
func appendStatement(head string, personal bool) string {
	ts := `greatest(statement_timestamp(), at)`
	micros := `(extract(epoch FROM ` + ts + `) * 1000000)::bigint::text`
	sql := `
		INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action, target_type, target_id,
		                           request_id, source_ip, details, tree_hashes)
		SELECT h.n, h.ts, $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, $8::text, $9::text, $10::json,
		       CASE WHEN h.n & 1 = 0 THEN h.leaf
		            WHEN h.n & 3 = 1 THEN h.leaf || sha256('\x01'::bytea || substring(h.prev FOR 32) || h.leaf)
		            ELSE audit_tree_hashes(h.n, h.leaf) END
		FROM (SELECT seq + 1 AS n, tree_hashes AS prev, ` + ts + ` AS ts,
		             sha256('\x` + hex.EncodeToString(leafHead) + `'::bytea
		                    || textsend(chr(length((seq + 1)::text)) || (seq + 1)::text || chr(length(` + micros + `)) || ` + micros + `)
		                    || $11::bytea) AS leaf
		      FROM ` + head + `) h
		RETURNING seq, at, tree_hashes`
	if personal {
		sql = withPerson(sql, "$12", "seq, at, tree_hashes")
	}
	return sql
}

// withPerson wraps an insert into audit_entries (RETURNING seq and returning) so that the
// same statement records the entry as personal (migration 010), concerning the person in
// parameter param (may be NULL), and returns what the insert returned.
func withPerson(insert, param, returning string) string {
	return `
	WITH ins AS (` + insert + `
	), person AS (
		INSERT INTO audit_entry_people (seq, person_id) SELECT seq, ` + param + `::bigint FROM ins
	)
	SELECT ` + returning + ` FROM ins`
}

// entryArgs are the parameters $1 to $10 of the append statements: the entry's fields
// after its seq and time.
func entryArgs(le *LogEntry, rawDetails []byte) []any {
	return []any{string(le.Actor.Kind), le.Actor.ID, le.Actor.Name, le.MemberID, le.Action, le.TargetType,
		le.TargetID, le.RequestID, le.SourceIP, string(rawDetails)}
}

// The heads appendStatement reads: the log's last row, or (for the first entry) none.
const (
	headLast  = `audit_entries ORDER BY seq DESC LIMIT 1`
	headEmpty = `(VALUES (-1::bigint, NULL::bytea, NULL::timestamptz)) AS empty (seq, tree_hashes, at)
		      WHERE NOT EXISTS (SELECT FROM audit_entries)`
)

// The append statements (appendStatement): for an entry after the first, and for the first.
var (
	appendSQL              = appendStatement(headLast, false)
	appendPersonalSQL      = appendStatement(headLast, true)
	appendFirstSQL         = appendStatement(headEmpty, false)
	appendFirstPersonalSQL = appendStatement(headEmpty, true)
)

// leafHead is what every leaf starts with, RFC 6962's leaf prefix included.
var leafHead = append([]byte{0x00}, LeafVersion...)

// appendEntry assigns le its sequence number and time and writes it, with the tree's new
// stored hashes, in tx. rawDetails is the details object as JSON, stored byte for byte.
// personal records the entry as personal, concerning person (nil: nobody known). With an
// Appender in ctx (WithAppender: the processes archipelago runs have one) the tree is
// computed in Go from the head the process knows, else by the database (appendInDatabase).
func appendEntry(ctx context.Context, tx pgx.Tx, le *LogEntry, rawDetails []byte, personal bool, person *int64) error {
	if a := AppenderFrom(ctx); a != nil {
		return a.append(ctx, tx, le, rawDetails, personal, person)
	}
	_, err := appendInDatabase(ctx, tx, le, rawDetails, personal, person)
	return err
}

// appendInDatabase appends le as appendEntry does, the database computing its seq, its
// time, its leaf hash and the tree's new stored hashes, which it returns.
//
// The lock statement and appendSQL go out together (a pipeline), so the lock is held for
// one statement's execution and the commit, as for a plain insert: nothing of the entry is
// computed under it but its seq, its time, its leaf hash and the node hashes seq implies.
// Only the first entry of a log takes a second statement (appendFirstSQL: appendSQL finds
// no last row), under the same lock. The leaf hash the database computed is checked against
// LogEntry.LeafHash, the encoding Verify uses: were they ever to disagree the append, and
// so the change, fails rather than write a log that does not verify.
func appendInDatabase(ctx context.Context, tx pgx.Tx, le *LogEntry, rawDetails []byte, personal bool, person *int64) ([]byte, error) {
	le.Details = rawDetails
	rest := le.appendLeafRest(make([]byte, 0, 128+len(le.Actor.Name)+len(rawDetails)))
	var (
		seq    int64
		at     time.Time
		hashes []byte
	)
	args := append(entryArgs(le, rawDetails), rest)
	sql, first := appendSQL, appendFirstSQL
	if personal {
		sql, first, args = appendPersonalSQL, appendFirstPersonalSQL, append(args, person)
	}
	scan := func(row pgx.Row) error { return row.Scan(&seq, &at, &hashes) }
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, appendLockID)
	b.Queue(sql, args...).QueryRow(scan)
	err := tx.SendBatch(ctx, b).Close()
	if errors.Is(err, pgx.ErrNoRows) { // an empty log: its first entry (the lock is held)
		err = scan(tx.QueryRow(ctx, first, args...))
	}
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23502" /* not_null_violation */ && pgErr.ColumnName == "tree_hashes" {
			return nil, fmt.Errorf("the tree lacks a stored hash the next entry combines with (an entry was deleted?): run `archipelago audit verify`: %w", err)
		}
		return nil, err
	}
	le.Seq, le.At = seq, at.UTC()
	leaf := hashes[:min(len(hashes), tlog.HashSize)]
	if h := le.LeafHash(); len(leaf) != tlog.HashSize || tlog.Hash(leaf) != h {
		return nil, fmt.Errorf("the database encoded entry %d's leaf hash as %x, not %x: refusing to append", le.Seq, leaf, h)
	}
	return hashes, nil
}

// entryColumns are an entry's columns, as scanEntry reads them.
const entryColumns = `seq, at, actor_kind, actor_id, actor_name, member_id, action, target_type, target_id,
	request_id, source_ip, details::text`

const (
	selectEntriesSQL           = `SELECT ` + entryColumns + ` FROM audit_entries`
	selectEntriesWithHashesSQL = `SELECT ` + entryColumns + `, tree_hashes FROM audit_entries`
)

// entryRow holds a row of entryColumns while it is scanned.
type entryRow struct {
	e             LogEntry
	kind, details string
}

func (r *entryRow) dest() []any {
	return []any{&r.e.Seq, &r.e.At, &r.kind, &r.e.Actor.ID, &r.e.Actor.Name, &r.e.MemberID, &r.e.Action, &r.e.TargetType,
		&r.e.TargetID, &r.e.RequestID, &r.e.SourceIP, &r.details}
}

func (r *entryRow) entry() LogEntry {
	r.e.Actor.Kind, r.e.Details, r.e.At = ActorKind(r.kind), []byte(r.details), r.e.At.UTC()
	return r.e
}

func scanEntry(row pgx.CollectableRow) (LogEntry, error) {
	var r entryRow
	err := row.Scan(r.dest()...)
	return r.entry(), err
}

// scanEntryWithHashes reads a row of selectEntriesWithHashesSQL: the entry and the tree
// hashes stored with it.
func scanEntryWithHashes(row pgx.CollectableRow) (LogEntry, []byte, error) {
	var (
		r  entryRow
		hs []byte
	)
	err := row.Scan(append(r.dest(), &hs)...)
	return r.entry(), hs, err
}

// errMissingHash means the tree lacks a stored hash a computation needs.
var errMissingHash = errors.New("the tree lacks a stored hash")

// storedAt says where the stored hash tlog numbers index is kept: byte 32*level of the
// tree_hashes of entry seq (migration 003).
func storedAt(index int64) (seq int64, level int) {
	level, n := tlog.SplitStoredHashIndex(index)
	return (n+1)<<level - 1, level
}

// txReader reads stored hashes from the database.
type txReader struct {
	ctx context.Context
	q   Querier
}

func (r txReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	seqs := make([]int64, len(indexes))
	for k, x := range indexes {
		seqs[k], _ = storedAt(x)
	}
	rows, err := r.q.Query(r.ctx, `SELECT seq, tree_hashes FROM audit_entries WHERE seq = ANY ($1)`, seqs)
	if err != nil {
		return nil, err
	}
	got := make(map[int64][]byte, len(indexes))
	var (
		seq int64
		hs  []byte
	)
	if _, err = pgx.ForEachRow(rows, []any{&seq, &hs}, func() error {
		got[seq] = hs
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for k, x := range indexes {
		seq, level := storedAt(x)
		hs := got[seq]
		if len(hs) < (level+1)*tlog.HashSize {
			return nil, fmt.Errorf("%w (index %d, entry %d)", errMissingHash, x, seq)
		}
		out[k] = tlog.Hash(hs[level*tlog.HashSize:])
	}
	return out, nil
}
