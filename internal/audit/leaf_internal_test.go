package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/testenv"
)

// refTree is a tree held in memory the simple way: its stored hashes in index order, as
// tlog computes them. The reference Verify's batched recomputation is checked against.
type refTree struct{ hashes []tlog.Hash }

func (t *refTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = t.hashes[x]
	}
	return out, nil
}

// add appends entry e (the next one) and returns the hashes its append stores.
func (t *refTree) add(tb testing.TB, e *LogEntry) []byte {
	hs, err := tlog.StoredHashes(e.Seq, e.Leaf(), t)
	if err != nil {
		tb.Fatal(err)
	}
	t.hashes = append(t.hashes, hs...)
	var row []byte
	for _, h := range hs {
		row = append(row, h[:]...)
	}
	return row
}

// runTreeCheck recomputes the tree of es with the hashes stored in rows, as Verify does,
// and returns the roots at sizes and the problems found.
func runTreeCheck(es []LogEntry, rows [][]byte, sizes []int64) (map[int64]tlog.Hash, []Problem) {
	var problems []Problem
	tc := newTreeCheck(sizes, func(p Problem) { problems = append(problems, p) })
	for lo := 0; lo < len(es) || lo == 0; lo += leafBatch {
		b := tc.pipe.next()
		for i := lo; i < min(lo+leafBatch, len(es)); i++ {
			b.entries, b.stored = append(b.entries, es[i]), append(b.stored, rows[i])
		}
		tc.pipe.send(b)
	}
	if err := tc.pipe.wait(); err != nil {
		panic(err)
	}
	return tc.roots, problems
}

// Verify's batched recomputation (leaves and interior nodes hashed a batch at a time, the
// frontier between batches) computes what tlog computes: every entry's stored hashes
// check, the root at every size is tlog.TreeHash's, and an altered hash at any level —
// inside a chunk, above the chunks, above the batches — is found at its entry and level.
func TestBatchedRecomputationAgreesWithTlog(t *testing.T) {
	t.Parallel()
	const n = 2*leafBatch + 3000 // two full batches (a node above them) and a partial one
	es := syntheticEntries(n)
	ref := &refTree{}
	rows := make([][]byte, n)
	for i := range es {
		rows[i] = ref.add(t, &es[i])
	}
	var sizes []int64
	for s := int64(0); s <= n; s += 97 {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, chunk-1, chunk, chunk+1, leafBatch-1, leafBatch, leafBatch+1, 2*leafBatch, n-1, n)
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	roots, problems := runTreeCheck(es, rows, sizes)
	if len(problems) != 0 {
		t.Fatalf("problems in an intact tree: %v", problems)
	}
	for _, s := range sizes {
		want, err := tlog.TreeHash(s, ref)
		if err != nil {
			t.Fatal(err)
		}
		if roots[s] != want {
			t.Fatalf("root at size %d differs from tlog's", s)
		}
	}
	// Every entry's leaf hash is tlog's record hash of its leaf.
	b := newLeafBuf()
	b.entries = es[:leafBatch]
	hashBatch(b)
	for i := range b.entries {
		if b.levels[0][i] != tlog.RecordHash(es[i].Leaf()) {
			t.Fatalf("leaf hash %d differs", i)
		}
	}

	// Altered stored hashes are found where they are: entry 2·leafBatch-1 closes nodes up
	// to level leafBatchBits+1 (above the batches), entry chunk·2-1 up to chunkBits+1
	// (above the chunks), entry 6 up to level 1.
	for _, c := range []struct {
		seq   int64
		level int
	}{{2*leafBatch - 1, leafBatchBits + 1}, {2*leafBatch - 1, leafBatchBits}, {2*chunk - 1, chunkBits + 1}, {2*chunk - 1, 3}, {5, 1}, {n - 1, 0}} {
		altered := slices.Clone(rows)
		altered[c.seq] = slices.Clone(rows[c.seq])
		altered[c.seq][c.level*tlog.HashSize] ^= 1
		_, problems := runTreeCheck(es, altered, nil)
		want := fmt.Sprintf("entry %d: the tree hash of level %d stored with this entry was altered", c.seq, c.level)
		if c.level == 0 {
			want = fmt.Sprintf("entry %d: does not match its recorded leaf hash: edited, reordered, replaced or forged", c.seq)
		}
		if len(problems) != 1 || problems[0].String() != want {
			t.Errorf("level %d of entry %d altered: problems %v, want %q", c.level, c.seq, problems, want)
		}
	}
	// A malformed row and a gap.
	short := slices.Clone(rows)
	short[3] = rows[3][:tlog.HashSize]
	if _, problems := runTreeCheck(es, short, nil); len(problems) != 1 || !strings.Contains(problems[0].String(), "entry 3: its stored tree hashes are malformed (32 bytes, not 96)") {
		t.Errorf("malformed row: problems %v", problems)
	}
	if _, problems := runTreeCheck(slices.Delete(slices.Clone(es), 10, 11), slices.Delete(slices.Clone(rows), 10, 11), nil); len(problems) == 0 ||
		problems[0].String() != "entry 10: missing: the log jumps from entry 9 to entry 11 (deleted)" {
		t.Errorf("gap: problems %v", problems)
	}
}

// Each entry's row holds the hashes tlog stores for it, in order: storedAt finds every
// stored hash index in the row that holds it.
func TestStoredHashesLiveInTheirEntrysRow(t *testing.T) {
	t.Parallel()
	for m := int64(0); m < 5000; m++ {
		first, next := tlog.StoredHashCount(m), tlog.StoredHashCount(m+1)
		for x := first; x < next; x++ {
			if seq, level := storedAt(x); seq != m || int64(level) != x-first {
				t.Fatalf("stored hash %d: entry %d level %d, want entry %d level %d", x, seq, level, m, x-first)
			}
		}
	}
	for _, m := range []int64{1<<40 - 1, 1<<40 + 12345, 1<<62 - 1} {
		if seq, _ := storedAt(tlog.StoredHashIndex(0, m)); seq != m {
			t.Errorf("leaf of entry %d: entry %d", m, seq)
		}
	}
}

// An append holds the lock appendLockID names until its transaction ends.
func TestTheServerAppendTakesTheAppendLock(t *testing.T) {
	t.Parallel()
	tx := testenv.Tx(t)
	ctx := WithActor(context.Background(), System("test"))
	if _, err := Record(ctx, tx, Entry{Action: "test.lock"}); err != nil {
		t.Fatal(err)
	}
	var held bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
		AND classid = $1 AND objid = $2 AND mode = 'ExclusiveLock' AND granted)`,
		int64(appendLockID>>32), appendLockID&0xffffffff).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatal("an append does not hold advisory lock appendLockID")
	}
}
