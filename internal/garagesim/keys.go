package garagesim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// simKey is an access key of this simulator.
type simKey struct {
	id           string
	name         string
	secret       string
	created      time.Time
	expiration   *time.Time
	createBucket bool
	// minioDisabled records that the MinIO user is disabled (expired key).
	minioDisabled bool
	// policy records that a canned policy is attached to the MinIO user.
	policy bool
	// written is the canned policy last written to MinIO for this key (nil:
	// unknown, written again by the next sync). Only the simulator writes a
	// key's policy, so a sync computing the same document makes no MinIO call.
	written []byte
	// sync orders the MinIO writes of this key (made without Sim.mu).
	sync sync.Mutex
}

func (k *simKey) expired(now time.Time) bool {
	return k.expiration != nil && !now.Before(*k.expiration)
}

// Wire shapes (JSON as in Garage's OpenAPI document).

type keyListItemWire struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Created    time.Time  `json:"created"`
	Expiration *time.Time `json:"expiration"`
	Expired    bool       `json:"expired"`
}

type keyPermWire struct {
	CreateBucket *bool `json:"createBucket,omitempty"`
}

type keyPermOutWire struct {
	CreateBucket bool `json:"createBucket"`
}

type bucketPermWire struct {
	Read  bool `json:"read"`
	Write bool `json:"write"`
	Owner bool `json:"owner"`
}

type keyInfoBucketWire struct {
	ID            string         `json:"id"`
	GlobalAliases []string       `json:"globalAliases"`
	LocalAliases  []string       `json:"localAliases"`
	Permissions   bucketPermWire `json:"permissions"`
}

type keyInfoWire struct {
	AccessKeyID     string              `json:"accessKeyId"`
	Name            string              `json:"name"`
	Created         time.Time           `json:"created"`
	Expiration      *time.Time          `json:"expiration"`
	Expired         bool                `json:"expired"`
	Permissions     keyPermOutWire      `json:"permissions"`
	Buckets         []keyInfoBucketWire `json:"buckets"`
	SecretAccessKey *string             `json:"secretAccessKey"`
}

type keyRequestWire struct {
	Name         *string      `json:"name"`
	Expiration   *time.Time   `json:"expiration"`
	NeverExpires bool         `json:"neverExpires"`
	Allow        *keyPermWire `json:"allow"`
	Deny         *keyPermWire `json:"deny"`
}

func (s *Sim) keyInfo(k *simKey, showSecret bool) keyInfoWire {
	now := s.now()
	out := keyInfoWire{
		AccessKeyID: k.id, Name: k.name, Created: k.created, Expiration: k.expiration,
		Expired: k.expired(now), Permissions: keyPermOutWire{CreateBucket: k.createBucket},
		Buckets: []keyInfoBucketWire{},
	}
	for _, b := range s.sortedBuckets() {
		p, hasPerm := b.perms[k.id]
		var locals []string
		for _, la := range b.localAliases {
			if la.keyID == k.id {
				locals = append(locals, la.alias)
			}
		}
		if !hasPerm && len(locals) == 0 {
			continue
		}
		out.Buckets = append(out.Buckets, keyInfoBucketWire{
			ID: b.id, GlobalAliases: nonNil(b.globalAliases), LocalAliases: nonNil(locals), Permissions: p.wire(),
		})
	}
	if showSecret {
		out.SecretAccessKey = &k.secret
	}
	return out
}

func (s *Sim) listKeys(_ *http.Request) (any, *apiError) {
	out := []keyListItemWire{}
	now := s.now()
	for _, k := range s.sortedKeys() {
		out = append(out, keyListItemWire{ID: k.id, Name: k.name, Created: k.created, Expiration: k.expiration, Expired: k.expired(now)})
	}
	return out, nil
}

func (s *Sim) sortedKeys() []*simKey {
	ks := make([]*simKey, 0, len(s.keys))
	for _, k := range s.keys {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b *simKey) int { return strings.Compare(a.id, b.id) })
	return ks
}

func noSuchKey(id string) *apiError {
	return &apiError{http.StatusNotFound, "NoSuchAccessKey", "Access key not found: " + id}
}

