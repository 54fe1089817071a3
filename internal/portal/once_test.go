package portal_test

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/portal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestPortalKeySecretIsShownOnceAfterARedirect: creating a vault key answers with a
// redirect (303) to the vault's page, which shows the secret once; reloading the page shows
// no secret and creates no key; the secret is never in a URL, and another session of the
// same person does not get it.
func TestPortalKeySecretIsShownOnceAfterARedirect(t *testing.T) {
	s := newPortalTest(t)
	s.islandsAB(1, 100_000_000_000) // the vault's island is south: not its member's
	v, _, err := s.env.App.Vaults.Create(s.ctx, vaults.CreateInput{MemberID: s.f.MemberA.ID, Name: testenv.Unique("once-"), QuotaBytes: 1_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(6 * time.Minute); ; { // Garage may be slow on a loaded machine
		if v, err = s.env.App.Vaults.VaultGetByID(s.ctx, v.ID); err == nil && v.Status == vaults.StatusActive {
			break
		}
		_, _ = s.env.App.Vaults.ReconcileVault(s.ctx, v.ID)
		if time.Now().After(deadline) {
			t.Fatalf("vault %s not provisioned in time", v.Status)
		}
		time.Sleep(time.Second) // polling, not an assertion
	}
	page := "/vaults/" + strconv.FormatInt(v.ID, 10)
	cookie := map[string]string{"Cookie": portal.SessionCookie + "=" + s.f.AdminA.Session}
	get := func(path string, hdr map[string]string) string {
		res := s.env.Do(apptest.Req{Method: "GET", Path: path, Header: hdr})
		if res.Status != 200 {
			t.Fatalf("GET %s: %d", path, res.Status)
		}
		if strings.Contains(string(res.Body), `id="new-key-secret"`) && res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("the page with the secret may be cached: Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		return string(res.Body)
	}
	keys := func() int {
		ks, err := s.env.App.Vaults.KeyList(s.ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	before := keys()

	form := url.Values{"name": {"backup server"}, "csrf": {s.f.AdminA.CSRF}}
	res := s.env.Do(apptest.Req{Method: "POST", Path: page + "/keys", Body: form.Encode(), Header: map[string]string{
		"Cookie": cookie["Cookie"], "Content-Type": "application/x-www-form-urlencoded"}})
	loc := res.Header.Get("Location")
	if res.Status != 303 || loc != page {
		t.Fatalf("POST key: %d to %q, want 303 to the vault page", res.Status, loc)
	}
	if strings.Contains(string(res.Body), "new-key-secret") {
		t.Fatal("the POST answer shows the secret")
	}
	if keys() != before+1 {
		t.Fatalf("keys after the POST: %d, want %d", keys(), before+1)
	}

	// The page the redirect leads to shows the secret, once.
	body := get(loc, cookie)
	m := regexp.MustCompile(`<code id="new-key-secret"[^>]*>([^<]+)</code>`).FindStringSubmatch(body)
	if m == nil || len(m[1]) < 20 {
		t.Fatalf("the page after the redirect shows no secret:\n%s", body)
	}
	secret := m[1]
	if strings.Contains(loc, secret) {
		t.Fatal("the secret is in the URL")
	}
	// Reloading shows no secret and creates nothing.
	for _, path := range []string{loc, page, page + "?done=created"} {
		if body := get(path, cookie); strings.Contains(body, "new-key-secret") || strings.Contains(body, secret) {
			t.Fatalf("GET %s after the secret was shown shows it again", path)
		}
	}
	if keys() != before+1 {
		t.Fatalf("keys after reloading: %d, want %d", keys(), before+1)
	}

	// A rotated key goes the same way; another session (the viewer's) never sees it.
	ks, _ := s.env.App.Vaults.KeyList(s.ctx, v.ID)
	form = url.Values{"csrf": {s.f.AdminA.CSRF}}
	res = s.env.Do(apptest.Req{Method: "POST", Path: page + "/keys/" + strconv.FormatInt(ks[0].ID, 10) + "/rotate", Body: form.Encode(),
		Header: map[string]string{"Cookie": cookie["Cookie"], "Content-Type": "application/x-www-form-urlencoded"}})
	if res.Status != 303 {
		t.Fatalf("POST rotate: %d %s", res.Status, res.Body)
	}
	if body := get(res.Header.Get("Location"), map[string]string{"Cookie": portal.SessionCookie + "=" + s.f.ViewerA.Session}); strings.Contains(body, "new-key-secret") {
		t.Fatal("another session sees the rotated key's secret")
	}
	if body := get(res.Header.Get("Location"), cookie); !strings.Contains(body, `id="new-key-secret"`) {
		t.Fatal("the rotated key's secret is not shown after the redirect")
	}

	// API tokens and webhook secrets go the same way: 303, shown once on the GET, never again.
	var tokens, channels int
	count := func() {
		if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM notify_channels)`).Scan(&tokens, &channels); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		path, to, id string
		form         url.Values
	}{
		{"/tokens", "/tokens", "new-token-value", url.Values{"name": {"once"}, "member": {"member-a"}, "role": {"viewer"}}},
		{"/notifications/channels", "/notifications", "new-webhook-secret", url.Values{"member": {"member-a"}, "kind": {"webhook"},
			"name": {testenv.Unique("once-")}, "target": {"https://example.org/hook"}}},
	} {
		c.form.Set("csrf", s.f.AdminA.CSRF)
		res := s.env.Do(apptest.Req{Method: "POST", Path: c.path, Body: c.form.Encode(), Header: map[string]string{
			"Cookie": cookie["Cookie"], "Content-Type": "application/x-www-form-urlencoded"}})
		if res.Status != 303 || res.Header.Get("Location") != c.to || strings.Contains(string(res.Body), c.id) {
			t.Fatalf("POST %s: %d to %q, want 303 to %s without the secret", c.path, res.Status, res.Header.Get("Location"), c.to)
		}
		count()
		t0, c0 := tokens, channels
		body := get(c.to, cookie)
		m := regexp.MustCompile(`<code[^>]*id="` + c.id + `"[^>]*>([^<]+)</code>`).FindStringSubmatch(body)
		if m == nil || len(m[1]) < 20 {
			t.Fatalf("GET %s after the POST shows no secret", c.to)
		}
		if body := get(c.to, cookie); strings.Contains(body, c.id) || strings.Contains(body, m[1]) {
			t.Fatalf("GET %s again shows the secret again", c.to)
		}
		if count(); tokens != t0 || channels != c0 {
			t.Fatalf("reloading %s created something: tokens %d→%d, channels %d→%d", c.to, t0, tokens, c0, channels)
		}
	}
}
