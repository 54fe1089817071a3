package garagesim

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/secure-io/sio-go"
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

// unlocked runs fn without s.mu (which the caller holds), so that a slow
// MinIO call does not hold up every other admin call of the simulator.
func (s *Sim) unlocked(fn func()) {
	s.mu.Unlock()
	defer s.mu.Lock()
	fn()
}

// minioSyncPolicy makes the key's MinIO canned policy (named after the key)
// match its bucket permissions, attaching or removing it as needed. The
// caller holds s.mu; the MinIO calls are made without it, under the key's own
// sync lock, and the policy is computed inside that lock so that concurrent
// changes of one key end with MinIO holding the latest permissions.
func (s *Sim) minioSyncPolicy(ctx context.Context, k *simKey) error {
	var err error
	s.unlocked(func() {
		k.sync.Lock()
		defer k.sync.Unlock()
		s.mu.Lock()
		doc, attached, written := s.keyPolicy(k), k.policy, k.written
		s.mu.Unlock()
		if doc == nil {
			doc = noAccessPolicy
		}
		if attached && written != nil && bytes.Equal(doc, written) {
			return // MinIO already holds it: no IAM write
		}
		defer s.requestIAMWrite()()
		attached, err = s.minioWritePolicy(ctx, k.id, doc, attached)
		s.mu.Lock()
		k.policy = attached
		if k.written = doc; err != nil {
			k.written = nil // unknown: written again next time
		}
		s.mu.Unlock()
	})
	return err
}

// minioWritePolicy writes the canned policy of a key and returns whether it is
// attached to the key's MinIO user. The policy is attached once, when the user is
// created, so a change of permissions is one unencrypted MinIO call.
func (s *Sim) minioWritePolicy(ctx context.Context, id string, doc []byte, attached bool) (bool, error) {
	if err := s.admin.AddCannedPolicy(ctx, id, doc); err != nil {
		return attached, fmt.Errorf("write MinIO policy of %s: %w", id, err)
	}
	if !attached {
		// The unencrypted form of AttachPolicy (which madmin encrypts with Argon2id).
		if err := s.admin.SetPolicy(ctx, id, id, false); err != nil {
			return false, fmt.Errorf("attach MinIO policy to %s: %w", id, err)
		}
	}
	return true, nil
}

// requestIAMWrite marks an IAM write made for an admin call until the returned
// function is called. MinIO makes IAM writes one at a time; the spare-key filler
// waits while admin calls have writes in flight, so that a call queues behind at
// most one of the filler's writes instead of a whole spare user.
func (s *Sim) requestIAMWrite() func() {
	s.iamRequests.Add(1)
	return func() { s.iamRequests.Add(-1) }
}

// waitIAMIdle waits until no admin call has an IAM write in flight (or ctx ends).
func (s *Sim) waitIAMIdle(ctx context.Context) {
	for s.iamRequests.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// noAccessPolicy is the canned policy of a key without permissions: MinIO needs a
// statement, and this one names a bucket that cannot exist.
var noAccessPolicy = []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation"],` +
	`"Resource":["arn:aws:s3:::garagesim-no-access-"]}]}`)

// minioCreateUser creates the MinIO user of a new key (not yet visible to other
// calls), disabled if the key is already expired. The caller holds s.mu; the MinIO
// calls are made without it.
//
// A spare (made ahead, off any admin call) also gets its canned policy attached,
// granting nothing yet, so that the key's first grant is one IAM write; a user made
// for a CreateKey that found no spare gets none (a MinIO user without a policy is
// refused everything), so that CreateKey waits for one IAM write instead of three,
// and its first grant writes and attaches the policy.
//
// madmin's AddUser and AttachPolicy encrypt their request with Argon2id (64 MiB, behind
// one process-wide mutex): seconds per call on a loaded machine or under the race
// detector, which made CreateKey hit clients' timeouts. The user is created with the
// PBKDF2 form MinIO also accepts, and the policy set with the unencrypted call.
func (s *Sim) minioCreateUser(ctx context.Context, k *simKey, spare bool) error {
	var err error
	s.unlocked(func() {
		if !spare {
			defer s.requestIAMWrite()()
			if err = s.minioAddUser(ctx, k.id, k.secret); err != nil {
				err = fmt.Errorf("create MinIO user %s: %w", k.id, err)
			}
			return
		}
		// A spare gives way to the admin calls' IAM writes.
		s.waitIAMIdle(ctx)
		if err = s.admin.AddCannedPolicy(ctx, k.id, noAccessPolicy); err != nil {
			err = fmt.Errorf("write MinIO policy of %s: %w", k.id, err)
			return
		}
		s.waitIAMIdle(ctx)
		if err = s.minioAddUser(ctx, k.id, k.secret); err != nil {
			err = fmt.Errorf("create MinIO user %s: %w", k.id, err)
			return
		}
		s.waitIAMIdle(ctx)
		if err = s.admin.SetPolicy(ctx, k.id, k.id, false); err != nil {
			err = fmt.Errorf("attach MinIO policy to %s: %w", k.id, err)
		}
	})
	if err != nil {
		return err
	}
	if spare {
		k.policy, k.written = true, noAccessPolicy
	}
	return s.minioSyncExpiry(ctx, k)
}

