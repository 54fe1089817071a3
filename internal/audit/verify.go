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
// It reads one consistent snapshot and holds the whole tree's hashes in memory (64 bytes
// per entry).
func Verify(ctx context.Context, pool *pgxpool.Pool, k Keys, recorded ...CheckpointSource) (*Report, error) {
	start := time.Now()
	rep := &Report{}
	problem := func(p Problem) {
		if len(rep.Problems) < maxProblems {
			rep.Problems = append(rep.Problems, p)
		}
	}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// Recompute the tree from the entries, checking each against the hashes stored with it.
		size, err := treeSize(ctx, tx)
		if err != nil {
			return err
		}
		// (A capacity hint only: a forged seq must not make it allocate the moon.)
		tree := &memTree{hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(min(size, 1<<22)))}
		rows, err := tx.Query(ctx, selectEntriesWithHashesSQL+` ORDER BY seq`)
		if err != nil {
			return err
		}
		firstLeafProblem := int64(-1)
		prev := int64(-1)
		// Entries are read in batches whose leaves are hashed in parallel, then added to the
		// tree and checked in order on the pipeline's goroutine while the next batch is read.
		pipe := startLeafPipeline(func(b *leafBuf) error {
			for i := range b.entries {
				e, lh, st := &b.entries[i], b.hashes[i], b.stored[i]
				n := tree.n
				if e.Seq > prev+1 {
					problem(Problem{Seq: prev + 1, Until: e.Seq, Message: fmt.Sprintf("missing: the log jumps from entry %d to entry %d (deleted)", prev, e.Seq)})
				}
				prev = e.Seq
				at, err := tree.add(lh)
				if err != nil {
					return err
				}
				want := tree.hashes[at:] // what the append of entry n stores
				bad := e.Seq != n        // after a gap: reported above
				switch {
				case bad:
				case len(st) >= tlog.HashSize && tlog.Hash(st) != lh:
					problem(Problem{Seq: n, Message: "does not match its recorded leaf hash: edited, reordered, replaced or forged"})
					bad = true
				case len(st) != len(want)*tlog.HashSize:
					problem(Problem{Seq: n, Message: fmt.Sprintf("its stored tree hashes are malformed (%d bytes, not %d)", len(st), len(want)*tlog.HashSize)})
					bad = true
				case firstLeafProblem < 0:
					// (After a bad leaf every later interior hash differs: not worth reporting.)
					for level := 1; level < len(want); level++ {
						if tlog.Hash(st[level*tlog.HashSize:]) != want[level] {
							problem(Problem{Seq: n, Message: fmt.Sprintf("the tree hash of level %d stored with this entry was altered", level)})
							break
						}
					}
				}
				if bad && firstLeafProblem < 0 {
					firstLeafProblem = n
				}
			}
			return nil
		})
		b := pipe.next()
		for rows.Next() {
			e, hs, err := scanEntryWithHashes(rows)
			if err != nil {
				rows.Close()
				pipe.send(b)
				return errors.Join(err, pipe.wait())
			}
			b.entries, b.stored = append(b.entries, e), append(b.stored, hs)
			if len(b.entries) == leafBatch {
				pipe.send(b)
				b = pipe.next()
			}
		}
		pipe.send(b)
		if err := pipe.wait(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read entries: %w", err)
		}
		rep.Entries = tree.n

		// Every checkpoint must be validly signed and match the recomputed tree.
		rows, err = tx.Query(ctx, `SELECT tree_size, root_hash, note, created_at FROM audit_checkpoints ORDER BY tree_size`)
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
			if c.Size > tree.n {
				problem(Problem{Seq: tree.n, Until: c.Size, Message: fmt.Sprintf("missing: checkpoint %d%s, signed %s, covers %d entries but the log holds %d (truncated)",
					c.Size, x.where, at, c.Size, tree.n)})
				continue
			}
			root, err := tlog.TreeHash(c.Size, tree)
			if err != nil {
				return err
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
			rep.Uncovered = max(tree.n-rep.Latest.Size, 0)
		} else {
			rep.Uncovered = tree.n
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
