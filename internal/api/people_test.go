package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

type personOut struct {
	UserID          int64   `json:"user_id"`
	Email           string  `json:"email"`
	DisplayName     string  `json:"display_name"`
	Role            string  `json:"role"`
	Status          string  `json:"status"`
	LastLoginAt     *string `json:"last_login_at"`
	InitialPassword *string `json:"initial_password"`
}

// peopleSetup is the fixture plus helpers for member A's and B's people.
type peopleSetup struct {
	env  *apptest.Env
	f    *apptest.Fixture
	a, b string // /v1/members/{id}/people of A and B
}

func newPeopleSetup(t *testing.T) *peopleSetup {
	t.Helper()
	env := apptest.New(t)
	f := env.Fixture()
	return &peopleSetup{env: env, f: f, a: fmt.Sprintf("/v1/members/%d/people", f.MemberA.ID),
		b: fmt.Sprintf("/v1/members/%d/people", f.MemberB.ID)}
}

// add posts a person to path (a member's people) as token and decodes the answer.
func (s *peopleSetup) add(t *testing.T, token, path string, body map[string]any) (*apptest.Response, personOut) {
	t.Helper()
	r := s.do(token, "POST", path, body)
	var p personOut
	r.Decode(t, &p)
	return r, p
}

func (s *peopleSetup) do(token, method, path string, body any) *apptest.Response {
	return s.env.Do(apptest.Req{Method: method, Path: path, Token: token, Body: body})
}

func (s *peopleSetup) list(t *testing.T, token, path string) map[string]personOut {
	t.Helper()
	r := s.do(token, "GET", path, nil)
	if r.Status != 200 {
		t.Fatalf("list %s: %d %s", path, r.Status, r.Body)
	}
	var out struct{ People []personOut }
	r.Decode(t, &out)
	m := map[string]personOut{}
	for _, p := range out.People {
		m[p.Email] = p
	}
	return m
}

