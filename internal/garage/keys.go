package garage

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// KeySummary is one entry of ListKeys.
type KeySummary struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Created    *time.Time `json:"created,omitempty"`
	Expiration *time.Time `json:"expiration,omitempty"`
	Expired    bool       `json:"expired"`
}

// KeyPermissions are a key's cluster-wide permissions.
type KeyPermissions struct {
	// CreateBucket lets the key create buckets over S3. Such buckets carry no
	// quota: do not grant it to tenants.
	CreateBucket bool `json:"createBucket"`
}

// KeyBucket is a bucket on which a key has permissions or a local alias.
type KeyBucket struct {
	ID            string            `json:"id"`
	GlobalAliases []string          `json:"globalAliases"`
	LocalAliases  []string          `json:"localAliases"`
	Permissions   BucketPermissions `json:"permissions"`
}

// KeyInfo describes an access key (GetKeyInfo, CreateKey, UpdateKey).
type KeyInfo struct {
	AccessKeyID string         `json:"accessKeyId"`
	Name        string         `json:"name"`
	Created     *time.Time     `json:"created,omitempty"`
	Expiration  *time.Time     `json:"expiration,omitempty"`
	Expired     bool           `json:"expired"`
	Permissions KeyPermissions `json:"permissions"`
	Buckets     []KeyBucket    `json:"buckets"`
	// SecretAccessKey is set by CreateKey and by GetKeyInfo with
	// ShowSecretKey; it is empty otherwise. Garage stores it in clear and can
	// return it again: it is not shown-once.
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
}

// KeyLookup selects the key GetKeyInfo returns: exactly one of ID and Search.
type KeyLookup struct {
	// ID is the exact access key ID (GK…).
	ID string
	// Search matches a unique key by ID prefix or exact name (case-insensitive).
	// No match is ErrNotFound, several are ErrInvalidRequest.
	Search string
	// ShowSecretKey asks Garage to include the secret access key.
	ShowSecretKey bool
}

// CreateKeyParams are the options of CreateKey. The zero value creates a key
// named by Garage, that never expires, without CreateBucket.
type CreateKeyParams struct {
	Name string
	// Expiration, when set, makes the key expire at that time.
	Expiration *time.Time
	// AllowCreateBucket grants the CreateBucket permission (avoid for tenants).
	AllowCreateBucket bool
}

// UpdateKeyParams changes an access key. Nil fields are left unchanged.
type UpdateKeyParams struct {
	// Name renames the key.
	Name *string
	// Expiration sets an expiration time. It cannot be combined with
	// NeverExpires.
	Expiration *time.Time
	// NeverExpires removes the expiration.
	NeverExpires bool
	// CreateBucket grants (true) or revokes (false) the CreateBucket
	// permission; nil leaves it unchanged.
	CreateBucket *bool
}

// keyPermWire is KeyPerm on the wire.
type keyPermWire struct {
	CreateBucket bool `json:"createBucket"`
}

// keyRequestWire is CreateKeyRequest / UpdateKeyRequestBody on the wire.
type keyRequestWire struct {
	Name         *string      `json:"name,omitempty"`
	Expiration   *time.Time   `json:"expiration,omitempty"`
	NeverExpires bool         `json:"neverExpires,omitempty"`
	Allow        *keyPermWire `json:"allow,omitempty"`
	Deny         *keyPermWire `json:"deny,omitempty"`
}

// keyInfoWire accepts secretAccessKey as null.
type keyInfoWire struct {
	KeyInfo
	SecretAccessKey *string `json:"secretAccessKey"`
}

func (w *keyInfoWire) info() *KeyInfo {
	k := w.KeyInfo
	if w.SecretAccessKey != nil {
		k.SecretAccessKey = *w.SecretAccessKey
	}
	return &k
}

// ListKeys returns every access key of the cluster (no pagination; Garage
// caps the list at 10,000).
func (c *Client) ListKeys(ctx context.Context) ([]KeySummary, error) {
	var out []KeySummary
	if err := c.get(ctx, "ListKeys", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetKeyInfo returns one access key, selected by ID or by Search.
func (c *Client) GetKeyInfo(ctx context.Context, lookup KeyLookup) (*KeyInfo, error) {
	if (lookup.ID == "") == (lookup.Search == "") {
		return nil, fmt.Errorf("garage GetKeyInfo: %w: give exactly one of ID and Search", ErrInvalidRequest)
	}
	q := url.Values{}
	if lookup.ID != "" {
		q.Set("id", lookup.ID)
	} else {
		q.Set("search", lookup.Search)
	}
	if lookup.ShowSecretKey {
		q.Set("showSecretKey", "true")
	}
	var out keyInfoWire
	if err := c.get(ctx, "GetKeyInfo", q, &out); err != nil {
		return nil, err
	}
	return out.info(), nil
}

// CreateKey creates an access key and returns it with its secret. It is not
// idempotent (Garage picks a random ID), so it is never retried: persist the
// returned ID.
func (c *Client) CreateKey(ctx context.Context, p CreateKeyParams) (*KeyInfo, error) {
	body := keyRequestWire{Expiration: p.Expiration}
	if p.Name != "" {
		body.Name = &p.Name
	}
	if p.AllowCreateBucket {
		body.Allow = &keyPermWire{CreateBucket: true}
	}
	var out keyInfoWire
	if err := c.post(ctx, "CreateKey", nil, body, &out, false); err != nil {
		return nil, err
	}
	return out.info(), nil
}

// UpdateKey changes an access key. The answer carries no secret.
func (c *Client) UpdateKey(ctx context.Context, id string, p UpdateKeyParams) (*KeyInfo, error) {
	if id == "" {
		return nil, fmt.Errorf("garage UpdateKey: %w: empty key ID", ErrInvalidRequest)
	}
	if p.Expiration != nil && p.NeverExpires {
		return nil, fmt.Errorf("garage UpdateKey %s: %w: Expiration and NeverExpires are exclusive", id, ErrInvalidRequest)
	}
	body := keyRequestWire{Name: p.Name, Expiration: p.Expiration, NeverExpires: p.NeverExpires}
	if p.CreateBucket != nil {
		if *p.CreateBucket {
			body.Allow = &keyPermWire{CreateBucket: true}
		} else {
			body.Deny = &keyPermWire{CreateBucket: true}
		}
	}
	var out keyInfoWire
	if err := c.post(ctx, "UpdateKey", url.Values{"id": {id}}, body, &out, true); err != nil {
		return nil, err
	}
	return out.info(), nil
}

// DeleteKey deletes an access key; Garage drops its permissions and local
// aliases, buckets remain. A retry after a lost answer may see ErrNotFound.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("garage DeleteKey: %w: empty key ID", ErrInvalidRequest)
	}
	return c.post(ctx, "DeleteKey", url.Values{"id": {id}}, nil, nil, true)
}
