package audit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// An Appender computes the tree of the entries its process appends in Go, from the head of
// the log it last saw (its sequence number, time, stored hashes and the tree's frontier),
// so that the database only checks that the head is still that one and stores the row: no
// SHA-256 and no sibling reads by the database under the append lock, where each call of
// PostgreSQL's sha256() costs ~6 % of a plain insert and the sibling walk more
// (docs/audit.md, "Performance"). The archipelago command gives every
// process one (WithAppender); Record without one has the database compute the tree
// (appendInDatabase).
//
// What the database stores does not depend on the path: the same leaf encoding (the one
// Verify reads), the same tree, the same checks. The head is a prediction, never trusted: the
// insert is conditional on the log's last row being the predicted head (its seq and its
// stored hashes, which begin with its leaf hash); when another process appended meanwhile,
// or the transaction that wrote the predicted head rolled back, the insert writes nothing and
// the append is redone by the database, under the lock already held, and the head read back.
//
// Predictions are made one at a time, in the order the appends will take the lock: the
// append whose turn it is keeps the turn until its insert has answered (the next one
// predicts on top of it). An append waits at most turnWait for its turn, then appends
// through the database, queued on the lock in PostgreSQL: a transaction that already holds
// the lock (it appended before, in a savepoint or another code path) and appends again,
// while the turn's holder waits for that lock, would otherwise wait for ever on a cycle
// PostgreSQL cannot see. The transaction of the latest append is remembered, so that its
// next append, which holds the lock, needs no turn.
//
// When predictions keep failing (several processes appending in turn), reading the head back
// after each of the database's appends would cost a statement under the lock for nothing:
// after the second failure in a row the next append is the database's without reading the
// head, after the third the next two, then four, up to maxSkip; then the head is read back
// and predicting tried again. One success ends the streak.
//
// An entry's time is this process's clock when it predicts, never earlier than the head's,
// and accepted only within clockTolerance of the database's clock (else the database
// appends, with its own): times never go back, and lie within a second of the database's
// clock whatever the clocks of the processes writing them.
type Appender struct {
	turn chan struct{} // holds a token while an append's prediction is in flight
	now  func() time.Time

	mu     sync.Mutex
	head   *logHead // nil: unknown (a new process, or after a failure)
	holder pgx.Tx   // the transaction of the latest append, which may still hold the lock
	misses int      // predictions that failed in a row
	skip   int      // appends left to the database without reading the head back

	predicted, redone, missed atomic.Int64 // appends by prediction, by the database; failed predictions
}

// maxSkip bounds the appends left to the database between two tries at predicting.
const maxSkip = 64

// turnWait is how long an append waits for its turn before it appends through the
// database instead (Appender).
const turnWait = 250 * time.Millisecond

// clockTolerance is how far from the database's clock a predicted time may be: beyond it
// (a process whose clock is off, or an append that waited long for the lock) the database
// appends, with its own clock's time.
const clockTolerance = "1 second"

// logHead is what an Appender knows of the log's last entry.
type logHead struct {
	seq      int64
	at       time.Time
	hashes   []byte      // its stored tree hashes
	frontier []tlog.Hash // the roots of the complete subtrees of the tree of seq+1 entries, largest first
}

// NewAppender returns an Appender that knows no head yet.
func NewAppender() *Appender {
	return &Appender{turn: make(chan struct{}, 1), now: time.Now}
}

type appenderKey struct{}

// WithAppender returns ctx carrying a, for every Record made with it (one per process and
// database).
func WithAppender(ctx context.Context, a *Appender) context.Context {
	return context.WithValue(ctx, appenderKey{}, a)
}

// AppenderFrom returns the Appender ctx carries (nil: none).
func AppenderFrom(ctx context.Context) *Appender {
	a, _ := ctx.Value(appenderKey{}).(*Appender)
	return a
}

// AppendCounts says how many appends a made from its prediction of the head, and how many
// the database made (the first of a process, after another process appended, after a
// rollback, or when an append did not get its turn in time).
func (a *Appender) AppendCounts() (predicted, redone int64) {
	return a.predicted.Load(), a.redone.Load()
}

func (a *Appender) append(ctx context.Context, tx pgx.Tx, le *LogEntry, raw []byte, personal bool, person *int64) error {
	a.mu.Lock()
	reentrant := sameTx(a.holder, tx)
	a.mu.Unlock()
	if !reentrant {
		t := time.NewTimer(turnWait)
		select {
		case a.turn <- struct{}{}:
			t.Stop()
			defer func() { <-a.turn }()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C: // the turn is held by an append waiting for a lock: queue on it in PostgreSQL
			return a.byDatabase(ctx, tx, le, raw, personal, person)
		}
	}
	a.mu.Lock()
	h, skip := a.head, a.skip > 0
	if skip {
		a.skip--
	}
	a.mu.Unlock()
	if skip {
		return a.byDatabase(ctx, tx, le, raw, personal, person)
	}
	if next, hashes := h.next(le, raw, a.now()); next != nil {
		ok, err := insertPredicted(ctx, tx, le, raw, hashes, h.hashes, personal, person)
		if err != nil || ok {
			if ok {
				a.predicted.Add(1)
				a.mu.Lock()
				a.misses = 0
				a.mu.Unlock()
			}
			a.settle(tx, next, err)
			return err
		}
		a.missed.Add(1)
		a.mu.Lock()
		a.misses++
		if a.misses > 1 {
			a.skip = min(1<<(a.misses-2), maxSkip)
		}
		skip = a.skip > 0
		a.mu.Unlock()
	}
	// No head known, or not the log's (the lock is held if a prediction was tried): the
	// database appends, then the head is read back (unless predictions are paused).
	a.redone.Add(1)
	hashes, err := appendInDatabase(ctx, tx, le, raw, personal, person)
	if err != nil || skip {
		a.settle(tx, nil, err)
		return err
	}
	next, err := readHead(ctx, tx, le.Seq, le.At, hashes)
	if errors.Is(err, errMissingHash) { // the append stands; the next one is the database's too
		err = nil
	}
	a.settle(tx, next, err)
	return err
}

