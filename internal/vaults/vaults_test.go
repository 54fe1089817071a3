package vaults_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

func TestPlacementRuleAndOverride(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Explicitly on the island A operates: refused, whoever asks, without a reason.
	_, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("own-"), QuotaBytes: gb, IslandID: b.north.ID})
	var pe *vaults.PlacementError
	if !errors.As(err, &pe) || !strings.Contains(pe.Problem, "operates island") {
		t.Fatalf("vault on an island the member operates: %v", err)
	}
	// When the only other island is full, automatic placement refuses rather than use north.
	if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET layout_capacity_bytes = 3000 WHERE id = $1`, b.south.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("auto-"), QuotaBytes: gb})
	var qe *vaults.QuotaError
	if !errors.As(err, &qe) || !strings.Contains(qe.Message, b.south.Name) {
		t.Fatalf("automatic placement with south full: %v", err)
	}
	// A federation admin's override with a written reason is allowed and audited.
	v, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("override-"), QuotaBytes: gb,
		IslandID: b.north.ID, OverrideReason: "temporary: south is being rebuilt"})
	if err != nil {
		t.Fatal(err)
	}
	if v.IslandID != b.north.ID || v.Placement != vaults.PlacementOverride || v.PlacementReason == "" {
		t.Fatalf("override vault: %+v", v)
	}
	var placement, reason string
	if err := b.pool.QueryRow(b.ctx, `SELECT details->>'placement', details->>'override_reason' FROM audit_entries
		WHERE action = 'vault.create' AND target_id = ($1::bigint)::text`, v.ID).Scan(&placement, &reason); err != nil {
		t.Fatal(err)
	}
	if placement != "override" || reason != "temporary: south is being rebuilt" {
		t.Fatalf("audit of the override: placement %q, reason %q", placement, reason)
	}
	// Automatic placement prefers the lowest fill ratio.
	east := vaultstest.StartIsland(t, b.pool, b.keys, "east", 3)
	if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET layout_capacity_bytes = 300000000000 WHERE id = $1`, b.south.ID); err != nil {
		t.Fatal(err)
	}
	first := b.create(t, b.memberA, 10*gb)
	second := b.create(t, b.memberA, 10*gb)
	if first.IslandID == second.IslandID || first.IslandID == b.north.ID || second.IslandID == b.north.ID {
		t.Fatalf("two vaults placed on %d and %d (south %d, east %d): want one on each", first.IslandID, second.IslandID, b.south.ID, east.ID)
	}
}

func TestQuotaRefusalShowsTheArithmetic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("big-"), QuotaBytes: 500 * gb})
	var qe *vaults.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("err = %v", err)
	}
	if want := "requested 500 GB; available to you 100 GB = 1.0 × 300 GB pledged ÷ 3"; !strings.HasPrefix(qe.Message, want) {
		t.Fatalf("message %q, want it to start with %q", qe.Message, want)
	}
	// A grant lets a newcomer without pledges in.
	newcomer := vaultstest.Member(t, b.pool, testenv.Unique("newcomer-"))
	if _, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: newcomer, Name: testenv.Unique("n-"), QuotaBytes: gb}); !errors.As(err, &qe) {
		t.Fatalf("newcomer without grant: %v", err)
	}
	if _, err := b.svc.GrantCreate(b.ctx, vaults.GrantInput{MemberID: newcomer, Bytes: 2 * gb, Reason: "welcome"}); err != nil {
		t.Fatal(err)
	}
	b.create(t, newcomer, gb)
	rep, err := b.svc.Explain(b.ctx, newcomer)
	if err != nil {
		t.Fatal(err)
	}
	if rep.GrantedBytes != 2*gb || rep.AllocatedBytes != gb || rep.BestAvailableBytes != gb {
		t.Fatalf("report: %+v", rep)
	}
	// Raising a vault's quota is checked the same way; lowering always works.
	v := b.create(t, b.memberA, 60*gb)
	if _, err := b.svc.Update(b.ctx, v.ID, vaults.UpdateInput{QuotaBytes: new(int64(101 * gb))}); !errors.As(err, &qe) ||
		!strings.Contains(qe.Message, "available to you 100 GB") {
		t.Fatalf("raise over the limit: %v", err)
	}
	if _, err := b.svc.Update(b.ctx, v.ID, vaults.UpdateInput{QuotaBytes: new(int64(100 * gb))}); err != nil {
		t.Fatal(err)
	}
}

