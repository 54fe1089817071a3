package garage_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestLifecycleAsGarage: a key with write permission sets an Expiration rule through S3
// (as on Garage, where write covers PutBucketLifecycleConfiguration), GetBucketInfo
// reports it, UpdateBucket replaces and clears the rules, a read-only key cannot set
// any, the rule takes effect when the lifecycle worker runs, and unfinished multipart
// bytes are reported. Every exchange is validated against the OpenAPI document.
func TestLifecycleAsGarage(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	b := setupSim(t, garagesim.Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	// The shared setup's 10 s timeout is too short for MinIO user creation on a loaded machine.
	c := garage.New(garage.Config{Endpoint: b.sim.URL(), Token: b.sim.AdminToken(), Timeout: 2 * time.Minute,
		Logger: testenv.Logger(t), HTTPClient: &http.Client{Transport: b.transport}})
	bucket := must[*garage.BucketInfo](t, "create bucket")(c.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: testenv.Unique("lc-")}))
	name := bucket.GlobalAliases[0]
	writer := must[*garage.KeyInfo](t, "writer")(c.CreateKey(ctx, garage.CreateKeyParams{Name: "writer"}))
	reader := must[*garage.KeyInfo](t, "reader")(c.CreateKey(ctx, garage.CreateKeyParams{Name: "reader"}))
	must[*garage.BucketInfo](t, "allow writer")(c.AllowBucketKey(ctx, bucket.ID, writer.AccessKeyID, garage.PermRead|garage.PermWrite))
	must[*garage.BucketInfo](t, "allow reader")(c.AllowBucketKey(ctx, bucket.ID, reader.AccessKeyID, garage.PermRead))
	ws, rs := s3Client(t, b.sim, writer), s3Client(t, b.sim, reader)

	if bi := must[*garage.BucketInfo](t, "info")(c.GetBucketInfo(ctx, garage.BucketLookup{ID: bucket.ID})); len(bi.LifecycleRules) != 0 {
		t.Fatalf("new bucket has lifecycle rules %+v", bi.LifecycleRules)
	}
	if _, err := ws.PutObject(ctx, name, "data/old", bytes.NewReader([]byte("old")), 3, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	bomb := lifecycle.NewConfiguration()
	bomb.Rules = []lifecycle.Rule{{ID: "wipe", Status: "Enabled", Expiration: lifecycle.Expiration{Days: 1}}}
	if err := rs.SetBucketLifecycle(ctx, name, bomb); minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Fatalf("read-only key set a lifecycle: %v", err)
	}
	if err := ws.SetBucketLifecycle(ctx, name, bomb); err != nil {
		t.Fatalf("write key sets a lifecycle through S3 (Garage allows it): %v", err)
	}
	bi := must[*garage.BucketInfo](t, "info")(c.GetBucketInfo(ctx, garage.BucketLookup{ID: bucket.ID}))
	if len(bi.LifecycleRules) != 1 || bi.LifecycleRules[0].ID != "wipe" || !bi.LifecycleRules[0].Enabled() ||
		bi.LifecycleRules[0].Expiration == nil || bi.LifecycleRules[0].Expiration.Days == nil || *bi.LifecycleRules[0].Expiration.Days != 1 {
		t.Fatalf("lifecycle rules after the S3 PUT = %+v", bi.LifecycleRules)
	}

	// The rule takes effect at the worker's next run once the object is a day old.
	run, err := b.sim.RunLifecycle(ctx)
	if err != nil || run.Expired != 0 {
		t.Fatalf("lifecycle run before a day passed: %+v, %v", run, err)
	}
	advance(25 * time.Hour)
	run, err = b.sim.RunLifecycle(ctx)
	if err != nil || run.Expired != 1 {
		t.Fatalf("lifecycle run a day later: %+v, %v", run, err)
	}
	if _, err := ws.StatObject(ctx, name, "data/old", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("expired object still there: %v", err)
	}

	// UpdateBucket replaces the rules (an abort-only rule, which MinIO alone refuses), then clears them.
	days := int64(1)
	abort := []garage.LifecycleRule{{ID: "archipelago-abort-mpu", Status: "Enabled", AbortIncompleteMultipartUpload: &garage.LifecycleAbortMPU{DaysAfterInitiation: days}}}
	bi = must[*garage.BucketInfo](t, "set rules")(c.SetBucketLifecycle(ctx, bucket.ID, abort))
	if len(bi.LifecycleRules) != 1 || bi.LifecycleRules[0].ID != "archipelago-abort-mpu" || bi.LifecycleRules[0].Expiration != nil ||
		bi.LifecycleRules[0].AbortIncompleteMultipartUpload == nil || bi.LifecycleRules[0].AbortIncompleteMultipartUpload.DaysAfterInitiation != 1 {
		t.Fatalf("rules after UpdateBucket = %+v", bi.LifecycleRules)
	}
	_, err = c.SetBucketLifecycle(ctx, bucket.ID, []garage.LifecycleRule{{Status: "Enabled"}})
	wantErr(t, "rule without action", err, garage.ErrInvalidRequest)

	// Unfinished multipart uploads are reported, and aborted by the rule after a day.
	core := minio.Core{Client: ws}
	up, err := core.NewMultipartUpload(ctx, name, "data/big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("x"), 6<<20)
	if _, err := core.PutObjectPart(ctx, name, "data/big", up, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	bi = must[*garage.BucketInfo](t, "info")(c.GetBucketInfo(ctx, garage.BucketLookup{ID: bucket.ID}))
	if bi.UnfinishedMultipartUploads != 1 || bi.UnfinishedMultipartUploadParts != 1 || bi.UnfinishedMultipartUploadBytes != int64(len(part)) {
		t.Fatalf("multipart counters = %d uploads, %d parts, %d bytes", bi.UnfinishedMultipartUploads, bi.UnfinishedMultipartUploadParts, bi.UnfinishedMultipartUploadBytes)
	}
	advance(48 * time.Hour)
	if run, err := b.sim.RunLifecycle(ctx); err != nil || run.Aborted != 1 {
		t.Fatalf("abort run: %+v, %v", run, err)
	}

	bi = must[*garage.BucketInfo](t, "clear rules")(c.SetBucketLifecycle(ctx, bucket.ID, nil))
	if len(bi.LifecycleRules) != 0 {
		t.Fatalf("rules after clearing = %+v", bi.LifecycleRules)
	}
}
