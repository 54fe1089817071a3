package portal_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type css = chromedp.CSS

// TestPortalLoginTokensAndLogout is what a member admin does on a first visit: a wrong
// password, logging in, looking around, creating an API token (shown once) that works,
// revoking it, logging out.
func TestPortalLoginTokensAndLogout(t *testing.T) {
	env, f := apptest.Parallel(t)
	ctx := browsertest.New(t)

	browsertest.Step(t, ctx, "open the portal", chromedp.Navigate(env.URL+"/tokens"), chromedp.WaitVisible(css("#email")))
	browsertest.Step(t, ctx, "log in with a wrong password",
		chromedp.SendKeys(css("#email"), f.AdminA.Email),
		chromedp.SendKeys(css("#password"), "not-my-password-at-all"),
		chromedp.Click(css("button[type=submit]")),
		chromedp.WaitVisible(css("p.error")))
	if got := browsertest.Text(t, ctx, "p.error"); !strings.Contains(got, "Invalid email or password") {
		t.Fatalf("wrong password message = %q", got)
	}
	browsertest.Screenshot(t, ctx, "login-wrong-password")

	browsertest.Step(t, ctx, "log in",
		chromedp.SendKeys(css("#password"), f.AdminA.Password),
		chromedp.Click(css("button[type=submit]")),
		chromedp.WaitVisible(css("#tok-name")))
	// The login kept where the visitor wanted to go.
	if h1 := browsertest.Text(t, ctx, "h1"); h1 != "API tokens" {
		t.Fatalf("after login: %q", h1)
	}

	browsertest.Step(t, ctx, "go to the dashboard", chromedp.Click(css(`nav a[href="/"]`)), chromedp.WaitVisible(css("section.cards")))
	if who := browsertest.Text(t, ctx, ".who-name"); !strings.Contains(who, f.AdminA.Email) {
		t.Fatalf("header shows %q", who)
	}
	browsertest.Screenshot(t, ctx, "dashboard")
	for _, page := range []struct{ href, h1 string }{{"/account", "Account"}, {"/vaults", "Vaults"}, {"/islands", "Islands"}} {
		browsertest.Step(t, ctx, "navigate to "+page.href, chromedp.Click(css(`nav a[href="`+page.href+`"]`)),
			chromedp.WaitVisible(css(`nav a[aria-current="page"][href="`+page.href+`"]`)))
		if h1 := browsertest.Text(t, ctx, "h1"); !strings.Contains(h1, page.h1) {
			t.Errorf("%s shows %q", page.href, h1)
		}
	}

	browsertest.Step(t, ctx, "create a token",
		chromedp.Click(css(`nav a[href="/tokens"]`)), chromedp.WaitVisible(css("#tok-name")),
		chromedp.SendKeys(css("#tok-name"), "browser-made"),
		chromedp.Click(css(".grid-form button[type=submit]")),
		chromedp.WaitVisible(css("#new-token-value")))
	token := strings.TrimSpace(browsertest.Text(t, ctx, "#new-token-value"))
	if !strings.HasPrefix(token, "arch_") {
		t.Fatalf("token shown = %q", token)
	}
	browsertest.Screenshot(t, ctx, "token-created")
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: token}); r.Status != 200 {
		t.Fatalf("the token from the portal does not work: %d", r.Status)
	}
	// Shown once: reloading the page does not show it again.
	browsertest.Step(t, ctx, "reload tokens", chromedp.Navigate(env.URL+"/tokens"), chromedp.WaitVisible(css("table")))
	if html, _ := chromedp.Run(ctx, chromedp.OuterHTML(css("main"))); strings.Contains(html, token) {
		t.Fatal("the token is shown again after a reload")
	}

	// Revoking asks first; cancelling keeps the token.
	browsertest.Step(t, ctx, "revoke the token: asked first",
		chromedp.Click(css(`button[aria-label="Revoke token browser-made"]`)),
		chromedp.WaitVisible(css(`section[data-confirm="token-revoke"] #confirm-yes`)))
	if q := browsertest.Text(t, ctx, "h1"); !strings.Contains(q, "Revoke the API token “browser-made”?") {
		t.Fatalf("confirmation asks %q", q)
	}
	browsertest.Screenshot(t, ctx, "token-revoke-confirm")
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: token}); r.Status != 200 {
		t.Fatalf("the token was revoked before the confirmation: %d", r.Status)
	}
	browsertest.Step(t, ctx, "cancel", chromedp.Click(css("#confirm-no")), chromedp.WaitVisible(css(`button[aria-label="Revoke token browser-made"]`)))
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: token}); r.Status != 200 {
		t.Fatalf("cancelling revoked the token: %d", r.Status)
	}
	browsertest.Step(t, ctx, "revoke the token",
		chromedp.Click(css(`button[aria-label="Revoke token browser-made"]`)),
		chromedp.WaitVisible(css("#confirm-yes")), chromedp.Click(css("#confirm-yes")),
		chromedp.WaitVisible(css("p.flash")))
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/me", Token: token}); r.Status != 401 {
		t.Fatalf("revoked token still works: %d", r.Status)
	}
	browsertest.Screenshot(t, ctx, "token-revoked")

	browsertest.Step(t, ctx, "log out", chromedp.Click(css(".who button")), chromedp.WaitVisible(css("#email")))
	browsertest.Step(t, ctx, "protected page after logout", chromedp.Navigate(env.URL+"/account"), chromedp.WaitVisible(css("#email")))
}