func TestBadNamesAndDoubleSubmit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var fe *vaults.FieldError
	for _, name := range []string{"My_Backups", "ab", "192.168.0.1", "-x-y"} {
		if _, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: name, QuotaBytes: gb}); !errors.As(err, &fe) || fe.Field != "name" {
			t.Errorf("name %q: %v", name, err)
		}
	}
	name := testenv.Unique("twice-")
	in := vaults.CreateInput{MemberID: b.memberA, Name: name, QuotaBytes: gb, IdempotencyKey: "form-123"}
	var wg sync.WaitGroup
	results := make([]vaults.Vault, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { results[i], _, errs[i] = b.svc.Create(b.ctx, in) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || results[0].ID != results[1].ID {
		t.Fatalf("double submit with one key: %v %v, ids %d %d", errs[0], errs[1], results[0].ID, results[1].ID)
	}
	// Without a key, the name's uniqueness refuses the second.
	var ce *vaults.ConflictError
	if _, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: name, QuotaBytes: gb}); !errors.As(err, &ce) {
		t.Fatalf("same name again: %v", err)
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM vaults WHERE name = $1`, name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d vaults named %s (%v)", n, name, err)
	}
}

func TestGarageUnreachableLeavesAPendingVaultTheReconcilerFinishes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.south.Sim.InjectFault(garagesim.Fault{Operation: "CreateKey", Status: 503, Count: 1})
	v, created, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("flaky-"), QuotaBytes: gb})
	if err != nil || !created {
		t.Fatalf("create: %v", err)
	}
	if v.Status != vaults.StatusPending || !strings.Contains(v.StatusDetail, b.south.Name) || !strings.Contains(v.StatusDetail, "CreateKey (verifier)") {
		t.Fatalf("vault %s: %q", v.Status, v.StatusDetail)
	}
	if v.GarageBucketID == nil {
		t.Fatal("the bucket created before the failure is not recorded")
	}
	if _, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "early"}); err == nil {
		t.Fatal("a key on a pending vault")
	}
	// The bucket is also lost while the island is down: CreateBucket fails for another vault.
	b.south.Sim.InjectFault(garagesim.Fault{Operation: "CreateBucket", Status: 503, Count: 1})
	w, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("down-"), QuotaBytes: gb})
	if err != nil || w.Status != vaults.StatusPending || w.GarageBucketID != nil || !strings.Contains(w.StatusDetail, "CreateBucket") {
		t.Fatalf("second vault: %v %+v", err, w)
	}
	if err := b.svc.ReconcileAll(b.ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{v.ID, w.ID} {
		got, err := b.svc.VaultGetByID(b.ctx, id)
		if err != nil || got.Status != vaults.StatusActive || got.Verifier == nil || got.StatusDetail != "" {
			t.Fatalf("after reconcile: %v %+v", err, got)
		}
		if _, err := b.svc.VerifierCredentials(b.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A bucket name taken on the island by someone else rolls the create back.
	taken := testenv.Unique("taken-")
	if _, err := b.south.Client.CreateBucket(b.ctx, garage.CreateBucketParams{GlobalAlias: taken}); err != nil {
		t.Fatal(err)
	}
	k, err := b.south.Client.CreateKey(b.ctx, garage.CreateKeyParams{Name: "someone"})
	if err != nil {
		t.Fatal(err)
	}
	bi, _ := b.south.Client.GetBucketInfo(b.ctx, garage.BucketLookup{GlobalAlias: taken})
	if _, err := b.south.Client.AllowBucketKey(b.ctx, bi.ID, k.AccessKeyID, garage.PermRead); err != nil {
		t.Fatal(err)
	}
	var ce *vaults.ConflictError
	if _, _, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: taken, QuotaBytes: gb, IslandID: b.south.ID}); !errors.As(err, &ce) {
		t.Fatalf("taken name: %v", err)
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM vaults WHERE name = $1`, taken).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rolled back vault still there: %d %v", n, err)
	}
}

