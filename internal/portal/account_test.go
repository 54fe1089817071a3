package portal_test

import (
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// Changing one's password in the portal ends one's other sessions and revokes one's API
// tokens, and the page says how many.
func TestPortalPasswordChangeSaysWhatItEnded(t *testing.T) {
	s := newPortalTest(t)
	other := s.env.Do(apptest.Req{Method: "POST", Path: "/v1/auth/login", Body: map[string]string{"email": s.f.AdminA.Email, "password": s.f.AdminA.Password}})
	if other.Status != 200 {
		t.Fatalf("second login: %d", other.Status)
	}
	for _, name := range []string{"bot-1", "bot-2"} {
		if r := s.env.Do(apptest.Req{Method: "POST", Path: "/v1/tokens", Token: s.f.AdminA.Access, Body: map[string]any{"name": name, "member": "member-a"}}); r.Status != 201 {
			t.Fatalf("token: %d %s", r.Status, r.Body)
		}
	}
	r := s.post(s.f.AdminA, "/account/password", url.Values{"current_password": {s.f.AdminA.Password},
		"new_password": {"a-brand-new-long-passphrase"}, "confirm_password": {"a-brand-new-long-passphrase"}})
	loc := r.Header.Get("Location")
	if r.Status != 303 || !strings.HasPrefix(loc, "/account?") {
		t.Fatalf("change: %d %s %s", r.Status, loc, r.Body)
	}
	page := s.get(s.f.AdminA, loc)
	text := html.UnescapeString(string(page.Body))
	if page.Status != 200 || !strings.Contains(text, "1 other session was logged out and 2 API tokens were revoked") {
		t.Fatalf("the account page does not say what ended: %d\n%s", page.Status, text)
	}
}

// The portal's audit pages show a personal entry (a login) to the person, their member's
// admins and federation admins only.
func TestPortalShowsALoginOnlyToThePersonTheirAdminsAndFederationAdmins(t *testing.T) {
	s := newPortalTest(t)
	var seq int64
	if err := s.env.App.Pool.QueryRow(t.Context(), `SELECT min(seq) FROM audit_entries WHERE action = 'auth.login' AND actor_name = $1`,
		s.f.ViewerA.Email).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	path := "/audit/entries/" + strconv.FormatInt(seq, 10)
	for _, c := range []struct {
		a    *apptest.Actor
		want int
	}{{s.f.ViewerA, 200}, {s.f.AdminA, 200}, {s.f.AdminB, 404}, {s.f.FedAdmin, 200}} {
		if r := s.get(c.a, path); r.Status != c.want {
			t.Errorf("%s reads viewer A's login: %d, want %d", c.a.Name, r.Status, c.want)
		}
	}
	list := s.get(s.f.AdminB, "/audit?action=auth.*")
	if list.Status != 200 || strings.Contains(string(list.Body), s.f.ViewerA.Email) || strings.Contains(string(list.Body), s.f.AdminA.Email) {
		t.Fatalf("member B's admin sees member A's logins in the list: %d", list.Status)
	}
}
