package garage

import (
	"context"
	"fmt"
	"strings"
)

// Permission is a set of bucket permission flags to change. Garage's
// AllowBucketKey sets the flags sent as true and DenyBucketKey clears them; a
// flag sent as false means "leave unchanged", never "revoke". A set of flags
// makes that explicit: the flags not in the set are not touched.
type Permission uint8

// The bucket permission flags, combined with |.
const (
	PermRead Permission = 1 << iota
	PermWrite
	PermOwner

	// PermAll is read, write and owner.
	PermAll = PermRead | PermWrite | PermOwner
)

// Has reports whether every flag of q is in p.
func (p Permission) Has(q Permission) bool { return p&q == q }

// String lists the flags, for instance "read|write".
func (p Permission) String() string {
	var parts []string
	for _, f := range []struct {
		p    Permission
		name string
	}{{PermRead, "read"}, {PermWrite, "write"}, {PermOwner, "owner"}} {
		if p.Has(f.p) {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// flags is the wire form: the flags of p as true, the others false.
func (p Permission) flags() BucketPermissions {
	return BucketPermissions{Read: p.Has(PermRead), Write: p.Has(PermWrite), Owner: p.Has(PermOwner)}
}

// Permissions returns the flags set in bp as a Permission.
func (bp BucketPermissions) Permissions() Permission {
	var p Permission
	if bp.Read {
		p |= PermRead
	}
	if bp.Write {
		p |= PermWrite
	}
	if bp.Owner {
		p |= PermOwner
	}
	return p
}

type permChangeWire struct {
	BucketID    string            `json:"bucketId"`
	AccessKeyID string            `json:"accessKeyId"`
	Permissions BucketPermissions `json:"permissions"`
}

// AllowBucketKey grants the flags in perms to a key on a bucket; flags not in
// perms keep their current value. An empty perms is refused (it would change
// nothing and usually hides a bug).
func (c *Client) AllowBucketKey(ctx context.Context, bucketID, accessKeyID string, perms Permission) (*BucketInfo, error) {
	return c.permChange(ctx, "AllowBucketKey", bucketID, accessKeyID, perms)
}

// DenyBucketKey revokes the flags in perms from a key on a bucket; flags not
// in perms keep their current value. An empty perms is refused.
func (c *Client) DenyBucketKey(ctx context.Context, bucketID, accessKeyID string, perms Permission) (*BucketInfo, error) {
	return c.permChange(ctx, "DenyBucketKey", bucketID, accessKeyID, perms)
}

func (c *Client) permChange(ctx context.Context, op, bucketID, accessKeyID string, perms Permission) (*BucketInfo, error) {
	switch {
	case bucketID == "" || accessKeyID == "":
		return nil, fmt.Errorf("garage %s: %w: empty bucket or key ID", op, ErrInvalidRequest)
	case perms&PermAll == 0 || perms&^PermAll != 0:
		return nil, fmt.Errorf("garage %s: %w: permission set %#x changes nothing or has unknown flags", op, ErrInvalidRequest, uint8(perms))
	}
	var out BucketInfo
	body := permChangeWire{BucketID: bucketID, AccessKeyID: accessKeyID, Permissions: perms.flags()}
	if err := c.post(ctx, op, nil, body, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetBucketKeyPermissions makes a key's permissions on a bucket exactly want:
// it grants the missing flags with AllowBucketKey and revokes the extra ones
// with DenyBucketKey, reading the bucket first and calling only what is needed.
// The two calls are not atomic; a failure between them leaves the grants done.
func (c *Client) SetBucketKeyPermissions(ctx context.Context, bucketID, accessKeyID string, want Permission) (*BucketInfo, error) {
	b, err := c.GetBucketInfo(ctx, BucketLookup{ID: bucketID})
	if err != nil {
		return nil, fmt.Errorf("set permissions of key %s on bucket %s: %w", accessKeyID, bucketID, err)
	}
	var have Permission
	if k, ok := b.Key(accessKeyID); ok {
		have = k.Permissions.Permissions()
	}
	want &= PermAll
	if grant := want &^ have; grant != 0 {
		if b, err = c.AllowBucketKey(ctx, bucketID, accessKeyID, grant); err != nil {
			return nil, fmt.Errorf("set permissions of key %s on bucket %s: %w", accessKeyID, bucketID, err)
		}
	}
	if revoke := have &^ want; revoke != 0 {
		if b, err = c.DenyBucketKey(ctx, bucketID, accessKeyID, revoke); err != nil {
			return nil, fmt.Errorf("set permissions of key %s on bucket %s: %w", accessKeyID, bucketID, err)
		}
	}
	return b, nil
}
