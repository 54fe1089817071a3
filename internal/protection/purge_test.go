package protection_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestPurgedVaultCopy, with a fixed clock: when a vault is purged, the member's read-only
// key on its copy is revoked at once and the copy is kept as it was for the deletion grace
// period (the tripwire still watches it); past it, the copy's objects, bucket and keys are
// deleted, with a write-ahead audit entry before the first destructive call.
func TestPurgedVaultCopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	v, key := b.vault(t)
	member := s3(t, v.S3Endpoint, v.S3Region, key.AccessKeyID, key.SecretAccessKey)
	for _, content := range []string{"first backup", "second backup"} {
		if err := put(ctx, member, v.BucketName, "restic/data/"+sha(content)[:2]+"/"+sha(content), []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy: %v", err)
	}
	st, err := b.prot.State(ctx, v.ID)
	if err != nil || st.CopyStatus != protection.CopyActive || st.LastRun == nil || st.LastRun.ObjectsInCopy != 2 {
		t.Fatalf("copy state = %+v, %v", st, err)
	}
	reader, err := b.prot.ReaderKeyCreate(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := b.prot.CopyVerifierCredentials(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifier := s3(t, creds.Endpoint, creds.Region, creds.AccessKeyID, creds.SecretAccessKey)
	readerS3 := s3(t, creds.Endpoint, creds.Region, reader.AccessKeyID, reader.SecretAccessKey)
	if got := list(t, ctx, readerS3, creds.Bucket); len(got) != 2 {
		t.Fatalf("reader key lists %v", got)
	}
	copyIsland := b.south
	if *st.CopyIslandID == b.east.ID {
		copyIsland = b.east
	}

	// The vault is deleted, then purged after its own grace period.
	if _, immediate, err := b.vaults.Delete(ctx, v.ID, "no longer needed"); err != nil || immediate {
		t.Fatalf("delete: immediate %v, %v", immediate, err)
	}
	vst, err := b.vaults.SettingsGet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(vst.VaultDeleteGrace + time.Minute)
	if err := b.vaults.PurgeDeletedVaults(ctx); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if pv, err := vaults.VaultGetByID(ctx, b.pool, v.ID); err != nil || pv.Status != vaults.StatusDeleted {
		t.Fatalf("vault after purge: %s, %v", pv.Status, err)
	}

	// The next copy run schedules the copy's deletion and revokes the reader key; the copy is kept.
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy run after the purge: %v", err)
	}
	if n := b.auditCount(t, "vault_copy.purge_scheduled", v.ID); n != 1 {
		t.Fatalf("purge_scheduled audited %d times", n)
	}
	if _, err := copyIsland.Client.GetKeyInfo(ctx, garage.KeyLookup{ID: reader.AccessKeyID}); err == nil {
		t.Fatal("the member's read-only copy key still exists after the purge")
	}
	for o := range readerS3.ListObjects(ctx, creds.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			t.Fatalf("the revoked reader key still lists %s", o.Key)
		}
		break
	}
	var purgeAfter time.Time
	if err := b.pool.QueryRow(ctx, `SELECT copy_purge_after FROM vault_protection WHERE vault_id = $1`, v.ID).Scan(&purgeAfter); err != nil {
		t.Fatal(err)
	}
	pst, _ := b.prot.SettingsGet(ctx)
	if d := purgeAfter.Sub(b.clock.Now()); d < pst.DeletionGrace-time.Hour || d > pst.DeletionGrace {
		t.Fatalf("copy purge after %v, want about now + %v", purgeAfter, pst.DeletionGrace)
	}

	// Within the grace period the copy stays whole, and the tripwire still watches it.
	b.clock.Advance(pst.DeletionGrace - 24*time.Hour)
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.prot.CheckLifecycle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := list(t, ctx, verifier, creds.Bucket); len(got) != 2 {
		t.Fatalf("copy within the grace period holds %d objects, want 2", len(got))
	}
	if n := b.auditCount(t, "vault_copy.purge.begin", v.ID); n != 0 {
		t.Fatalf("copy purge began within the grace period")
	}

	// Past it, the copy is deleted: begin audited before, outcome after.
	b.clock.Advance(25 * time.Hour)
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy run past the grace period: %v", err)
	}
	if b.auditCount(t, "vault_copy.purge.begin", v.ID) != 1 || b.auditCount(t, "vault_copy.purge", v.ID) != 1 {
		t.Fatal("the copy purge is not audited begin + outcome")
	}
	var beginSeq, endSeq int64
	if err := b.pool.QueryRow(ctx, `SELECT max(seq) FILTER (WHERE action = 'vault_copy.purge.begin'), max(seq) FILTER (WHERE action = 'vault_copy.purge')
		FROM audit_entries WHERE target_id = $1`, strconv.FormatInt(v.ID, 10)).Scan(&beginSeq, &endSeq); err != nil {
		t.Fatal(err)
	}
	if beginSeq >= endSeq {
		t.Fatalf("audit order: begin %d, end %d", beginSeq, endSeq)
	}
	if _, err := copyIsland.Client.GetBucketInfo(ctx, garage.BucketLookup{GlobalAlias: creds.Bucket}); err == nil {
		t.Fatal("the copy bucket still exists past the grace period")
	}
	if _, err := copyIsland.Client.GetKeyInfo(ctx, garage.KeyLookup{ID: creds.AccessKeyID}); err == nil {
		t.Fatal("the copy verifier key still exists")
	}
	var status string
	var purged *time.Time
	if err := b.pool.QueryRow(ctx, `SELECT copy_status, copy_purged_at FROM vault_protection WHERE vault_id = $1`, v.ID).Scan(&status, &purged); err != nil {
		t.Fatal(err)
	}
	if status != protection.CopyNone || purged == nil {
		t.Fatalf("after the copy purge: status %s, purged %v", status, purged)
	}
	// Idempotent: the next run finds nothing to do.
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatal(err)
	}
	if b.auditCount(t, "vault_copy.purge", v.ID) != 1 {
		t.Fatal("the copy was purged twice")
	}
}

func sha(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}
