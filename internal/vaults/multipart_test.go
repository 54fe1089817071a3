package vaults_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/vaults"
)

// TestUsageCountsUnfinishedMultipartUploads: the parts of an upload that was started and
// never completed take space on the island but escape Garage's quota; the usage
// collected for the vault counts their bytes (Garage reports them in the bucket's info).
func TestUsageCountsUnfinishedMultipartUploads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, gb)
	key, err := b.svc.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "mpu"})
	if err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: s3(t, v, key.AccessKeyID, key.SecretAccessKey)}
	up, err := core.NewMultipartUpload(b.ctx, v.BucketName, "restic/data/big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 1<<20)
	if _, err := core.PutObjectPart(b.ctx, v.BucketName, "restic/data/big", up, 1, bytes.NewReader(part), int64(len(part)),
		minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := b.svc.CollectUsage(b.ctx); err != nil {
			t.Fatal(err)
		}
		got, err := b.svc.VaultGetByID(b.ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.UsageBytes != nil && *got.UsageBytes >= int64(len(part)) {
			break
		}
		if time.Now().After(deadline) {
			used := int64(-1) // never collected
			if got.UsageBytes != nil {
				used = *got.UsageBytes
			}
			t.Fatalf("usage %d bytes does not count the unfinished upload's %d bytes", used, len(part))
		}
		time.Sleep(time.Second)
	}
}
