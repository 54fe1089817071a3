package garagesim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

// gate is a reverse proxy in front of MinIO that can hold MinIO's admin API
// calls (IAM, quotas, data usage) until it is opened again: a MinIO that has
// become very slow, without depending on how slow the machine is.
type gate struct {
	mu      sync.Mutex
	closed  chan struct{} // nil when open
	held    chan string   // admin paths being held
	seen    []string      // admin calls made: "path", "path algorithm=N" for add-user, "path name" for add-canned-policy
	writes  []string      // IAM writes made, as "call user": add-canned-policy, add-user, set-user-or-group-policy
	addr    string
	stopped chan struct{}
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	g := &gate{held: make(chan string, 100), stopped: make(chan struct{})}
	u, _ := url.Parse("http://" + target)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // keep the signed Host header
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/minio/admin/") {
			call := r.URL.Path
			if strings.HasSuffix(r.URL.Path, "/add-canned-policy") {
				call += " " + r.URL.Query().Get("name")
			}
			if strings.HasSuffix(r.URL.Path, "/add-user") {
				body, _ := io.ReadAll(r.Body)
				if len(body) > 32 {
					call = fmt.Sprintf("%s algorithm=%d", call, body[32])
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			q := r.URL.Query()
			write := ""
			switch path.Base(r.URL.Path) {
			case "add-canned-policy":
				write = "add-canned-policy " + q.Get("name")
			case "add-user":
				write = "add-user " + q.Get("accessKey")
			case "set-user-or-group-policy":
				write = "set-user-or-group-policy " + q.Get("userOrGroup")
			}
			g.mu.Lock()
			c := g.closed
			g.seen = append(g.seen, call)
			if write != "" {
				g.writes = append(g.writes, write)
			}
			g.mu.Unlock()
			if c != nil {
				g.held <- r.URL.Path + "?" + r.URL.RawQuery
				select {
				case <-c:
				case <-r.Context().Done():
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln); close(g.stopped) }()
	t.Cleanup(func() {
		g.open()
		_ = srv.Close()
		<-g.stopped
	})
	return g
}

// close makes MinIO's admin calls wait until open.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

func setupGated(t *testing.T) (bundle, *gate) {
	t.Helper()
	srv := testenv.S3(t)
	g := startGate(t, srv.Endpoint)
	cfg := garagesim.Config{AdminToken: testenv.Unique("admin-"), S3Endpoint: g.addr, S3AccessKey: srv.AccessKey,
		S3SecretKey: srv.SecretKey, S3Region: srv.Region, Logger: testenv.Logger(t), UsageTTL: time.Millisecond}
	sim, err := garagesim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		g.open()
		if err := sim.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		sim.Close()
	})
	c := garage.New(garage.Config{Endpoint: sim.URL(), Token: cfg.AdminToken, MaxAttempts: 1, Timeout: time.Minute})
	return bundle{sim: sim, client: c, srv: srv}, g
}

// TestSlowMinIOHoldsUpNoOtherCall: while one admin call waits for MinIO's IAM
// (held indefinitely by the gate), the simulator keeps answering every other
// call, and bucket info never waits for MinIO's data-usage answer. Before, one
// global lock was held across MinIO calls, so a slow MinIO made every admin
// call of the island slow.
func TestSlowMinIOHoldsUpNoOtherCall(t *testing.T) {
	t.Parallel()
	b, g := setupGated(t)
	ctx := context.Background()
	bi := b.bucket(t)
	k1 := b.key(t, garage.CreateKeyParams{Name: "one"})
	k2 := b.key(t, garage.CreateKeyParams{Name: "two"})

	g.close()
	slow := make(chan error, 1)
	go func() {
		_, err := b.client.AllowBucketKey(ctx, bi.ID, k1.AccessKeyID, garage.PermRead|garage.PermWrite)
		slow <- err
	}()
	for held := false; !held; { // until the grant is waiting for MinIO (spares may be made meanwhile)
		select {
		case p := <-g.held:
			held = strings.Contains(p, "add-canned-policy") && strings.Contains(p, k1.AccessKeyID)
		case <-time.After(time.Minute):
			t.Fatal("the grant never reached MinIO's admin API")
		}
	}

	// Every other call answers while MinIO still holds the grant.
	others := map[string]func(context.Context) error{
		"GetKeyInfo": func(ctx context.Context) error {
			_, err := b.client.GetKeyInfo(ctx, garage.KeyLookup{ID: k2.AccessKeyID})
			return err
		},
		"GetBucketInfo": func(ctx context.Context) error {
			_, err := b.client.GetBucketInfo(ctx, garage.BucketLookup{ID: bi.ID})
			return err
		},
		"GetClusterHealth": func(ctx context.Context) error { _, err := b.client.GetClusterHealth(ctx); return err },
		"ListKeys":         func(ctx context.Context) error { _, err := b.client.ListKeys(ctx); return err },
	}
	for name, call := range others {
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s while MinIO is slow: %v", name, err)
			}
		case err := <-slow:
			t.Fatalf("%s waited for the held grant (which ended: %v)", name, err)
		case <-time.After(30 * time.Second):
			g.open()
			t.Fatalf("%s waited for MinIO's held admin call", name)
		}
	}
	g.open()
	if err := <-slow; err != nil {
		t.Fatalf("grant after MinIO answered: %v", err)
	}
	if err := put(ctx, b.s3As(t, k1), bi.GlobalAliases[0], "x", 1); err != nil {
		t.Fatalf("the grant is not in MinIO: %v", err)
	}
}

