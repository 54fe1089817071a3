package garagesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// perms are a key's permissions on a bucket.
type perms struct{ read, write, owner bool }

func (p perms) any() bool { return p.read || p.write || p.owner }

func (p perms) wire() bucketPermWire {
	return bucketPermWire{Read: p.read, Write: p.write, Owner: p.owner}
}

type localAlias struct{ keyID, alias string }

// simBucket is a bucket of this simulator; minioName is its MinIO bucket,
// the global alias it was created with.
type simBucket struct {
	id            string
	created       time.Time
	minioName     string
	globalAliases []string
	localAliases  []localAlias
	perms         map[string]perms
	maxSize       *int64
	maxObjects    *int64
	website       *websiteWire
}

func (b *simBucket) aliasCount() int { return len(b.globalAliases) + len(b.localAliases) }

// Wire shapes.

type bucketLocalAliasWire struct {
	AccessKeyID string `json:"accessKeyId"`
	Alias       string `json:"alias"`
}

type bucketListItemWire struct {
	ID            string                 `json:"id"`
	Created       time.Time              `json:"created"`
	GlobalAliases []string               `json:"globalAliases"`
	LocalAliases  []bucketLocalAliasWire `json:"localAliases"`
}

type bucketKeyWire struct {
	AccessKeyID        string         `json:"accessKeyId"`
	Name               string         `json:"name"`
	Permissions        bucketPermWire `json:"permissions"`
	BucketLocalAliases []string       `json:"bucketLocalAliases"`
}

type quotasWire struct {
	MaxSize    *int64 `json:"maxSize"`
	MaxObjects *int64 `json:"maxObjects"`
}

type websiteWire struct {
	IndexDocument string  `json:"indexDocument"`
	ErrorDocument *string `json:"errorDocument"`
}

type bucketInfoWire struct {
	ID                             string          `json:"id"`
	Created                        time.Time       `json:"created"`
	GlobalAliases                  []string        `json:"globalAliases"`
	WebsiteAccess                  bool            `json:"websiteAccess"`
	WebsiteConfig                  *websiteWire    `json:"websiteConfig"`
	Keys                           []bucketKeyWire `json:"keys"`
	Objects                        int64           `json:"objects"`
	Bytes                          int64           `json:"bytes"`
	UnfinishedUploads              int64           `json:"unfinishedUploads"`
	UnfinishedMultipartUploads     int64           `json:"unfinishedMultipartUploads"`
	UnfinishedMultipartUploadParts int64           `json:"unfinishedMultipartUploadParts"`
	UnfinishedMultipartUploadBytes int64           `json:"unfinishedMultipartUploadBytes"`
	Quotas                         quotasWire      `json:"quotas"`
	// LifecycleRules is null when the bucket has no lifecycle configuration.
	LifecycleRules []lifecycleRuleWire `json:"lifecycleRules"`
}

// bucketInfo builds a bucket's info from the simulator's model; the caller holds
// s.mu. What only MinIO knows and may change behind the simulator's back
// (unfinished multipart uploads, lifecycle rules a key set through S3) is read by
// complete, which serveAdmin calls after releasing s.mu: a slow MinIO must not
// hold up every other admin call.
func (s *Sim) bucketInfo(r *http.Request, b *simBucket) *pendingBucketInfo {
	out := bucketInfoWire{
		ID: b.id, Created: b.created, GlobalAliases: nonNil(slices.Clone(b.globalAliases)),
		WebsiteAccess: b.website != nil, WebsiteConfig: b.website, Keys: []bucketKeyWire{},
		Quotas: quotasWire{MaxSize: b.maxSize, MaxObjects: b.maxObjects},
	}
	for _, k := range s.sortedKeys() {
		p, hasPerm := b.perms[k.id]
		var locals []string
		for _, la := range b.localAliases {
			if la.keyID == k.id {
				locals = append(locals, la.alias)
			}
		}
		if hasPerm || len(locals) > 0 {
			out.Keys = append(out.Keys, bucketKeyWire{AccessKeyID: k.id, Name: k.name, Permissions: p.wire(), BucketLocalAliases: nonNil(locals)})
		}
	}
	if u, ok := s.bucketUsage(r.Context(), b.minioName); ok {
		out.Objects, out.Bytes = u.objects, u.bytes
	}
	return &pendingBucketInfo{s: s, wire: out, minioName: b.minioName}
}