func TestPeopleAddANewColleague(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	admin := s.f.AdminA.Access
	r, added := s.add(t, admin, s.a, map[string]any{"email": " Alice@A.example ", "display_name": "Alice", "role": "admin"})
	require(t, fmt.Sprintf("add: %d %s", r.Status, r.Body),
		check{r.Status == 201, "answers 201"},
		check{added.InitialPassword != nil && len(*added.InitialPassword) >= 12, "shows a generated password of 12 characters or more"},
		check{added.Email == "alice@a.example", "stores the email trimmed and in lower case"},
		check{added.Role == "admin", "gives the role asked for"},
		check{added.DisplayName == "Alice", "keeps the display name"},
		check{added.LastLoginAt == nil, "has no last login yet"})
	password := *added.InitialPassword

	// The password works, once handed over: Alice logs in and administers member A.
	lr := login(s.env, "alice@a.example", password)
	if lr.Status != 200 {
		t.Fatalf("login with the initial password: %d %s", lr.Status, lr.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	lr.Decode(t, &tok)
	if me := s.do(tok.AccessToken, "GET", "/v1/me", nil); !strings.Contains(string(me.Body), `"member_slug":"member-a","member_name":"Member A","role":"admin"`) {
		t.Fatalf("me: %s", me.Body)
	}

	// The password is shown once: never in lists, single reads, nor the audit log.
	people := s.list(t, s.f.ViewerA.Access, s.a)
	alice, ok := people["alice@a.example"]
	require(t, fmt.Sprintf("people: %+v", people),
		check{ok, "lists alice"},
		check{alice.Role == "admin", "lists alice as admin"},
		check{alice.LastLoginAt != nil, "shows alice's login"},
		check{len(people) == 3, "lists three people"})
	for _, path := range []string{s.a, fmt.Sprintf("%s/%d", s.a, added.UserID)} {
		if b := s.do(admin, "GET", path, nil).Body; strings.Contains(string(b), password) || strings.Contains(string(b), "initial_password") {
			t.Errorf("GET %s shows the password: %s", path, b)
		}
	}
	var entries, leaks int
	if err := s.env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE action = 'member_user.add'
		AND details::jsonb @> '{"email":"alice@a.example","role":"admin","user_created":true}'),
		count(*) FILTER (WHERE strpos(details::text, $1) > 0 OR strpos(actor_name, $1) > 0)
		FROM audit_entries`, password).Scan(&entries, &leaks); err != nil || entries != 1 || leaks != 0 {
		t.Fatalf("audit: %d member_user.add entries, %d holding the password (%v)", entries, leaks, err)
	}

	// Adding the same email again creates nothing: no new password.
	r, again := s.add(t, admin, s.a, map[string]any{"email": "alice@a.example", "role": "viewer"})
	require(t, fmt.Sprintf("add again: %d %s", r.Status, r.Body),
		check{r.Status == 200, "answers 200"},
		check{again.InitialPassword == nil, "shows no new password"},
		check{again.Role == "viewer", "changes the role"},
		check{again.UserID == added.UserID, "keeps the same user"})
}

func TestPeopleExistingUserJoinsASecondMember(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	// A federation admin onboards member B's second admin: the viewer of A, who keeps their password.
	r, p := s.add(t, s.f.FedAdmin.Access, s.b, map[string]any{"email": s.f.ViewerA.Email, "display_name": "ignored", "role": "admin"})
	require(t, fmt.Sprintf("add existing user: %d %s", r.Status, r.Body),
		check{r.Status == 201, "answers 201"},
		check{p.InitialPassword == nil, "shows no password"},
		check{p.Role == "admin", "gives the role asked for"},
		check{p.DisplayName != "ignored", "keeps the user's own display name"})
	lr := login(s.env, s.f.ViewerA.Email, s.f.ViewerA.Password)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	lr.Decode(t, &tok)
	me := string(s.do(tok.AccessToken, "GET", "/v1/me", nil).Body)
	if !strings.Contains(me, `"member_slug":"member-a","member_name":"Member A","role":"viewer"`) || !strings.Contains(me, `"member_slug":"member-b","member_name":"Member B","role":"admin"`) {
		t.Fatalf("me: %s", me)
	}
	if _, ok := s.list(t, s.f.AdminB.Access, s.b)[s.f.ViewerA.Email]; !ok {
		t.Fatal("B's list lacks its new admin")
	}
}

func TestPeopleAuthorization(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	body := map[string]any{"email": "mallory@a.example", "role": "admin"}
	viewerID := s.list(t, s.f.AdminA.Access, s.a)[s.f.ViewerA.Email].UserID
	person := fmt.Sprintf("%s/%d", s.a, viewerID)
	for _, c := range []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"viewer adds", s.f.ViewerA.Access, "POST", s.a, body, 403},
		{"viewer promotes self", s.f.ViewerA.Access, "PATCH", person, map[string]any{"role": "admin"}, 403},
		{"viewer removes self", s.f.ViewerA.Access, "DELETE", person, nil, 403},
		{"B lists A", s.f.AdminB.Access, "GET", s.a, nil, 404},
		{"B reads A's person", s.f.AdminB.Access, "GET", person, nil, 404},
		{"B adds to A", s.f.AdminB.Access, "POST", s.a, body, 404},
		{"B changes A's person", s.f.AdminB.Access, "PATCH", person, map[string]any{"role": "admin"}, 404},
		{"B removes A's person", s.f.AdminB.Access, "DELETE", person, nil, 404},
		{"A removes from B a person of A", s.f.AdminA.Access, "DELETE", fmt.Sprintf("%s/%d", s.b, viewerID), nil, 404},
		{"anonymous", "", "GET", s.a, nil, 401},
		{"unknown member", s.f.FedAdmin.Access, "GET", "/v1/members/999999/people", nil, 404},
	} {
		if r := s.do(c.token, c.method, c.path, c.body); r.Status != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, r.Status, c.want, r.Body)
		}
	}
	if _, ok := s.list(t, s.f.FedAdmin.Access, s.a)["mallory@a.example"]; ok {
		t.Fatal("a refused add added someone")
	}
	if p := s.list(t, s.f.FedAdmin.Access, s.a)[s.f.ViewerA.Email]; p.Role != "viewer" {
		t.Fatalf("the viewer's role changed: %+v", p)
	}
}

func TestPeopleBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	admin := s.f.AdminA.Access
	for _, c := range []struct {
		body        any
		status      int
		field, code string
	}{
		{map[string]any{"role": "viewer"}, 400, "email", "invalid_field"},
		{map[string]any{"email": "not an email"}, 400, "email", "invalid_field"},
		{map[string]any{"email": "x@a.example", "role": "owner"}, 400, "role", "invalid_field"},
		{map[string]any{"email": "x@a.example", "display_name": strings.Repeat("n", 201)}, 400, "display_name", "invalid_field"},
		{map[string]any{"email": "x@a.example", "password": "chosen-by-admin"}, 400, "password", "unknown_field"},
		{map[string]any{"email": 42}, 400, "email", "invalid_field"},
	} {
		r := s.env.Do(apptest.Req{Method: "POST", Path: s.a, Token: admin, Body: c.body, NoValidate: true})
		if r.Status != c.status || r.ErrorField() != c.field || r.ErrorCode() != c.code {
			t.Errorf("POST %v: %d %s", c.body, r.Status, r.Body)
		}
	}
	viewerID := s.list(t, admin, s.a)[s.f.ViewerA.Email].UserID
	person := fmt.Sprintf("%s/%d", s.a, viewerID)
	for _, c := range []struct {
		path   string
		body   any
		status int
		field  string
	}{
		{person, map[string]any{}, 400, "role"},
		{person, map[string]any{"role": "root"}, 400, "role"},
		{s.a + "/not-a-number", map[string]any{"role": "viewer"}, 404, "person"},
		{s.a + "/999999", map[string]any{"role": "viewer"}, 404, "person"},
	} {
		r := s.do(admin, "PATCH", c.path, c.body)
		if r.Status != c.status || r.ErrorField() != c.field {
			t.Errorf("PATCH %s %v: %d %s", c.path, c.body, r.Status, r.Body)
		}
	}
	if r := s.do(admin, "POST", s.a, "{"); r.Status != 400 || r.ErrorCode() != "malformed_json" {
		t.Errorf("malformed JSON: %d %s", r.Status, r.Body)
	}
}

func TestPeopleLastAdminStays(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	admin := s.f.AdminA.Access
	self := fmt.Sprintf("%s/%d", s.a, s.list(t, admin, s.a)[s.f.AdminA.Email].UserID)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", self, map[string]any{"role": "viewer"}},
		{"DELETE", self, nil},
		{"POST", s.a, map[string]any{"email": s.f.AdminA.Email, "role": "viewer"}},
	} {
		for _, token := range []string{admin, s.f.FedAdmin.Access} {
			r := s.do(token, c.method, c.path, c.body)
			if r.Status != 409 || r.ErrorCode() != "conflict" || !strings.Contains(string(r.Body), "last admin") {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
		}
	}
	// With a second admin, the first may step down, and then leave.
	if r := s.do(admin, "PATCH", fmt.Sprintf("%s/%d", s.a, s.list(t, admin, s.a)[s.f.ViewerA.Email].UserID),
		map[string]any{"role": "admin"}); r.Status != 200 {
		t.Fatalf("promote: %d %s", r.Status, r.Body)
	}
	if r := s.do(admin, "PATCH", self, map[string]any{"role": "viewer"}); r.Status != 200 {
		t.Fatalf("step down: %d %s", r.Status, r.Body)
	}
	if r := s.do(s.f.ViewerA.Access, "DELETE", self, nil); r.Status != 204 {
		t.Fatalf("remove the former admin: %d %s", r.Status, r.Body)
	}
	var roles []string
	if err := s.env.App.Pool.QueryRow(t.Context(), `SELECT array_agg(action ORDER BY seq) FROM audit_entries
		WHERE action LIKE 'member_user.%' AND member_id = $1`, s.f.MemberA.ID).Scan(&roles); err != nil {
		t.Fatal(err)
	}
	if strings.Join(roles, ",") != "member_user.role,member_user.role,member_user.remove" {
		t.Fatalf("audited: %v", roles)
	}
}

func TestPeopleRemovedPersonLosesAccess(t *testing.T) {
	t.Parallel()
	s := newPeopleSetup(t)
	admin := s.f.AdminA.Access
	r, bob := s.add(t, admin, s.a, map[string]any{"email": "bob@a.example", "role": "admin"})
	if r.Status != 201 || bob.InitialPassword == nil {
		t.Fatalf("add bob: %d %s", r.Status, r.Body)
	}
	lr := login(s.env, "bob@a.example", *bob.InitialPassword)
	var sess struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	lr.Decode(t, &sess)
	tr := s.do(sess.AccessToken, "POST", "/v1/tokens", map[string]any{"name": "bob's script", "member": "member-a", "role": "admin"})
	var tok struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	tr.Decode(t, &tok)
	if tr.Status != 201 {
		t.Fatalf("bob's token: %d %s", tr.Status, tr.Body)
	}
	if r := s.do(tok.Token, "GET", s.a, nil); r.Status != 200 {
		t.Fatalf("bob's token before removal: %d", r.Status)
	}

	if r := s.do(admin, "DELETE", fmt.Sprintf("%s/%d", s.a, bob.UserID), nil); r.Status != 204 {
		t.Fatalf("remove bob: %d %s", r.Status, r.Body)
	}
	// His token for A is revoked, and, belonging nowhere now, his session is over.
	for name, token := range map[string]string{"api token": tok.Token, "access token": sess.AccessToken} {
		if r := s.do(token, "GET", s.a, nil); r.Status != 401 {
			t.Errorf("bob's %s after removal: %d %s", name, r.Status, r.Body)
		}
	}
	if r := s.do("", "POST", "/v1/auth/refresh", map[string]string{"refresh_token": sess.RefreshToken}); r.Status != 401 {
		t.Errorf("bob's refresh after removal: %d", r.Status)
	}
	if r := s.do(admin, "GET", fmt.Sprintf("/v1/tokens/%d", tok.ID), nil); !strings.Contains(string(r.Body), `"revoked_at":"`) {
		t.Errorf("bob's token is not shown revoked: %s", r.Body)
	}
	if _, ok := s.list(t, admin, s.a)["bob@a.example"]; ok {
		t.Error("bob is still listed")
	}
	var removed, revoked int
	if err := s.env.App.Pool.QueryRow(t.Context(), `SELECT
		count(*) FILTER (WHERE action = 'member_user.remove' AND details::jsonb @> '{"email":"bob@a.example","tokens_revoked":1,"sessions_revoked":1}'),
		count(*) FILTER (WHERE action = 'token.revoke' AND target_id = $1)
		FROM audit_entries WHERE member_id = $2`, fmt.Sprint(tok.ID), s.f.MemberA.ID).Scan(&removed, &revoked); err != nil || removed != 1 || revoked != 1 {
		t.Fatalf("audit: %d removals, %d token revocations (%v)", removed, revoked, err)
	}
	// Re-adding him does not bring the token back, nor a new password: his account was kept.
	r = s.do(admin, "POST", s.a, map[string]any{"email": "bob@a.example", "role": "viewer"})
	if r.Status != 201 || strings.Contains(string(r.Body), "initial_password") {
		t.Fatalf("re-add bob: %d %s", r.Status, r.Body)
	}
	if r := s.do(tok.Token, "GET", s.a, nil); r.Status != 401 {
		t.Errorf("bob's revoked token after re-adding: %d", r.Status)
	}
}

// check is one condition of a test and what it means when it holds.
type check struct {
	ok   bool
	want string
}

// require reports every check that does not hold, one error each, then stops the test
// if any failed; context describes what was seen.
func require(t *testing.T, context string, checks ...check) {
	t.Helper()
	failed := false
	for _, c := range checks {
		if !c.ok {
			t.Errorf("want: %s; got %s", c.want, context)
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
}
