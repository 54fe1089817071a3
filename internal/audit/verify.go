package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem is one way the stored log differs from what it should be.
type Problem struct {
	// Seq is the first entry concerned (-1 when none can be named).
	Seq int64
	// Until, when greater than Seq, bounds a range: the difference lies in [Seq, Until).
	Until   int64
	Message string
}

func (p Problem) String() string {
	switch {
	case p.Seq < 0:
		return p.Message
	case p.Until > p.Seq+1:
		return fmt.Sprintf("entries %d–%d: %s", p.Seq, p.Until-1, p.Message)
	default:
		return fmt.Sprintf("entry %d: %s", p.Seq, p.Message)
	}
}

// Report is the outcome of Verify.
type Report struct {
	Entries     int64       // entries in the database
	Checkpoints int         // signed checkpoints checked
	Recorded    int         // checkpoints recorded elsewhere (reports) among them
	Latest      *Checkpoint // the latest validly signed checkpoint, if any
	// WrongKey, when set, says that no checkpoint verifies with the key given but they are
	// signed with another: a configuration problem, not evidence of tampering.
	WrongKey  string
	Uncovered int64     // entries after the latest checkpoint (not yet signed)
	Problems  []Problem // in order of position; the first names the first bad entry
	Duration  time.Duration
}

// OK reports whether the log verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// RecordedCheckpoint is a checkpoint kept outside the log's own table (a report carries
// the checkpoint taken when it was generated).
type RecordedCheckpoint struct {
	Where string // what holds it, e.g. "report 12"
	Note  []byte
	At    time.Time
}

// CheckpointSource reads checkpoints recorded elsewhere; Verify calls it in its own
// read-only snapshot, so that they are compared with the entries of the same moment.
type CheckpointSource func(ctx context.Context, q Querier) ([]RecordedCheckpoint, error)

// maxProblems caps the report: the first problems matter, the rest follow from them.
const maxProblems = 20

