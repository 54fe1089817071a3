package garage_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/testenv"
)

const secretToken = "s3cr3t-admin-token-never-shown"

// fakeGarage answers with a scripted sequence of statuses (then 200 with
// body) and records what it received.
type fakeGarage struct {
	srv      *httptest.Server
	calls    atomic.Int32
	mu       sync.Mutex
	bodies   []string
	statuses []int // answers for the first calls; -1 closes the connection
	body     string
}

func newFake(t *testing.T, body string, statuses ...int) *fakeGarage {
	f := &fakeGarage{statuses: statuses, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.calls.Add(1))
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+secretToken {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"code":"AccessDenied","message":"Forbidden","region":"garage","path":"` + r.URL.Path + `"}`))
			return
		}
		if n <= len(f.statuses) {
			st := f.statuses[n-1]
			if st == -1 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			_, _ = w.Write([]byte(`{"code":"` + codeOf(st) + `","message":"scripted","region":"garage","path":"` + r.URL.Path + `"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(f.body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func codeOf(status int) string {
	return map[int]string{400: "InvalidRequest", 403: "AccessDenied", 404: "NoSuchBucket", 409: "BucketNotEmpty", 500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable"}[status]
}

func fastClient(endpoint string, log *slog.Logger) *garage.Client {
	return garage.New(garage.Config{
		Endpoint: endpoint, Token: secretToken, Timeout: 2 * time.Second, MaxAttempts: 3,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, Logger: log,
	})
}

const healthBody = `{"status":"healthy","knownNodes":3,"connectedNodes":3,"storageNodes":3,"storageNodesUp":3,"partitions":256,"partitionsQuorum":256,"partitionsAllOk":256}`

const bucketBody = `{"id":"b","created":"2026-01-01T00:00:00Z","globalAliases":["b"],"websiteAccess":false,"keys":[],"objects":0,"bytes":0,"unfinishedUploads":0,"unfinishedMultipartUploads":0,"unfinishedMultipartUploadParts":0,"unfinishedMultipartUploadBytes":0,"quotas":{"maxSize":null,"maxObjects":null}}`

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	size := int64(5)
	cases := []struct {
		name      string
		statuses  []int
		call      func(c *garage.Client) error
		wantCalls int32
		wantErr   error
	}{
		{"read retried on 503", []int{503, 503}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 3, nil},
		{"read retried on dropped connection", []int{-1}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 2, nil},
		{"read retried on 502", []int{502}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 2, nil},
		{"read attempts bounded", []int{503, 503, 503, 503}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 3, garage.ErrUnavailable},
		{"read not retried on 500", []int{500}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 1, nil},
		{"read not retried on 404", []int{404}, func(c *garage.Client) error { _, err := c.GetClusterHealth(ctx); return err }, 1, garage.ErrNotFound},
		{"idempotent mutation retried on 503", []int{503}, func(c *garage.Client) error {
			_, err := c.SetBucketQuotas(ctx, "b", garage.Quotas{MaxSize: &size})
			return err
		}, 2, nil},
		{"mutation not retried on dropped connection", []int{-1}, func(c *garage.Client) error {
			_, err := c.SetBucketQuotas(ctx, "b", garage.Quotas{MaxSize: &size})
			return err
		}, 1, garage.ErrUnavailable},
		{"mutation not retried on 500", []int{500}, func(c *garage.Client) error {
			_, err := c.AllowBucketKey(ctx, "b", "k", garage.PermRead)
			return err
		}, 1, nil},
		{"CreateKey not retried on 503", []int{503}, func(c *garage.Client) error {
			_, err := c.CreateKey(ctx, garage.CreateKeyParams{Name: "x"})
			return err
		}, 1, garage.ErrUnavailable},
		{"ApplyClusterLayout not retried on 503", []int{503}, func(c *garage.Client) error {
			_, err := c.ApplyClusterLayout(ctx, 2)
			return err
		}, 1, garage.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := healthBody
			if !strings.Contains(tc.name, "read") {
				body = bucketBody
			}
			f := newFake(t, body, tc.statuses...)
			err := tc.call(fastClient(f.srv.URL, nil))
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d (err %v)", got, tc.wantCalls, err)
			}
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && int(tc.wantCalls) > len(tc.statuses) && err != nil:
				t.Errorf("err = %v, want success", err)
			}
		})
	}
}

