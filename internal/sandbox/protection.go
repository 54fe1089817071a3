package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Protected vaults in the sandbox (docs/protection.md):
//   - garrigue-net-backups is protected: its copy is on the one island garrigue-net does
//     not operate besides the vault's, and up to date;
//   - alsace-numerique-backups has a copy that lags: the demo took write permission away
//     from Archipelago's copy key on the copy island, so new objects cannot be copied
//     (each run is "partial", its errors shown; the vault page turns red);
//   - libre-nuage-backups tripped the lifecycle tripwire: a member key set an Expiration
//     rule, which the tripwire removed with a critical notification.
//
// The other demo members operate every island but their vault's, so their vaults have no
// copy (copy status "none", saying why).

const (
	protectedVault = "garrigue-net-backups"
	laggingVault   = "alsace-numerique-backups"
	trippedVault   = "libre-nuage-backups"
)

// The sandbox's shortened protection periods (printed in its banner; docs/protection.md).
const (
	// SandboxTripwireEvery is the sandbox's lifecycle tripwire period (default 5 min).
	SandboxTripwireEvery = 30 * time.Second
	// SandboxCopyEvery is the sandbox's copy interval (default 1 h; the minimum).
	SandboxCopyEvery = protection.MinCopyEvery
)

// copyTestedRepository is the demo repository whose restore tests read the protected
// copy of garrigue-net-backups, not the vault.
const copyTestedRepository = "backup01 (tested on the protected copy)"

func seedProtection(ctx context.Context, a *app.App) error {
	every := SandboxCopyEvery
	if _, err := a.Protection.SettingsUpdate(ctx, protection.SettingsInput{CopyEvery: &every}); err != nil {
		return fmt.Errorf("sandbox copy interval: %w", err)
	}
	protected, err := demoVault(ctx, a, "garrigue-net", protectedVault, 0)
	if err != nil {
		return err
	}
	lagging, err := demoVault(ctx, a, "alsace-numerique", laggingVault, 20*demoGB)
	if err != nil {
		return err
	}
	for _, v := range []vaults.Vault{protected, lagging} {
		status, err := retrySeed(ctx, a.Log, "copy of "+v.Name, func(ctx context.Context) (string, error) {
			return a.Protection.EnsureCopy(ctx, v.ID)
		})
		if err != nil {
			return fmt.Errorf("copy of %s: %w", v.Name, err)
		}
		if status != "active" {
			return fmt.Errorf("copy of %s is %s, want active", v.Name, status)
		}
		mc, err := memberClient(ctx, a, v, "protection demo")
		if err != nil {
			return err
		}
		for i := range 3 {
			if err := retryStep(ctx, a, "demo content in "+v.Name, func(ctx context.Context) error {
				return putNamed(ctx, mc, v.BucketName, fmt.Sprintf("demo content %s %d", v.Name, i))
			}); err != nil {
				return err
			}
		}
		if v.Name == protectedVault {
			// One demo repository's restore tests target the copy.
			if err := seedCopyTestedRepository(ctx, a, v); err != nil {
				return fmt.Errorf("demo repository tested on the copy: %w", err)
			}
		}
		if err := copyVault(ctx, a, v); err != nil {
			return err
		}
		if v.Name != laggingVault {
			continue
		}
		// The lagging copy: the copy key loses write permission on the copy island, and a
		// new backup arrives; each following run reports it cannot write.
		var islandID int64
		var bucketID, keyID string
		if err := a.Pool.QueryRow(ctx, `SELECT copy_island_id, copy_garage_bucket_id, copy_key_id FROM vault_protection WHERE vault_id = $1`,
			v.ID).Scan(&islandID, &bucketID, &keyID); err != nil {
			return err
		}
		gc, err := a.Islands.GarageClient(ctx, islandID)
		if err != nil {
			return err
		}
		if err := retryStep(ctx, a, "demo lag", func(ctx context.Context) error {
			_, err := gc.DenyBucketKey(ctx, bucketID, keyID, garage.PermWrite)
			return err
		}); err != nil {
			return fmt.Errorf("demo lag: %w", err)
		}
		if err := retryStep(ctx, a, "demo backup in "+v.Name, func(ctx context.Context) error {
			return putNamed(ctx, mc, v.BucketName, "a backup made after the copy island stopped accepting writes")
		}); err != nil {
			return err
		}
		if _, err := a.Pool.Exec(ctx, `UPDATE vault_protection SET copied_through = copied_through - interval '3 hours' WHERE vault_id = $1`,
			v.ID); err != nil {
			return err
		}
		if err := copyVault(ctx, a, v); err != nil {
			return err
		}
	}
	// The tripwire: a member key sets an Expiration rule; the tripwire removes it.
	tripped, err := demoVault(ctx, a, "libre-nuage", trippedVault, 0)
	if err != nil {
		return err
	}
	mc, err := memberClient(ctx, a, tripped, "compromised laptop")
	if err != nil {
		return err
	}
	bomb := lifecycle.NewConfiguration()
	bomb.Rules = []lifecycle.Rule{{ID: "cleanup", Status: "Enabled", Expiration: lifecycle.Expiration{Days: 1}}}
	if err := retryStep(ctx, a, "demo lifecycle rule", func(ctx context.Context) error {
		return mc.SetBucketLifecycle(ctx, tripped.BucketName, bomb)
	}); err != nil {
		return fmt.Errorf("demo lifecycle rule: %w", err)
	}
	if err := retryStep(ctx, a, "tripwire on "+tripped.Name, func(ctx context.Context) error {
		_, err := a.Protection.CheckVaultLifecycle(ctx, tripped.ID)
		return err
	}); err != nil {
		return fmt.Errorf("tripwire on %s: %w", tripped.Name, err)
	}
	return nil
}