// Verify recomputes the tree from every entry in the database and checks it against the
// stored tree hashes, every stored checkpoint and every checkpoint recorded elsewhere (each
// source in recorded, read in the same snapshot: the checkpoints reports carry, say, which
// reveal a truncation that also deleted the later checkpoints). Checkpoints are checked with
// k (under the log's name or a former one); when none verifies but they are signed with
// another key, the report says so (WrongKey) instead of calling each one forged. Tampering shows as
// problems naming the first entry concerned: an edited, reordered or forged entry does not
// match its leaf hash, a deleted one leaves a gap, a truncated tail is shorter than a
// checkpoint, and a fork disagrees with an earlier checkpoint.
//
// It reads one consistent snapshot, a batch of entries at a time: its memory is a few
// batches and one root per checkpoint, whatever the size of the log.
func Verify(ctx context.Context, pool *pgxpool.Pool, k Keys, recorded ...CheckpointSource) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	problem := func(p Problem) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, p)
		}
	}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The checkpoints first (the snapshot is the same): the sizes whose roots the
		// recomputation must give.
		rows, err := tx.Query(ctx, `SELECT tree_size, root_hash, note, created_at FROM audit_checkpoints ORDER BY tree_size`)
		if err != nil {
			return err
		}
		type cpRow struct {
			Size int64
			Root []byte
			Note string
			At   time.Time
		}
		stored, err := pgx.CollectRows(rows, pgx.RowToStructByPos[cpRow])
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		type checked struct {
			what    string // "checkpoint of size 30 (stored …)" or "the checkpoint in report 4"
			where   string // "" or " in report 4"
			c       Checkpoint
			err     error
			mismat  bool // its row's size or root differ from its note
			foreign bool // signed only with other keys
		}
		var all []checked
		for _, s := range stored {
			x := checked{what: fmt.Sprintf("checkpoint of size %d (stored %s)", s.Size, s.At.UTC().Format(time.RFC3339))}
			x.c, x.err = k.Open([]byte(s.Note))
			if x.err == nil && (x.c.Size != s.Size || x.c.Root != tlog.Hash(s.Root)) {
				x.mismat = true
			}
			x.c.CreatedAt = s.At
			all = append(all, x)
		}
		for _, src := range recorded {
			rs, err := src(ctx, tx)
			if err != nil {
				return fmt.Errorf("read checkpoints recorded elsewhere: %w", err)
			}
			for _, r := range rs {
				x := checked{what: "the checkpoint in " + r.Where, where: " in " + r.Where}
				x.c, x.err = k.Open(r.Note)
				x.c.CreatedAt = r.At
				all = append(all, x)
				rep.Recorded++
			}
		}
		var sizes []int64
		for _, x := range all {
			if x.err == nil && x.c.Size >= 0 {
				sizes = append(sizes, x.c.Size)
			}
		}
		slices.Sort(sizes)
		sizes = slices.Compact(sizes)

		// Recompute the tree from the entries, checking each against the hashes stored with
		// it, and its root at each checkpoint's size.
		rows, err = tx.Query(ctx, selectEntriesWithHashesSQL+` ORDER BY seq`)
		if err != nil {
			return err
		}
		tc := newTreeCheck(sizes, problem)
		b := tc.pipe.next()
		for rows.Next() {
			e, hs, err := scanEntryWithHashes(rows)
			if err != nil {
				rows.Close()
				tc.pipe.send(b)
				return errors.Join(err, tc.pipe.wait())
			}
			b.entries, b.stored = append(b.entries, e), append(b.stored, hs)
			if len(b.entries) == leafBatch {
				tc.pipe.send(b)
				b = tc.pipe.next()
			}
		}
		tc.pipe.send(b)
		if err := tc.pipe.wait(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read entries: %w", err)
		}
		size, roots, firstLeafProblem := tc.tree.n, tc.roots, tc.firstLeafProblem
		rep.Entries = size

		// Every checkpoint must be validly signed and match the recomputed tree.
		valid, foreign := 0, 0
		var others []string
		for i := range all {
			var se *SignatureError
			if errors.As(all[i].err, &se) && se.WrongKey() {
				all[i].foreign = true
				foreign++
				for _, o := range se.OtherKeys {
					if !slices.Contains(others, o) {
						others = append(others, o)
					}
				}
			} else if all[i].err == nil {
				valid++
			}
		}
		if valid == 0 && foreign > 0 {
			// Not one checkpoint verifies, and they are signed with another key: this
			// configuration has the wrong key, which says nothing about the log.
			_, hash, _, _ := splitVerifierKey(k.VerifierKey)
			rep.WrongKey = fmt.Sprintf("wrong key: the log's checkpoints are signed with %s, not with this configuration's key %s+%s; "+
				"check ARCHIPELAGO_MASTER_KEY(_FILE) and ARCHIPELAGO_AUDIT_SIGNING_KEY (this says nothing about whether the log was altered)",
				strings.Join(others, ", "), k.Name(), hash)
			problem(Problem{Seq: -1, Message: rep.WrongKey})
		}
		goodSize := int64(0) // the largest checkpoint size the log agrees with
		for _, x := range all {
			switch {
			case x.foreign && rep.WrongKey != "":
				continue
			case x.foreign:
				problem(Problem{Seq: -1, Message: fmt.Sprintf("%s is %v, not by this log's key %s: forged", x.what, x.err, k.Name())})
				continue
			case x.err != nil || x.mismat:
				problem(Problem{Seq: -1, Message: fmt.Sprintf("%s is not validly signed by %s: forged or altered", x.what, k.Name())})
				continue
			}
			c, at := x.c, x.c.CreatedAt.UTC().Format(time.RFC3339)
			rep.Checkpoints++
			if rep.Latest == nil || c.Size >= rep.Latest.Size {
				rep.Latest = &c
			}
			if c.Size > size {
				problem(Problem{Seq: size, Until: c.Size, Message: fmt.Sprintf("missing: checkpoint %d%s, signed %s, covers %d entries but the log holds %d (truncated)",
					c.Size, x.where, at, c.Size, size)})
				continue
			}
			root, ok := roots[c.Size]
			if !ok {
				return fmt.Errorf("no root computed at size %d", c.Size) // (a bug: every size ≤ the log's is computed)
			}
			if root != c.Root {
				p := Problem{Seq: goodSize, Until: c.Size, Message: fmt.Sprintf("the log no longer matches checkpoint %d%s signed %s: rewritten or forked after entry %d",
					c.Size, x.where, at, goodSize-1)}
				if firstLeafProblem >= goodSize && firstLeafProblem < c.Size {
					p = Problem{Seq: firstLeafProblem, Message: fmt.Sprintf("the log no longer matches checkpoint %d%s signed %s from this entry on", c.Size, x.where, at)}
				}
				problem(p)
				continue
			}
			goodSize = max(goodSize, c.Size)
		}
		if rep.Latest != nil {
			rep.Uncovered = max(size-rep.Latest.Size, 0)
		} else {
			rep.Uncovered = size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify the audit log: %w", err)
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rank(rep.Problems[i]) < rank(rep.Problems[j]) })
	rep.Duration = time.Since(start)
	return rep, nil
}