// A key's expiry changed on the island (extended, removed, or added) is set back to what
// Archipelago recorded.
func TestReconcileRestoresKeyExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, 5*gb)
	until := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	expiring, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "expiring", ExpiresAt: &until})
	if err != nil {
		t.Fatal(err)
	}
	forever, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	gc := b.south.Client
	if rec, err := b.svc.ReconcileVault(b.ctx, v.ID); err != nil || len(rec.Repairs) != 0 {
		t.Fatalf("before any drift: %+v %v", rec, err)
	}
	later := until.Add(365 * 24 * time.Hour)
	if _, err := gc.UpdateKey(b.ctx, expiring.AccessKeyID, garage.UpdateKeyParams{Expiration: &later}); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := gc.UpdateKey(b.ctx, forever.AccessKeyID, garage.UpdateKeyParams{Expiration: &soon}); err != nil {
		t.Fatal(err)
	}
	rec, err := b.svc.ReconcileVault(b.ctx, v.ID)
	if err != nil || len(rec.Repairs) != 2 || len(rec.Drift) != 0 {
		t.Fatalf("reconciliation: %+v %v", rec, err)
	}
	for _, c := range []struct {
		id   string
		want *time.Time
	}{{expiring.AccessKeyID, &until}, {forever.AccessKeyID, nil}} {
		info, err := gc.GetKeyInfo(b.ctx, garage.KeyLookup{ID: c.id})
		if err != nil {
			t.Fatal(err)
		}
		if (c.want == nil) != (info.Expiration == nil) || (c.want != nil && !info.Expiration.Equal(*c.want)) {
			t.Errorf("key %s expires %v on the island, want %v", c.id, info.Expiration, c.want)
		}
	}
}

