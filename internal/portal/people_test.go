package portal_test

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// peoplePortal drives the People page over HTTP as the fixture's actors (session cookie
// and CSRF token, as a browser would).
type peoplePortal struct {
	env *apptest.Env
	f   *apptest.Fixture
}

func (s *peoplePortal) get(a *apptest.Actor, path string) *apptest.Response {
	return pageGet(s.env, a, path)
}

// follow GETs where a form's 303 leads (POST-redirect-GET: a once-shown password is on that page).
func (s *peoplePortal) follow(a *apptest.Actor, r *apptest.Response) *apptest.Response {
	s.env.T.Helper()
	if r.Status != 303 {
		s.env.T.Fatalf("form answered %d, want 303:\n%s", r.Status, r.Body)
	}
	return s.get(a, r.Header.Get("Location"))
}

func (s *peoplePortal) post(a *apptest.Actor, path string, form url.Values) *apptest.Response {
	return formPost(s.env, a, path, form) // a form's own csrf (a forged one) wins
}

// userID finds a person's user id in the page's role form.
func userID(t *testing.T, page []byte, email string) string {
	t.Helper()
	m := regexp.MustCompile(`for="role-(\d+)">Role of ` + regexp.QuoteMeta(email) + `</label>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no role form for %s in\n%s", email, page)
	}
	return string(m[1])
}

func TestPeoplePortalForms(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	s := &peoplePortal{env: env, f: env.Fixture()}
	f := s.f

	// An admin sees the people with their roles, the add form, and the People link is current.
	page := s.get(f.AdminA, "/people?member=member-a")
	body := string(page.Body)
	if page.Status != 200 || !strings.Contains(body, f.ViewerA.Email) || !strings.Contains(body, `action="/people"`) ||
		!strings.Contains(body, `href="/people" aria-current="page"`) || strings.Count(body, `name="csrf"`) < 4 {
		t.Fatalf("admin's people page: %d\n%s", page.Status, body)
	}
	// A viewer reads the list, without forms.
	v := s.get(f.ViewerA, "/people")
	if v.Status != 200 || !strings.Contains(string(v.Body), f.AdminA.Email) || strings.Contains(string(v.Body), `action="/people`) {
		t.Fatalf("viewer's people page: %d\n%s", v.Status, v.Body)
	}
	// Another member's people do not exist for B.
	if b := s.get(f.AdminB, "/people?member=member-a"); b.Status != 404 || strings.Contains(string(b.Body), f.ViewerA.Email) {
		t.Fatalf("B reads A's people: %d", b.Status)
	}

	// Add a new colleague: the generated password is shown once, with a copy button.
	add := url.Values{"member": {"member-a"}, "email": {"carol@a.example"}, "display_name": {"Carol"}, "role": {"viewer"}}
	r := s.follow(f.AdminA, s.post(f.AdminA, "/people", add))
	m := regexp.MustCompile(`<code id="new-person-password" class="token-value">([^<]+)</code>`).FindSubmatch(r.Body)
	if r.Status != 200 || m == nil || !strings.Contains(string(r.Body), `data-copy="new-person-password"`) {
		t.Fatalf("add: %d\n%s", r.Status, r.Body)
	}
	password := html.UnescapeString(string(m[1]))
	if _, err := env.App.Identity.Login(context.Background(), "carol@a.example", password, "192.0.2.50", "test"); err != nil {
		t.Fatalf("carol cannot log in with the shown password: %v", err)
	}
	again := s.get(f.AdminA, "/people?member=member-a")
	if strings.Contains(string(again.Body), password) || !strings.Contains(string(again.Body), "carol@a.example") {
		t.Fatalf("the list shows the password again or lacks Carol:\n%s", again.Body)
	}
	carol := userID(t, again.Body, "carol@a.example")

	// Refusals: the viewer 403, B 404, bad input 400 naming the field, no CSRF 403.
	if r := s.post(f.ViewerA, "/people", add); r.Status != 403 || !strings.Contains(string(r.Body), "Only an admin") {
		t.Errorf("viewer adds: %d", r.Status)
	}
	if r := s.post(f.AdminB, "/people", add); r.Status != 404 {
		t.Errorf("B adds to A: %d", r.Status)
	}
	for _, c := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/people", url.Values{"member": {"member-a"}, "email": {"not an email"}}, "Email is not an email address"},
		{"/people", url.Values{"member": {"member-a"}, "email": {"dan@a.example"}, "role": {"owner"}}, "Role must be admin or viewer"},
		{"/people/" + carol + "/role", url.Values{"member": {"member-a"}, "role": {"owner"}}, "Role must be admin or viewer"},
	} {
		r := s.post(f.AdminA, c.path, c.form)
		if r.Status != 400 || !strings.Contains(html.UnescapeString(string(r.Body)), c.want) {
			t.Errorf("%s %v: %d, want 400 saying %q", c.path, c.form, r.Status, c.want)
		}
	}
	if r := s.post(f.AdminA, "/people/"+carol+"/remove", url.Values{"member": {"member-a"}, "csrf": {"forged"}}); r.Status != 403 {
		t.Errorf("remove without the CSRF token: %d", r.Status)
	}

	// The last admin can be neither demoted nor removed.
	self := userID(t, again.Body, f.AdminA.Email)
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/people/" + self + "/role", url.Values{"member": {"member-a"}, "role": {"viewer"}}},
		{"/people/" + self + "/remove", url.Values{"member": {"member-a"}, "confirm": {"yes"}}},
	} {
		r := s.post(f.AdminA, c.path, c.form)
		if r.Status != 409 || !strings.Contains(html.UnescapeString(string(r.Body)), "last admin") {
			t.Errorf("%s: %d, want 409", c.path, r.Status)
		}
	}

	// Change Carol's role, then remove her.
	if r := s.post(f.AdminA, "/people/"+carol+"/role", url.Values{"member": {"member-a"}, "role": {"admin"}}); r.Status != 303 {
		t.Fatalf("promote carol: %d\n%s", r.Status, r.Body)
	}
	if r := s.post(f.ViewerA, "/people/"+carol+"/remove", url.Values{"member": {"member-a"}}); r.Status != 403 {
		t.Errorf("viewer removes: %d", r.Status)
	}
	if r := s.post(f.AdminB, "/people/"+carol+"/remove", url.Values{"member": {"member-a"}}); r.Status != 404 {
		t.Errorf("B removes: %d", r.Status)
	}
	r = s.post(f.AdminA, "/people/"+carol+"/remove", url.Values{"member": {"member-a"}, "confirm": {"yes"}})
	if loc := r.Header.Get("Location"); r.Status != 303 || loc != "/people?done=removed&member=member-a" {
		t.Fatalf("remove carol: %d %s", r.Status, loc)
	}
	after := s.get(f.AdminA, "/people?member=member-a&done=removed")
	if strings.Contains(string(after.Body), "carol@a.example") || !strings.Contains(string(after.Body), "The person was removed") {
		t.Fatalf("after removal:\n%s", after.Body)
	}

	// A federation admin onboards a member's first admin from the web.
	fresh := env.Member("member-c", "Member C")
	if r := s.get(f.FedAdmin, "/people?member=member-c"); r.Status != 200 || !strings.Contains(string(r.Body), "Add the member") {
		t.Fatalf("fed admin, empty member: %d\n%s", r.Status, r.Body)
	}
	r = s.follow(f.FedAdmin, s.post(f.FedAdmin, "/people", url.Values{"member": {"member-c"}, "email": {"first@c.example"}, "role": {"admin"}}))
	if r.Status != 200 || !strings.Contains(string(r.Body), "first@c.example can now log in as admin") {
		t.Fatalf("onboard: %d\n%s", r.Status, r.Body)
	}
	people, err := env.App.Identity.PersonList(context.Background(), fresh.ID)
	if err != nil || len(people) != 1 || people[0].Role != "admin" {
		t.Fatalf("member C's people: %+v %v", people, err)
	}
	// Existing users join without a new password.
	r = s.post(f.FedAdmin, "/people", url.Values{"member": {"member-c"}, "email": {f.AdminB.Email}, "role": {"viewer"}})
	if r.Status != 303 || r.Header.Get("Location") != "/people?done=added&member=member-c" {
		t.Fatalf("add existing user: %d %s", r.Status, r.Header.Get("Location"))
	}
	var n int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action LIKE 'member_user.%'
		AND strpos(details::text, $1) = 0`, password).Scan(&n); err != nil || n != 5 {
		t.Fatalf("audited people changes without the password: %d (%v)", n, err)
	}
}
