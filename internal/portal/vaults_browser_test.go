package portal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestPortalVaultsKeysAndQuota is a member admin's first vault: the quota page's
// arithmetic, creating a vault (placed on the island it does not operate), a key whose
// secret and restic snippet are shown once with copy buttons, rotating and revoking it,
// and the usage chart.
func TestPortalVaultsKeysAndQuota(t *testing.T) {
	s := newPortalTest(t)
	_, south := s.islandsAB(3, 300_000_000_000)
	name := testenv.Unique("portal-")

	ctx := s.login(s.f.AdminA, "/quota", "#quota-summary")
	if got := browsertest.Text(t, ctx, "#quota-islands"); !strings.Contains(got, "100 GB = 1.0 × 300 GB pledged ÷ 3") ||
		!strings.Contains(got, "you operate it") {
		t.Fatalf("quota page: %q", got)
	}
	if got := browsertest.Text(t, ctx, "#quota-best"); got != "100 GB" {
		t.Fatalf("best available %q", got)
	}
	browsertest.Screenshot(t, ctx, "quota")

	browsertest.Step(t, ctx, "ask for too much", chromedp.Navigate(s.env.URL+"/vaults"), chromedp.WaitVisible(css("#vault-name")),
		chromedp.SendKeys(css("#vault-name"), name), chromedp.SetValue(css("#vault-quota"), "500"),
		chromedp.Click(css("#vault-create button[type=submit]")), chromedp.WaitVisible(css("p.error")))
	if got := browsertest.Text(t, ctx, "p.error"); !strings.Contains(got, "requested 500 GB; available to you 100 GB = 1.0 × 300 GB pledged ÷ 3") {
		t.Fatalf("refusal: %q", got)
	}
	browsertest.Step(t, ctx, "create a vault", chromedp.SetValue(css("#vault-quota"), "20"),
		chromedp.Click(css("#vault-create button[type=submit]")), chromedp.WaitVisible(css("#key-create")))
	if got := browsertest.Text(t, ctx, "main"); !strings.Contains(got, south.Name) || !strings.Contains(got, "automatic") {
		t.Fatalf("vault page does not show island %s: %q", south.Name, got)
	}

	browsertest.Step(t, ctx, "create a key", chromedp.SendKeys(css("#key-name"), "backup server"),
		chromedp.Click(css("#key-create button[type=submit]")), chromedp.WaitVisible(css("#new-key-secret")))
	secret := browsertest.Text(t, ctx, "#new-key-secret")
	snippet := browsertest.Text(t, ctx, "#restic-snippet")
	if len(secret) < 20 || !strings.Contains(snippet, "AWS_SECRET_ACCESS_KEY='"+secret+"'") || !strings.Contains(snippet, "RESTIC_REPOSITORY='s3:http://") {
		t.Fatalf("secret %q, snippet %q", secret, snippet)
	}
	copies, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("button[data-copy]").length`))
	if err != nil || copies != 2 {
		t.Fatalf("%d copy buttons, want 2 (secret and snippet)", copies)
	}
	browsertest.Screenshot(t, ctx, "vault-new-key")
	browsertest.Step(t, ctx, "reload: the secret is gone", chromedp.Navigate(s.env.URL+"/vaults"), chromedp.WaitVisible(css("table")),
		chromedp.Click(css(`a[href^="/vaults/"]`)), chromedp.WaitVisible(css("#key-create")))
	if strings.Contains(browsertest.Text(t, ctx, "main"), secret) {
		t.Fatal("the secret is shown again")
	}

	browsertest.Step(t, ctx, "rotate", chromedp.Click(css(`button[aria-label="Rotate key backup server"]`)), chromedp.WaitVisible(css("#new-key-secret")))
	if browsertest.Text(t, ctx, "#new-key-secret") == secret {
		t.Fatal("rotation showed the old secret")
	}
	if got := browsertest.Text(t, ctx, "table"); !strings.Contains(got, "retiring") {
		t.Fatalf("keys after rotation: %q", got)
	}
	browsertest.Step(t, ctx, "revoke a key: asked first", chromedp.Click(css(`button[aria-label="Revoke key backup server"]`)),
		chromedp.WaitVisible(css(`section[data-confirm="key-revoke"] #confirm-yes`)))
	if got := browsertest.Text(t, ctx, "main"); !strings.Contains(got, "Revoke the key “backup server”?") || !strings.Contains(got, "Backups written with this key stop at once") {
		t.Fatalf("confirmation: %q", got)
	}
	browsertest.Step(t, ctx, "cancel", chromedp.Click(css("#confirm-no")), chromedp.WaitVisible(css("#key-create")))
	if got := browsertest.Text(t, ctx, "table"); strings.Contains(got, "revoked") {
		t.Fatalf("cancelling revoked the key: %q", got)
	}
	browsertest.Step(t, ctx, "revoke a key", chromedp.Click(css(`button[aria-label="Revoke key backup server"]`)),
		chromedp.WaitVisible(css("#confirm-yes")), chromedp.Click(css("#confirm-yes")),
		chromedp.WaitVisible(css("p.flash")))
	if got := browsertest.Text(t, ctx, "table"); !strings.Contains(got, "revoked") {
		t.Fatalf("keys after revoking: %q", got)
	}

	// The usage chart, from collected samples.
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.env.App.Vaults.VaultList(context.Background(), vaultsFilterA(s.f.MemberA.ID))
	if err != nil || len(vs) != 1 {
		t.Fatalf("vaults: %v %d", err, len(vs))
	}
	for i, b := range []int64{1e9, 5e9, 12e9, 17e9} {
		if err := s.env.App.Vaults.RecordUsage(context.Background(), vs[0].ID, b, int64(i), time.Now().Add(time.Duration(i-4)*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	browsertest.Step(t, ctx, "usage chart", chromedp.Navigate(strings.Split(loc, "?")[0]), chromedp.WaitVisible(css("#usage-chart")))
	if got := browsertest.Text(t, ctx, "main"); !strings.Contains(got, "usage_80") || !strings.Contains(got, "85% of 20 GB used") {
		t.Fatalf("vault page after usage: %q", got)
	}
	browsertest.Screenshot(t, ctx, "vault-usage")
}

func vaultsFilterA(member int64) vaults.VaultFilter {
	return vaults.VaultFilter{MemberIDs: []int64{member}}
}
