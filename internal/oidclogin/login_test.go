package oidclogin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/oidclogin"
	"github.com/chatons/archipelago/internal/oidcprovider"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The role map every test uses: a federation-admin group, an admin and a viewer group of
// member libre-nuage, and a group of a member that does not exist.
const roleMap = "archipelago-fed-admins=federation-admin; libre-nuage-admins=libre-nuage:admin\n" +
	"libre-nuage-team=libre-nuage:viewer;ghost-team=ghost-member:admin"

const idpName = "Chatons SSO"

// world is an Archipelago configured for OIDC login and a real provider process.
type world struct {
	t        *testing.T
	env      *apptest.Env
	idp      *oidcprovider.Server
	users    []oidcprovider.User
	libre    int64 // member libre-nuage
	other    int64 // member autre-chaton (local memberships only)
	provider string
}

// setup starts the provider (a separate process on 127.0.0.1) and an Archipelago whose
// public URL is known before it starts, so each can be registered at the other.
func setup(t *testing.T, users ...oidcprovider.User) *world {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	secret := "client-secret-" + testenv.Unique("")
	ctx := context.Background()
	idp, err := oidcprovider.Start(ctx, oidcprovider.Options{Dir: t.TempDir(), ClientID: "archipelago", ClientSecret: secret,
		RedirectURI: public + oidclogin.CallbackPath, PostLogoutRedirectURI: public + "/login", Users: users})
	if err != nil {
		ln.Close()
		t.Fatalf("start the OIDC provider: %v", err)
	}
	t.Cleanup(idp.Stop)
	secretFile := t.TempDir() + "/oidc-secret"
	if err := writeFile(secretFile, secret); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"ARCHIPELAGO_DATABASE_URL":            testenv.DBURL(t),
		"ARCHIPELAGO_MASTER_KEY":              seal.NewKey(),
		"ARCHIPELAGO_LOG_LEVEL":               "debug",
		"ARCHIPELAGO_PUBLIC_URL":              public,
		"ARCHIPELAGO_RUN_WORKERS":             "false",
		"ARCHIPELAGO_OIDC_ISSUER":             idp.Issuer,
		"ARCHIPELAGO_OIDC_CLIENT_ID":          "archipelago",
		"ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE": secretFile,
		"ARCHIPELAGO_OIDC_NAME":               idpName,
		"ARCHIPELAGO_OIDC_SCOPES":             "openid email profile groups",
		"ARCHIPELAGO_OIDC_ROLE_MAP":           roleMap,
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.PasswordHashMemoryKiB, cfg.PasswordHashPasses = 1024, 1
	actx, cancel := context.WithCancel(ctx)
	a, err := app.Open(actx, cfg, testenv.Logger(t))
	if err != nil {
		cancel()
		t.Fatalf("open app: %v", err)
	}
	srv := &http.Server{Handler: a.Server.Handler(), ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
		a.Close()
	})
	w := &world{t: t, env: &apptest.Env{T: t, App: a, URL: public}, idp: idp, users: users, provider: idp.Issuer}
	w.libre = w.env.Member("libre-nuage", "Libre Nuage").ID
	w.other = w.env.Member("autre-chaton", "Autre Chaton").ID
	return w
}

// browser is a person's browser: a cookie jar, following redirects across both sites and
// remembering where it went.
type browser struct {
	t      *testing.T
	c      *http.Client
	visits []string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 2 * time.Minute, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.visits = append(b.visits, req.URL.String())
		if len(via) > 20 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}}
	return b
}