// TestKeyCreationAvoidsArgon2: madmin's AddUser and AttachPolicy encrypt their
// request with Argon2id (64 MiB, behind one process-wide mutex), seconds per call on a
// loaded machine or under the race detector: CreateKey and AllowBucketKey took 3-5 s and
// hit clients' timeouts. The simulator creates users with the PBKDF2 format (algorithm
// 2) and attaches policies with the unencrypted call.
func TestKeyCreationAvoidsArgon2(t *testing.T) {
	t.Parallel()
	b, g := setupGated(t)
	ctx := context.Background()
	bi := b.bucket(t)
	for i := range 2 * 3 { // more than the spares: some keys are made on the request path
		k := b.key(t, garage.CreateKeyParams{Name: fmt.Sprint("k", i)})
		if _, err := b.client.AllowBucketKey(ctx, bi.ID, k.AccessKeyID, garage.PermRead|garage.PermWrite); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := put(ctx, b.s3As(t, k), bi.GlobalAliases[0], "x", 1); err != nil {
				t.Fatalf("the key does not work in MinIO: %v", err)
			}
		}
	}
	g.mu.Lock()
	seen := slices.Clone(g.seen)
	g.mu.Unlock()
	users := 0
	for _, c := range seen {
		switch {
		case strings.Contains(c, "/idp/builtin/policy/"):
			t.Errorf("Argon2id-encrypted policy call: %s", c)
		case strings.Contains(c, "/add-user"):
			users++
			if !strings.HasSuffix(c, "algorithm=2") {
				t.Errorf("add-user not in the PBKDF2 format: %s", c)
			}
		}
	}
	if users < 6 {
		t.Errorf("%d MinIO users created for 6 keys: %v", users, seen)
	}
}

// TestCreateKeyWithoutASpareIsOneIAMWrite: MinIO makes IAM writes one at a time, each
// tens to hundreds of milliseconds on a loaded machine. A CreateKey that finds no spare
// MinIO user ready (the simulator's first one: the filler has only just started) creates
// the user and nothing else, one IAM write, instead of writing, creating and attaching a
// policy (three); the key's first grant writes and attaches its policy, and it works.
func TestCreateKeyWithoutASpareIsOneIAMWrite(t *testing.T) {
	t.Parallel()
	b, g := setupGated(t)
	ctx := context.Background()
	bi := b.bucket(t)
	k := b.key(t, garage.CreateKeyParams{Name: "first"}) // no spare is ready yet
	writesFor := func() []string {
		g.mu.Lock()
		defer g.mu.Unlock()
		var out []string
		for _, w := range g.writes {
			if strings.HasSuffix(w, " "+k.AccessKeyID) {
				out = append(out, w)
			}
		}
		return out
	}
	if got := writesFor(); !slices.Equal(got, []string{"add-user " + k.AccessKeyID}) {
		t.Errorf("IAM writes of a CreateKey without a spare: %v, want the user only", got)
	}
	if _, err := b.client.AllowBucketKey(ctx, bi.ID, k.AccessKeyID, garage.PermRead|garage.PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, b.s3As(t, k), bi.GlobalAliases[0], "x", 1); err != nil {
		t.Fatalf("the key's first grant does not work in MinIO: %v (IAM writes %v)", err, writesFor())
	}
}