// findKey resolves ?id= or ?search= like Garage: search matches an ID prefix
// or an exact name, case-insensitively; zero matches is 404, several 400.
func (s *Sim) findKey(r *http.Request) (*simKey, *apiError) {
	q := r.URL.Query()
	id, search := q.Get("id"), q.Get("search")
	if (id == "") == (search == "") {
		return nil, badRequest("Either id or search must be provided (but not both)")
	}
	if id != "" {
		k, ok := s.keys[id]
		if !ok {
			return nil, noSuchKey(id)
		}
		return k, nil
	}
	pat := strings.ToLower(search)
	var found []*simKey
	for _, k := range s.sortedKeys() {
		if strings.HasPrefix(strings.ToLower(k.id), pat) || strings.ToLower(k.name) == pat {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return nil, noSuchKey(search)
	case 1:
		return found[0], nil
	}
	return nil, badRequest("%d matching keys", len(found))
}

func (s *Sim) getKeyInfo(r *http.Request) (any, *apiError) {
	show := false
	if v := r.URL.Query().Get("showSecretKey"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("Invalid showSecretKey: %q", v)
		}
		show = b
	}
	k, aerr := s.findKey(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.keyInfo(k, show), nil
}

func (s *Sim) createKey(r *http.Request) (any, *apiError) {
	var req keyRequestWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if req.Expiration != nil && req.NeverExpires {
		return nil, badRequest("cannot specify both expiration and neverExpires")
	}
	k := &simKey{
		id: "GK" + randomHex(12), secret: randomHex(32), name: "Unnamed key",
		created: s.now().UTC().Truncate(time.Millisecond),
	}
	if req.Name != nil {
		k.name = *req.Name
	}
	if req.Expiration != nil {
		e := req.Expiration.UTC()
		k.expiration = &e
	}
	applyKeyPerm(k, req.Allow, req.Deny)
	if sp, ok := s.takeSpare(); ok {
		// A MinIO user made ahead, with its (empty) policy attached.
		k.id, k.secret, k.policy, k.written = sp.id, sp.secret, true, noAccessPolicy
		if err := s.minioSyncExpiry(r.Context(), k); err != nil {
			return nil, internalError(err)
		}
	} else if err := s.minioCreateUser(r.Context(), k, false); err != nil {
		return nil, internalError(err)
	}
	s.keys[k.id] = k
	s.log.Info("garagesim: key created", "key", k.id, "name", k.name)
	return s.keyInfo(k, true), nil
}

func applyKeyPerm(k *simKey, allow, deny *keyPermWire) {
	if allow != nil && allow.CreateBucket != nil && *allow.CreateBucket {
		k.createBucket = true
	}
	if deny != nil && deny.CreateBucket != nil && *deny.CreateBucket {
		k.createBucket = false
	}
}

func (s *Sim) updateKey(r *http.Request) (any, *apiError) {
	id := r.URL.Query().Get("id")
	k, ok := s.keys[id]
	if !ok {
		return nil, noSuchKey(id)
	}
	var req keyRequestWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if req.Expiration != nil && req.NeverExpires {
		return nil, badRequest("cannot specify both expiration and neverExpires")
	}
	if req.Name != nil {
		k.name = *req.Name
	}
	switch {
	case req.Expiration != nil:
		e := req.Expiration.UTC()
		k.expiration = &e
	case req.NeverExpires:
		k.expiration = nil
	}
	applyKeyPerm(k, req.Allow, req.Deny)
	if err := s.minioSyncExpiry(r.Context(), k); err != nil {
		return nil, internalError(err)
	}
	return s.keyInfo(k, false), nil
}

func (s *Sim) deleteKey(r *http.Request) (any, *apiError) {
	id := r.URL.Query().Get("id")
	k, ok := s.keys[id]
	if !ok {
		return nil, noSuchKey(id)
	}
	for _, b := range s.buckets {
		delete(b.perms, id)
		b.localAliases = slices.DeleteFunc(b.localAliases, func(la localAlias) bool { return la.keyID == id })
	}
	// Forgotten before MinIO is told (without s.mu), so that no concurrent
	// call grants it anything meanwhile; put back if MinIO fails.
	delete(s.keys, id)
	if err := s.minioDeleteUser(r.Context(), k); err != nil {
		s.keys[id] = k
		return nil, internalError(err)
	}
	s.deletedKeys[id] = true
	s.log.Info("garagesim: key deleted", "key", id)
	return nil, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