// pendingBucketInfo is a bucket's info still missing what is read from MinIO.
type pendingBucketInfo struct {
	s         *Sim
	wire      bucketInfoWire
	minioName string
}

// completer is an answer that needs MinIO reads made without s.mu.
type completer interface{ complete(ctx context.Context) any }

// complete reads the bucket's unfinished uploads and lifecycle rules from MinIO,
// both at once, without s.mu.
func (p *pendingBucketInfo) complete(ctx context.Context) any {
	s, out := p.s, p.wire
	var (
		wg       sync.WaitGroup
		mpu      mpuUsage
		mpuErr   error
		rules    []lifecycleRuleWire
		rulesErr error
	)
	wg.Go(func() { mpu, mpuErr = s.multipartUsage(ctx, p.minioName) })
	rules, rulesErr = s.minioLifecycle(ctx, p.minioName)
	wg.Wait()
	if mpuErr != nil {
		s.log.Warn("garagesim: multipart usage", slog.String("bucket", out.ID), slog.String("error", mpuErr.Error()))
	} else {
		out.UnfinishedUploads, out.UnfinishedMultipartUploads = mpu.uploads, mpu.uploads
		out.UnfinishedMultipartUploadParts, out.UnfinishedMultipartUploadBytes = mpu.parts, mpu.bytes
	}
	if rulesErr != nil {
		s.log.Warn("garagesim: lifecycle rules", slog.String("bucket", out.ID), slog.String("error", rulesErr.Error()))
	} else {
		out.LifecycleRules = rules
	}
	return out
}

func (s *Sim) sortedBuckets() []*simBucket {
	bs := make([]*simBucket, 0, len(s.buckets))
	for _, b := range s.buckets {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b *simBucket) int { return strings.Compare(a.id, b.id) })
	return bs
}

func noSuchBucket(what string) *apiError {
	return &apiError{http.StatusNotFound, "NoSuchBucket", "Bucket not found: " + what}
}

func (s *Sim) bucketByGlobalAlias(alias string) *simBucket {
	for _, b := range s.buckets {
		if slices.Contains(b.globalAliases, alias) {
			return b
		}
	}
	return nil
}

func (s *Sim) bucketByLocalAlias(keyID, alias string) *simBucket {
	for _, b := range s.buckets {
		if slices.Contains(b.localAliases, localAlias{keyID, alias}) {
			return b
		}
	}
	return nil
}

