package garagesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
)

// S3 actions granted per Garage permission flag (src/api/s3/router.rs
// authorization_type), as MinIO policy actions. s3:GetBucketLocation is
// granted with any flag: Garage answers it for any key with access, and S3
// clients ask for it before anything else.
var (
	readActions = []string{
		"s3:GetObject", "s3:GetObjectAttributes", "s3:GetObjectTagging", "s3:ListBucket",
		"s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:GetBucketVersioning",
		"s3:GetLifecycleConfiguration",
	}
	writeActions = []string{
		"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:PutObjectTagging",
		"s3:DeleteObjectTagging", "s3:PutLifecycleConfiguration",
	}
	ownerActions = []string{"s3:DeleteBucket"}
)

type policyStatement struct {
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

type policyDoc struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

// keyPolicy builds the canned policy of a key: one statement per bucket the
// key has permissions on. It returns nil when the key has none.
func (s *Sim) keyPolicy(k *simKey) []byte {
	doc := policyDoc{Version: "2012-10-17"}
	for _, b := range s.sortedBuckets() {
		p := b.perms[k.id]
		if !p.any() {
			continue
		}
		actions := []string{"s3:GetBucketLocation"}
		if p.read {
			actions = append(actions, readActions...)
		}
		if p.write {
			actions = append(actions, writeActions...)
		}
		if p.owner {
			actions = append(actions, ownerActions...)
		}
		doc.Statement = append(doc.Statement, policyStatement{
			Effect: "Allow", Action: actions,
			Resource: []string{"arn:aws:s3:::" + b.minioName, "arn:aws:s3:::" + b.minioName + "/*"},
		})
	}
	if len(doc.Statement) == 0 {
		return nil
	}
	out, _ := json.Marshal(doc)
	return out
}

// minioSyncPolicy makes the key's MinIO canned policy (named after the key)
// match its bucket permissions, attaching or removing it as needed.
func (s *Sim) minioSyncPolicy(ctx context.Context, k *simKey) error {
	doc := s.keyPolicy(k)
	assoc := madmin.PolicyAssociationReq{Policies: []string{k.id}, User: k.id}
	if doc == nil {
		if !k.policy {
			return nil
		}
		if _, err := s.admin.DetachPolicy(ctx, assoc); err != nil {
			return fmt.Errorf("detach MinIO policy of %s: %w", k.id, err)
		}
		k.policy = false
		if err := s.admin.RemoveCannedPolicy(ctx, k.id); err != nil {
			return fmt.Errorf("remove MinIO policy of %s: %w", k.id, err)
		}
		return nil
	}
	if err := s.admin.AddCannedPolicy(ctx, k.id, doc); err != nil {
		return fmt.Errorf("write MinIO policy of %s: %w", k.id, err)
	}
	if !k.policy {
		if _, err := s.admin.AttachPolicy(ctx, assoc); err != nil {
			return fmt.Errorf("attach MinIO policy to %s: %w", k.id, err)
		}
		k.policy = true
	}
	return nil
}

// minioCreateUser creates the MinIO user of a new key, disabled if the key
// is already expired.
func (s *Sim) minioCreateUser(ctx context.Context, k *simKey) error {
	if err := s.admin.AddUser(ctx, k.id, k.secret); err != nil {
		return fmt.Errorf("create MinIO user %s: %w", k.id, err)
	}
	return s.minioSyncExpiry(ctx, k)
}

// minioSyncExpiry disables the MinIO user of an expired key and re-enables
// it when its expiration moved to the future or was removed.
func (s *Sim) minioSyncExpiry(ctx context.Context, k *simKey) error {
	want := k.expired(s.now())
	if want == k.minioDisabled {
		return nil
	}
	status := madmin.AccountEnabled
	if want {
		status = madmin.AccountDisabled
	}
	if err := s.admin.SetUserStatus(ctx, k.id, status); err != nil {
		return fmt.Errorf("set MinIO user %s %s: %w", k.id, status, err)
	}
	k.minioDisabled = want
	s.log.Info("garagesim: key expiry applied in MinIO", slog.String("key", k.id), slog.Bool("disabled", want))
	return nil
}

// minioDeleteUser removes the MinIO user and canned policy of a key.
func (s *Sim) minioDeleteUser(ctx context.Context, k *simKey) error {
	if err := s.admin.RemoveUser(ctx, k.id); err != nil {
		return fmt.Errorf("remove MinIO user %s: %w", k.id, err)
	}
	if k.policy {
		if err := s.admin.RemoveCannedPolicy(ctx, k.id); err != nil {
			return fmt.Errorf("remove MinIO policy of %s: %w", k.id, err)
		}
		k.policy = false
	}
	return nil
}

// expiryLoop applies key expirations in MinIO as time passes.
func (s *Sim) expiryLoop(ctx context.Context) {
	defer close(s.loopDone)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		for _, k := range s.keys {
			if err := s.minioSyncExpiry(ctx, k); err != nil && ctx.Err() == nil {
				s.log.Warn("garagesim: apply key expiry", slog.String("error", err.Error()))
			}
		}
		s.mu.Unlock()
	}
}

