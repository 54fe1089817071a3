package portal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/verify"
)

// TestEveryPageAt1400And400: every page of the portal, as a federation admin and as a member
// admin, at 1400 px and at 400 px wide, saved as screenshots (artifacts/screenshots/
// layout-<who>-<page>-<width>.png). At 400 px no page scrolls sideways as a whole (wide
// tables scroll inside their box), the menu is folded behind a "Menu" button that opens it
// without JavaScript, and the dashboard's tables become one card per line.
func TestEveryPageAt1400And400(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newDashboardWorld(t, env, f)
	ctx0 := audit.WithActor(context.Background(), audit.System("browser-test"))
	st, err := env.App.Reports.Generate(ctx0, reports.Request{Scope: reports.ScopeMember,
		Member: &reports.MemberRef{ID: f.MemberA.ID, Slug: f.MemberA.Slug, Name: f.MemberA.Name},
		Period: reports.Period{Kind: reports.PeriodCustom, Start: time.Now().AddDate(0, 0, -7), End: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := verify.RepositoryGetByID(context.Background(), env.App.Pool, w.repoA1.ID)
	if err != nil || repo.LastRunID == nil {
		t.Fatalf("repository %v %v", repo, err)
	}
	pages := []string{"/", "/vaults", fmt.Sprintf("/vaults/%d", repo.VaultID), "/quota", "/islands", fmt.Sprintf("/islands/%d", repo.IslandID),
		"/members", "/pledges", "/restore-tests", fmt.Sprintf("/restore-tests/repositories/%d", repo.ID),
		fmt.Sprintf("/restore-tests/runs/%d", *repo.LastRunID), "/reports", fmt.Sprintf("/reports/%d", st.ID), "/notifications",
		"/audit", "/audit/entries/1", "/audit/checkpoint", "/approvals", "/people", "/tokens", "/account"}
	ctx := browsertest.New(t)
	for _, who := range []*apptest.Actor{f.FedAdmin, f.AdminA} {
		browsertest.Step(t, ctx, "log in as "+who.Name, chromedp.EmulateViewport(1400, 900), chromedp.Navigate(env.URL+"/login"),
			chromedp.WaitVisible(css("#email")), chromedp.SendKeys(css("#email"), who.Email), chromedp.SendKeys(css("#password"), who.Password),
			chromedp.Click(css("button[type=submit]")), chromedp.WaitVisible(css("section.cards")))
		for _, page := range pages {
			name := strings.Trim(strings.NewReplacer("/", "-").Replace(page), "-")
			if name == "" {
				name = "dashboard"
			}
			for _, width := range []int64{1400, 400} {
				browsertest.Step(t, ctx, fmt.Sprintf("%s at %d px", page, width), chromedp.EmulateViewport(width, 900),
					chromedp.Navigate(env.URL+page), chromedp.WaitVisible(css("main h1")))
				browsertest.Screenshot(t, ctx, fmt.Sprintf("layout-%s-%s-%d", who.Name, name, width))
				if width != 400 {
					continue
				}
				over, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
				if err != nil || over > 0 {
					// Name the widest culprits: the deepest elements reaching past the screen's edge.
					wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("main *"))
						.filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !Array.from(e.children).some(c => c.getBoundingClientRect().right > window.innerWidth + 1))
						.slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? "." + String(e.className).split(" ").join(".") : "") + " (" + Math.round(e.getBoundingClientRect().right) + " px)").join(", ")`))
					t.Errorf("%s %s at 400 px: the page is %d px wider than the screen (%v); widest: %s", who.Name, page, over, err, wide)
				}
				menu, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById('main-nav')).display`))
				if err != nil || menu != "none" {
					t.Errorf("%s %s at 400 px: the menu is not folded (%q, %v)", who.Name, page, menu, err)
				}
			}
		}
		// At 400 px the menu opens from its button, and the dashboard's lines are cards.
		browsertest.Step(t, ctx, "open the menu", chromedp.EmulateViewport(400, 900), chromedp.Navigate(env.URL+"/"),
			chromedp.WaitVisible(css(".menu-button")), chromedp.Click(css(".menu-button")), chromedp.WaitVisible(css(`#main-nav a[href="/vaults"]`)))
		browsertest.Screenshot(t, ctx, "layout-"+who.Name+"-menu-open-400")
		display, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('table.morning tbody tr')).display`))
		if err != nil || display != "block" {
			t.Errorf("%s: dashboard lines at 400 px are displayed %q, not as cards (%v)", who.Name, display, err)
		}
		browsertest.Step(t, ctx, "log out", chromedp.EmulateViewport(1400, 900), chromedp.Navigate(env.URL+"/account"),
			chromedp.WaitVisible(css(".who button")), chromedp.Click(css(".who button")), chromedp.WaitVisible(css("#email")))
	}
}
