package protection_test

import "testing"

// TestOverwritesAreCountedBeyondTheList: the protection state lists at most 100 overwritten
// objects and says how many there are, so a vault with more is never shown as having only
// 100 (and at exactly 100 the count agrees with the list).
func TestOverwritesAreCountedBeyondTheList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v, _ := b.vault(t)
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO vault_copy_objects (vault_id, key, size, source_etag, copied_at, overwritten_at,
			overwrite_detail)
		SELECT $1, 'data/' || lpad(g::text, 4, '0'), 1, 'etag', now(), now() - g * interval '1 minute', 'content changed'
		FROM generate_series(1, 101) g`, v.ID); err != nil {
		t.Fatal(err)
	}
	st, err := b.prot.State(b.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Overwrites) != 100 || st.OverwriteCount != 101 {
		t.Fatalf("101 overwrites: %d listed, count %d; want 100 listed and a count of 101", len(st.Overwrites), st.OverwriteCount)
	}
	if st.Overwrites[0].Key != "data/0101" {
		t.Fatalf("the oldest overwrite is not listed first: %q", st.Overwrites[0].Key)
	}
	if _, err := b.pool.Exec(b.ctx, `DELETE FROM vault_copy_objects WHERE vault_id = $1 AND key = 'data/0001'`, v.ID); err != nil {
		t.Fatal(err)
	}
	if st, err = b.prot.State(b.ctx, v.ID); err != nil || len(st.Overwrites) != 100 || st.OverwriteCount != 100 {
		t.Fatalf("100 overwrites: %d listed, count %d (%v)", len(st.Overwrites), st.OverwriteCount, err)
	}
}
