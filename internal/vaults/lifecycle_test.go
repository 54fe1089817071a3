package vaults_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/vaults"
)

// auditActions lists the audit actions recorded on a vault, in order.
func (b *bundle) auditActions(t *testing.T, vaultID int64) string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT action FROM audit_entries WHERE target_type = 'vault' AND target_id = ($1::bigint)::text ORDER BY seq`, vaultID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// TestRestoreRefusedOncePurgeStarted: a purge that emptied the bucket and then failed to
// delete it (the island's admin API went down mid-purge) leaves the vault deleting; a
// restore is refused (before, it answered an active vault whose repository was gone),
// the purge's start and failure are audited, and the next purge finishes with its entry.
func TestRestoreRefusedOncePurgeStarted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb)
	key, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	mc := s3(t, v, key.AccessKeyID, key.SecretAccessKey)
	if err := put(b.ctx, mc, v.BucketName, "backup", 1000); err != nil {
		t.Fatal(err)
	}
	if _, immediate, err := b.svc.Delete(b.ctx, v.ID, "leaving"); err != nil || immediate {
		t.Fatalf("delete: immediate %v, %v", immediate, err)
	}
	b.clock.Advance(31 * 24 * time.Hour)
	b.south.Sim.InjectFault(garagesim.Fault{Operation: "DeleteBucket", Status: 503, Count: 2}) // the client retries once
	_ = b.svc.PurgeDeletedVaults(b.ctx)                                                        // the island is skipped until the next run
	// The purge emptied the bucket before DeleteBucket failed: the data is gone.
	if _, err := mc.StatObject(b.ctx, v.BucketName, "backup", minio.StatObjectOptions{}); err == nil {
		t.Fatal("the object survived the purge's emptying")
	}
	var ce *vaults.ConflictError
	if got, err := b.svc.Restore(b.ctx, v.ID); !errors.As(err, &ce) || !strings.Contains(err.Error(), "purge") {
		t.Fatalf("restore after the purge started: %v (vault %s)", err, got.Status)
	}
	if got, _ := vaults.VaultGetByID(b.ctx, b.pool, v.ID); got.Status != vaults.StatusDeleting {
		t.Fatalf("vault %s after the refused restore", got.Status)
	}
	if got := b.auditActions(t, v.ID); !strings.HasSuffix(got, "vault.purge.begin,vault.purge.failed") {
		t.Fatalf("audit trail after the failed purge: %s", got)
	}
	if err := b.svc.PurgeDeletedVaults(b.ctx); err != nil {
		t.Fatalf("second purge: %v", err)
	}
	if got, _ := vaults.VaultGetByID(b.ctx, b.pool, v.ID); got.Status != vaults.StatusDeleted {
		t.Fatalf("vault %s after the second purge", got.Status)
	}
	if got := b.auditActions(t, v.ID); !strings.HasSuffix(got, "vault.purge.begin,vault.purge.failed,vault.purge.begin,vault.purge") {
		t.Fatalf("audit trail after the purge: %s", got)
	}
}

// TestAdoptionAfterLostCommit: the database commit that records a new vault's bucket and
// verifier key fails after Garage created both (and granted the key). The vault is left
// pending; the reconciler recognises the bucket by the marker this Archipelago writes
// (the verifier key's name), deletes the orphan key whose secret was lost (audited
// first), makes a new verifier key and activates the vault. Before, adoption refused a
// bucket with any key and the vault stayed pending for ever.
func TestAdoptionAfterLostCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The commit fails: recording a verifier key raises, once.
	if _, err := b.pool.Exec(b.ctx, `
		CREATE TABLE test_fail_once (done boolean NOT NULL DEFAULT false);
		INSERT INTO test_fail_once VALUES (false);
		CREATE FUNCTION test_fail_verifier() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NOT (SELECT done FROM test_fail_once) THEN
				RAISE EXCEPTION 'simulated database failure after the Garage side effects';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_fail_verifier BEFORE INSERT ON vault_verifier_keys FOR EACH ROW EXECUTE FUNCTION test_fail_verifier();`); err != nil {
		t.Fatal(err)
	}
	v, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: "lost-commit", QuotaBytes: gb})
	if err != nil && !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("create: %v", err)
	}
	got, err := vaults.VaultGetByID(b.ctx, b.pool, v.ID)
	if err != nil || got.Status != vaults.StatusPending || got.GarageBucketID != nil || got.Verifier != nil {
		t.Fatalf("after the lost commit: %v %+v", err, got)
	}
	bi, err := b.south.Client.GetBucketInfo(b.ctx, garage.BucketLookup{GlobalAlias: got.BucketName})
	if err != nil || len(bi.Keys) != 1 {
		t.Fatalf("Garage after the lost commit: %v %+v", err, bi)
	}
	orphan := bi.Keys[0].AccessKeyID
	if _, err := b.pool.Exec(b.ctx, `UPDATE test_fail_once SET done = true`); err != nil {
		t.Fatal(err)
	}
	rec, err := b.svc.ReconcileVault(b.ctx, v.ID)
	if err != nil || len(rec.Drift) > 0 {
		t.Fatalf("reconcile: %v %+v", err, rec)
	}
	got, err = vaults.VaultGetByID(b.ctx, b.pool, v.ID)
	if err != nil || got.Status != vaults.StatusActive || got.GarageBucketID == nil || *got.GarageBucketID != bi.ID || got.Verifier == nil {
		t.Fatalf("after reconciling: %v %+v", err, got)
	}
	if got.Verifier.AccessKeyID == orphan {
		t.Fatal("the orphan verifier key (secret lost) was kept")
	}
	if _, err := b.south.Client.GetKeyInfo(b.ctx, garage.KeyLookup{ID: orphan}); !errors.Is(err, garage.ErrNotFound) {
		t.Fatalf("orphan key on Garage: %v", err)
	}
	if trail := b.auditActions(t, v.ID); !strings.Contains(trail, "garage.key_delete.begin,garage.key_delete") {
		t.Fatalf("audit trail: %s", trail)
	}
}

// TestForeignBucketNotAdopted: a bucket holding the vault's name with a key that does
// not bear this Archipelago's marker is someone else's: the vault is not given it.
func TestForeignBucketNotAdopted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "foreign-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:10]
	v, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: name, QuotaBytes: gb})
	if err != nil {
		t.Fatal(err)
	}
	// Make it pending again with its bucket forgotten, and give the bucket a foreign key
	// named like a verifier of another installation.
	if _, err := b.pool.Exec(b.ctx, `UPDATE vaults SET status = 'pending', garage_bucket_id = NULL WHERE id = $1;`, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(b.ctx, `DELETE FROM vault_verifier_keys WHERE vault_id = $1`, v.ID); err != nil {
		t.Fatal(err)
	}
	k, err := b.south.Client.CreateKey(b.ctx, garage.CreateKeyParams{Name: "archipelago-verifier-vault-1-0123456789abcdef0123"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.south.Client.DenyBucketKey(b.ctx, *v.GarageBucketID, v.Verifier.AccessKeyID, garage.PermRead); err != nil {
		t.Fatal(err)
	}
	if _, err := b.south.Client.AllowBucketKey(b.ctx, *v.GarageBucketID, k.AccessKeyID, garage.PermRead); err != nil {
		t.Fatal(err)
	}
	rec, err := b.svc.ReconcileVault(b.ctx, v.ID)
	if err != nil || len(rec.Drift) == 0 || !strings.Contains(rec.Drift[0], "did not create") {
		t.Fatalf("reconcile: %v %+v", err, rec)
	}
	if got, _ := vaults.VaultGetByID(b.ctx, b.pool, v.ID); got.Status != vaults.StatusPending {
		t.Fatalf("vault %s", got.Status)
	}
}

// TestIslandTokenRevokedAtRuntime: the island's admin token stops working (revoked on
// Garage, or rotated there and not here). Key creation fails naming the island and the
// refused call, and records nothing; the reconciler skips the island without recording
// drift on its vaults (a refusal is not a missing bucket); once the token works again,
// everything does.
func TestIslandTokenRevokedAtRuntime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb) // lands on south
	setToken := func(tok string) {
		t.Helper()
		if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET admin_token_sealed = $2 WHERE id = $1`, b.south.ID,
			b.keys.SealString(fmt.Sprintf("island/%d/admin_token", b.south.ID), tok)); err != nil {
			t.Fatal(err)
		}
	}
	setToken("revoked-" + b.south.Name)
	_, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "k"})
	var ue *vaults.UnreachableError
	if !errors.As(err, &ue) || ue.Island != b.south.Name || !errors.Is(err, garage.ErrAccessDenied) {
		t.Fatalf("key creation with a revoked token: %v", err)
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM vault_keys WHERE vault_id = $1`, v.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys recorded (%v)", n, err)
	}
	_ = b.svc.ReconcileAll(b.ctx)
	got, err := vaults.VaultGetByID(b.ctx, b.pool, v.ID)
	if err != nil || got.Status != vaults.StatusActive || len(got.Drift) > 0 {
		t.Fatalf("vault after reconciling with a revoked token: %v %s %v", err, got.Status, got.Drift)
	}
	setToken(b.south.Sim.AdminToken())
	if _, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "k"}); err != nil {
		t.Fatalf("key creation once the token works again: %v", err)
	}
}
