package audit

import (
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// The allocation-free paths of Verify compute what tlog computes.
func TestFastPathsAgreeWithTlog(t *testing.T) {
	t.Parallel()
	es := syntheticEntries(300)
	tree := &memTree{}
	var hasher leafHasher
	var ref []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = ref[x]
		}
		return out, nil
	})
	for i := range es {
		h := hasher.hash(&es[i])
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
