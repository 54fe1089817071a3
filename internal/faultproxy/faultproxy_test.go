package faultproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestFaultsAgainstRealMinIO: through the proxy a real S3 client reads real objects, and
// each rule injects exactly its fault on exactly the requests it matches.
func TestFaultsAgainstRealMinIO(t *testing.T) {
	t.Parallel()
	s3 := testenv.S3(t)
	p, err := Start(s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	cl, err := minio.New(p.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
		Region: s3.Region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Unique("fp-")
	// A MinIO that has just started may still say "Server not initialized yet".
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "not initialized") || time.Now().After(deadline) {
			t.Fatalf("make bucket through the proxy (signature kept valid): %v", err)
		}
	}
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	for _, key := range []string{"repo/data/ab/pack", "repo/config"} {
		if _, err := cl.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) ([]byte, error) {
		o, err := cl.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		defer o.Close()
		return io.ReadAll(o)
	}
	if b, err := get("repo/data/ab/pack"); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("pass-through: %v", err)
	}

	// 503 on /data/ after one request went through, twice; other paths untouched.
	remove := p.Add(Rule{Kind: Unavailable, Method: "GET", PathContains: "/data/", After: 1, Times: 2})
	if _, err := get("repo/data/ab/pack"); err != nil {
		t.Fatalf("first matching request should pass: %v", err)
	}
	if _, err := get("repo/config"); err != nil {
		t.Fatalf("a path the rule does not match: %v", err)
	}
	for range 2 {
		_, err := get("repo/data/ab/pack")
		if resp := minio.ToErrorResponse(err); resp.StatusCode != 503 || resp.Code != "ServiceUnavailable" {
			t.Fatalf("want a 503 ServiceUnavailable, got %v (%+v)", err, resp)
		}
	}
	if _, err := get("repo/data/ab/pack"); err != nil {
		t.Fatalf("after Times faults the rule is spent: %v", err)
	}
	remove()
	if p.Faults(Unavailable) != 2 {
		t.Fatalf("faults counted: %d", p.Faults(Unavailable))
	}

	p.Add(Rule{Kind: Quorum, PathContains: "/config", Times: 1})
	if _, err := get("repo/config"); err == nil || !strings.Contains(err.Error(), "Could not reach quorum") {
		t.Fatalf("quorum: %v", err)
	}
	p.Clear()

	p.Add(Rule{Kind: Reset, PathContains: "/data/"}) // every time: the client retries resets
	if _, err := get("repo/data/ab/pack"); !errors.Is(err, syscall.ECONNRESET) && (err == nil || !strings.Contains(err.Error(), "reset")) {
		t.Fatalf("reset: %v", err)
	}
	p.Clear()

	p.Add(Rule{Kind: Truncate, PathContains: "/data/", Times: 1})
	if b, err := get("repo/data/ab/pack"); err == nil || len(b) >= len(data) {
		t.Fatalf("truncate: %d bytes, %v", len(b), err)
	} else if !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("truncate should end in an unexpected EOF: %v", err)
	}
	p.Clear()

	p.Add(Rule{Kind: Corrupt, PathContains: "/data/", Times: 1})
	if b, err := get("repo/data/ab/pack"); err != nil || len(b) != len(data) || bytes.Equal(b, data) {
		t.Fatalf("corrupt: %d bytes, equal %v, %v", len(b), bytes.Equal(b, data), err)
	}
	if b, err := get("repo/data/ab/pack"); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("after the corruption rule is spent the object reads intact: %v", err)
	}
}