// page is one answered request.
type page struct {
	status int
	url    *url.URL
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// noFollow answers the first response without following its redirect.
func (b *browser) noFollow(req *http.Request) *http.Response {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// startAtPortal opens the login page, checks the provider's button is there, and presses
// it: the browser ends on the provider's login form, whose auth request id is returned.
func (w *world) startAtPortal(b *browser) string {
	w.t.Helper()
	login := b.get(w.env.URL + "/login")
	if login.status != 200 || !strings.Contains(login.body, `action="/login/oidc"`) ||
		!strings.Contains(login.body, "Log in with "+idpName) {
		w.t.Fatalf("the login page has no %q button (%d):\n%s", idpName, login.status, login.body)
	}
	form := b.post(w.env.URL+oidclogin.StartPath, url.Values{"next": {"/"}})
	m := hiddenID.FindStringSubmatch(form.body)
	if form.status != 200 || !strings.HasPrefix(form.url.String(), w.provider) || m == nil {
		w.t.Fatalf("pressing the button did not lead to the provider's login form: %d at %s:\n%s", form.status, form.url, form.body)
	}
	return m[1]
}

// loginAt logs in at the provider's form; the browser follows the redirects back to the
// portal, and the last page is returned.
func (w *world) loginAt(b *browser, authRequest, username, password string) page {
	w.t.Helper()
	return b.post(w.provider+"/login/username", url.Values{"id": {authRequest}, "username": {username}, "password": {password}})
}

// login is the whole flow for one person.
func (w *world) login(b *browser, u oidcprovider.User) page {
	w.t.Helper()
	return w.loginAt(b, w.startAtPortal(b), u.Username, u.Password)
}

type me struct {
	User struct {
		ID              int64  `json:"id"`
		Email           string `json:"email"`
		FederationAdmin bool   `json:"federation_admin"`
	} `json:"user"`
	Memberships []identity.MemberRef `json:"memberships"`
}

// whoami asks the API who the browser's session is (the session cookie is accepted there).
func (b *browser) whoami(base string) (me, int) {
	b.t.Helper()
	p := b.get(base + "/v1/me")
	var out me
	if p.status == 200 {
		if err := json.Unmarshal([]byte(p.body), &out); err != nil {
			b.t.Fatalf("/v1/me: %v: %s", err, p.body)
		}
	}
	return out, p.status
}

func roles(m me) map[string]identity.Role {
	out := map[string]identity.Role{}
	for _, r := range m.Memberships {
		out[r.Slug] = r.Role
	}
	return out
}

func (w *world) setGroups(username string, groups ...string) {
	w.t.Helper()
	for i := range w.users {
		if w.users[i].Username == username {
			w.users[i].Groups = groups
		}
	}
	if err := w.idp.SetUsers(w.users); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) auditCount(action, email string) int {
	w.t.Helper()
	var n int
	if err := w.env.App.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit_entries WHERE action = $1 AND details->>'email' = $2`, action, email).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func alice() oidcprovider.User {
	return oidcprovider.User{ID: "sub-alice-1", Username: "alice", Password: "alice-idp-password", Email: "alice@libre.example",
		EmailVerified: true, Name: "Alice Martin", Groups: []string{"libre-nuage-admins", "ghost-team"}}
}

func bob() oidcprovider.User {
	return oidcprovider.User{ID: "sub-bob-2", Username: "bob", Password: "bob-idp-password", Email: "bob@libre.example",
		EmailVerified: true, Name: "Bob", Groups: []string{"libre-nuage-team", "archipelago-fed-admins"}}
}

// TestOIDCLoginGrantsMappedRoles: the whole flow through the real provider — the login
// page's button, the provider's form, the callback — opens a portal session whose person
// has exactly the roles the role map gives their groups, on an account created at the
// first login and found again by (issuer, subject) at the next.
func TestOIDCLoginGrantsMappedRoles(t *testing.T) {
	t.Parallel()
	w := setup(t, alice(), bob())
	b := newBrowser(t)
	home := w.login(b, w.users[0])
	if home.status != 200 || home.url.String() != w.env.URL+"/" || !strings.Contains(home.body, "alice@libre.example") {
		t.Fatalf("after logging in at the provider: %d at %s (visited %v):\n%s", home.status, home.url, b.visits, home.body)
	}
	// The authorization request carried PKCE (S256), a state and a nonce.
	var auth *url.URL
	for _, v := range b.visits {
		if u, _ := url.Parse(v); u != nil && strings.HasPrefix(v, w.provider) && u.Query().Get("client_id") != "" {
			auth = u
		}
	}
	if auth == nil {
		t.Fatalf("no authorization request among %v", b.visits)
	}
	q := auth.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Errorf("authorization request without PKCE S256, state or nonce: %s", auth)
	}
	got, status := b.whoami(w.env.URL)
	if status != 200 {
		t.Fatalf("/v1/me with the OIDC session: %d", status)
	}
	if r := roles(got); len(r) != 1 || r["libre-nuage"] != identity.RoleAdmin || got.User.FederationAdmin {
		t.Errorf("alice's roles = %v, federation admin %v; want admin of libre-nuage only", r, got.User.FederationAdmin)
	}
	// The dashboard's People page shows her in her member as admin.
	people := b.get(w.env.URL + "/people?member=libre-nuage")
	if people.status != 200 || !strings.Contains(people.body, "alice@libre.example") || !strings.Contains(people.body, "Libre Nuage") {
		t.Errorf("people page %d:\n%s", people.status, people.body)
	}
	// Bob: a viewer of libre-nuage and a federation admin.
	b2 := newBrowser(t)
	if p := w.login(b2, w.users[1]); p.status != 200 {
		t.Fatalf("bob's login: %d at %s:\n%s", p.status, p.url, p.body)
	}
	gotBob, _ := b2.whoami(w.env.URL)
	if r := roles(gotBob); len(r) != 1 || r["libre-nuage"] != identity.RoleViewer || !gotBob.User.FederationAdmin {
		t.Errorf("bob's roles = %v, federation admin %v; want viewer of libre-nuage and federation admin", r, gotBob.User.FederationAdmin)
	}
	// A second login finds the same account (by issuer and subject).
	b3 := newBrowser(t)
	w.login(b3, w.users[0])
	again, _ := b3.whoami(w.env.URL)
	if again.User.ID != got.User.ID {
		t.Errorf("second login is user %d, first was %d", again.User.ID, got.User.ID)
	}
	var iss, sub, method string
	if err := w.env.App.Pool.QueryRow(context.Background(), `SELECT u.oidc_issuer, u.oidc_subject,
		(SELECT auth_method FROM sessions WHERE user_id = u.id ORDER BY id DESC LIMIT 1) FROM users u WHERE u.id = $1`, got.User.ID).
		Scan(&iss, &sub, &method); err != nil {
		t.Fatal(err)
	}
	if iss != w.provider || sub != "sub-alice-1" || method != "oidc" {
		t.Errorf("alice's user is linked to %q %q, session method %q", iss, sub, method)
	}
	// Audited like a password login, and every role granted has its entry.
	if n := w.auditCount("auth.login", "alice@libre.example"); n != 2 {
		t.Errorf("%d auth.login entries for alice, want 2", n)
	}
	var adds int
	if err := w.env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries
		WHERE action = 'member_user.add' AND target_id = $1 AND details->>'via' = 'oidc'`, fmt.Sprint(got.User.ID)).Scan(&adds); err != nil {
		t.Fatal(err)
	}
	if adds != 1 {
		t.Errorf("%d member_user.add entries for alice, want 1 (the second login changed nothing)", adds)
	}
}

// TestOIDCRolesFollowTheProvider: a role changed or removed at the provider changes or
// removes it here at the next login; when the claims grant nothing any more, the login is
// refused with a clear message and the person's open sessions end. A local account with
// the same verified email is linked, and its local memberships are kept.
func TestOIDCRolesFollowTheProvider(t *testing.T) {
	t.Parallel()
	w := setup(t, alice(), bob())
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	// Alice already has a local account (with a password) and a local role elsewhere.
	const alicePassword = "correct-horse-battery-local"
	if err := pgx.BeginFunc(ctx, w.env.App.Pool, func(tx pgx.Tx) error {
		u, err := w.env.App.Identity.UserCreate(ctx, tx, identity.NewUser{Email: "alice@libre.example", Password: alicePassword})
		if err != nil {
			return err
		}
		return w.env.App.Identity.MembershipSet(ctx, tx, u.ID, w.other, identity.RoleViewer)
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	w.login(b, w.users[0])
	got, _ := b.whoami(w.env.URL)
	if r := roles(got); len(r) != 2 || r["libre-nuage"] != identity.RoleAdmin || r["autre-chaton"] != identity.RoleViewer {
		t.Fatalf("linked alice's roles = %v, want admin of libre-nuage (provider) and viewer of autre-chaton (local)", r)
	}
	if n := w.auditCount("user.oidc_link", "alice@libre.example"); n != 1 {
		t.Errorf("%d user.oidc_link entries", n)
	}
	// Her password still works: local accounts are kept.
	pw := newBrowser(t)
	if p := pw.post(w.env.URL+"/login", url.Values{"email": {"alice@libre.example"}, "password": {alicePassword}, "next": {"/"}}); p.status != 200 || p.url.Path != "/" {
		t.Errorf("password login with OIDC configured: %d at %s", p.status, p.url)
	}

	// At the provider, alice moves from the admins to the team: viewer at her next login.
	w.setGroups("alice", "libre-nuage-team")
	b2 := newBrowser(t)
	w.login(b2, w.users[0])
	got, _ = b2.whoami(w.env.URL)
	if r := roles(got); r["libre-nuage"] != identity.RoleViewer || r["autre-chaton"] != identity.RoleViewer {
		t.Errorf("after the provider made alice a viewer: %v", r)
	}
	// Then out of every group: the provider's membership goes, the local one stays.
	w.setGroups("alice")
	b3 := newBrowser(t)
	w.login(b3, w.users[0])
	got, _ = b3.whoami(w.env.URL)
	if r := roles(got); len(r) != 1 || r["autre-chaton"] != identity.RoleViewer {
		t.Errorf("after the provider removed alice from every group: %v, want only the local viewer role", r)
	}

	// Bob: a viewer and federation admin, whose groups all go at the provider.
	bb := newBrowser(t)
	w.login(bb, w.users[1])
	if m, _ := bb.whoami(w.env.URL); !m.User.FederationAdmin {
		t.Fatal("bob is not a federation admin after his first login")
	}
	w.setGroups("bob", "some-unrelated-group")
	later := newBrowser(t)
	refused := w.login(later, w.users[1])
	if refused.status != http.StatusForbidden || !strings.Contains(refused.body, "none of your groups there gives access") {
		t.Errorf("bob without any mapped group: %d at %s:\n%s", refused.status, refused.url, refused.body)
	}
	if _, status := later.whoami(w.env.URL); status != http.StatusUnauthorized {
		t.Errorf("the refused login opened a session (/v1/me %d)", status)
	}
	// His earlier session ends too (within the principal cache's few seconds).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, status := bb.whoami(w.env.URL)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's earlier session still answers %d after his access was removed", status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var fed bool
	if err := w.env.App.Pool.QueryRow(ctx, `SELECT federation_admin FROM users WHERE email = 'bob@libre.example'`).Scan(&fed); err != nil {
		t.Fatal(err)
	}
	if fed {
		t.Error("bob is still a federation admin after the provider took the group away")
	}
	if n := w.auditCount("auth.login_refused", "bob@libre.example"); n != 1 {
		t.Errorf("%d auth.login_refused entries for bob", n)
	}
}

// TestOIDCLogoutEndsBothSessions: logging out of a session opened through the provider ends
// it here and sends the browser to the provider's end_session_endpoint, which sends it back
// to the login page.
func TestOIDCLogoutEndsBothSessions(t *testing.T) {
	t.Parallel()
	w := setup(t, alice())
	b := newBrowser(t)
	home := w.login(b, w.users[0])
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(home.body)
	if m == nil {
		t.Fatalf("no CSRF token on the dashboard:\n%s", home.body)
	}
	req, _ := http.NewRequest(http.MethodPost, w.env.URL+"/logout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp := b.noFollow(req)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), w.provider) ||
		loc.Query().Get("post_logout_redirect_uri") != w.env.URL+"/login" || loc.Query().Get("client_id") != "archipelago" {
		t.Fatalf("logout answered %d to %q, want the provider's end_session_endpoint", resp.StatusCode, loc)
	}
	if loc.Query().Get("id_token_hint") == "" {
		t.Errorf("the provider's logout is not told which session ends (no id_token_hint): %s", loc)
	}
	back := b.get(loc.String())
	if back.status != 200 || back.url.String() != w.env.URL+"/login" {
		t.Errorf("the provider's logout ended at %d %s (visited %v)", back.status, back.url, b.visits)
	}
	if _, status := b.whoami(w.env.URL); status != http.StatusUnauthorized {
		t.Errorf("after logout /v1/me answers %d", status)
	}
	var revoked bool
	if err := w.env.App.Pool.QueryRow(context.Background(), `SELECT bool_and(revoked_at IS NOT NULL) FROM sessions s
		JOIN users u ON u.id = s.user_id WHERE u.email = 'alice@libre.example'`).Scan(&revoked); err != nil || !revoked {
		t.Errorf("alice's session is not revoked (%v)", err)
	}
}

// TestOIDCCallbackRefusals: a callback whose state is wrong, that comes to another browser,
// or that carries the provider's refusal is answered with a clear page (never a 500), and
// opens no session.
func TestOIDCCallbackRefusals(t *testing.T) {
	t.Parallel()
	w := setup(t, alice())
	// The state the portal gave the provider, read from the authorization request.
	begin := func(t *testing.T, b *browser) string {
		req, _ := http.NewRequest(http.MethodPost, w.env.URL+oidclogin.StartPath, strings.NewReader("next=%2F"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := b.noFollow(req)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("state") == "" {
			t.Fatalf("start answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc.Query().Get("state")
	}
	cases := []struct {
		name   string
		query  func(state string) url.Values
		other  bool // the callback arrives in another browser
		status int
		says   string
	}{
		{"wrong state", func(string) url.Values { return url.Values{"state": {"not-the-state"}, "code": {"x"}} },
			false, http.StatusBadRequest, "did not start in this browser"},
		{"another browser", func(s string) url.Values { return url.Values{"state": {s}, "code": {"x"}} },
			true, http.StatusBadRequest, "did not start in this browser"},
		{"consent denied", func(s string) url.Values {
			return url.Values{"state": {s}, "error": {"access_denied"}, "error_description": {"the user denied"}}
		}, false, http.StatusUnauthorized, "did not log you in"},
		{"forged code", func(s string) url.Values { return url.Values{"state": {s}, "code": {"forged-code"}} },
			false, http.StatusBadGateway, "could not be verified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBrowser(t)
			state := begin(t, b)
			if c.other {
				b = newBrowser(t)
			}
			p := b.get(w.env.URL + oidclogin.CallbackPath + "?" + c.query(state).Encode())
			if p.status != c.status || !strings.Contains(p.body, c.says) {
				t.Errorf("answered %d, want %d saying %q:\n%s", p.status, c.status, c.says, p.body)
			}
			if _, status := b.whoami(w.env.URL); status != http.StatusUnauthorized {
				t.Errorf("a session was opened (/v1/me %d)", status)
			}
		})
	}
	// The same callback replayed after a real login is refused: one flow, one callback.
	b := newBrowser(t)
	id := w.startAtPortal(b)
	var callback string
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), w.env.URL+oidclogin.CallbackPath) && callback == "" {
			callback = req.URL.String()
		}
		return nil
	}
	if p := w.loginAt(b, id, "alice", "alice-idp-password"); p.status != 200 || callback == "" {
		t.Fatalf("login: %d at %s", p.status, p.url)
	}
	fresh := newBrowser(t)
	if p := fresh.get(callback); p.status != http.StatusBadRequest {
		t.Errorf("replayed callback in another browser answered %d", p.status)
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
