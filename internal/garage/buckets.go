package garage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// BucketLocalAlias is a bucket name in one access key's namespace.
type BucketLocalAlias struct {
	AccessKeyID string `json:"accessKeyId"`
	Alias       string `json:"alias"`
}

// BucketSummary is one entry of ListBuckets.
type BucketSummary struct {
	ID            string             `json:"id"`
	Created       time.Time          `json:"created"`
	GlobalAliases []string           `json:"globalAliases"`
	LocalAliases  []BucketLocalAlias `json:"localAliases"`
}

// BucketPermissions are the permissions of one key on one bucket, as Garage
// reports them. On S3, Read covers Get/Head/List, Write covers every other
// object operation (including delete and overwrite), and Owner covers bucket
// deletion, website and CORS.
type BucketPermissions struct {
	Read  bool `json:"read"`
	Write bool `json:"write"`
	Owner bool `json:"owner"`
}

// BucketKey is a key with permissions or local aliases on a bucket.
type BucketKey struct {
	AccessKeyID        string            `json:"accessKeyId"`
	Name               string            `json:"name"`
	Permissions        BucketPermissions `json:"permissions"`
	BucketLocalAliases []string          `json:"bucketLocalAliases"`
}

// Quotas are a bucket's limits; nil means unlimited. UpdateBucket always
// sends both fields, so setting one and leaving the other nil removes the
// other limit: read the bucket first to keep it.
type Quotas struct {
	// MaxSize is the maximum total size of the objects, in bytes.
	MaxSize *int64 `json:"maxSize"`
	// MaxObjects is the maximum number of objects.
	MaxObjects *int64 `json:"maxObjects"`
}

// WebsiteConfig is a bucket's static website configuration.
type WebsiteConfig struct {
	IndexDocument string `json:"indexDocument"`
	ErrorDocument string `json:"errorDocument,omitempty"`
}

// BucketInfo describes a bucket (GetBucketInfo and every bucket mutation).
// Usage counters are eventually consistent and count logical bytes.
type BucketInfo struct {
	ID                             string         `json:"id"`
	Created                        time.Time      `json:"created"`
	GlobalAliases                  []string       `json:"globalAliases"`
	WebsiteAccess                  bool           `json:"websiteAccess"`
	WebsiteConfig                  *WebsiteConfig `json:"websiteConfig,omitempty"`
	Keys                           []BucketKey    `json:"keys"`
	Objects                        int64          `json:"objects"`
	Bytes                          int64          `json:"bytes"`
	UnfinishedUploads              int64          `json:"unfinishedUploads"`
	UnfinishedMultipartUploads     int64          `json:"unfinishedMultipartUploads"`
	UnfinishedMultipartUploadParts int64          `json:"unfinishedMultipartUploadParts"`
	UnfinishedMultipartUploadBytes int64          `json:"unfinishedMultipartUploadBytes"`
	Quotas                         Quotas         `json:"quotas"`
	// LifecycleRules are the bucket's lifecycle rules (Garage v2.3+; nil when none).
	LifecycleRules []LifecycleRule `json:"lifecycleRules,omitempty"`
}

// Key returns the entry of accessKeyID in b.Keys, if any.
func (b *BucketInfo) Key(accessKeyID string) (BucketKey, bool) {
	for _, k := range b.Keys {
		if k.AccessKeyID == accessKeyID {
			return k, true
		}
	}
	return BucketKey{}, false
}

// BucketLookup selects the bucket GetBucketInfo returns: exactly one field.
type BucketLookup struct {
	// ID is the exact 64-hex bucket ID.
	ID string
	// GlobalAlias is an exact global alias.
	GlobalAlias string
	// Search is an exact global alias or a unique ID prefix.
	Search string
}

// CreateBucketParams are the options of CreateBucket. Garage accepts a
// bucket without alias; Archipelago always names its buckets.
type CreateBucketParams struct {
	// GlobalAlias is the cluster-wide bucket name.
	GlobalAlias string
	// LocalAlias, when set, also names the bucket in one key's namespace and
	// grants that key the given permissions.
	LocalAlias *CreateBucketLocalAlias
}

// CreateBucketLocalAlias is a local alias created with a bucket.
type CreateBucketLocalAlias struct {
	AccessKeyID string
	Alias       string
	Allow       BucketPermissions
}

// WebsiteAccess enables (with IndexDocument) or disables a bucket's website.
type WebsiteAccess struct {
	Enabled       bool
	IndexDocument string
	ErrorDocument string
}

// UpdateBucketParams changes a bucket. Nil fields are left unchanged.
type UpdateBucketParams struct {
	// Quotas replaces both quotas (nil pointers inside mean unlimited).
	Quotas *Quotas
	// WebsiteAccess changes the website configuration.
	WebsiteAccess *WebsiteAccess
	// LifecycleRules replaces the lifecycle rules; an empty slice clears them.
	LifecycleRules *[]LifecycleRule
}