// byDatabase has the database append le without reading the head back: the next append
// is the database's too, or reads it.
func (a *Appender) byDatabase(ctx context.Context, tx pgx.Tx, le *LogEntry, raw []byte, personal bool, person *int64) error {
	a.redone.Add(1)
	_, err := appendInDatabase(ctx, tx, le, raw, personal, person)
	a.settle(tx, nil, err)
	return err
}

// sameTx reports whether x and y are the same transaction (pgx's transactions are
// pointers; a value of another type is compared only when its type allows it).
func sameTx(x, y pgx.Tx) bool {
	if x == nil || y == nil {
		return false
	}
	t := reflect.TypeOf(x)
	return t == reflect.TypeOf(y) && t.Comparable() && x == y
}

// settle records the outcome of tx's append: the new head (nil: unknown), and tx as the
// latest appender; after a failure, no head.
func (a *Appender) settle(tx pgx.Tx, next *logHead, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.head = nil
		return
	}
	a.head, a.holder = next, tx
}

// next predicts the entry after h: it gives le its seq and time (now, or h's time if later),
// and returns the head le makes and its stored tree hashes (its leaf hash, then the node
// hashes its seq's trailing 1 bits close, each combining the frontier's root of that level
// with the hash so far). It returns nil when h is nil, or not a head it can follow.
func (h *logHead) next(le *LogEntry, raw []byte, now time.Time) (*logHead, []byte) {
	if h == nil || len(h.frontier) != bits.OnesCount64(uint64(h.seq+1)) || len(h.hashes) < tlog.HashSize {
		return nil, nil
	}
	at := now.UTC().Truncate(time.Microsecond)
	if at.Before(h.at) {
		at = h.at
	}
	le.Seq, le.At, le.Details = h.seq+1, at, raw
	x := le.LeafHash()
	hashes := append(make([]byte, 0, 2*tlog.HashSize), x[:]...)
	f := h.frontier
	k := bits.TrailingZeros64(^uint64(le.Seq)) // the levels seq closes
	for i := range k {
		x = tlog.NodeHash(f[len(f)-1-i], x)
		hashes = append(hashes, x[:]...)
	}
	frontier := append(append(make([]tlog.Hash, 0, len(f)-k+1), f[:len(f)-k]...), x)
	return &logHead{seq: le.Seq, at: at, hashes: hashes, frontier: frontier}, hashes
}

// readHead returns the head of the log whose last entry is seq (written by this
// transaction): its frontier read from the stored hashes.
func readHead(ctx context.Context, tx pgx.Tx, seq int64, at time.Time, hashes []byte) (*logHead, error) {
	size := seq + 1
	var indexes []int64
	for level, start := 63, int64(0); level >= 0; level-- {
		if size>>level&1 == 1 {
			indexes = append(indexes, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	frontier, err := txReader{ctx, tx}.ReadHashes(indexes)
	if err != nil {
		return nil, err
	}
	return &logHead{seq: seq, at: at, hashes: hashes, frontier: frontier}, nil
}

// insertPredicted writes le (given its seq and time by logHead.next) with the stored hashes
// computed for it, if the log's last entry is still the predicted head (prev: its stored
// hashes). It reports whether it wrote.
func insertPredicted(ctx context.Context, tx pgx.Tx, le *LogEntry, raw, hashes, prev []byte, personal bool, person *int64) (bool, error) {
	args := append(entryArgs(le, raw), hashes, le.Seq, le.At, prev)
	sql := insertPredictedSQL
	if personal {
		sql, args = insertPredictedPersonalSQL, append(args, person)
	}
	var seq int64
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, appendLockID)
	b.Queue(sql, args...).QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	err := tx.SendBatch(ctx, b).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if seq != le.Seq {
		return false, fmt.Errorf("the database wrote entry %d as %d", le.Seq, seq)
	}
	return true, nil
}

// insertPredictedStatement is the insert of an entry whose seq ($12), time ($13) and tree
// hashes ($11) were predicted, conditional on the log's last row being entry $12 - 1 with
// the stored hashes $14, and on the time being within clockTolerance of the database's
// clock when it takes up the insert (statement_timestamp(): after the lock statement sent
// before it was granted the lock). A personal entry (migration 010) is also recorded in
// audit_entry_people with its person ($15, may be NULL).
func insertPredictedStatement(personal bool) string {
	sql := `
		INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action, target_type, target_id,
		                           request_id, source_ip, details, tree_hashes)
		SELECT $12::bigint, $13::timestamptz, $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text,
		       $8::text, $9::text, $10::json, $11::bytea
		FROM (SELECT seq, tree_hashes FROM audit_entries ORDER BY seq DESC LIMIT 1) h
		WHERE h.seq = $12::bigint - 1 AND h.tree_hashes = $14::bytea
		  AND $13::timestamptz BETWEEN statement_timestamp() - interval '` + clockTolerance + `'
		                           AND statement_timestamp() + interval '` + clockTolerance + `'
		RETURNING seq`
	if personal {
		sql = withPerson(sql, "$15", "seq")
	}
	return sql
}

var (
	insertPredictedSQL         = insertPredictedStatement(false)
	insertPredictedPersonalSQL = insertPredictedStatement(true)
)