// TestSparesGiveWayToAdminCallsIAMWrites: MinIO makes IAM writes one at a time, so a
// spare user being made in the background would make an admin call's write queue behind
// it. While an admin call has an IAM write in flight (a grant's policy, held by the gate),
// the filler replacing a spare just taken makes none of its writes; it makes them once
// the admin call's write is done.
func TestSparesGiveWayToAdminCallsIAMWrites(t *testing.T) {
	t.Parallel()
	b, g := setupGated(t)
	ctx := context.Background()
	bi := b.bucket(t)
	k0 := b.key(t, garage.CreateKeyParams{Name: "first"}) // starts the filler
	isWrite := func(p string) bool {
		return strings.Contains(p, "/add-canned-policy") || strings.Contains(p, "/add-user") ||
			strings.Contains(p, "/set-user-or-group-policy")
	}
	// spareWrites counts the IAM writes made for users other than the given keys.
	spareWrites := func(keys ...string) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
	writes:
		for _, w := range g.writes {
			for _, k := range keys {
				if strings.HasSuffix(w, " "+k) {
					continue writes
				}
			}
			n++
		}
		return n
	}
	// The filler makes its spares (three writes each), then waits for one to be taken.
	for deadline := time.Now().Add(2 * time.Minute); spareWrites(k0.AccessKeyID) < 3*3; {
		if time.Now().After(deadline) {
			t.Fatalf("the spares were never made: %d IAM writes for them", spareWrites(k0.AccessKeyID))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An admin call's IAM write in flight: the grant's policy, held by MinIO.
	g.close()
	granted := make(chan error, 1)
	go func() {
		_, err := b.client.AllowBucketKey(ctx, bi.ID, k0.AccessKeyID, garage.PermRead|garage.PermWrite)
		granted <- err
	}()
	for held := false; !held; {
		select {
		case p := <-g.held:
			held = strings.Contains(p, "add-canned-policy") && strings.Contains(p, k0.AccessKeyID)
		case <-time.After(time.Minute):
			t.Fatal("the grant never reached MinIO's admin API")
		}
	}
	// A spare is taken (no MinIO call): the filler wants to make a new one now.
	k1 := b.key(t, garage.CreateKeyParams{Name: "second"})
	before := spareWrites(k0.AccessKeyID, k1.AccessKeyID)
	// While the grant's write is held, no write for a spare may reach MinIO. The window
	// only bounds how long a removal of the handling is looked for: a slower machine can
	// miss it, never fail because of it.
	window := time.After(10 * time.Second)
	for waiting := true; waiting; {
		select {
		case p := <-g.held:
			if isWrite(p) {
				g.open()
				t.Fatalf("a spare's IAM write reached MinIO while an admin call's was in flight: %s", p)
			}
		case err := <-granted:
			t.Fatalf("the held grant ended: %v", err)
		case <-window:
			waiting = false
		}
	}
	g.open()
	if err := <-granted; err != nil {
		t.Fatalf("grant after MinIO answered: %v", err)
	}
	// The filler was waiting, not idle: it makes the new spare now.
	for deadline := time.Now().Add(2 * time.Minute); spareWrites(k0.AccessKeyID, k1.AccessKeyID) <= before; {
		if time.Now().After(deadline) {
			t.Fatal("no spare made after the grant: the filler was not waiting, the test proves nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkAdminCalls measures the admin calls vaults make, several at once, and
// reports their p50 and p99 (go test -run '^$' -bench AdminCalls ./internal/garagesim/).
func BenchmarkAdminCalls(bm *testing.B) {
	srv := testenv.S3(bm)
	cfg := garagesim.Config{AdminToken: testenv.Unique("admin-"), S3Endpoint: srv.Endpoint, S3AccessKey: srv.AccessKey,
		S3SecretKey: srv.SecretKey, S3Region: srv.Region}
	sim, err := garagesim.Start(context.Background(), cfg)
	if err != nil {
		bm.Fatal(err)
	}
	defer func() { _ = sim.Cleanup(context.Background()); sim.Close() }()
	client := garage.New(garage.Config{Endpoint: sim.URL(), Token: cfg.AdminToken, MaxAttempts: 1, Timeout: time.Minute})
	ctx := context.Background()
	var mu sync.Mutex
	took := map[string][]time.Duration{}
	timed := func(op string, fn func() error) {
		start := time.Now()
		if err := fn(); err != nil {
			bm.Errorf("%s: %v", op, err)
		}
		mu.Lock()
		took[op] = append(took[op], time.Since(start))
		mu.Unlock()
	}
	bm.ResetTimer()
	bm.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var bi *garage.BucketInfo
			var k *garage.KeyInfo
			timed("CreateBucket", func() (err error) {
				bi, err = client.CreateBucket(ctx, garage.CreateBucketParams{GlobalAlias: testenv.Unique("lat-")})
				return err
			})
			timed("CreateKey", func() (err error) {
				k, err = client.CreateKey(ctx, garage.CreateKeyParams{Name: "lat"})
				return err
			})
			if bi == nil || k == nil {
				return
			}
			timed("AllowBucketKey", func() error {
				_, err := client.AllowBucketKey(ctx, bi.ID, k.AccessKeyID, garage.PermRead|garage.PermWrite)
				return err
			})
			timed("GetBucketInfo", func() error { _, err := client.GetBucketInfo(ctx, garage.BucketLookup{ID: bi.ID}); return err })
			timed("GetKeyInfo", func() error { _, err := client.GetKeyInfo(ctx, garage.KeyLookup{ID: k.AccessKeyID}); return err })
		}
	})
	bm.StopTimer()
	for op, ds := range took {
		slices.Sort(ds)
		p50, p99 := ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
		bm.ReportMetric(float64(p50.Milliseconds()), op+"-p50-ms")
		bm.ReportMetric(float64(p99.Milliseconds()), op+"-p99-ms")
	}
}

// TestGrantsWriteMinIOOnlyWhenThePolicyChanges: the simulator remembers the
// canned policy it last wrote for a key, so a grant or denial that changes
// nothing (the reconciler re-granting the verifier key) makes no IAM write, and
// every change made through the simulator still reaches MinIO: read-only, then
// read-write, then nothing, then read-write again.
func TestGrantsWriteMinIOOnlyWhenThePolicyChanges(t *testing.T) {
	t.Parallel()
	b, g := setupGated(t)
	ctx := context.Background()
	bi := b.bucket(t)
	bucket := bi.GlobalAliases[0]
	k := b.key(t, garage.CreateKeyParams{Name: "cached"})
	s3 := b.s3As(t, k)
	policyWrites := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, c := range g.seen {
			if strings.HasSuffix(c, "add-canned-policy "+k.AccessKeyID) {
				n++
			}
		}
		return n
	}
	canWrite := func(want bool, when string) {
		t.Helper()
		err := put(ctx, s3, bucket, "x", 1)
		if (err == nil) != want {
			t.Fatalf("%s: write allowed = %v (err %v), want %v", when, err == nil, err, want)
		}
	}
	allow := func(p garage.Permission) {
		t.Helper()
		if _, err := b.client.AllowBucketKey(ctx, bi.ID, k.AccessKeyID, p); err != nil {
			t.Fatal(err)
		}
	}
	deny := func(p garage.Permission) {
		t.Helper()
		if _, err := b.client.DenyBucketKey(ctx, bi.ID, k.AccessKeyID, p); err != nil {
			t.Fatal(err)
		}
	}

	allow(garage.PermRead)
	canWrite(false, "read only")
	before := policyWrites()
	allow(garage.PermRead)
	deny(garage.PermOwner) // not held: nothing changes
	if n := policyWrites() - before; n != 0 {
		t.Errorf("%d MinIO policy writes for grants that change nothing", n)
	}
	allow(garage.PermWrite)
	canWrite(true, "read-write")
	deny(garage.PermRead | garage.PermWrite)
	canWrite(false, "everything denied")
	allow(garage.PermRead | garage.PermWrite)
	canWrite(true, "granted again")
	if n := policyWrites() - before; n != 3 {
		t.Errorf("%d MinIO policy writes for 3 changes", n)
	}
}