type createBucketWire struct {
	GlobalAlias *string                 `json:"globalAlias,omitempty"`
	LocalAlias  *createBucketLocalAlias `json:"localAlias,omitempty"`
}

type createBucketLocalAlias struct {
	AccessKeyID string            `json:"accessKeyId"`
	Alias       string            `json:"alias"`
	Allow       BucketPermissions `json:"allow"`
}

type updateBucketWire struct {
	// Quotas has no omitempty inside: both maxSize and maxObjects are always
	// sent, null when unlimited, as Garage replaces both.
	Quotas         *Quotas            `json:"quotas,omitempty"`
	WebsiteAccess  *websiteAccessWire `json:"websiteAccess,omitempty"`
	LifecycleRules *[]LifecycleRule   `json:"lifecycleRules,omitempty"`
}

type websiteAccessWire struct {
	Enabled       bool    `json:"enabled"`
	IndexDocument *string `json:"indexDocument,omitempty"`
	ErrorDocument *string `json:"errorDocument,omitempty"`
}

// ListBuckets returns every bucket of the cluster (no pagination).
func (c *Client) ListBuckets(ctx context.Context) ([]BucketSummary, error) {
	var out []BucketSummary
	if err := c.get(ctx, "ListBuckets", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetBucketInfo returns one bucket, with usage and quotas.
func (c *Client) GetBucketInfo(ctx context.Context, lookup BucketLookup) (*BucketInfo, error) {
	q := url.Values{}
	n := 0
	for _, p := range []struct{ name, v string }{{"id", lookup.ID}, {"globalAlias", lookup.GlobalAlias}, {"search", lookup.Search}} {
		if p.v != "" {
			q.Set(p.name, p.v)
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("garage GetBucketInfo: %w: give exactly one of ID, GlobalAlias and Search", ErrInvalidRequest)
	}
	var out BucketInfo
	if err := c.get(ctx, "GetBucketInfo", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateBucket creates a bucket. A taken global alias is an error matching
// ErrBucketAlreadyExists. It is not retried (a lost answer followed by a
// retry would report the bucket as already existing).
func (c *Client) CreateBucket(ctx context.Context, p CreateBucketParams) (*BucketInfo, error) {
	var body createBucketWire
	if p.GlobalAlias != "" {
		body.GlobalAlias = &p.GlobalAlias
	}
	if p.LocalAlias != nil {
		if p.LocalAlias.AccessKeyID == "" || p.LocalAlias.Alias == "" {
			return nil, fmt.Errorf("garage CreateBucket: %w: local alias needs AccessKeyID and Alias", ErrInvalidRequest)
		}
		body.LocalAlias = &createBucketLocalAlias{AccessKeyID: p.LocalAlias.AccessKeyID, Alias: p.LocalAlias.Alias, Allow: p.LocalAlias.Allow}
	}
	var out BucketInfo
	if err := c.post(ctx, "CreateBucket", nil, body, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateBucket changes a bucket's quotas and/or website access.
func (c *Client) UpdateBucket(ctx context.Context, id string, p UpdateBucketParams) (*BucketInfo, error) {
	if id == "" {
		return nil, fmt.Errorf("garage UpdateBucket: %w: empty bucket ID", ErrInvalidRequest)
	}
	body := updateBucketWire{Quotas: p.Quotas, LifecycleRules: p.LifecycleRules}
	if q := p.Quotas; q != nil && ((q.MaxSize != nil && *q.MaxSize < 0) || (q.MaxObjects != nil && *q.MaxObjects < 0)) {
		return nil, fmt.Errorf("garage UpdateBucket %s: %w: negative quota", id, ErrInvalidRequest)
	}
	if w := p.WebsiteAccess; w != nil {
		body.WebsiteAccess = &websiteAccessWire{Enabled: w.Enabled}
		if w.Enabled {
			if w.IndexDocument == "" {
				return nil, fmt.Errorf("garage UpdateBucket %s: %w: website needs an index document", id, ErrInvalidRequest)
			}
			body.WebsiteAccess.IndexDocument = &w.IndexDocument
			if w.ErrorDocument != "" {
				body.WebsiteAccess.ErrorDocument = &w.ErrorDocument
			}
		}
	}
	var out BucketInfo
	if err := c.post(ctx, "UpdateBucket", url.Values{"id": {id}}, body, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetBucketQuotas replaces both quotas of a bucket.
func (c *Client) SetBucketQuotas(ctx context.Context, id string, q Quotas) (*BucketInfo, error) {
	return c.UpdateBucket(ctx, id, UpdateBucketParams{Quotas: &q})
}

// DeleteBucket deletes an empty bucket and all its aliases and permissions.
// A bucket that still holds objects gives an error matching
// ErrBucketNotEmpty (Garage answers 409, although its spec says 400).
func (c *Client) DeleteBucket(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("garage DeleteBucket: %w: empty bucket ID", ErrInvalidRequest)
	}
	return c.post(ctx, "DeleteBucket", url.Values{"id": {id}}, nil, nil, true)
}

// BucketAlias is either a global alias or a local alias in one key's
// namespace. Build it with GlobalAlias or LocalAlias.
type BucketAlias struct {
	global      string
	accessKeyID string
	local       string
}

// GlobalAlias names a cluster-wide bucket alias.
func GlobalAlias(name string) BucketAlias { return BucketAlias{global: name} }

// LocalAlias names a bucket alias in the namespace of one access key.
func LocalAlias(accessKeyID, name string) BucketAlias {
	return BucketAlias{accessKeyID: accessKeyID, local: name}
}

// String describes the alias for messages.
func (a BucketAlias) String() string {
	if a.global != "" {
		return "global alias " + a.global
	}
	return "local alias " + a.local + " of key " + a.accessKeyID
}

func (a BucketAlias) wire(bucketID string) (any, error) {
	switch {
	case bucketID == "":
		return nil, errors.New("empty bucket ID")
	case a.global != "" && a.local == "" && a.accessKeyID == "":
		return struct {
			BucketID    string `json:"bucketId"`
			GlobalAlias string `json:"globalAlias"`
		}{bucketID, a.global}, nil
	case a.global == "" && a.local != "" && a.accessKeyID != "":
		return struct {
			BucketID    string `json:"bucketId"`
			AccessKeyID string `json:"accessKeyId"`
			LocalAlias  string `json:"localAlias"`
		}{bucketID, a.accessKeyID, a.local}, nil
	}
	return nil, errors.New("alias must be built with GlobalAlias or LocalAlias")
}

// AddBucketAlias adds an alias to a bucket. Adding an alias the bucket
// already has is a no-op; an alias held by another bucket is refused.
func (c *Client) AddBucketAlias(ctx context.Context, bucketID string, alias BucketAlias) (*BucketInfo, error) {
	return c.alias(ctx, "AddBucketAlias", bucketID, alias)
}

// RemoveBucketAlias removes an alias from a bucket. Garage refuses to remove
// a bucket's last alias.
func (c *Client) RemoveBucketAlias(ctx context.Context, bucketID string, alias BucketAlias) (*BucketInfo, error) {
	return c.alias(ctx, "RemoveBucketAlias", bucketID, alias)
}

func (c *Client) alias(ctx context.Context, op, bucketID string, alias BucketAlias) (*BucketInfo, error) {
	body, err := alias.wire(bucketID)
	if err != nil {
		return nil, fmt.Errorf("garage %s: %w: %w", op, ErrInvalidRequest, err)
	}
	var out BucketInfo
	if err := c.post(ctx, op, nil, body, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// LifecycleRule is one of a bucket's lifecycle rules (Garage v2.3+, S3 XML PascalCase
// names). Garage knows two actions: Expiration deletes matching objects older than Days
// (or all of them after Date) when its lifecycle worker runs, once a day at midnight;
// AbortIncompleteMultipartUpload aborts uploads left unfinished. On S3, any key with
// write permission may replace a bucket's rules.
type LifecycleRule struct {
	ID                             LooseString          `json:"ID,omitempty"`
	Status                         LooseString          `json:"Status"`
	Filter                         *LifecycleFilter     `json:"Filter,omitempty"`
	Expiration                     *LifecycleExpiration `json:"Expiration,omitempty"`
	AbortIncompleteMultipartUpload *LifecycleAbortMPU   `json:"AbortIncompleteMultipartUpload,omitempty"`
}

// Enabled reports whether the rule is active.
func (r LifecycleRule) Enabled() bool { return r.Status == "Enabled" }

// LifecycleFilter restricts a rule to objects by prefix and size.
type LifecycleFilter struct {
	And                   *LifecycleFilter `json:"And,omitempty"`
	Prefix                LooseString      `json:"Prefix,omitempty"`
	ObjectSizeGreaterThan *int64           `json:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64           `json:"ObjectSizeLessThan,omitempty"`
}

// LifecycleExpiration deletes objects Days after their creation, or all of them on Date.
type LifecycleExpiration struct {
	Days *int64      `json:"Days,omitempty"`
	Date LooseString `json:"Date,omitempty"`
}

// LifecycleAbortMPU aborts multipart uploads DaysAfterInitiation days after they started.
type LifecycleAbortMPU struct {
	DaysAfterInitiation int64 `json:"DaysAfterInitiation"`
}

// LooseString is a string field the specification leaves untyped (ID, Status, Date,
// Prefix): a JSON string decodes as is, anything else as its JSON text.
type LooseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *LooseString) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err == nil {
		*s = LooseString(v)
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	*s = LooseString(b)
	return nil
}

// SetBucketLifecycle replaces a bucket's lifecycle rules (none: clears them).
func (c *Client) SetBucketLifecycle(ctx context.Context, id string, rules []LifecycleRule) (*BucketInfo, error) {
	if rules == nil {
		rules = []LifecycleRule{}
	}
	return c.UpdateBucket(ctx, id, UpdateBucketParams{LifecycleRules: &rules})
}