func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	f := newFake(t, healthBody, 503, 503, 503, 503, 503, 503)
	c := garage.New(garage.Config{Endpoint: f.srv.URL, Token: secretToken, MaxAttempts: 6, RetryBaseDelay: time.Second, RetryMaxDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetClusterHealth(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, garage.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v despite the context deadline", d)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		status int
		want   []error
		not    []error
	}{
		{404, []error{garage.ErrNotFound}, []error{garage.ErrConflict, garage.ErrUnavailable}},
		{409, []error{garage.ErrConflict, garage.ErrBucketNotEmpty}, []error{garage.ErrNotFound, garage.ErrBucketAlreadyExists}},
		{403, []error{garage.ErrAccessDenied}, []error{garage.ErrNotFound}},
		{400, []error{garage.ErrInvalidRequest}, []error{garage.ErrConflict}},
		{503, []error{garage.ErrUnavailable}, []error{garage.ErrInvalidRequest}},
	}
	for _, tc := range cases {
		f := newFake(t, "", tc.status)
		c := garage.New(garage.Config{Endpoint: f.srv.URL, Token: secretToken, MaxAttempts: 1})
		err := c.DeleteBucket(ctx, "abc")
		for _, w := range tc.want {
			if !errors.Is(err, w) {
				t.Errorf("%d: %v does not match %v", tc.status, err, w)
			}
		}
		for _, w := range tc.not {
			if errors.Is(err, w) {
				t.Errorf("%d: %v matches %v", tc.status, err, w)
			}
		}
		var api *garage.APIError
		if !errors.As(err, &api) || api.Status != tc.status || api.Code != codeOf(tc.status) || api.Message != "scripted" ||
			api.Path != "/v2/DeleteBucket" || api.Operation != "DeleteBucket" || api.Region != "garage" {
			t.Errorf("%d: APIError = %+v", tc.status, api)
		}
		if garage.IsTransport(err) {
			t.Errorf("%d: an answer from Garage reported as a transport error", tc.status)
		}
		if !strings.Contains(err.Error(), "DeleteBucket") || !strings.Contains(err.Error(), f.srv.URL) {
			t.Errorf("%d: error %q does not name operation and endpoint", tc.status, err)
		}
	}
}

func TestTimeoutAndUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// A listener that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	c := garage.New(garage.Config{Endpoint: "http://" + ln.Addr().String(), Token: secretToken, Timeout: 150 * time.Millisecond,
		MaxAttempts: 2, RetryBaseDelay: 10 * time.Millisecond})
	start := time.Now()
	_, err = c.GetClusterStatus(ctx)
	elapsed := time.Since(start)
	if elapsed > 2*time.Second {
		t.Errorf("silent server: call took %v", elapsed)
	}
	if !errors.Is(err, garage.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !garage.IsTransport(err) {
		t.Errorf("silent server: err = %v", err)
	}
	if err != nil && (!strings.Contains(err.Error(), "GetClusterStatus") || !strings.Contains(err.Error(), ln.Addr().String()) || strings.Contains(err.Error(), secretToken)) {
		t.Errorf("silent server: error text %q", err)
	}

	// A closed port: a mutation fails at once, not retried.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	c = garage.New(garage.Config{Endpoint: "http://user:pw@" + addr, Token: secretToken, Timeout: time.Second})
	start = time.Now()
	err = c.DeleteKey(ctx, "GK1")
	if time.Since(start) > time.Second || !garage.IsTransport(err) || !errors.Is(err, garage.ErrUnavailable) {
		t.Errorf("closed port: err = %v after %v", err, time.Since(start))
	}
	if err != nil && (!strings.Contains(err.Error(), "DeleteKey") || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "pw")) {
		t.Errorf("closed port: error text %q", err)
	}
}