func (s *Sim) minioMakeBucket(ctx context.Context, name string) *apiError {
	err := s.s3.MakeBucket(ctx, name, minio.MakeBucketOptions{})
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		// Another simulator sharing this MinIO holds the name: Garage's global
		// alias namespace is per cluster, but MinIO's is shared.
		return &apiError{http.StatusConflict, "BucketAlreadyExists", "Bucket already exists in the shared MinIO: " + name}
	case "InvalidBucketName":
		return invalidBucketName(name)
	}
	return internalError(fmt.Errorf("create MinIO bucket %s: %w", name, err))
}

// minioRemoveBucket removes an empty MinIO bucket; a bucket holding objects
// gives 409 BucketNotEmpty like Garage.
func (s *Sim) minioRemoveBucket(ctx context.Context, name string) *apiError {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.s3.ListObjects(lctx, name, minio.ListObjectsOptions{Recursive: true, MaxKeys: 1}) {
		if obj.Err != nil {
			if minio.ToErrorResponse(obj.Err).Code == "NoSuchBucket" {
				return nil
			}
			return internalError(fmt.Errorf("list MinIO bucket %s: %w", name, obj.Err))
		}
		return &apiError{http.StatusConflict, "BucketNotEmpty", "Bucket is not empty: " + name}
	}
	err := s.s3.RemoveBucket(ctx, name)
	switch minio.ToErrorResponse(err).Code {
	case "":
		if err == nil {
			return nil
		}
	case "NoSuchBucket":
		return nil
	case "BucketNotEmpty":
		return &apiError{http.StatusConflict, "BucketNotEmpty", "Bucket is not empty: " + name}
	}
	return internalError(fmt.Errorf("remove MinIO bucket %s: %w", name, err))
}

// minioSetQuota sets (maxSize non-nil) or clears MinIO's hard quota. Garage
// accepts maxSize 0 (nothing fits); MinIO reads 0 as "no quota", so 0 is
// set as 1 byte.
func (s *Sim) minioSetQuota(ctx context.Context, name string, maxSize *int64) error {
	q := &madmin.BucketQuota{Type: madmin.HardQuota}
	if maxSize != nil {
		q.Size = uint64(max(*maxSize, 1))
	}
	if err := s.admin.SetBucketQuota(ctx, name, q); err != nil {
		return fmt.Errorf("set MinIO quota of %s: %w", name, err)
	}
	return nil
}

type bucketUsage struct{ objects, bytes int64 }

type usageCache struct {
	at      time.Time
	buckets map[string]bucketUsage
}

// bucketUsage returns MinIO's last scanner figures for a bucket, reusing an
// answer younger than UsageTTL. Usage lags writes by a scanner cycle.
func (s *Sim) bucketUsage(ctx context.Context, name string) (bucketUsage, bool) {
	if s.usage.buckets == nil || time.Since(s.usage.at) > s.cfg.UsageTTL {
		info, err := s.admin.DataUsageInfo(ctx)
		if err != nil {
			s.log.Warn("garagesim: MinIO data usage", slog.String("error", err.Error()))
			if s.usage.buckets == nil {
				return bucketUsage{}, false
			}
		} else {
			s.usage.at = time.Now()
			s.usage.buckets = map[string]bucketUsage{}
			for n, u := range info.BucketsUsage {
				s.usage.buckets[n] = bucketUsage{objects: int64(u.ObjectsCount), bytes: int64(u.Size)}
			}
		}
	}
	u, ok := s.usage.buckets[name]
	return u, ok
}

// totalUsedBytes sums the cached usage of this simulator's buckets, without
// asking MinIO.
func (s *Sim) totalUsedBytes() int64 {
	var n int64
	for _, b := range s.buckets {
		n += s.usage.buckets[b.minioName].bytes
	}
	return n
}

// Cleanup removes from MinIO everything this simulator created: its buckets
// (with their objects), users and policies. It also forgets them. Tests
// sharing one MinIO call it from t.Cleanup.
func (s *Sim) Cleanup(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for id, b := range s.buckets {
		err := s.s3.RemoveBucketWithOptions(ctx, b.minioName, minio.RemoveBucketOptions{ForceDelete: true})
		if err != nil && minio.ToErrorResponse(err).Code != "NoSuchBucket" {
			errs = append(errs, fmt.Errorf("remove MinIO bucket %s: %w", b.minioName, err))
			continue
		}
		delete(s.buckets, id)
	}
	for id, k := range s.keys {
		if err := s.minioDeleteUser(ctx, k); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.keys, id)
	}
	return errors.Join(errs...)
}
