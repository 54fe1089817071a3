package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Once-shown secrets follow POST-redirect-GET: the POST that creates a secret (a vault key,
// an API token, a webhook secret) keeps it here, server-side and bound to the session, and
// redirects (303) to a GET page that takes it out and shows it. Reloading that page shows
// no secret and creates nothing; the secret never goes in a URL, a cookie or a log. An
// entry not shown within onceTTL is dropped (the secret is then lost: rotate the key).
// The store is in this process's memory: behind a load balancer, sessions must stick to
// one process for the few seconds between the POST and its redirect.

// onceTTL is how long a once-shown secret waits for its page.
const onceTTL = 5 * time.Minute

type onceEntry struct {
	v       any
	expires time.Time
}

// onceStore holds the secrets waiting for their page, by session and name.
type onceStore struct {
	mu sync.Mutex
	m  map[string]onceEntry
}

// onceKey names a secret of the request's session (a hash of the session cookie: the
// store keeps no session secret), or "" without a session.
func onceKey(r *http.Request, name string) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(c.Value))
	return hex.EncodeToString(sum[:]) + "\x00" + name
}

// keepOnce keeps v for one display on the session's next page named name.
func (p *Portal) keepOnce(r *http.Request, name string, v any) {
	k := onceKey(r, name)
	if k == "" {
		return
	}
	now := time.Now()
	p.once.mu.Lock()
	defer p.once.mu.Unlock()
	if p.once.m == nil {
		p.once.m = map[string]onceEntry{}
	}
	for key, e := range p.once.m {
		if now.After(e.expires) {
			delete(p.once.m, key)
		}
	}
	p.once.m[k] = onceEntry{v: v, expires: now.Add(onceTTL)}
}

// takeOnce takes out the session's secret named name, if it is waiting and of type T: it is
// deleted, so it is shown once.
func takeOnce[T any](p *Portal, r *http.Request, name string) (T, bool) {
	var zero T
	k := onceKey(r, name)
	if k == "" {
		return zero, false
	}
	p.once.mu.Lock()
	e, ok := p.once.m[k]
	delete(p.once.m, k)
	p.once.mu.Unlock()
	if !ok || time.Now().After(e.expires) {
		return zero, false
	}
	v, ok := e.v.(T)
	return v, ok
}
