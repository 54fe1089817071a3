package garagesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
)

// Lifecycle rules, as Garage has them: a key with write permission sets them through S3
// (PutBucketLifecycleConfiguration), the admin API reports them in GetBucketInfo
// (lifecycleRules) and replaces them with UpdateBucket (an empty array clears them). Only
// Expiration and AbortIncompleteMultipartUpload exist; Garage's lifecycle worker applies
// them once a day at midnight (RunLifecycle here).
//
// The rules live in MinIO's lifecycle configuration of the bucket, so that what a member
// key sets over S3 is what the admin API reports. MinIO refuses a rule with only
// AbortIncompleteMultipartUpload (and ignores that element), so such a rule is stored as
// a rule whose ID carries the days ("garagesim:abort=<days>:<ID>") and whose only action
// is a NoncurrentVersionExpiration, which has no effect on an unversioned bucket. A
// member's S3 PUT replaces the whole configuration, Garage's abort rules included, as on
// Garage.

// lifecycleRuleWire is Garage's lifecycle.Rule (S3 XML PascalCase names).
type lifecycleRuleWire struct {
	ID                             *string                `json:"ID,omitempty"`
	Status                         string                 `json:"Status"`
	Filter                         *lifecycleFilterWire   `json:"Filter,omitempty"`
	Expiration                     *lifecycleExpWire      `json:"Expiration,omitempty"`
	AbortIncompleteMultipartUpload *lifecycleAbortMpuWire `json:"AbortIncompleteMultipartUpload,omitempty"`
}

