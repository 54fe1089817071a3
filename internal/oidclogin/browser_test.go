package oidclogin_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/browsertest"
)

// TestOIDCLoginInChromium: a person in a real browser presses "Log in with Chatons SSO" on
// the login page, types their password into the provider's own form, and lands on the
// dashboard, named and badged as the federation admin their group makes them.
func TestOIDCLoginInChromium(t *testing.T) {
	t.Parallel()
	w := setup(t, bob())
	ctx := browsertest.New(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	browsertest.Step(t, ctx, "open the login page", chromedp.Navigate(w.env.URL+"/login"), chromedp.WaitVisible(css("#oidc-login button")))
	if b := browsertest.Text(t, ctx, "#oidc-login button"); !strings.Contains(b, "Log in with "+idpName) {
		t.Errorf("the button says %q", b)
	}
	browsertest.Screenshot(t, ctx, "oidc-login-page")
	browsertest.Step(t, ctx, "press the provider's button", chromedp.Click(css("#oidc-login button")), chromedp.WaitVisible(css("#username")))
	browsertest.Step(t, ctx, "log in at the provider", chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), "bob-idp-password"), chromedp.Click(css("button[type=submit]")),
		chromedp.WaitVisible(css(".who-name")))
	who := browsertest.Text(t, ctx, ".who-name")
	if !strings.Contains(who, "bob@libre.example") || !strings.Contains(strings.ToLower(who), "federation") {
		t.Errorf("the dashboard's header says %q, want bob as federation admin", who)
	}
	// The dashboard shows the member the group maps to, with the mapped role.
	if main := browsertest.Text(t, ctx, "main"); !strings.Contains(main, "Libre Nuage (viewer)") {
		t.Errorf("the dashboard does not show bob as viewer of Libre Nuage:\n%s", main)
	}
	browsertest.Screenshot(t, ctx, "oidc-logged-in")
}
