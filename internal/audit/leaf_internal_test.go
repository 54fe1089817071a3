package audit

import (
	"context"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/testenv"
)

// The allocation-free paths of Verify compute what tlog computes.
func TestFastPathsAgreeWithTlog(t *testing.T) {
	t.Parallel()
	es := syntheticEntries(3000) // enough for hashLeaves to use several goroutines
	tree := &memTree{}
	leafHashes := make([]tlog.Hash, len(es))
	hashLeaves(es, leafHashes)
	var ref []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = ref[x]
		}
		return out, nil
	})
	for i := range es {
		h := leafHashes[i]
		if h != tlog.RecordHash(es[i].Leaf()) {
			t.Fatalf("leaf hash %d differs", i)
		}
		hs, err := tlog.StoredHashes(int64(i), es[i].Leaf(), r)
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, hs...)
		if _, err := tree.add(h); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ref {
		if ref[i] != tree.hashes[i] {
			t.Fatalf("stored hash %d differs", i)
		}
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