// rank orders problems by position, unplaced ones last.
func rank(p Problem) int64 {
	if p.Seq < 0 {
		return 1 << 62
	}
	return p.Seq
}

// treeCheck is Verify's recomputation of the tree: batches come in order from its pipeline
// (hashed and checked by hashBatch), and consume reports what differs, in order, and keeps
// the root at each size asked for.
type treeCheck struct {
	pipe             *leafPipeline
	tree             frontier
	sizes            []int64 // the sizes whose roots are still to be computed, in order
	roots            map[int64]tlog.Hash
	prev             int64 // the seq of the entry before
	firstLeafProblem int64 // the position of the first entry found bad, -1: none yet
	problem          func(Problem)
}

// newTreeCheck starts the recomputation; sizes must be sorted.
func newTreeCheck(sizes []int64, problem func(Problem)) *treeCheck {
	tc := &treeCheck{sizes: sizes, roots: make(map[int64]tlog.Hash, len(sizes)), prev: -1, firstLeafProblem: -1, problem: problem}
	if len(sizes) > 0 && sizes[0] == 0 {
		tc.roots[0], _ = tlog.TreeHash(0, nil)
		tc.sizes = sizes[1:]
	}
	tc.pipe = startLeafPipeline(tc.consume)
	return tc
}

// consume takes the next batch: the roots at the sizes it reaches, then its entries'
// problems in order.
func (tc *treeCheck) consume(b *leafBuf) error {
	if b.first != tc.tree.n {
		return fmt.Errorf("batch at %d after %d entries", b.first, tc.tree.n) // (a bug)
	}
	end := b.first + int64(len(b.entries))
	for len(tc.sizes) > 0 && tc.sizes[0] <= end {
		tc.roots[tc.sizes[0]] = tc.tree.root(b, int(tc.sizes[0]-b.first))
		tc.sizes = tc.sizes[1:]
	}
	above := tc.tree.push(b)
	for i := range b.entries {
		e, v, n := &b.entries[i], b.verdicts[i], b.first+int64(i)
		if e.Seq > tc.prev+1 {
			tc.problem(Problem{Seq: tc.prev + 1, Until: e.Seq, Message: fmt.Sprintf("missing: the log jumps from entry %d to entry %d (deleted)", tc.prev, e.Seq)})
		}
		tc.prev = e.Seq
		bad := e.Seq != n // after a gap: reported above
		switch {
		case bad:
		case v.leafBad:
			tc.problem(Problem{Seq: n, Message: "does not match its recorded leaf hash: edited, reordered, replaced or forged"})
			bad = true
		case v.malformed:
			tc.problem(Problem{Seq: n, Message: fmt.Sprintf("its stored tree hashes are malformed (%d bytes, not %d)", len(b.stored[i]), storedCount(n)*tlog.HashSize)})
			bad = true
		case tc.firstLeafProblem < 0:
			// (After a bad leaf every later interior hash differs: not worth reporting.)
			level := int(v.altered)
			if level == 0 && v.upper {
				for k, h := range above {
					at := (leafBatchBits + 1 + k) * tlog.HashSize
					if tlog.Hash(b.stored[i][at:at+tlog.HashSize]) != h {
						level = leafBatchBits + 1 + k
						break
					}
				}
			}
			if level > 0 {
				tc.problem(Problem{Seq: n, Message: fmt.Sprintf("the tree hash of level %d stored with this entry was altered", level)})
			}
		}
		if bad && tc.firstLeafProblem < 0 {
			tc.firstLeafProblem = n
		}
	}
	return nil
}
