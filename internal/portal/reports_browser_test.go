package portal_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/reports"
)

// TestReportRendersInTheBrowser: a member admin opens a report in the portal; the page
// shows its summary and its SVG charts under the portal's CSP, and the dashboard links it.
func TestReportRendersInTheBrowser(t *testing.T) {
	env, f := apptest.Parallel(t)
	ctx := audit.WithActor(context.Background(), audit.System("browser-test"))
	st, err := env.App.Reports.Generate(ctx, reports.Request{Scope: reports.ScopeMember,
		Member: &reports.MemberRef{ID: f.MemberA.ID, Slug: f.MemberA.Slug, Name: f.MemberA.Name},
		Period: reports.Period{Kind: reports.PeriodCustom, Start: time.Now().AddDate(0, 0, -7), End: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	browsertest.Step(t, b, "log in", chromedp.Navigate(env.URL+"/reports/"+strconv.FormatInt(st.ID, 10)), chromedp.WaitVisible(css("#email")),
		chromedp.SendKeys(css("#email"), f.AdminA.Email), chromedp.SendKeys(css("#password"), f.AdminA.Password),
		chromedp.Click(css("button[type=submit]")), chromedp.WaitVisible(css("article.rpt")))
	if h1 := browsertest.Text(t, b, "article.rpt h1"); !strings.Contains(h1, "Member A") {
		t.Fatalf("report title %q", h1)
	}
	if s := browsertest.Text(t, b, ".rpt-proof"); !strings.Contains(s, "archipelago audit verify") {
		t.Fatalf("proof section %q", s)
	}
	browsertest.Screenshot(t, b, "report-member")
	browsertest.Step(t, b, "dashboard", chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(css("section.cards")),
		chromedp.WaitVisible(css(`a[href="/reports/`+strconv.FormatInt(st.ID, 10)+`"]`)))
	browsertest.Screenshot(t, b, "dashboard-with-report")
	browsertest.Step(t, b, "notifications", chromedp.Navigate(env.URL+"/notifications"), chromedp.WaitVisible(css("#ch-target")))
	browsertest.Screenshot(t, b, "notifications")
}