type lifecycleFilterWire struct {
	And                   *lifecycleFilterWire `json:"And,omitempty"`
	Prefix                *string              `json:"Prefix,omitempty"`
	ObjectSizeGreaterThan *int64               `json:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64               `json:"ObjectSizeLessThan,omitempty"`
}

type lifecycleExpWire struct {
	Days *int64  `json:"Days,omitempty"`
	Date *string `json:"Date,omitempty"`
}

type lifecycleAbortMpuWire struct {
	DaysAfterInitiation int64 `json:"DaysAfterInitiation"`
}

const abortIDPrefix = "garagesim:abort="

// validate applies Garage's checks (src/api/s3/lifecycle.rs): a status, at least one
// action, positive days, a parseable date.
func (r lifecycleRuleWire) validate() *apiError {
	if r.Status != "Enabled" && r.Status != "Disabled" {
		return badRequest("Invalid lifecycle rule: Status must be Enabled or Disabled")
	}
	if r.Expiration == nil && r.AbortIncompleteMultipartUpload == nil {
		return badRequest("Invalid lifecycle rule: no action (Expiration or AbortIncompleteMultipartUpload)")
	}
	if e := r.Expiration; e != nil {
		if (e.Days == nil) == (e.Date == nil) {
			return badRequest("Invalid lifecycle rule: Expiration needs exactly one of Days and Date")
		}
		if e.Days != nil && *e.Days <= 0 {
			return badRequest("Invalid lifecycle rule: Expiration Days must be positive")
		}
		if e.Date != nil {
			if _, err := time.Parse(time.RFC3339, *e.Date); err != nil {
				return badRequest("Invalid lifecycle rule: Expiration Date: %v", err)
			}
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil && a.DaysAfterInitiation <= 0 {
		return badRequest("Invalid lifecycle rule: DaysAfterInitiation must be positive")
	}
	if f := r.Filter; f != nil && f.And != nil && f.And.And != nil {
		return badRequest("Invalid lifecycle rule: nested And filters")
	}
	return nil
}

func (f *lifecycleFilterWire) flat() lifecycleFilterWire {
	if f == nil {
		return lifecycleFilterWire{}
	}
	if f.And != nil {
		return *f.And
	}
	return *f
}

// toMinio encodes a Garage rule as a MinIO rule.
func (r lifecycleRuleWire) toMinio() lifecycle.Rule {
	id := ""
	if r.ID != nil {
		id = *r.ID
	}
	out := lifecycle.Rule{Status: r.Status}
	f := r.Filter.flat()
	prefix := ""
	if f.Prefix != nil {
		prefix = *f.Prefix
	}
	var gt, lt int64
	if f.ObjectSizeGreaterThan != nil {
		gt = *f.ObjectSizeGreaterThan
	}
	if f.ObjectSizeLessThan != nil {
		lt = *f.ObjectSizeLessThan
	}
	if gt != 0 || lt != 0 {
		out.RuleFilter.And = lifecycle.And{Prefix: prefix, ObjectSizeGreaterThan: gt, ObjectSizeLessThan: lt}
	} else {
		out.RuleFilter.Prefix = prefix
	}
	if e := r.Expiration; e != nil {
		if e.Days != nil {
			out.Expiration.Days = lifecycle.ExpirationDays(*e.Days)
		} else {
			d, _ := time.Parse(time.RFC3339, *e.Date)
			out.Expiration.Date = lifecycle.ExpirationDate{Time: d.UTC().Truncate(24 * time.Hour)}
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		id = abortIDPrefix + strconv.FormatInt(a.DaysAfterInitiation, 10) + ":" + id
		if r.Expiration == nil {
			out.NoncurrentVersionExpiration.NoncurrentDays = lifecycle.ExpirationDays(a.DaysAfterInitiation)
		}
	}
	out.ID = id
	return out
}

// lifecycleFromMinio decodes a MinIO rule as Garage reports it.
func lifecycleFromMinio(m lifecycle.Rule) lifecycleRuleWire {
	out := lifecycleRuleWire{Status: m.Status}
	id := m.ID
	if rest, ok := strings.CutPrefix(id, abortIDPrefix); ok {
		days, tail, _ := strings.Cut(rest, ":")
		if n, err := strconv.ParseInt(days, 10, 64); err == nil {
			out.AbortIncompleteMultipartUpload = &lifecycleAbortMpuWire{DaysAfterInitiation: n}
			id = tail
		}
	}
	if id != "" {
		out.ID = &id
	}
	if m.Expiration.Days > 0 {
		d := int64(m.Expiration.Days)
		out.Expiration = &lifecycleExpWire{Days: &d}
	} else if !m.Expiration.Date.IsZero() {
		d := m.Expiration.Date.UTC().Format(time.RFC3339)
		out.Expiration = &lifecycleExpWire{Date: &d}
	}
	prefix := cmpStr(m.RuleFilter.Prefix, cmpStr(m.RuleFilter.And.Prefix, m.Prefix))
	gt, lt := m.RuleFilter.ObjectSizeGreaterThan, m.RuleFilter.ObjectSizeLessThan
	if gt == 0 && lt == 0 {
		gt, lt = m.RuleFilter.And.ObjectSizeGreaterThan, m.RuleFilter.And.ObjectSizeLessThan
	}
	if prefix != "" || gt != 0 || lt != 0 {
		f := &lifecycleFilterWire{}
		if prefix != "" {
			f.Prefix = &prefix
		}
		if gt != 0 {
			f.ObjectSizeGreaterThan = &gt
		}
		if lt != 0 {
			f.ObjectSizeLessThan = &lt
		}
		out.Filter = f
	}
	return out
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// minioLifecycle reads a bucket's rules from MinIO; nil when it has none.
func (s *Sim) minioLifecycle(ctx context.Context, name string) ([]lifecycleRuleWire, error) {
	cfg, err := s.s3.GetBucketLifecycle(ctx, name)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchLifecycleConfiguration" || code == "NoSuchBucket" {
			return nil, nil
		}
		return nil, fmt.Errorf("read MinIO lifecycle of %s: %w", name, err)
	}
	if cfg == nil || len(cfg.Rules) == 0 {
		return nil, nil
	}
	out := make([]lifecycleRuleWire, 0, len(cfg.Rules))
	for _, r := range cfg.Rules {
		out = append(out, lifecycleFromMinio(r))
	}
	return out, nil
}

// minioSetLifecycle replaces a bucket's rules in MinIO (none: removes the configuration).
func (s *Sim) minioSetLifecycle(ctx context.Context, name string, rules []lifecycleRuleWire) error {
	cfg := lifecycle.NewConfiguration()
	for _, r := range rules {
		cfg.Rules = append(cfg.Rules, r.toMinio())
	}
	if err := s.s3.SetBucketLifecycle(ctx, name, cfg); err != nil {
		return fmt.Errorf("set MinIO lifecycle of %s: %w", name, err)
	}
	return nil
}

type mpuUsage struct{ uploads, parts, bytes int64 }

// multipartUsage counts the unfinished multipart uploads of a bucket and their parts'
// bytes, which Garage reports and does not count against maxSize.
func (s *Sim) multipartUsage(ctx context.Context, name string) (mpuUsage, error) {
	var u mpuUsage
	core := minio.Core{Client: s.s3}
	for up := range s.s3.ListIncompleteUploads(ctx, name, "", true) {
		if up.Err != nil {
			if minio.ToErrorResponse(up.Err).Code == "NoSuchBucket" {
				return u, nil
			}
			return u, fmt.Errorf("list multipart uploads of %s: %w", name, up.Err)
		}
		u.uploads++
		marker := 0
		for {
			res, err := core.ListObjectParts(ctx, name, up.Key, up.UploadID, marker, 1000)
			if err != nil {
				if minio.ToErrorResponse(err).Code == "NoSuchUpload" {
					break
				}
				return u, fmt.Errorf("list parts of %s/%s: %w", name, up.Key, err)
			}
			for _, p := range res.ObjectParts {
				u.parts++
				u.bytes += p.Size
			}
			if !res.IsTruncated {
				break
			}
			marker = res.NextPartNumberMarker
		}
	}
	return u, nil
}

// LifecycleRun is what one pass of the lifecycle worker did.
type LifecycleRun struct {
	// Expired counts the objects deleted by Expiration rules.
	Expired int
	// Aborted counts the multipart uploads aborted by AbortIncompleteMultipartUpload rules.
	Aborted int
}

// RunLifecycle does what Garage's lifecycle worker does once a day at midnight, at the
// simulator's clock (Config.Now): in every bucket, each enabled Expiration rule deletes
// the matching objects older than Days (or every matching object once Date has passed),
// and each AbortIncompleteMultipartUpload rule aborts uploads started more than
// DaysAfterInitiation days ago. Tests call it to see a rule take effect.
func (s *Sim) RunLifecycle(ctx context.Context) (LifecycleRun, error) {
	s.mu.Lock()
	buckets := make([]string, 0, len(s.buckets))
	for _, b := range s.sortedBuckets() {
		buckets = append(buckets, b.minioName)
	}
	s.mu.Unlock()
	now := s.now()
	var run LifecycleRun
	var errs []error
	for _, name := range buckets {
		rules, err := s.minioLifecycle(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rules {
			if r.Status != "Enabled" {
				continue
			}
			f := r.Filter.flat()
			prefix := ""
			if f.Prefix != nil {
				prefix = *f.Prefix
			}
			if e := r.Expiration; e != nil {
				n, err := s.expireObjects(ctx, name, prefix, f, *e, now)
				run.Expired += n
				if err != nil {
					errs = append(errs, err)
				}
			}
			if a := r.AbortIncompleteMultipartUpload; a != nil {
				n, err := s.abortUploads(ctx, name, prefix, now.Add(-time.Duration(a.DaysAfterInitiation)*24*time.Hour))
				run.Aborted += n
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if run.Expired > 0 || run.Aborted > 0 {
		s.log.Info("garagesim: lifecycle worker ran", slog.Int("expired", run.Expired), slog.Int("aborted", run.Aborted))
	}
	return run, errors.Join(errs...)
}

func (s *Sim) expireObjects(ctx context.Context, bucket, prefix string, f lifecycleFilterWire, e lifecycleExpWire, now time.Time) (int, error) {
	n := 0
	for obj := range s.s3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return n, fmt.Errorf("list %s: %w", bucket, obj.Err)
		}
		if f.ObjectSizeGreaterThan != nil && obj.Size <= *f.ObjectSizeGreaterThan {
			continue
		}
		if f.ObjectSizeLessThan != nil && obj.Size >= *f.ObjectSizeLessThan {
			continue
		}
		expired := false
		if e.Days != nil {
			expired = now.Sub(obj.LastModified) >= time.Duration(*e.Days)*24*time.Hour
		} else if e.Date != nil {
			d, _ := time.Parse(time.RFC3339, *e.Date)
			expired = !now.Before(d)
		}
		if !expired {
			continue
		}
		if err := s.s3.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			return n, fmt.Errorf("expire %s/%s: %w", bucket, obj.Key, err)
		}
		n++
	}
	return n, nil
}

func (s *Sim) abortUploads(ctx context.Context, bucket, prefix string, before time.Time) (int, error) {
	n := 0
	for up := range s.s3.ListIncompleteUploads(ctx, bucket, prefix, true) {
		if up.Err != nil {
			return n, fmt.Errorf("list uploads of %s: %w", bucket, up.Err)
		}
		if !up.Initiated.Before(before) {
			continue
		}
		if err := s.s3.RemoveIncompleteUpload(ctx, bucket, up.Key); err != nil {
			return n, fmt.Errorf("abort upload %s/%s: %w", bucket, up.Key, err)
		}
		n++
	}
	return n, nil
}
