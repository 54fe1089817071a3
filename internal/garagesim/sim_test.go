package garagesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

type bundle struct {
	sim    *garagesim.Sim
	client *garage.Client
	srv    testenv.S3Server
}

func setup(t *testing.T, cfg garagesim.Config) bundle {
	t.Helper()
	srv := testenv.S3(t)
	cfg.AdminToken = testenv.Unique("admin-")
	cfg.S3Endpoint, cfg.S3AccessKey, cfg.S3SecretKey, cfg.S3Region = srv.Endpoint, srv.AccessKey, srv.SecretKey, srv.Region
	cfg.Logger = testenv.Logger(t)
	sim, err := garagesim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		sim.Close()
	})
	c := garage.New(garage.Config{Endpoint: sim.URL(), Token: cfg.AdminToken, MaxAttempts: 1})
	return bundle{sim: sim, client: c, srv: srv}
}

func (b bundle) s3As(t *testing.T, k *garage.KeyInfo) *minio.Client {
	t.Helper()
	c, err := minio.New(b.sim.S3Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(k.AccessKeyID, k.SecretAccessKey, ""), Region: b.sim.Region()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b bundle) bucket(t *testing.T) *garage.BucketInfo {
	t.Helper()
	bi, err := b.client.CreateBucket(context.Background(), garage.CreateBucketParams{GlobalAlias: testenv.Unique("sim-")})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return bi
}

func (b bundle) key(t *testing.T, p garage.CreateKeyParams) *garage.KeyInfo {
	t.Helper()
	k, err := b.client.CreateKey(context.Background(), p)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return k
}

func put(ctx context.Context, c *minio.Client, bucket, name string, n int) error {
	_, err := c.PutObject(ctx, bucket, name, bytes.NewReader(make([]byte, n)), int64(n), minio.PutObjectOptions{})
	return err
}

func denied(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "AccessDenied"
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPermissionsEnforcedInMinIO(t *testing.T) {
	t.Parallel()
	b := setup(t, garagesim.Config{})
	ctx := context.Background()
	a, other := b.bucket(t), b.bucket(t)
	aName, otherName := a.GlobalAliases[0], other.GlobalAliases[0]
	key := b.key(t, garage.CreateKeyParams{Name: "tenant"})
	s3 := b.s3As(t, key)

	// No permission yet: nothing works.
	if err := put(ctx, s3, aName, "x", 1); !denied(err) {
		t.Fatalf("put without permission: %v", err)
	}
	if _, err := b.client.AllowBucketKey(ctx, a.ID, key.AccessKeyID, garage.PermRead|garage.PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, s3, aName, "x", 10); err != nil {
		t.Fatalf("put on A with read|write: %v", err)
	}
	obj, err := s3.GetObject(ctx, aName, "x", minio.GetObjectOptions{})
	if err == nil {
		_, err = io.ReadAll(obj)
	}
	if err != nil {
		t.Fatalf("get on A: %v", err)
	}
	// Bucket B is out of reach: write, read and list.
	if err := put(ctx, s3, otherName, "x", 1); !denied(err) {
		t.Errorf("put on B: %v", err)
	}
	root, _ := minio.New(b.srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(b.srv.AccessKey, b.srv.SecretKey, ""), Region: b.sim.Region()})
	if err := put(ctx, root, otherName, "y", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.StatObject(ctx, otherName, "y", minio.StatObjectOptions{}); !denied(err) && minio.ToErrorResponse(err).StatusCode != http.StatusForbidden {
		t.Errorf("stat on B: %v", err)
	}
	for o := range s3.ListObjects(ctx, otherName, minio.ListObjectsOptions{}) {
		if !denied(o.Err) {
			t.Errorf("list on B: %+v", o)
		}
		break
	}
	// Deny write (false = unchanged keeps read): reads work, writes do not.
	if _, err := b.client.DenyBucketKey(ctx, a.ID, key.AccessKeyID, garage.PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, s3, aName, "z", 1); !denied(err) {
		t.Errorf("put after deny write: %v", err)
	}
	if _, err := s3.StatObject(ctx, aName, "x", minio.StatObjectOptions{}); err != nil {
		t.Errorf("stat after deny write: %v", err)
	}
	// Without owner the key cannot delete the bucket.
	if err := s3.RemoveBucket(ctx, aName); err == nil {
		t.Error("bucket deleted without owner")
	}
	// Deleting the key removes its MinIO user.
	if err := b.client.DeleteKey(ctx, key.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.StatObject(ctx, aName, "x", minio.StatObjectOptions{}); err == nil {
		t.Error("deleted key still reads")
	}
	_ = root.RemoveObject(ctx, otherName, "y", minio.RemoveObjectOptions{})
}

func TestQuotaSetInMinIO(t *testing.T) {
	t.Parallel()
	b := setup(t, garagesim.Config{})
	ctx := context.Background()
	bi := b.bucket(t)
	name := bi.GlobalAliases[0]
	adm, err := madmin.NewWithOptions(b.srv.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(b.srv.AccessKey, b.srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	size, objects := int64(50_000), int64(7)
	got, err := b.client.SetBucketQuotas(ctx, bi.ID, garage.Quotas{MaxSize: &size, MaxObjects: &objects})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Quotas.MaxObjects != objects {
		t.Errorf("maxObjects not reported: %+v", got.Quotas)
	}
	q, err := adm.GetBucketQuota(ctx, name)
	if err != nil || q.Size != uint64(size) || q.Type != madmin.HardQuota {
		t.Fatalf("MinIO quota = %+v, %v", q, err)
	}
	if _, err := b.client.SetBucketQuotas(ctx, bi.ID, garage.Quotas{}); err != nil {
		t.Fatal(err)
	}
	if q, err := adm.GetBucketQuota(ctx, name); err != nil || q.Size != 0 {
		t.Errorf("MinIO quota after clearing = %+v, %v", q, err)
	}
}

// TestQuotaBitesAndUsage waits for MinIO's scanner: it is slow (about 10 s
// with a fast scanner cycle, a minute by default).
func TestQuotaBitesAndUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for MinIO's scanner")
	}
	t.Parallel()
	b := setup(t, garagesim.Config{UsageTTL: time.Millisecond})
	ctx := context.Background()
	bi := b.bucket(t)
	name := bi.GlobalAliases[0]
	key := b.key(t, garage.CreateKeyParams{})
	if _, err := b.client.AllowBucketKey(ctx, bi.ID, key.AccessKeyID, garage.PermAll); err != nil {
		t.Fatal(err)
	}
	size := int64(100_000)
	if _, err := b.client.SetBucketQuotas(ctx, bi.ID, garage.Quotas{MaxSize: &size}); err != nil {
		t.Fatal(err)
	}
	s3 := b.s3As(t, key)
	// MinIO refuses at once an object larger than the quota.
	if err := put(ctx, s3, name, "huge", 150_000); err == nil {
		t.Error("object larger than the quota accepted")
	}
	if err := put(ctx, s3, name, "big", 80_000); err != nil {
		t.Fatalf("first put under the quota: %v", err)
	}
	eventually(t, 90*time.Second, "usage reported", func() bool {
		got, err := b.client.GetBucketInfo(ctx, garage.BucketLookup{ID: bi.ID})
		return err == nil && got.Objects == 1 && got.Bytes == 80_000
	})
	eventually(t, 90*time.Second, "quota enforced on the total", func() bool {
		return put(ctx, s3, name, "more", 40_000) != nil
	})
}

func TestExpiredKeysDisabled(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := setup(t, garagesim.Config{Now: clock})
	ctx := context.Background()
	bi := b.bucket(t)
	exp := now.Add(time.Hour)
	key := b.key(t, garage.CreateKeyParams{Expiration: &exp})
	if _, err := b.client.AllowBucketKey(ctx, bi.ID, key.AccessKeyID, garage.PermAll); err != nil {
		t.Fatal(err)
	}
	s3 := b.s3As(t, key)
	if err := put(ctx, s3, bi.GlobalAliases[0], "a", 1); err != nil {
		t.Fatalf("put before expiry: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	ki, err := b.client.GetKeyInfo(ctx, garage.KeyLookup{ID: key.AccessKeyID})
	if err != nil || !ki.Expired {
		t.Fatalf("key after expiry = %+v, %v", ki, err)
	}
	eventually(t, 10*time.Second, "expired key refused by MinIO", func() bool {
		return put(ctx, s3, bi.GlobalAliases[0], "b", 1) != nil
	})
	if _, err := b.client.UpdateKey(ctx, key.AccessKeyID, garage.UpdateKeyParams{NeverExpires: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "revived key accepted by MinIO", func() bool {
		return put(ctx, s3, bi.GlobalAliases[0], "c", 1) == nil
	})
}

func TestNodesHealthAndLayout(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	b := setup(t, garagesim.Config{ReplicationFactor: 3, Now: clock})
	ctx := context.Background()
	c := b.client

	h, err := c.GetClusterHealth(ctx)
	if err != nil || h.Status != garage.HealthHealthy || h.StorageNodes != 3 || h.PartitionsAllOK != 256 {
		t.Fatalf("initial health = %+v, %v", h, err)
	}
	nodes := b.sim.Nodes()
	down := nodes[1].ID
	if err := b.sim.SetNodeUp(down, false); err != nil {
		t.Fatal(err)
	}
	advance(42 * time.Second)
	h, _ = c.GetClusterHealth(ctx)
	if h.Status != garage.HealthDegraded || h.StorageNodesUp != 2 || h.PartitionsQuorum != 256 || h.PartitionsAllOK == 256 {
		t.Errorf("one node down: %+v", h)
	}
	st, _ := c.GetClusterStatus(ctx)
	n, _ := st.Node(down)
	if n.IsUp || n.LastSeenSecsAgo == nil || *n.LastSeenSecsAgo != 42 {
		t.Errorf("down node = %+v", n)
	}
	advance(10 * time.Second)
	st, _ = c.GetClusterStatus(ctx)
	if n, _ := st.Node(down); n.LastSeenSecsAgo == nil || *n.LastSeenSecsAgo != 52 {
		t.Errorf("lastSeenSecsAgo did not grow: %+v", n)
	}
	// Two of three down: no write quorum, key and bucket calls answer 503.
	if err := b.sim.SetNodeUp(nodes[2].ID, false); err != nil {
		t.Fatal(err)
	}
	h, _ = c.GetClusterHealth(ctx)
	if h.Status != garage.HealthUnavailable {
		t.Errorf("two nodes down: %+v", h)
	}
	if _, err := c.ListKeys(ctx); !errors.Is(err, garage.ErrUnavailable) {
		t.Errorf("ListKeys without quorum: %v", err)
	}
	_ = b.sim.SetNodeUp(nodes[2].ID, true)
	_ = b.sim.SetNodeUp(down, true)

	// Layout rules.
	l, _ := c.GetClusterLayout(ctx)
	if _, err := c.ApplyClusterLayout(ctx, l.Version); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("re-apply current version: %v", err)
	}
	if _, err := c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{Parameters: &garage.LayoutParameters{ZoneRedundancy: garage.ZoneRedundancy{AtLeast: 4}}}); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("atLeast > rf: %v", err)
	}
	if _, err := c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{Roles: []garage.RoleChange{garage.RemoveRole(nodes[0].ID)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyStagedLayout(ctx); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("apply leaving 2 storage nodes with rf=3: %v", err)
	}
	// Capacity changes from the test side show in the layout.
	id, err := b.sim.AddNode("zone-4", 5_000_000_000, "n4")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetNodeCapacity(id, 6_000_000_000); err != nil {
		t.Fatal(err)
	}
	l2, _ := c.GetClusterLayout(ctx)
	if r, ok := l2.Role(id); !ok || *r.Capacity != 6_000_000_000 || l2.Version != l.Version+2 {
		t.Errorf("layout after AddNode/SetNodeCapacity: v%d %+v", l2.Version, r)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, garagesim.Config{ControlToken: "ctl"})
	do := func(method, path, token, body string) int {
		req, _ := http.NewRequest(method, b.sim.URL()+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := do("POST", "/_sim/nodes", "", `{"zone":"z2","capacity":2000000}`); st != http.StatusForbidden {
		t.Errorf("without control token: %d", st)
	}
	if st := do("POST", "/_sim/nodes", b.sim.AdminToken(), `{"zone":"z2","capacity":2000000}`); st != http.StatusForbidden {
		t.Errorf("with admin token: %d", st)
	}
	if st := do("POST", "/_sim/nodes", "ctl", `{"zone":"z2","capacity":2000000,"hostname":"h2"}`); st != http.StatusOK {
		t.Errorf("add node: %d", st)
	}
	nodes := b.sim.Nodes()
	if len(nodes) != 2 || nodes[1].Zone != "z2" {
		t.Fatalf("nodes = %+v", nodes)
	}
	if st := do("POST", "/_sim/nodes/"+nodes[1].ID+"/down", "ctl", ""); st != http.StatusOK {
		t.Errorf("down: %d", st)
	}
	if st := do("POST", "/_sim/nodes/nope/down", "ctl", ""); st != http.StatusNotFound {
		t.Errorf("unknown node: %d", st)
	}
	// With rf=1, a storage node down leaves its partitions without quorum.
	h, _ := b.client.GetClusterHealth(context.Background())
	if h.Status != garage.HealthUnavailable || h.StorageNodesUp != 1 {
		t.Errorf("health with a node down = %+v", h)
	}
	if st := do("POST", "/_sim/nodes/"+nodes[1].ID+"/up", "ctl", ""); st != http.StatusOK {
		t.Errorf("up: %d", st)
	}
	if st := do("POST", "/_sim/faults", "ctl", `{"operation":"ListBuckets","status":503,"count":1}`); st != http.StatusOK {
		t.Errorf("fault: %d", st)
	}
	if _, err := b.client.ListBuckets(context.Background()); !errors.Is(err, garage.ErrUnavailable) {
		t.Errorf("injected 503: %v", err)
	}
	if _, err := b.client.ListBuckets(context.Background()); err != nil {
		t.Errorf("after the fault: %v", err)
	}
	// The admin API refuses a missing or wrong token with 403 AccessDenied.
	if st := do("GET", "/v2/ListKeys", "", ""); st != http.StatusForbidden {
		t.Errorf("admin API without token: %d", st)
	}
}

// TestRepeatingFaults: a fault with Every fails Count calls of each Every of its operation
// (the first ones) until the faults are cleared, leaves other operations alone, and the
// faults served are counted, also over the control API.
func TestRepeatingFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, garagesim.Config{ControlToken: "ctl"})
	ctx := context.Background()
	ctl := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, b.sim.URL()+"/_sim/faults", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ctl")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	pattern := func(n int) string {
		var out []byte
		for range n {
			if _, err := b.client.ListKeys(ctx); errors.Is(err, garage.ErrUnavailable) {
				out = append(out, 'x')
			} else if err != nil {
				t.Fatalf("ListKeys: %v", err)
			} else {
				out = append(out, '.')
			}
		}
		return string(out)
	}
	b.sim.InjectFault(garagesim.Fault{Operation: "ListKeys", Status: 503, Every: 3})
	if got := pattern(7); got != "x..x..x" {
		t.Errorf("one call in three: %s, want x..x..x", got)
	}
	if _, err := b.client.ListBuckets(ctx); err != nil {
		t.Errorf("another operation: %v", err)
	}
	// Over the control API: two in three (a fault that also defeats one retry).
	if st, body := ctl("POST", `{"operation":"ListKeys","status":503,"count":2,"every":3}`); st != http.StatusOK {
		t.Fatalf("repeating fault: %d %s", st, body)
	}
	if got := pattern(6); got != "xx.xx." {
		t.Errorf("two calls in three: %s, want xx.xx.", got)
	}
	if st, _ := ctl("POST", `{"operation":"ListKeys","status":503,"count":4,"every":3}`); st != http.StatusBadRequest {
		t.Errorf("count above every: %d", st)
	}
	var served struct{ Served map[string]int }
	if st, body := ctl("GET", ""); st != http.StatusOK || json.Unmarshal([]byte(body), &served) != nil ||
		len(served.Served) != 1 || served.Served["ListKeys"] != 7 {
		t.Errorf("faults served: %d %s, want ListKeys 7", st, body)
	}
	if st, _ := ctl("DELETE", ""); st != http.StatusOK {
		t.Errorf("clear: %d", st)
	}
	if got := pattern(4); got != "...." {
		t.Errorf("after the faults were cleared: %s", got)
	}
	if got := b.sim.FaultsServed()["ListKeys"]; got != 7 {
		t.Errorf("FaultsServed = %d, want 7", got)
	}
}

func TestSimulatorsShareMinIOButNotState(t *testing.T) {
	t.Parallel()
	one, two := setup(t, garagesim.Config{}), setup(t, garagesim.Config{})
	ctx := context.Background()
	bi := one.bucket(t)
	one.key(t, garage.CreateKeyParams{})
	if bs, _ := two.client.ListBuckets(ctx); len(bs) != 0 {
		t.Errorf("second simulator sees buckets: %+v", bs)
	}
	if ks, _ := two.client.ListKeys(ctx); len(ks) != 0 {
		t.Errorf("second simulator sees keys: %+v", ks)
	}
	// The MinIO namespace is shared: the name is taken.
	_, err := two.client.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: bi.GlobalAliases[0]})
	if !errors.Is(err, garage.ErrBucketAlreadyExists) {
		t.Errorf("same name on the second simulator: %v", err)
	}
	// A bucket without global alias is refused with a clear 400.
	_, err = one.client.CreateBucket(ctx, garage.CreateBucketParams{})
	if !errors.Is(err, garage.ErrInvalidRequest) || !strings.Contains(err.Error(), "globalAlias") {
		t.Errorf("bucket without alias: %v", err)
	}
	// Removing the last alias is refused.
	if _, err := one.client.RemoveBucketAlias(ctx, bi.ID, garage.GlobalAlias(bi.GlobalAliases[0])); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("remove last alias: %v", err)
	}
}
