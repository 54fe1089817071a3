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

// The server-side append (audit_append, migration 003) takes the lock appendLockID names.
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
		t.Fatal("audit_append does not hold advisory lock appendLockID")
	}
}