func TestReconcileRepairsDrift(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, 5*gb)
	key, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	gc := b.south.Client
	bid := *v.GarageBucketID
	// Drift: quota removed, the member key made owner, a foreign key granted, the verifier key deleted.
	if _, err := gc.SetBucketQuotas(b.ctx, bid, garage.Quotas{}); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.AllowBucketKey(b.ctx, bid, key.AccessKeyID, garage.PermOwner); err != nil {
		t.Fatal(err)
	}
	foreign, err := gc.CreateKey(b.ctx, garage.CreateKeyParams{Name: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.AllowBucketKey(b.ctx, bid, foreign.AccessKeyID, garage.PermAll); err != nil {
		t.Fatal(err)
	}
	if err := gc.DeleteKey(b.ctx, v.Verifier.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	rec, err := b.svc.ReconcileVault(b.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Repairs) != 4 || len(rec.Drift) != 0 {
		t.Fatalf("reconciliation: %+v", rec)
	}
	bi, err := gc.GetBucketInfo(b.ctx, garage.BucketLookup{ID: bid})
	if err != nil {
		t.Fatal(err)
	}
	if bi.Quotas.MaxSize == nil || *bi.Quotas.MaxSize != 5*gb {
		t.Errorf("quota not restored: %+v", bi.Quotas)
	}
	if k, _ := bi.Key(key.AccessKeyID); k.Permissions.Permissions() != vaults.MemberKeyPermissions {
		t.Errorf("member key has %v", k.Permissions)
	}
	if k, ok := bi.Key(foreign.AccessKeyID); ok && k.Permissions.Permissions() != 0 {
		t.Errorf("foreign key keeps %v", k.Permissions)
	}
	got, _ := b.svc.VaultGetByID(b.ctx, v.ID)
	if got.Verifier == nil || got.Verifier.AccessKeyID == v.Verifier.AccessKeyID {
		t.Fatalf("verifier not replaced: %+v", got.Verifier)
	}
	// Idempotent: nothing left to do.
	if rec, err := b.svc.ReconcileVault(b.ctx, v.ID); err != nil || len(rec.Repairs) != 0 || len(rec.Drift) != 0 {
		t.Fatalf("second reconciliation: %+v %v", rec, err)
	}
	// Drift it cannot repair is shown on the vault: the member key vanished.
	if err := gc.DeleteKey(b.ctx, key.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	// Two processes at once: one does the work, the other skips or finds nothing to do.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := b.svc.ReconcileAll(b.ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ = b.svc.VaultGetByID(b.ctx, v.ID)
	if len(got.Drift) != 1 || !strings.Contains(got.Drift[0], key.AccessKeyID) {
		t.Fatalf("drift shown: %q", got.Drift)
	}
	var audits int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM audit_entries WHERE action = 'vault.reconcile' AND target_id = ($1::bigint)::text`, v.ID).Scan(&audits); err != nil || audits != 2 {
		t.Fatalf("%d reconcile audits (%v), want 2", audits, err)
	}
}

func TestRotateThenDeleteExpiredKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb)
	old, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "nas"})
	if err != nil {
		t.Fatal(err)
	}
	nk, err := b.svc.KeyRotate(b.ctx, v.ID, old.ID, vaults.KeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if nk.SecretAccessKey == "" || nk.RotatedFrom == nil || *nk.RotatedFrom != old.ID || nk.Name != "nas" {
		t.Fatalf("new key %+v", nk.Key)
	}
	o, _ := b.svc.KeyGetByID(b.ctx, v.ID, old.ID)
	if o.State != vaults.KeyRetiring || o.ExpiresAt == nil || o.ExpiresAt.Sub(time.Now()) < 6*24*time.Hour {
		t.Fatalf("old key after rotation: %+v", o)
	}
	if _, err := b.svc.KeyRotate(b.ctx, v.ID, old.ID, vaults.KeyInput{}); err == nil {
		t.Fatal("a retiring key rotated again")
	}
	// Both keys work during the grace period.
	for _, k := range []vaults.NewKey{old, nk} {
		if err := put(b.ctx, s3(t, v, k.AccessKeyID, k.SecretAccessKey), v.BucketName, "x/"+k.AccessKeyID, 10); err != nil {
			t.Fatalf("key %s during the grace period: %v", k.AccessKeyID, err)
		}
	}
	if err := b.svc.DeleteExpiredKeys(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.south.Client.GetKeyInfo(b.ctx, garage.KeyLookup{ID: old.AccessKeyID}); err != nil {
		t.Fatalf("deleted before the grace period ended: %v", err)
	}
	b.clock.Advance(8 * 24 * time.Hour)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := b.svc.DeleteExpiredKeys(b.ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := b.south.Client.GetKeyInfo(b.ctx, garage.KeyLookup{ID: old.AccessKeyID}); !errors.Is(err, garage.ErrNotFound) {
		t.Fatalf("old key after the grace period: %v", err)
	}
	if o, _ := b.svc.KeyGetByID(b.ctx, v.ID, old.ID); o.State != vaults.KeyDeleted {
		t.Fatalf("old key state %s", o.State)
	}
	if _, err := b.south.Client.GetKeyInfo(b.ctx, garage.KeyLookup{ID: nk.AccessKeyID}); err != nil {
		t.Fatalf("new key: %v", err)
	}
	var audits int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM audit_entries WHERE action = 'vault_key.delete'`).Scan(&audits); err != nil || audits != 1 {
		t.Fatalf("%d delete audits, want 1 (%v)", audits, err)
	}
}

func TestUsageThresholdEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, 1000)
	at := time.Now().Add(-time.Hour)
	for i, bytes := range []int64{100, 500, 810, 850, 960, 990, 300, 970} {
		if err := b.svc.RecordUsage(b.ctx, v.ID, bytes, 1, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := b.svc.Events(b.ctx, v.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i := len(evs) - 1; i >= 0; i-- {
		kinds = append(kinds, evs[i].Kind)
	}
	if got := strings.Join(kinds, ","); got != "usage_80,usage_95,usage_normal,usage_80,usage_95" {
		t.Fatalf("events %s", got)
	}
	hist, err := b.svc.UsageHistory(b.ctx, v.ID, at.Add(-time.Minute), 100)
	if err != nil || len(hist) != 8 || hist[7].Bytes != 970 {
		t.Fatalf("history %v %v", hist, err)
	}
	// CollectUsage reads Garage (MinIO counts with a delay: poll).
	key, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if err := put(b.ctx, s3(t, v, key.AccessKeyID, key.SecretAccessKey), v.BucketName, "obj", 700); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := b.svc.CollectUsage(b.ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := b.svc.VaultGetByID(b.ctx, v.ID)
		if got.UsageObjects != nil && *got.UsageObjects == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never collected: %+v", got)
		}
		time.Sleep(time.Second)
	}
}

func TestDeleteNeverDestroysDataAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	empty := b.create(t, b.memberA, gb)
	if _, immediate, err := b.svc.Delete(b.ctx, empty.ID, ""); err != nil || !immediate {
		t.Fatalf("empty vault: immediate %v, %v", immediate, err)
	}
	if _, err := b.south.Client.GetBucketInfo(b.ctx, garage.BucketLookup{ID: *empty.GarageBucketID}); !errors.Is(err, garage.ErrNotFound) {
		t.Fatalf("empty vault's bucket: %v", err)
	}
	if _, err := b.south.Client.GetKeyInfo(b.ctx, garage.KeyLookup{ID: empty.Verifier.AccessKeyID}); !errors.Is(err, garage.ErrNotFound) {
		t.Fatalf("empty vault's verifier key: %v", err)
	}

	full := b.create(t, b.memberA, gb)
	key, err := b.svc.KeyCreate(b.ctx, full.ID, vaults.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	mc := s3(t, full, key.AccessKeyID, key.SecretAccessKey)
	if err := put(b.ctx, mc, full.BucketName, "backup", 1000); err != nil {
		t.Fatal(err)
	}
	v, immediate, err := b.svc.Delete(b.ctx, full.ID, "moving to another host")
	if err != nil || immediate || v.Status != vaults.StatusDeleting || v.PurgeAfter == nil {
		t.Fatalf("non-empty vault: %v %v %+v", immediate, err, v)
	}
	if _, err := mc.StatObject(b.ctx, full.BucketName, "backup", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("data gone at once: %v", err)
	}
	if v, err = b.svc.Restore(b.ctx, full.ID); err != nil || v.Status != vaults.StatusActive {
		t.Fatalf("restore: %v %s", err, v.Status)
	}
	if _, _, err := b.svc.Delete(b.ctx, full.ID, "really"); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.PurgeDeletedVaults(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := vaults.VaultGetByID(b.ctx, b.pool, full.ID); got.Status != vaults.StatusDeleting {
		t.Fatalf("purged before the grace period: %s", got.Status)
	}
	b.clock.Advance(31 * 24 * time.Hour)
	if err := b.svc.PurgeDeletedVaults(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := vaults.VaultGetByID(b.ctx, b.pool, full.ID); got.Status != vaults.StatusDeleted {
		t.Fatalf("after the grace period: %s", got.Status)
	}
	if _, err := b.south.Client.GetBucketInfo(b.ctx, garage.BucketLookup{ID: *full.GarageBucketID}); !errors.Is(err, garage.ErrNotFound) {
		t.Fatalf("purged bucket: %v", err)
	}
	var modes []string
	rows, _ := b.pool.Query(b.ctx, `SELECT action || ':' || coalesce(details->>'mode', '') FROM audit_entries WHERE target_type = 'vault' AND target_id = ($1::bigint)::text ORDER BY seq`, full.ID)
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		modes = append(modes, s)
	}
	if got := strings.Join(modes, ","); got != "vault.create:,garage.bucket_delete.begin:,garage.bucket_delete.failed:,vault.delete:scheduled,vault.restore:,"+
		"garage.bucket_delete.begin:,garage.bucket_delete.failed:,vault.delete:scheduled,vault.purge.begin:,vault.purge:" {
		t.Fatalf("audit trail %s", got)
	}
}

// TestSecretsStayOutOfLogsAuditAndDatabase: member secrets are returned once and never
// stored; the verifier secret is sealed; neither is logged nor audited.
func TestSecretsStayOutOfLogsAuditAndDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb)
	k, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.svc.KeyRotate(b.ctx, v.ID, k.ID, vaults.KeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := b.svc.VerifierCredentials(b.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(creds.String(), creds.SecretAccessKey) {
		t.Fatal("S3Credentials.String shows the secret")
	}
	var dump string
	if err := b.pool.QueryRow(context.Background(), `SELECT
		(SELECT coalesce(string_agg(details::text, ' '), '') FROM audit_entries) ||
		(SELECT coalesce(string_agg(row_to_json(k)::text, ' '), '') FROM vault_keys k) ||
		(SELECT coalesce(string_agg(row_to_json(v)::text, ' '), '') FROM vault_verifier_keys v)`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"member": k.SecretAccessKey, "rotated": r.SecretAccessKey, "verifier": creds.SecretAccessKey} {
		if strings.Contains(dump, secret) {
			t.Errorf("the %s secret is in the database or the audit log", name)
		}
		if strings.Contains(b.log.String(), secret) {
			t.Errorf("the %s secret is in the log", name)
		}
	}
	if !strings.Contains(dump, k.AccessKeyID) {
		t.Error("the audit log does not name the key id")
	}
}

// TestKeyCreationIsRolledBackWhenGarageFails: a key whose grant fails is deleted again,
// and nothing is recorded.
func TestKeyCreationIsRolledBackWhenGarageFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb)
	before, err := b.south.Client.ListKeys(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.south.Sim.InjectFault(garagesim.Fault{Operation: "AllowBucketKey", Status: 503, Count: 2}) // the client retries once
	_, err = b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "unlucky"})
	var ue *vaults.UnreachableError
	if !errors.As(err, &ue) || ue.Operation != "AllowBucketKey" || ue.Island != b.south.Name {
		t.Fatalf("err = %v", err)
	}
	after, err := b.south.Client.ListKeys(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d keys on the island after the failure, %d before", len(after), len(before))
	}
	if ks, _ := b.svc.KeyList(b.ctx, v.ID); len(ks) != 0 {
		t.Fatalf("keys recorded: %+v", ks)
	}
}

// TestKeysCreatedWhileTheReconcilerRunsKeepTheirAccess: a key granted on Garage but not yet
// recorded would look foreign to a reconciler running at that moment, which would strip its
// access. Key creation holds the vault's lock, so the reconciler skips the vault instead.
func TestKeysCreatedWhileTheReconcilerRunsKeepTheirAccess(t *testing.T) {
	t.Parallel()
	b := setupWith(t, false)
	v := b.create(t, b.memberA, 5*gb)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := b.svc.ReconcileVault(b.ctx, v.ID); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var created []vaults.NewKey
	for i := 0; i < 6; i++ {
		k, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: fmt.Sprintf("k%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, k)
	}
	close(stop)
	wg.Wait()
	bi, err := b.south.Client.GetBucketInfo(b.ctx, garage.BucketLookup{ID: *v.GarageBucketID})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range created {
		bk, ok := bi.Key(k.AccessKeyID)
		if !ok || bk.Permissions.Permissions() != vaults.MemberKeyPermissions {
			t.Errorf("key %s lost its access on the bucket while the reconciler ran: %+v", k.Name, bk)
		}
	}
}
