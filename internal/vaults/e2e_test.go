package vaults_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestVaultKeyResticEndToEnd is the "done when": a vault and a key, restic init
// and backup with exactly the returned snippet against the simulator's MinIO; the key
// cannot read another vault; the verifier reads but cannot write or delete; a revoked key
// is refused; a quota smaller than the data makes further writes fail.
func TestVaultKeyResticEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx

	v := b.create(t, b.memberA, 50*gb)
	if v.IslandID != b.south.ID || v.Placement != vaults.PlacementAutomatic {
		t.Fatalf("vault of A placed on island %d (%s), want south %d: A operates north", v.IslandID, v.Placement, b.south.ID)
	}
	other := b.create(t, b.memberB, 10*gb)
	if other.IslandID != b.north.ID {
		t.Fatalf("vault of B on island %d, want north", other.IslandID)
	}

	key, err := b.svc.KeyCreate(ctx, v.ID, vaults.KeyInput{Name: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	env := parseSnippet(t, key.Snippet)
	if env["AWS_SECRET_ACCESS_KEY"] != key.SecretAccessKey || env["AWS_DEFAULT_REGION"] != v.S3Region ||
		env["RESTIC_REPOSITORY"] != "s3:"+v.S3Endpoint+"/"+v.BucketName+"/restic" {
		t.Fatalf("snippet:\n%s", key.Snippet)
	}

	// restic init + backup with exactly the snippet's variables.
	runner, err := restic.New(ctx, restic.Config{})
	if err != nil {
		t.Fatalf("these tests run the real restic binary: %v (run `make tools`)", err)
	}
	repo := restic.Repo{URL: env["RESTIC_REPOSITORY"], Password: "correct horse battery staple",
		S3AccessKey: env["AWS_ACCESS_KEY_ID"], S3SecretKey: env["AWS_SECRET_ACCESS_KEY"], S3Region: env["AWS_DEFAULT_REGION"]}
	if _, err := runner.Init(ctx, repo); err != nil {
		t.Fatalf("restic init with the snippet: %v", err)
	}
	src := t.TempDir()
	for i, content := range []string{"hello", strings.Repeat("archipelago ", 10000)} {
		if err := os.WriteFile(filepath.Join(src, "file"+string(rune('a'+i))), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := runner.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatalf("restic backup with the snippet: %v", err)
	}
	if sum.SnapshotID == "" {
		t.Fatal("backup made no snapshot")
	}

	// The key cannot read another vault's bucket.
	member := s3(t, v, key.AccessKeyID, key.SecretAccessKey)
	if _, err := member.StatObject(ctx, v.BucketName, "restic/config", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the member key cannot read its own vault: %v", err)
	}
	for o := range member.ListObjects(ctx, other.BucketName, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			t.Fatalf("the member key lists another vault's bucket: %s", o.Key)
		}
		break
	}
	if err := put(ctx, member, other.BucketName, "intrusion", 10); err == nil {
		t.Fatal("the member key wrote into another vault's bucket")
	}

	// The verifier key lists and reads, but may neither write nor delete.
	creds, err := b.svc.VerifierCredentials(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Bucket != v.BucketName || creds.Endpoint != v.S3Endpoint || creds.Region != v.S3Region {
		t.Fatalf("verifier credentials %v", creds)
	}
	ver := s3(t, v, creds.AccessKeyID, creds.SecretAccessKey)
	n := 0
	for o := range ver.ListObjects(ctx, v.BucketName, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("verifier cannot list: %v", o.Err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("verifier lists nothing")
	}
	if _, err := ver.StatObject(ctx, v.BucketName, "restic/config", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("verifier cannot read: %v", err)
	}
	if err := put(ctx, ver, v.BucketName, "restic/evil", 10); err == nil {
		t.Fatal("the verifier key could write")
	}
	if err := ver.RemoveObject(ctx, v.BucketName, "restic/config", minio.RemoveObjectOptions{}); err == nil {
		t.Fatal("the verifier key could delete")
	}
	if _, err := ver.StatObject(ctx, v.BucketName, "restic/config", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("after the refused delete the object is gone: %v", err)
	}
	if snaps, err := runner.Snapshots(ctx, restic.Repo{URL: repo.URL, Password: repo.Password, S3AccessKey: creds.AccessKeyID,
		S3SecretKey: creds.SecretAccessKey, S3Region: creds.Region}); err != nil || len(snaps) != 1 {
		t.Fatalf("restic snapshots with the verifier key: %v, %d snapshots", err, len(snaps))
	}

	// A quota smaller than the data makes further writes fail (MinIO counts with a delay).
	second, err := b.svc.KeyCreate(ctx, v.ID, vaults.KeyInput{Name: "filler"})
	if err != nil {
		t.Fatal(err)
	}
	filler := s3(t, v, second.AccessKeyID, second.SecretAccessKey)
	if err := put(ctx, filler, v.BucketName, "fill/0", 2_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Update(ctx, v.ID, vaults.UpdateInput{QuotaBytes: new(int64(1_000_000))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for i := 1; ; i++ {
		err := put(ctx, filler, v.BucketName, "fill/"+string(rune('a'+i%26))+time.Now().Format("150405.000"), 100_000)
		if err != nil {
			t.Logf("write refused after the quota shrank: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes still succeed 90 s after the quota went under the data")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// After revoke the key is refused.
	if _, err := b.svc.KeyRevoke(ctx, v.ID, key.ID); err != nil {
		t.Fatal(err)
	}
	var denied error
	for range 20 { // MinIO drops the user at once; allow its caches a moment
		_, denied = member.StatObject(ctx, v.BucketName, "restic/config", minio.StatObjectOptions{})
		if denied != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if denied == nil {
		t.Fatal("the revoked key still reads")
	}
	// restic retries refused requests for a long time: give it 20 s to fail.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := runner.Snapshots(rctx, repo); err == nil {
		t.Fatal("restic still works with the revoked key")
	}
	k, err := b.svc.KeyGetByID(ctx, v.ID, key.ID)
	if err != nil || k.State != vaults.KeyRevoked {
		t.Fatalf("revoked key state %q, %v", k.State, err)
	}
}
