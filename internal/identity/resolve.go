package identity

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Resolving a credential is on every request's path, so it costs at most one SQL statement
// (the credential, its user and the user's memberships in one round trip), and its result is
// kept for a short time (Config.PrincipalCacheTTL, default 2 s) in a small per-process cache:
// repeated requests with the same credential then cost no statement at all.
//
// Revocation stays effective within seconds: every revocation made through this Service
// (token revoke, logout, password change, a person's role change or removal) empties the
// cache at once; a change made by another process (or a member deleted through the islands
// package) takes effect when the cached entry expires, at most PrincipalCacheTTL later.

// principalColumns selects a user and their memberships (as parallel arrays, ordered by
// member name then id) from users u; principalJoin supplies the memberships.
const (
	principalColumns = `u.id, u.email, u.display_name, u.status, u.federation_admin,
		coalesce(ms.ids, '{}'), coalesce(ms.slugs, '{}'), coalesce(ms.names, '{}'), coalesce(ms.roles, '{}'),
		coalesce(u.language, '')`
	principalJoin = ` LEFT JOIN LATERAL (SELECT array_agg(m.id ORDER BY m.name, m.id) ids,
			array_agg(m.slug ORDER BY m.name, m.id) slugs, array_agg(m.name ORDER BY m.name, m.id) names,
			array_agg(x.role ORDER BY m.name, m.id) roles
		FROM memberships x JOIN members m ON m.id = x.member_id WHERE x.user_id = u.id) ms ON true`
)

// principalRow receives principalColumns.
type principalRow struct {
	userID          int64
	email, display  string
	status          string
	federationAdmin bool
	ids             []int64
	slugs, names    []string
	roles           []string
	language        string
}

func (r *principalRow) dest() []any {
	return []any{&r.userID, &r.email, &r.display, &r.status, &r.federationAdmin, &r.ids, &r.slugs, &r.names, &r.roles, &r.language}
}

// principal builds the principal of an active user, or ErrSessionExpired.
func (r *principalRow) principal(via string) (*Principal, error) {
	if r.status != "active" {
		return nil, ErrSessionExpired
	}
	ms := make([]MemberRef, len(r.ids))
	for i := range r.ids {
		ms[i] = MemberRef{ID: r.ids[i], Slug: r.slugs[i], Name: r.names[i], Role: Role(r.roles[i])}
	}
	return &Principal{UserID: r.userID, Email: r.email, DisplayName: r.display, FederationAdmin: r.federationAdmin,
		Members: ms, Via: via, Language: r.language}, nil
}

// maxCachedPrincipals bounds the cache; when full, expired entries are dropped, and if none
// had expired the whole cache is emptied (a burst of distinct credentials simply costs their
// one statement each).
const maxCachedPrincipals = 10000

// principalCache keeps resolved principals for a short time, keyed by a hash of the
// credential (never the credential itself).
type principalCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[[32]byte]cachedPrincipal
	// gen counts invalidations: a principal read from the database before an invalidation is
	// not cached after it (it may predate the revocation).
	gen uint64
}

type cachedPrincipal struct {
	p       Principal
	expires time.Time
}

func newPrincipalCache(ttl time.Duration) *principalCache {
	return &principalCache{ttl: ttl, entries: map[[32]byte]cachedPrincipal{}}
}

func credentialKey(kind, secret string) [32]byte {
	return sha256.Sum256([]byte(kind + "\x00" + secret))
}

// get returns a copy of the cached principal for key, if fresh.
func (c *principalCache) get(key [32]byte, now time.Time) (*Principal, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	p := e.p
	p.Members = append([]MemberRef(nil), e.p.Members...)
	return &p, true
}

// generation returns the invalidation count, to be read before the database is.
func (c *principalCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches a copy of p for key until now+ttl, or until expires if that is sooner (the
// credential's own expiry), unless the cache was invalidated since gen was read.
func (c *principalCache) put(key [32]byte, gen uint64, p *Principal, now, expires time.Time) {
	if c.ttl <= 0 {
		return
	}
	until := now.Add(c.ttl)
	if !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	e := cachedPrincipal{p: *p, expires: until}
	e.p.Members = append([]MemberRef(nil), p.Members...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= maxCachedPrincipals {
		for k, v := range c.entries {
			if !now.Before(v.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedPrincipals {
			clear(c.entries)
		}
	}
	c.entries[key] = e
}

// invalidate empties the cache: called after every revocation and role change.
func (c *principalCache) invalidate() {
	c.mu.Lock()
	clear(c.entries)
	c.gen++
	c.mu.Unlock()
}