func TestTokenNeverLoggedNorInErrors(t *testing.T) {
	t.Parallel()
	var logs testenv.Logs
	log := testenv.LoggerTo(&logs, slog.LevelDebug)
	f := newFake(t, healthBody, 503, 404)
	c := fastClient(f.srv.URL, log)
	_, err1 := c.GetClusterHealth(context.Background())
	_, err2 := c.GetClusterHealth(context.Background())
	bad := garage.New(garage.Config{Endpoint: f.srv.URL, Token: "another-" + secretToken, Logger: log})
	_, err3 := bad.ListKeys(context.Background())
	if !errors.Is(err3, garage.ErrAccessDenied) {
		t.Errorf("wrong token: %v", err3)
	}
	for _, s := range []string{logs.String(), errString(err1), errString(err2), errString(err3)} {
		if strings.Contains(s, secretToken) {
			t.Fatalf("token leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "GetClusterHealth") {
		t.Errorf("nothing logged: %s", logs.String())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRequestShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t, bucketBody)
	c := fastClient(f.srv.URL, nil)
	size := int64(1000)
	if _, err := c.SetBucketQuotas(ctx, "b", garage.Quotas{MaxSize: &size}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllowBucketKey(ctx, "b", "k", garage.PermRead); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllowBucketKey(ctx, "b", "k", 0); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("empty permission set: %v", err)
	}
	if _, err := c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{Roles: []garage.RoleChange{{ID: "n", Tags: []string{}}}}); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("role without zone: %v", err)
	}
	if _, err := c.UpdateClusterLayout(ctx, garage.UpdateLayoutParams{Roles: []garage.RoleChange{garage.StorageRole("n", "z", 10)}}); !errors.Is(err, garage.ErrInvalidRequest) {
		t.Errorf("capacity below 1024: %v", err)
	}
	f.mu.Lock()
	bodies := f.bodies
	f.mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("sent %d requests, want 2 (invalid ones must not be sent): %q", len(bodies), bodies)
	}
	var quota map[string]map[string]any
	_ = json.Unmarshal([]byte(bodies[0]), &quota)
	if q, ok := quota["quotas"]; !ok || len(q) != 2 || q["maxObjects"] != nil || q["maxSize"] != float64(1000) {
		t.Errorf("quota body = %s", bodies[0])
	}
	if _, has := quota["quotas"]["maxObjects"]; !has {
		t.Errorf("maxObjects not sent: %s", bodies[0])
	}
	if bodies[1] != `{"bucketId":"b","accessKeyId":"k","permissions":{"read":true,"write":false,"owner":false}}` {
		t.Errorf("allow body = %s", bodies[1])
	}
	gw, _ := json.Marshal(garage.GatewayRole("n", "z"))
	if string(gw) != `{"id":"n","zone":"z","capacity":null,"tags":[]}` {
		t.Errorf("gateway role = %s", gw)
	}
}

func TestHealthDecodesBothFieldNames(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		healthBody,
		strings.Replace(healthBody, "storageNodesUp", "storageNodesOk", 1),
	} {
		var h garage.ClusterHealth
		if err := json.Unmarshal([]byte(body), &h); err != nil || h.StorageNodesUp != 3 || h.PartitionsAllOK != 256 {
			t.Errorf("decode %s = %+v, %v", body, h, err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []garage.Config{{Token: "x"}, {Endpoint: "ftp://h", Token: "x"}, {Endpoint: "http://h"}} {
		c := garage.New(cfg)
		if c.Check() == nil {
			t.Errorf("%+v accepted", cfg)
		}
		if _, err := c.ListKeys(context.Background()); !errors.Is(err, garage.ErrInvalidRequest) || !strings.Contains(err.Error(), "ListKeys") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