// demoVault returns a member's vault by name, creating it (quota bytes) when missing.
func demoVault(ctx context.Context, a *app.App, member, name string, quota int64) (vaults.Vault, error) {
	m, err := islands.MemberGetBySlug(ctx, a.Pool, member)
	if err != nil {
		return vaults.Vault{}, err
	}
	vs, err := a.Vaults.VaultList(ctx, vaults.VaultFilter{MemberIDs: []int64{m.ID}})
	if err != nil {
		return vaults.Vault{}, err
	}
	for _, v := range vs {
		if v.Name == name {
			return activeVault(ctx, a, v)
		}
	}
	if quota == 0 {
		return vaults.Vault{}, fmt.Errorf("no vault %s of %s", name, member)
	}
	v, err := retrySeed(ctx, a.Log, "vault "+name, func(ctx context.Context) (vaults.Vault, error) {
		v, _, err := a.Vaults.Create(ctx, vaults.CreateInput{MemberID: m.ID, Name: name, QuotaBytes: quota, IdempotencyKey: "sandbox-" + name})
		return v, err
	})
	if err == nil {
		v, err = activeVault(ctx, a, v) // left pending by an island error: provisioned again
	}
	if err != nil {
		return v, fmt.Errorf("vault %s: %w", name, err)
	}
	return v, nil
}

func memberClient(ctx context.Context, a *app.App, v vaults.Vault, keyName string) (*minio.Client, error) {
	k, err := createKey(ctx, a, v, keyName)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(v.S3Endpoint)
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(k.AccessKeyID, k.SecretAccessKey, ""), Region: v.S3Region})
}

// putNamed stores content under a restic-like name: its SHA-256.
func putNamed(ctx context.Context, mc *minio.Client, bucket, content string) error {
	sum := sha256.Sum256([]byte(content))
	name := hex.EncodeToString(sum[:])
	_, err := mc.PutObject(ctx, bucket, "restic/data/"+name[:2]+"/"+name, bytes.NewReader([]byte(content)), int64(len(content)),
		minio.PutObjectOptions{})
	return err
}

// seedCopyTestedRepository makes a restic repository in the protected vault whose
// restore-test policy targets the copy, and enqueues its first test (it runs once the
// copy run that follows has copied the backup). A kept sandbox that has it already is left
// alone.
func seedCopyTestedRepository(ctx context.Context, a *app.App, v vaults.Vault) error {
	existing, err := verify.RepositoryList(ctx, a.Pool, verify.RepositoryFilter{MemberIDs: []int64{v.MemberID}})
	if err != nil {
		return err
	}
	for _, r := range existing {
		if r.Name == copyTestedRepository {
			return nil
		}
	}
	rr, err := restic.New(ctx, restic.Config{Logger: a.Log})
	if err != nil {
		return err
	}
	key, err := createKey(ctx, a, v, "backup backup01")
	if err != nil {
		return err
	}
	path := "restic/backup01-" + rand.Text()[:6]
	repo := restic.Repo{URL: vaults.Snippet(v, path, key.AccessKeyID, key.SecretAccessKey)["RESTIC_REPOSITORY"],
		Password: rand.Text() + rand.Text(), S3AccessKey: key.AccessKeyID, S3SecretKey: key.SecretAccessKey, S3Region: v.S3Region}
	if _, err := rr.Init(ctx, repo); err != nil {
		return err
	}
	password := rand.Text() + rand.Text()
	if _, err := rr.KeyAdd(ctx, repo, password, restic.KeyAddOptions{User: "archipelago", Host: "verifier"}); err != nil {
		return err
	}
	target := verify.TargetCopy
	reg, err := a.Verify.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: v.MemberID, VaultID: v.ID, Name: copyTestedRepository,
		Path: path, Password: password, FullModeConsent: verify.FullModeStatementVersion, // the demo member consents to full mode
		Policy: verify.Policy{Target: &target, CheckSubsets: ptr(1), CheckEveryRuns: ptr(1)}})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	dir, err := os.MkdirTemp("", "archipelago-demo-copy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writeSampleData(dir, "backup01.garrigue-net.example", reg.CanaryToken, true); err != nil {
		return err
	}
	if _, err := rr.Backup(ctx, repo, restic.BackupOptions{Paths: []string{dir}, Host: "backup01.garrigue-net.example", Tags: []string{"demo"}}); err != nil {
		return err
	}
	if err := copyVault(ctx, a, v); err != nil {
		return err
	}
	_, _, err = a.Verify.RunNow(ctx, reg.ID)
	return err
}

// createKey creates a member key on v, trying again while its island fails transiently.
func createKey(ctx context.Context, a *app.App, v vaults.Vault, name string) (vaults.NewKey, error) {
	return retrySeed(ctx, a.Log, "key "+name+" on "+v.Name, func(ctx context.Context) (vaults.NewKey, error) {
		k, err := a.Vaults.KeyCreate(ctx, v.ID, vaults.KeyInput{Name: name})
		return k, err
	})
}

// copyVault runs one copy of v, trying again while an island fails transiently.
func copyVault(ctx context.Context, a *app.App, v vaults.Vault) error {
	return retryStep(ctx, a, "copy "+v.Name, func(ctx context.Context) error {
		_, err := a.Protection.CopyVault(ctx, v.ID)
		return err
	})
}
