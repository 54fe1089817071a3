package garage_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

// simBundle is a simulator and a client whose every exchange is validated
// against the OpenAPI document.
type simBundle struct {
	sim       *garagesim.Sim
	client    *garage.Client
	transport *validatingTransport
}

func setupSim(t *testing.T, cfg garagesim.Config) simBundle {
	t.Helper()
	srv := testenv.S3(t)
	cfg.AdminToken = "admin-" + testenv.Unique("tok")
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Region = srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Region
	cfg.Logger = testenv.Logger(t)
	ctx := context.Background()
	sim, err := garagesim.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Cleanup(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("simulator cleanup: %v", err)
		}
		sim.Close()
	})
	vt := newValidatingTransport(t)
	client := garage.New(garage.Config{
		Endpoint: sim.URL(), Token: cfg.AdminToken, Timeout: 10 * time.Second,
		Logger: testenv.Logger(t), HTTPClient: &http.Client{Transport: vt},
	})
	return simBundle{sim: sim, client: client, transport: vt}
}

func s3Client(t *testing.T, sim *garagesim.Sim, key *garage.KeyInfo) *minio.Client {
	t.Helper()
	c, err := minio.New(sim.S3Endpoint(), &minio.Options{
		Creds: credentials.NewStaticV4(key.AccessKeyID, key.SecretAccessKey, ""), Region: sim.Region(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantErr(t *testing.T, what string, err error, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want an error matching %v", what, err, target)
	}
}

// TestContract exercises every operation of the client against the
// simulator; the validating transport checks each request and answer
// against Garage's OpenAPI document.
func TestContract(t *testing.T) {
	t.Parallel()
	b := setupSim(t, garagesim.Config{ReplicationFactor: 1})
	ctx := context.Background()
	c := b.client

	// Cluster.
	health := must[*garage.ClusterHealth](t, "health")(c.GetClusterHealth(ctx))
	if health.Status != garage.HealthHealthy || health.StorageNodes != 1 || health.StorageNodesUp != 1 || health.Partitions != 256 {
		t.Errorf("health = %+v", health)
	}
	status := must[*garage.ClusterStatus](t, "status")(c.GetClusterStatus(ctx))
	self, ok := status.Node(b.sim.SelfID())
	if !ok || !self.IsUp || self.Role == nil || self.Role.Capacity == nil || self.DataPartition == nil || self.DataPartition.Total == 0 {
		t.Errorf("self node = %+v", self)
	}
	info := must[*garage.NodeInfoResult](t, "node info")(c.GetNodeInfo(ctx, garage.NodeSelf))
	if _, ok := info.Success[b.sim.SelfID()]; !ok {
		t.Errorf("GetNodeInfo(self) = %+v", info)
	}
	must[*garage.NodeInfoResult](t, "node info all")(c.GetNodeInfo(ctx, garage.NodeAll))

	// Layout: stage a storage role and a gateway for new nodes, apply, remove.
	n2, n3 := b.sim.ConnectNode("n2"), b.sim.ConnectNode("n3")
	layout := must[*garage.ClusterLayout](t, "layout")(c.GetClusterLayout(ctx))
	staged := must[*garage.ClusterLayout](t, "stage")(c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{
		Roles:      []garage.RoleChange{garage.StorageRole(n2, "zone-2", 2_000_000_000, "ssd"), garage.GatewayRole(n3, "zone-2")},
		Parameters: &garage.LayoutParameters{ZoneRedundancy: garage.ZoneRedundancy{AtLeast: 1}},
	}))
	if len(staged.StagedRoleChanges) != 2 || staged.StagedParameters == nil || staged.StagedParameters.ZoneRedundancy.AtLeast != 1 {
		t.Errorf("staged = %+v", staged)
	}
	_, err := c.ApplyClusterLayout(ctx, layout.Version+2)
	wantErr(t, "apply a skipped version", err, garage.ErrInvalidRequest)
	applied := must[*garage.ApplyLayoutResult](t, "apply")(c.ApplyStagedLayout(ctx))
	if applied.Layout.Version != layout.Version+1 || len(applied.Layout.StagedRoleChanges) != 0 {
		t.Errorf("applied layout = %+v", applied.Layout)
	}
	if r, ok := applied.Layout.Role(n3); !ok || r.Capacity != nil {
		t.Errorf("gateway role = %+v %v", r, ok)
	}
	if r, ok := applied.Layout.Role(n2); !ok || r.StoredPartitions == nil || *r.StoredPartitions == 0 {
		t.Errorf("storage role = %+v %v", r, ok)
	}
	must[*garage.ClusterLayout](t, "stage removal")(c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{Roles: []garage.RoleChange{garage.RemoveRole(n3)}}))
	must[*garage.ApplyLayoutResult](t, "apply removal")(c.ApplyStagedLayout(ctx))

	// Keys.
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	name := testenv.Unique("key-")
	key := must[*garage.KeyInfo](t, "create key")(c.CreateKey(ctx, garage.CreateKeyParams{Name: name, Expiration: &exp}))
	if len(key.AccessKeyID) != 26 || key.AccessKeyID[:2] != "GK" || len(key.SecretAccessKey) != 64 || key.Expired || key.Expiration == nil {
		t.Fatalf("created key = %+v", key)
	}
	keys := must[[]garage.KeySummary](t, "list keys")(c.ListKeys(ctx))
	if !slices.ContainsFunc(keys, func(k garage.KeySummary) bool { return k.ID == key.AccessKeyID && k.Name == name }) {
		t.Errorf("ListKeys = %+v", keys)
	}
	got := must[*garage.KeyInfo](t, "get key")(c.GetKeyInfo(ctx, garage.KeyLookup{ID: key.AccessKeyID}))
	if got.SecretAccessKey != "" {
		t.Error("secret returned without ShowSecretKey")
	}
	got = must[*garage.KeyInfo](t, "search key")(c.GetKeyInfo(ctx, garage.KeyLookup{Search: name, ShowSecretKey: true}))
	if got.AccessKeyID != key.AccessKeyID || got.SecretAccessKey != key.SecretAccessKey {
		t.Errorf("search by name = %+v", got)
	}
	got = must[*garage.KeyInfo](t, "search key prefix")(c.GetKeyInfo(ctx, garage.KeyLookup{Search: key.AccessKeyID[:10]}))
	if got.AccessKeyID != key.AccessKeyID {
		t.Errorf("search by prefix = %+v", got)
	}
	_, err = c.GetKeyInfo(ctx, garage.KeyLookup{ID: "GK000000000000000000000000"})
	wantErr(t, "unknown key", err, garage.ErrNotFound)
	renamed, yes := name+"-b", true
	upd := must[*garage.KeyInfo](t, "update key")(c.UpdateKey(ctx, key.AccessKeyID, garage.UpdateKeyParams{Name: &renamed, NeverExpires: true, CreateBucket: &yes}))
	if upd.Name != renamed || upd.Expiration != nil || !upd.Permissions.CreateBucket || upd.SecretAccessKey != "" {
		t.Errorf("updated key = %+v", upd)
	}
	no := false
	upd = must[*garage.KeyInfo](t, "revoke createBucket")(c.UpdateKey(ctx, key.AccessKeyID, garage.UpdateKeyParams{CreateBucket: &no}))
	if upd.Permissions.CreateBucket {
		t.Error("CreateBucket still granted")
	}

	// Buckets.
	alias := testenv.Unique("ct-")
	bucket := must[*garage.BucketInfo](t, "create bucket")(c.CreateBucket(ctx, garage.CreateBucketParams{
		GlobalAlias: alias,
		LocalAlias:  &garage.CreateBucketLocalAlias{AccessKeyID: key.AccessKeyID, Alias: "mine", Allow: garage.BucketPermissions{Read: true}},
	}))
	if len(bucket.ID) != 64 || !slices.Equal(bucket.GlobalAliases, []string{alias}) || bucket.Quotas.MaxSize != nil {
		t.Fatalf("created bucket = %+v", bucket)
	}
	if k, ok := bucket.Key(key.AccessKeyID); !ok || !k.Permissions.Read || k.Permissions.Write || !slices.Equal(k.BucketLocalAliases, []string{"mine"}) {
		t.Errorf("bucket key = %+v", k)
	}
	_, err = c.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: alias})
	wantErr(t, "duplicate alias", err, garage.ErrBucketAlreadyExists)
	wantErr(t, "duplicate alias", err, garage.ErrConflict)
	buckets := must[[]garage.BucketSummary](t, "list buckets")(c.ListBuckets(ctx))
	if len(buckets) != 1 || buckets[0].ID != bucket.ID || len(buckets[0].LocalAliases) != 1 {
		t.Errorf("ListBuckets = %+v", buckets)
	}
	for _, l := range []garage.BucketLookup{{ID: bucket.ID}, {GlobalAlias: alias}, {Search: alias}, {Search: bucket.ID[:8]}} {
		if bi, err := c.GetBucketInfo(ctx, l); err != nil || bi.ID != bucket.ID {
			t.Errorf("GetBucketInfo(%+v) = %v, %v", l, bi, err)
		}
	}
	_, err = c.GetBucketInfo(ctx, garage.BucketLookup{GlobalAlias: "no-such-" + alias})
	wantErr(t, "unknown bucket", err, garage.ErrNotFound)

	size, objects := int64(10_000_000), int64(100)
	bi := must[*garage.BucketInfo](t, "set quotas")(c.SetBucketQuotas(ctx, bucket.ID, garage.Quotas{MaxSize: &size, MaxObjects: &objects}))
	if bi.Quotas.MaxSize == nil || *bi.Quotas.MaxSize != size || bi.Quotas.MaxObjects == nil || *bi.Quotas.MaxObjects != objects {
		t.Errorf("quotas = %+v", bi.Quotas)
	}
	bi = must[*garage.BucketInfo](t, "keep only maxSize")(c.SetBucketQuotas(ctx, bucket.ID, garage.Quotas{MaxSize: &size}))
	if bi.Quotas.MaxObjects != nil {
		t.Errorf("maxObjects not cleared: %+v", bi.Quotas)
	}
	bi = must[*garage.BucketInfo](t, "website")(c.UpdateBucket(ctx, bucket.ID, garage.UpdateBucketParams{WebsiteAccess: &garage.WebsiteAccess{Enabled: true, IndexDocument: "index.html"}}))
	if !bi.WebsiteAccess || bi.WebsiteConfig == nil || bi.WebsiteConfig.IndexDocument != "index.html" {
		t.Errorf("website = %v %+v", bi.WebsiteAccess, bi.WebsiteConfig)
	}
	must[*garage.BucketInfo](t, "website off")(c.UpdateBucket(ctx, bucket.ID, garage.UpdateBucketParams{WebsiteAccess: &garage.WebsiteAccess{}}))

	// Aliases.
	alias2 := testenv.Unique("ct2-")
	bi = must[*garage.BucketInfo](t, "add global alias")(c.AddBucketAlias(ctx, bucket.ID, garage.GlobalAlias(alias2)))
	if !slices.Contains(bi.GlobalAliases, alias2) {
		t.Errorf("aliases = %v", bi.GlobalAliases)
	}
	must[*garage.BucketInfo](t, "add same alias again")(c.AddBucketAlias(ctx, bucket.ID, garage.GlobalAlias(alias2)))
	must[*garage.BucketInfo](t, "add local alias")(c.AddBucketAlias(ctx, bucket.ID, garage.LocalAlias(key.AccessKeyID, "other")))
	must[*garage.BucketInfo](t, "remove local alias")(c.RemoveBucketAlias(ctx, bucket.ID, garage.LocalAlias(key.AccessKeyID, "other")))
	must[*garage.BucketInfo](t, "remove global alias")(c.RemoveBucketAlias(ctx, bucket.ID, garage.GlobalAlias(alias2)))

	// Permissions: false means unchanged, so a write grant keeps read.
	bi = must[*garage.BucketInfo](t, "allow write")(c.AllowBucketKey(ctx, bucket.ID, key.AccessKeyID, garage.PermWrite))
	if k, _ := bi.Key(key.AccessKeyID); k.Permissions != (garage.BucketPermissions{Read: true, Write: true}) {
		t.Errorf("after allow write: %+v", k.Permissions)
	}
	bi = must[*garage.BucketInfo](t, "deny read")(c.DenyBucketKey(ctx, bucket.ID, key.AccessKeyID, garage.PermRead))
	if k, _ := bi.Key(key.AccessKeyID); k.Permissions != (garage.BucketPermissions{Write: true}) {
		t.Errorf("after deny read: %+v", k.Permissions)
	}
	bi = must[*garage.BucketInfo](t, "set permissions")(c.SetBucketKeyPermissions(ctx, bucket.ID, key.AccessKeyID, garage.PermRead|garage.PermOwner))
	if k, _ := bi.Key(key.AccessKeyID); k.Permissions != (garage.BucketPermissions{Read: true, Owner: true}) {
		t.Errorf("after set read|owner: %+v", k.Permissions)
	}
	must[*garage.BucketInfo](t, "set read|write")(c.SetBucketKeyPermissions(ctx, bucket.ID, key.AccessKeyID, garage.PermRead|garage.PermWrite))
	kinfo := must[*garage.KeyInfo](t, "key buckets")(c.GetKeyInfo(ctx, garage.KeyLookup{ID: key.AccessKeyID}))
	if len(kinfo.Buckets) != 1 || kinfo.Buckets[0].ID != bucket.ID || !kinfo.Buckets[0].Permissions.Write {
		t.Errorf("key buckets = %+v", kinfo.Buckets)
	}

	// A bucket with an object cannot be deleted.
	s3 := s3Client(t, b.sim, key)
	if _, err := s3.PutObject(ctx, alias, "obj", bytes.NewReader([]byte("hello")), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put object with the key: %v", err)
	}
	err = c.DeleteBucket(ctx, bucket.ID)
	wantErr(t, "delete non-empty bucket", err, garage.ErrBucketNotEmpty)
	wantErr(t, "delete non-empty bucket", err, garage.ErrConflict)
	var apiErr *garage.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || apiErr.Code != "BucketNotEmpty" || apiErr.Operation != "DeleteBucket" || apiErr.Path != "/v2/DeleteBucket" {
		t.Errorf("APIError = %+v", apiErr)
	}
	if err := s3.RemoveObject(ctx, alias, "obj", minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("remove object: %v", err)
	}
	if err := c.DeleteBucket(ctx, bucket.ID); err != nil {
		t.Fatalf("delete empty bucket: %v", err)
	}
	wantErr(t, "delete deleted bucket", c.DeleteBucket(ctx, bucket.ID), garage.ErrNotFound)
	if err := c.DeleteKey(ctx, key.AccessKeyID); err != nil {
		t.Fatalf("delete key: %v", err)
	}
	wantErr(t, "delete deleted key", c.DeleteKey(ctx, key.AccessKeyID), garage.ErrNotFound)

	// A wrong token is AccessDenied.
	bad := garage.New(garage.Config{Endpoint: b.sim.URL(), Token: "wrong", HTTPClient: &http.Client{Transport: b.transport}})
	_, err = bad.ListKeys(ctx)
	wantErr(t, "wrong token", err, garage.ErrAccessDenied)

	// Every operation was validated at least once with a 2xx answer.
	seen := b.transport.validated()
	for _, op := range []string{
		"ListKeys", "GetKeyInfo", "CreateKey", "UpdateKey", "DeleteKey", "ListBuckets", "GetBucketInfo",
		"CreateBucket", "UpdateBucket", "DeleteBucket", "AddBucketAlias", "RemoveBucketAlias", "AllowBucketKey",
		"DenyBucketKey", "GetClusterHealth", "GetClusterStatus", "GetClusterLayout", "UpdateClusterLayout",
		"ApplyClusterLayout", "GetNodeInfo",
	} {
		if seen[op] == 0 {
			t.Errorf("operation %s never validated with a 2xx answer", op)
		}
	}
}
