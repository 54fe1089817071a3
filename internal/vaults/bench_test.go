package vaults_test

import (
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
)

// BenchmarkProvisioning compares provisioning a vault and a member key through
// Archipelago (placement, quota policy, PostgreSQL rows, audit entries, sealing) with the
// raw Garage admin calls it makes (CreateBucket, UpdateBucket, CreateKey and
// AllowBucketKey for the verifier key, CreateKey and AllowBucketKey for the member key),
// against the simulator. The two alternate in each iteration so that load on the machine
// hits both alike; it reports both times and their ratio (goal ≤ 1.2):
//
//	go test ./internal/vaults/ -run '^$' -bench Provisioning -benchtime 20x
func BenchmarkProvisioning(b *testing.B) {
	bb := setupWith(b, false)
	if _, err := bb.svc.GrantCreate(bb.ctx, vaults.GrantInput{MemberID: bb.memberA, Bytes: 1 << 50, Reason: "benchmark"}); err != nil {
		b.Fatal(err)
	}
	if _, err := bb.pool.Exec(bb.ctx, `UPDATE islands SET layout_capacity_bytes = 1e18`); err != nil {
		b.Fatal(err)
	}
	gc := bb.south.Client
	var arch, raw time.Duration
	for b.Loop() {
		start := time.Now()
		v, _, err := bb.svc.Create(bb.ctx, vaults.CreateInput{MemberID: bb.memberA, Name: testenv.Unique("bench-"), QuotaBytes: 1_000_000_000})
		if err != nil || v.Status != vaults.StatusActive {
			b.Fatalf("create: %v %s", err, v.StatusDetail)
		}
		if _, err := bb.svc.KeyCreate(bb.ctx, v.ID, vaults.KeyInput{Name: "bench"}); err != nil {
			b.Fatal(err)
		}
		arch += time.Since(start)

		start = time.Now()
		bkt, err := gc.CreateBucket(bb.ctx, garage.CreateBucketParams{GlobalAlias: testenv.Unique("raw-")})
		if err != nil {
			b.Fatal(err)
		}
		size := int64(1_000_000_000)
		if _, err := gc.SetBucketQuotas(bb.ctx, bkt.ID, garage.Quotas{MaxSize: &size}); err != nil {
			b.Fatal(err)
		}
		for _, perm := range []garage.Permission{garage.PermRead, garage.PermRead | garage.PermWrite} {
			k, err := gc.CreateKey(bb.ctx, garage.CreateKeyParams{Name: "raw"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := gc.AllowBucketKey(bb.ctx, bkt.ID, k.AccessKeyID, perm); err != nil {
				b.Fatal(err)
			}
		}
		raw += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(arch.Milliseconds())/n, "archipelago-ms/op")
	b.ReportMetric(float64(raw.Milliseconds())/n, "raw-garage-ms/op")
	b.ReportMetric(float64(arch)/float64(raw), "ratio")
}