// minioAddUser is madmin's AddUser with the request encrypted by PBKDF2-SHA256 and
// AES-256-GCM (madmin's FIPS format, which MinIO always decrypts) instead of Argon2id.
func (s *Sim) minioAddUser(ctx context.Context, accessKey, secretKey string) error {
	plain, err := json.Marshal(madmin.AddOrUpdateUserReq{SecretKey: secretKey, Status: madmin.AccountEnabled})
	if err != nil {
		return err
	}
	body, err := encryptPBKDF2(s.cfg.S3SecretKey, plain)
	if err != nil {
		return err
	}
	resp, err := s.admin.ExecuteMethod(ctx, http.MethodPut, madmin.RequestData{RelPath: "/v3/add-user",
		QueryValues: url.Values{"accessKey": {accessKey}}, Content: body})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("MinIO add-user: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// encryptPBKDF2 writes madmin's encrypted format with its PBKDF2 key derivation:
// salt (32) | algorithm 0x02 | nonce (8) | AES-256-GCM sio stream.
func encryptPBKDF2(password string, data []byte) ([]byte, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, 8192, 32)
	if err != nil {
		return nil, err
	}
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, stream.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(salt)
	out.WriteByte(0x02)
	out.Write(nonce)
	w := stream.EncryptWriter(&out, nonce, nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// minioSyncExpiry disables the MinIO user of an expired key and re-enables
// it when its expiration moved to the future or was removed. The caller
// holds s.mu; the MinIO call is made without it, under the key's sync lock.
func (s *Sim) minioSyncExpiry(ctx context.Context, k *simKey) error {
	if k.expired(s.now()) == k.minioDisabled {
		return nil
	}
	var err error
	s.unlocked(func() {
		k.sync.Lock()
		defer k.sync.Unlock()
		s.mu.Lock()
		want, have := k.expired(s.now()), k.minioDisabled
		s.mu.Unlock()
		if want == have {
			return
		}
		status := madmin.AccountEnabled
		if want {
			status = madmin.AccountDisabled
		}
		if err = s.admin.SetUserStatus(ctx, k.id, status); err != nil {
			err = fmt.Errorf("set MinIO user %s %s: %w", k.id, status, err)
			return
		}
		s.mu.Lock()
		k.minioDisabled = want
		s.mu.Unlock()
		s.log.Info("garagesim: key expiry applied in MinIO", slog.String("key", k.id), slog.Bool("disabled", want))
	})
	return err
}

// minioDeleteUser removes the MinIO user and canned policy of a key. The
// caller holds s.mu; the MinIO calls are made without it.
func (s *Sim) minioDeleteUser(ctx context.Context, k *simKey) error {
	var err error
	s.unlocked(func() {
		k.sync.Lock()
		defer k.sync.Unlock()
		if err = s.admin.RemoveUser(ctx, k.id); err != nil {
			err = fmt.Errorf("remove MinIO user %s: %w", k.id, err)
			return
		}
		s.mu.Lock()
		attached := k.policy
		k.written = nil
		s.mu.Unlock()
		if !attached {
			return
		}
		if err = s.admin.RemoveCannedPolicy(ctx, k.id); err != nil {
			err = fmt.Errorf("remove MinIO policy of %s: %w", k.id, err)
			return
		}
		s.mu.Lock()
		k.policy = false
		s.mu.Unlock()
	})
	return err
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
		now := s.now()
		var due []*simKey
		for _, k := range s.keys {
			if k.expired(now) != k.minioDisabled {
				due = append(due, k)
			}
		}
		for _, k := range due {
			if err := s.minioSyncExpiry(ctx, k); err != nil && ctx.Err() == nil {
				s.log.Warn("garagesim: apply key expiry", slog.String("error", err.Error()))
			}
		}
		s.mu.Unlock()
	}
}

// minioMakeBucket creates a MinIO bucket. The caller holds s.mu; the MinIO
// call is made without it.
func (s *Sim) minioMakeBucket(ctx context.Context, name string) *apiError {
	var err error
	s.unlocked(func() { err = s.s3.MakeBucket(ctx, name, minio.MakeBucketOptions{}) })
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
// gives 409 BucketNotEmpty like Garage. The caller holds s.mu; the MinIO
// calls are made without it.
func (s *Sim) minioRemoveBucket(ctx context.Context, name string) (aerr *apiError) {
	s.unlocked(func() { aerr = s.minioRemoveBucketUnlocked(ctx, name) })
	return aerr
}

func (s *Sim) minioRemoveBucketUnlocked(ctx context.Context, name string) *apiError {
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
// set as 1 byte. The caller holds s.mu; the MinIO call is made without it.
func (s *Sim) minioSetQuota(ctx context.Context, name string, maxSize *int64) error {
	q := &madmin.BucketQuota{Type: madmin.HardQuota}
	if maxSize != nil {
		q.Size = uint64(max(*maxSize, 1))
	}
	var err error
	s.unlocked(func() { err = s.admin.SetBucketQuota(ctx, name, q) })
	if err != nil {
		return fmt.Errorf("set MinIO quota of %s: %w", name, err)
	}
	return nil
}

type bucketUsage struct{ objects, bytes int64 }

type usageCache struct {
	at      time.Time
	buckets map[string]bucketUsage
}

// bucketUsage returns MinIO's last scanner figures for a bucket from the
// cache, never waiting for MinIO: when the cache is older than UsageTTL it
// asks usageLoop to refresh it, and answers with what it has. Usage lags
// writes by a scanner cycle anyway. The caller holds s.mu.
func (s *Sim) bucketUsage(_ context.Context, name string) (bucketUsage, bool) {
	if s.usage.buckets == nil || time.Since(s.usage.at) > s.cfg.UsageTTL {
		select {
		case s.usageWanted <- struct{}{}:
		default: // a refresh is already asked for
		}
	}
	u, ok := s.usage.buckets[name]
	return u, ok
}

// usageLoop refreshes the usage cache from MinIO's data-usage answer when
// bucketUsage finds it stale, without holding s.mu while MinIO answers.
func (s *Sim) usageLoop(ctx context.Context) {
	defer close(s.usageDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.usageWanted:
		}
		info, err := s.admin.DataUsageInfo(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("garagesim: MinIO data usage", slog.String("error", err.Error()))
			}
			continue
		}
		fresh := make(map[string]bucketUsage, len(info.BucketsUsage))
		for n, u := range info.BucketsUsage {
			fresh[n] = bucketUsage{objects: int64(u.ObjectsCount), bytes: int64(u.Size)}
		}
		s.mu.Lock()
		s.usage.at, s.usage.buckets = time.Now(), fresh
		s.mu.Unlock()
	}
}

// totalUsedBytes sums the cached usage of this simulator's buckets, without
// asking MinIO.
func (s *Sim) totalUsedBytes() int64 {
	if s.usage.buckets == nil || time.Since(s.usage.at) > s.cfg.UsageTTL {
		select {
		case s.usageWanted <- struct{}{}:
		default:
		}
	}
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
	s.stopSpares(ctx)
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
	for _, k := range s.sortedKeys() { // a copy: minioDeleteUser releases s.mu
		id := k.id
		if err := s.minioDeleteUser(ctx, k); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.keys, id)
	}
	return errors.Join(errs...)
}
