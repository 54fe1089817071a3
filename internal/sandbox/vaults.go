package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/vaults"
)

// sandboxVault is a sandbox vault. Placement is automatic: each lands on an island its
// member does not operate. FillBytes, when set, is written into the bucket through S3
// with a member key, so that the vault shows real usage (near its quota).
type sandboxVault struct {
	Member     string
	Name       string
	QuotaBytes int64
	FillBytes  int64
	GrantGB    int64  // extra quota granted first (a member whose pledge does not count yet)
	GrantWhy   string // the grant's reason
}

var sandboxVaults = []sandboxVault{
	{Member: "libre-nuage", Name: "libre-nuage-backups", QuotaBytes: 100 * demoGB},
	{Member: "chaton-rouge", Name: "chaton-rouge-nextcloud", QuotaBytes: 60 * demoGB},
	{Member: "chaton-rouge", Name: "chaton-rouge-mail", QuotaBytes: 10_000_000, FillBytes: 8_600_000},
	{Member: "vercors-libre", Name: "vercors-libre-backups", QuotaBytes: 40 * demoGB},
	{Member: "breizh-host", Name: "breizh-host-backups", QuotaBytes: 50 * demoGB},
	{Member: "garrigue-net", Name: "garrigue-net-backups", QuotaBytes: 20 * demoGB, GrantGB: 50,
		GrantWhy: "newcomer: its pledge is short of the capacity in the layout"},
}

// seedVaults creates the demo vaults (after the islands), fills the near-full one and
// gives it a usage history. A kept sandbox started again has new, empty simulators: its
// vaults are re-provisioned on them (their old MinIO buckets are removed first).
func seedVaults(ctx context.Context, a *app.App, s3 *minioserver.Server) error {
	for _, d := range sandboxVaults {
		m, err := islands.MemberGetBySlug(ctx, a.Pool, d.Member)
		if err != nil {
			return fmt.Errorf("vault %s: %w", d.Name, err)
		}
		existing, err := a.Vaults.VaultList(ctx, vaults.VaultFilter{MemberIDs: []int64{m.ID}})
		if err != nil {
			return err
		}
		var v *vaults.Vault
		for i := range existing {
			if existing[i].Name == d.Name {
				v = &existing[i]
			}
		}
		if v != nil {
			if err := reprovision(ctx, a, s3, *v); err != nil {
				return fmt.Errorf("vault %s: %w", d.Name, err)
			}
			continue
		}
		if d.GrantGB > 0 {
			if _, err := a.Vaults.GrantCreate(ctx, vaults.GrantInput{MemberID: m.ID, Bytes: d.GrantGB * demoGB, Reason: d.GrantWhy}); err != nil {
				return fmt.Errorf("grant to %s: %w", d.Member, err)
			}
		}
		// The idempotency key makes a retry find the vault an earlier attempt created.
		nv, err := retrySeed(ctx, a.Log, "vault "+d.Name, func(ctx context.Context) (vaults.Vault, error) {
			v, _, err := a.Vaults.Create(ctx, vaults.CreateInput{MemberID: m.ID, Name: d.Name, QuotaBytes: d.QuotaBytes,
				IdempotencyKey: "sandbox-" + d.Name})
			return v, err
		})
		if err == nil {
			nv, err = activeVault(ctx, a, nv)
		}
		if err != nil {
			return fmt.Errorf("vault %s: %w", d.Name, err)
		}
		if d.FillBytes > 0 {
			if err := fillVault(ctx, a, nv, d.FillBytes); err != nil {
				return fmt.Errorf("fill vault %s: %w", d.Name, err)
			}
		}
	}
	return nil
}

// fillVault writes bytes into a vault with a fresh member key, and records a usage
// history rising to today's level over two weeks (the chart's demo data; the usage
// collector then keeps measuring the real bucket).
func fillVault(ctx context.Context, a *app.App, v vaults.Vault, size int64) error {
	k, err := retrySeed(ctx, a.Log, "key of "+v.Name, func(ctx context.Context) (vaults.NewKey, error) {
		return a.Vaults.KeyCreate(ctx, v.ID, vaults.KeyInput{Name: "mail server"})
	})
	if err != nil {
		return err
	}
	u, err := url.Parse(v.S3Endpoint)
	if err != nil {
		return err
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(k.AccessKeyID, k.SecretAccessKey, ""), Region: v.S3Region})
	if err != nil {
		return err
	}
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if _, err := mc.PutObject(ctx, v.BucketName, "restic/data/demo", bytes.NewReader(data), size, minio.PutObjectOptions{}); err != nil {
		return err
	}
	now := time.Now()
	for day := 14; day >= 0; day-- {
		at := now.Add(-time.Duration(day) * 24 * time.Hour)
		if err := a.Vaults.RecordUsage(ctx, v.ID, size*int64(15-day)/15, int64(15-day), at); err != nil {
			return err
		}
	}
	return nil
}

// reprovision brings a kept sandbox's vault back on its island's new simulator.
func reprovision(ctx context.Context, a *app.App, s3 *minioserver.Server, v vaults.Vault) error {
	if v.GarageBucketID == nil {
		_, err := activeVault(ctx, a, v)
		return err
	}
	gc, err := a.Islands.GarageClient(ctx, v.IslandID)
	if err != nil {
		return err
	}
	if _, err := retrySeed(ctx, a.Log, "bucket of "+v.Name, func(ctx context.Context) (*garage.BucketInfo, error) {
		return gc.GetBucketInfo(ctx, garage.BucketLookup{ID: *v.GarageBucketID})
	}); err == nil {
		return nil // the same simulator: nothing to do
	}
	root, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		return err
	}
	if err := root.RemoveBucketWithOptions(ctx, v.BucketName, minio.RemoveBucketOptions{ForceDelete: true}); err != nil &&
		minio.ToErrorResponse(err).Code != "NoSuchBucket" {
		return err
	}
	if err := a.Vaults.ResetForNewIsland(ctx, v.ID); err != nil {
		return err
	}
	_, err = activeVault(ctx, a, v)
	return err
}
