package portal_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/portal"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

// portalTest is what a portal test starts from (newPortalTest): its own running
// application with the fixture's members and people, a context acting as the system for
// setting things up directly in the domain, and the requests a logged-in person's browser
// sends.
type portalTest struct {
	t   *testing.T
	env *apptest.Env
	f   *apptest.Fixture
	ctx context.Context
}

// newPortalTest starts a parallel portal test (apptest.Parallel).
func newPortalTest(t *testing.T) *portalTest {
	t.Helper()
	env, f := apptest.Parallel(t)
	return &portalTest{t: t, env: env, f: f, ctx: audit.WithActor(context.Background(), audit.System("portal-test"))}
}

// islandsAB starts two islands on the simulator (vaultstest), both with replication
// factor rf: "north", operated by member A, which pledges pledged bytes on it, and
// "south", operated by member B.
func (s *portalTest) islandsAB(rf int, pledged int64) (north, south vaultstest.Island) {
	s.t.Helper()
	north = vaultstest.StartIsland(s.t, s.env.App.Pool, s.env.App.Keyring, "north", rf, s.f.MemberA.ID)
	south = vaultstest.StartIsland(s.t, s.env.App.Pool, s.env.App.Keyring, "south", rf, s.f.MemberB.ID)
	vaultstest.Pledge(s.t, s.env.App.Pool, north, s.f.MemberA.ID, pledged)
	return north, south
}

// get is pageGet on the test's application.
func (s *portalTest) get(a *apptest.Actor, path string) *apptest.Response {
	return pageGet(s.env, a, path)
}

// post is formPost on the test's application.
func (s *portalTest) post(a *apptest.Actor, path string, form url.Values) *apptest.Response {
	return formPost(s.env, a, path, form)
}

// login is browserLogin on the test's application.
func (s *portalTest) login(a *apptest.Actor, path, ready string) context.Context {
	return browserLogin(s.t, s.env, a, path, ready)
}

// pageGet GETs path as a's browser does: with a's session cookie.
func pageGet(env *apptest.Env, a *apptest.Actor, path string) *apptest.Response {
	return env.Do(apptest.Req{Method: "GET", Path: path, Header: map[string]string{"Cookie": portal.SessionCookie + "=" + a.Session}})
}

// formPost submits form to path as a's browser does: with a's session cookie and a's CSRF
// token, unless the form carries its own (a forged one).
func formPost(env *apptest.Env, a *apptest.Actor, path string, form url.Values) *apptest.Response {
	f := url.Values{"csrf": {a.CSRF}}
	for k, v := range form {
		f[k] = v
	}
	return env.Do(apptest.Req{Method: "POST", Path: path, Body: f.Encode(), Header: map[string]string{
		"Cookie": portal.SessionCookie + "=" + a.Session, "Content-Type": "application/x-www-form-urlencoded"}})
}

// browserLogin opens path in a new browser, which lands on the login form; it logs in as a
// and waits until the page shows ready (a CSS selector). It returns the browser's context.
func browserLogin(t *testing.T, env *apptest.Env, a *apptest.Actor, path, ready string) context.Context {
	t.Helper()
	b := browsertest.New(t)
	browsertest.Step(t, b, "log in", chromedp.Navigate(env.URL+path), chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), a.Email), chromedp.SendKeys(css("#password"), a.Password),
		chromedp.Click(css("button[type=submit]")), chromedp.WaitVisible(css(ready)))
	return b
}