// findBucket resolves ?id=, ?globalAlias= or ?search= like Garage: search is
// an exact global alias, else a unique ID prefix of at least 2 hex digits.
func (s *Sim) findBucket(r *http.Request) (*simBucket, *apiError) {
	q := r.URL.Query()
	id, ga, search := q.Get("id"), q.Get("globalAlias"), q.Get("search")
	n := 0
	for _, v := range []string{id, ga, search} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, badRequest("Exactly one of id, globalAlias or search must be provided")
	}
	switch {
	case id != "":
		if b, ok := s.buckets[id]; ok {
			return b, nil
		}
		return nil, noSuchBucket(id)
	case ga != "":
		if b := s.bucketByGlobalAlias(ga); b != nil {
			return b, nil
		}
		return nil, noSuchBucket(ga)
	}
	if b := s.bucketByGlobalAlias(search); b != nil {
		return b, nil
	}
	if len(search) >= 2 {
		var found []*simBucket
		for _, b := range s.sortedBuckets() {
			if strings.HasPrefix(b.id, search) {
				found = append(found, b)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	return nil, noSuchBucket(search)
}

// validBucketName is Garage's is_valid_bucket_name.
func validBucketName(n string) bool {
	if len(n) < 3 || len(n) > 63 {
		return false
	}
	for _, c := range n {
		if !(c == '.' || c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	if strings.HasPrefix(n, "-") || strings.HasPrefix(n, ".") || strings.HasSuffix(n, "-") || strings.HasSuffix(n, ".") {
		return false
	}
	if _, err := netip.ParseAddr(n); err == nil {
		return false
	}
	return !strings.HasPrefix(n, "xn--") && !strings.HasSuffix(n, "-s3alias")
}

func invalidBucketName(n string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidBucketName", fmt.Sprintf("Invalid bucket name: %s", n)}
}

func (s *Sim) listBuckets(_ *http.Request) (any, *apiError) {
	out := []bucketListItemWire{}
	for _, b := range s.sortedBuckets() {
		item := bucketListItemWire{ID: b.id, Created: b.created, GlobalAliases: nonNil(slices.Clone(b.globalAliases)), LocalAliases: []bucketLocalAliasWire{}}
		for _, la := range b.localAliases {
			item.LocalAliases = append(item.LocalAliases, bucketLocalAliasWire{la.keyID, la.alias})
		}
		out = append(out, item)
	}
	return out, nil
}

func (s *Sim) getBucketInfo(r *http.Request) (any, *apiError) {
	b, aerr := s.findBucket(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.bucketInfo(r, b), nil
}

type optPermWire struct {
	Read  *bool `json:"read"`
	Write *bool `json:"write"`
	Owner *bool `json:"owner"`
}

func (p *optPermWire) flags() perms {
	if p == nil {
		return perms{}
	}
	return perms{read: p.Read != nil && *p.Read, write: p.Write != nil && *p.Write, owner: p.Owner != nil && *p.Owner}
}

type createBucketWire struct {
	GlobalAlias *string `json:"globalAlias"`
	LocalAlias  *struct {
		AccessKeyID string       `json:"accessKeyId"`
		Alias       string       `json:"alias"`
		Allow       *optPermWire `json:"allow"`
	} `json:"localAlias"`
}

func (s *Sim) createBucket(r *http.Request) (any, *apiError) {
	var req createBucketWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if req.GlobalAlias == nil || *req.GlobalAlias == "" {
		return nil, badRequest("garagesim: CreateBucket needs a globalAlias, used as the MinIO bucket name (buckets without a global alias are not simulated)")
	}
	name := *req.GlobalAlias
	if !validBucketName(name) {
		return nil, invalidBucketName(name)
	}
	if s.bucketByGlobalAlias(name) != nil {
		return nil, &apiError{http.StatusConflict, "BucketAlreadyExists", "Bucket already exists: " + name}
	}
	var grant perms
	var la *localAlias
	if l := req.LocalAlias; l != nil {
		if _, ok := s.keys[l.AccessKeyID]; !ok {
			return nil, noSuchKey(l.AccessKeyID)
		}
		if !validBucketName(l.Alias) {
			return nil, invalidBucketName(l.Alias)
		}
		if s.bucketByLocalAlias(l.AccessKeyID, l.Alias) != nil {
			return nil, badRequest("Local alias already exists: %s", l.Alias)
		}
		la = &localAlias{l.AccessKeyID, l.Alias}
		grant = l.Allow.flags()
	}
	if aerr := s.minioMakeBucket(r.Context(), name); aerr != nil {
		return nil, aerr
	}
	b := &simBucket{
		id: randomHex(32), created: s.now().UTC().Truncate(time.Millisecond), minioName: name,
		globalAliases: []string{name}, perms: map[string]perms{},
	}
	s.buckets[b.id] = b
	if la != nil {
		b.localAliases = append(b.localAliases, *la)
		if grant.any() {
			b.perms[la.keyID] = grant
			if err := s.minioSyncPolicy(r.Context(), s.keys[la.keyID]); err != nil {
				return nil, internalError(err)
			}
		}
	}
	s.log.Info("garagesim: bucket created", "bucket", b.id, "alias", name)
	info := s.bucketInfo(r, b)
	if !grant.any() {
		// No key could reach the new bucket yet: it has no unfinished uploads
		// and no lifecycle rules, nothing to ask MinIO.
		return info.wire, nil
	}
	return info, nil
}

type updateBucketWire struct {
	Quotas        json.RawMessage `json:"quotas"`
	WebsiteAccess *struct {
		Enabled       bool            `json:"enabled"`
		IndexDocument *string         `json:"indexDocument"`
		ErrorDocument *string         `json:"errorDocument"`
		RoutingRules  json.RawMessage `json:"routingRules"`
	} `json:"websiteAccess"`
	CorsRules      json.RawMessage `json:"corsRules"`
	LifecycleRules json.RawMessage `json:"lifecycleRules"`
}

func isNull(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }

func (s *Sim) updateBucket(r *http.Request) (any, *apiError) {
	id := r.URL.Query().Get("id")
	b, ok := s.buckets[id]
	if !ok {
		return nil, noSuchBucket(id)
	}
	var req updateBucketWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if !isNull(req.CorsRules) {
		return nil, &apiError{http.StatusNotImplemented, "NotImplemented", "garagesim does not simulate CORS rules"}
	}
	var rules []lifecycleRuleWire
	if !isNull(req.LifecycleRules) {
		dec := json.NewDecoder(bytes.NewReader(req.LifecycleRules))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rules); err != nil {
			return nil, badRequest("Invalid lifecycleRules: %v", err)
		}
		for _, rule := range rules {
			if aerr := rule.validate(); aerr != nil {
				return nil, aerr
			}
		}
	}
	if w := req.WebsiteAccess; w != nil {
		if !isNull(w.RoutingRules) {
			return nil, &apiError{http.StatusNotImplemented, "NotImplemented", "garagesim does not simulate website routing rules"}
		}
		if w.Enabled && w.IndexDocument == nil {
			return nil, badRequest("Please specify indexDocument when enabling website access.")
		}
		if !w.Enabled && (w.IndexDocument != nil || w.ErrorDocument != nil) {
			return nil, badRequest("Cannot specify indexDocument or errorDocument when disabling website access.")
		}
	}
	if !isNull(req.Quotas) {
		var q struct {
			MaxSize    *int64 `json:"maxSize"`
			MaxObjects *int64 `json:"maxObjects"`
		}
		var present map[string]json.RawMessage
		if err := json.Unmarshal(req.Quotas, &q); err != nil {
			return nil, badRequest("Invalid quotas: %v", err)
		}
		_ = json.Unmarshal(req.Quotas, &present)
		for _, f := range []string{"maxSize", "maxObjects"} {
			if _, ok := present[f]; !ok {
				// Garage treats it as null: a client sending one field removes the other.
				s.log.Warn("garagesim: UpdateBucket quotas without "+f+": treated as null (no limit), as Garage does",
					slog.String("bucket", b.id))
			}
		}
		if (q.MaxSize != nil && *q.MaxSize < 0) || (q.MaxObjects != nil && *q.MaxObjects < 0) {
			return nil, badRequest("Quotas must not be negative")
		}
		if err := s.minioSetQuota(r.Context(), b.minioName, q.MaxSize); err != nil {
			return nil, internalError(err)
		}
		b.maxSize, b.maxObjects = q.MaxSize, q.MaxObjects
	}
	if !isNull(req.LifecycleRules) {
		// An empty array clears the configuration, as on Garage.
		if err := s.minioSetLifecycle(r.Context(), b.minioName, rules); err != nil {
			return nil, internalError(err)
		}
		s.log.Info("garagesim: lifecycle rules replaced", slog.String("bucket", b.id), slog.Int("rules", len(rules)))
	}
	if w := req.WebsiteAccess; w != nil {
		if w.Enabled {
			b.website = &websiteWire{IndexDocument: *w.IndexDocument, ErrorDocument: w.ErrorDocument}
		} else {
			b.website = nil
		}
	}
	return s.bucketInfo(r, b), nil
}

func (s *Sim) deleteBucket(r *http.Request) (any, *apiError) {
	id := r.URL.Query().Get("id")
	b, ok := s.buckets[id]
	if !ok {
		return nil, noSuchBucket(id)
	}
	if aerr := s.minioRemoveBucket(r.Context(), b.minioName); aerr != nil {
		return nil, aerr
	}
	delete(s.buckets, id)
	for keyID := range b.perms {
		if k, ok := s.keys[keyID]; ok {
			if err := s.minioSyncPolicy(r.Context(), k); err != nil {
				return nil, internalError(err)
			}
		}
	}
	s.log.Info("garagesim: bucket deleted", "bucket", id, "alias", b.minioName)
	return nil, nil
}

// aliasWire is BucketAliasEnum: {bucketId, globalAlias} or {bucketId,
// accessKeyId, localAlias}.
type aliasWire struct {
	BucketID    string  `json:"bucketId"`
	GlobalAlias *string `json:"globalAlias"`
	AccessKeyID *string `json:"accessKeyId"`
	LocalAlias  *string `json:"localAlias"`
}

func (s *Sim) decodeAlias(r *http.Request) (*simBucket, aliasWire, *apiError) {
	var req aliasWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, req, aerr
	}
	global := req.GlobalAlias != nil && req.AccessKeyID == nil && req.LocalAlias == nil
	local := req.GlobalAlias == nil && req.AccessKeyID != nil && req.LocalAlias != nil
	if req.BucketID == "" || global == local {
		return nil, req, badRequest("Expected {bucketId, globalAlias} or {bucketId, accessKeyId, localAlias}")
	}
	b, ok := s.buckets[req.BucketID]
	if !ok {
		return nil, req, noSuchBucket(req.BucketID)
	}
	if local {
		if _, ok := s.keys[*req.AccessKeyID]; !ok {
			return nil, req, noSuchKey(*req.AccessKeyID)
		}
	}
	return b, req, nil
}

func (s *Sim) addBucketAlias(r *http.Request) (any, *apiError) {
	b, req, aerr := s.decodeAlias(r)
	if aerr != nil {
		return nil, aerr
	}
	if req.GlobalAlias != nil {
		name := *req.GlobalAlias
		if !validBucketName(name) {
			return nil, invalidBucketName(name)
		}
		switch other := s.bucketByGlobalAlias(name); {
		case other == b:
		case other != nil:
			return nil, badRequest("Alias %s already exists and points to different bucket: %s", name, other.id)
		default:
			b.globalAliases = append(b.globalAliases, name)
		}
	} else {
		la := localAlias{*req.AccessKeyID, *req.LocalAlias}
		if !validBucketName(la.alias) {
			return nil, invalidBucketName(la.alias)
		}
		switch other := s.bucketByLocalAlias(la.keyID, la.alias); {
		case other == b:
		case other != nil:
			return nil, badRequest("Alias %s already exists and points to different bucket: %s", la.alias, other.id)
		default:
			b.localAliases = append(b.localAliases, la)
		}
	}
	return s.bucketInfo(r, b), nil
}

func (s *Sim) removeBucketAlias(r *http.Request) (any, *apiError) {
	b, req, aerr := s.decodeAlias(r)
	if aerr != nil {
		return nil, aerr
	}
	if req.GlobalAlias != nil {
		name := *req.GlobalAlias
		if !slices.Contains(b.globalAliases, name) {
			return nil, badRequest("Bucket %s doesn't have global alias %s", b.id, name)
		}
		if b.aliasCount() == 1 {
			return nil, badRequest("Bucket %s doesn't have other aliases, please delete it instead of just unaliasing.", name)
		}
		b.globalAliases = slices.DeleteFunc(b.globalAliases, func(a string) bool { return a == name })
	} else {
		la := localAlias{*req.AccessKeyID, *req.LocalAlias}
		if !slices.Contains(b.localAliases, la) {
			return nil, badRequest("Bucket %s doesn't have local alias %s for key %s", b.id, la.alias, la.keyID)
		}
		if b.aliasCount() == 1 {
			return nil, badRequest("Bucket %s doesn't have other aliases, please delete it instead of just unaliasing.", la.alias)
		}
		b.localAliases = slices.DeleteFunc(b.localAliases, func(a localAlias) bool { return a == la })
	}
	return s.bucketInfo(r, b), nil
}

type permChangeWire struct {
	BucketID    string       `json:"bucketId"`
	AccessKeyID string       `json:"accessKeyId"`
	Permissions *optPermWire `json:"permissions"`
}

func (s *Sim) allowBucketKey(r *http.Request) (any, *apiError) { return s.permChange(r, true) }

func (s *Sim) denyBucketKey(r *http.Request) (any, *apiError) { return s.permChange(r, false) }

// permChange applies Garage's semantics: flags sent as true are set (allow)
// or cleared (deny); flags false or absent are left unchanged.
func (s *Sim) permChange(r *http.Request, allow bool) (any, *apiError) {
	var req permChangeWire
	if aerr := decodeBody(r, &req); aerr != nil {
		return nil, aerr
	}
	if req.BucketID == "" || req.AccessKeyID == "" || req.Permissions == nil {
		return nil, badRequest("bucketId, accessKeyId and permissions are required")
	}
	b, ok := s.buckets[req.BucketID]
	if !ok {
		return nil, noSuchBucket(req.BucketID)
	}
	k, ok := s.keys[req.AccessKeyID]
	if !ok {
		return nil, noSuchKey(req.AccessKeyID)
	}
	change := req.Permissions.flags()
	p := b.perms[k.id]
	if allow {
		p = perms{read: p.read || change.read, write: p.write || change.write, owner: p.owner || change.owner}
	} else {
		p = perms{read: p.read && !change.read, write: p.write && !change.write, owner: p.owner && !change.owner}
	}
	if p.any() {
		b.perms[k.id] = p
	} else {
		delete(b.perms, k.id)
	}
	if err := s.minioSyncPolicy(r.Context(), k); err != nil {
		return nil, internalError(err)
	}
	return s.bucketInfo(r, b), nil
}
