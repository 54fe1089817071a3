package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials reach a vault with its read-only verifier key.
type Credentials struct {
	Endpoint        string // the island's S3 URL, e.g. http://127.0.0.1:3900
	Region          string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	// transport, when set (the Service's), keeps connections to the island open between
	// the requests of a test and between tests: a test's look at the vault is several
	// small requests, each of which would otherwise open a connection (and its TLS) anew.
	transport *http.Transport
}

// resticURL is the restic repository URL of path in the vault.
func (c Credentials) resticURL(prefix string) string {
	return "s3:" + strings.TrimRight(c.Endpoint, "/") + "/" + c.Bucket + "/" + prefix
}

// errBlind is an operational failure of the object listing; errBlindAccess means the key or
// the repository path is wrong (the verifier could not look, the data was not judged).
type blindError struct {
	access bool
	err    error
}

func (e *blindError) Error() string { return e.err.Error() }
func (e *blindError) Unwrap() error { return e.err }

var snapshotObject = regexp.MustCompile(`^[0-9a-f]{64}$`)

func s3Client(c Credentials) (*minio.Client, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		return nil, &blindError{err: fmt.Errorf("island S3 endpoint %q is not a URL", c.Endpoint)}
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, ""),
		Secure: u.Scheme == "https", Region: c.Region, MaxRetries: 2,
	}
	if c.transport != nil { // a nil *http.Transport in the interface would not be nil
		opts.Transport = c.transport
	}
	cl, err := minio.New(u.Host, opts)
	if err != nil {
		return nil, &blindError{err: err}
	}
	cl.SetAppInfo("archipelago-verifier", "1") // the island's logs tell our reads from restic's
	return cl, nil
}

// probe checks, quickly and with the verifier key, that the island answers and that a
// repository exists at prefix (its config object), before restic (which retries an
// unreachable server for many minutes) is run.
func probe(ctx context.Context, c Credentials, prefix string) error {
	cl, err := s3Client(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cl.StatObject(ctx, c.Bucket, path.Join(prefix, "config"), minio.StatObjectOptions{}); err != nil {
		return classifyS3(fmt.Errorf("read %s/config: %w", prefix, err))
	}
	return nil
}

// listSnapshotObjects lists the objects under <prefix>/snapshots/ (their names are the
// snapshot ids) with their upload times, and checks the repository's config object exists.
func listSnapshotObjects(ctx context.Context, c Credentials, prefix string) (map[string]time.Time, error) {
	if err := probe(ctx, c, prefix); err != nil {
		return nil, err
	}
	cl, err := s3Client(c)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for obj := range cl.ListObjects(ctx, c.Bucket, minio.ListObjectsOptions{Prefix: path.Join(prefix, "snapshots") + "/", Recursive: true}) {
		if obj.Err != nil {
			return nil, classifyS3(fmt.Errorf("list %s/snapshots: %w", prefix, obj.Err))
		}
		name := path.Base(obj.Key)
		if snapshotObject.MatchString(name) {
			out[name] = obj.LastModified.UTC()
		}
	}
	return out, nil
}

// countLockObjects counts the objects under <prefix>/locks/.
func countLockObjects(ctx context.Context, c Credentials, prefix string) (int, error) {
	cl, err := s3Client(c)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	for obj := range cl.ListObjects(ctx, c.Bucket, minio.ListObjectsOptions{Prefix: path.Join(prefix, "locks") + "/", Recursive: true}) {
		if obj.Err != nil {
			return 0, classifyS3(fmt.Errorf("list %s/locks: %w", prefix, obj.Err))
		}
		n++
	}
	return n, nil
}

func classifyS3(err error) error {
	if resp := minio.ToErrorResponse(errors.Unwrap(err)); resp.Code != "" {
		switch resp.Code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "NoSuchKey":
			return &blindError{access: true, err: err}
		}
	}
	return &blindError{err: err}
}
