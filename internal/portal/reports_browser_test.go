package portal_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/reports"
)

// TestReportRendersInTheBrowser: a member admin opens a report in the portal; the page
// shows its summary and its SVG charts under the portal's CSP, and the dashboard links it.
func TestReportRendersInTheBrowser(t *testing.T) {
	s := newPortalTest(t)
	st, err := s.env.App.Reports.Generate(s.ctx, reports.Request{Scope: reports.ScopeMember,
		Member: &reports.MemberRef{ID: s.f.MemberA.ID, Slug: s.f.MemberA.Slug, Name: s.f.MemberA.Name},
		Period: reports.Period{Kind: reports.PeriodCustom, Start: time.Now().AddDate(0, 0, -7), End: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	b := s.login(s.f.AdminA, "/reports/"+strconv.FormatInt(st.ID, 10), "article.rpt")
	if h1 := browsertest.Text(t, b, "article.rpt h1"); !strings.Contains(h1, "Member A") {
		t.Fatalf("report title %q", h1)
	}
	if s := browsertest.Text(t, b, ".rpt-proof"); !strings.Contains(s, "archipelago audit verify") {
		t.Fatalf("proof section %q", s)
	}
	browsertest.Screenshot(t, b, "report-member")
	browsertest.Step(t, b, "dashboard", chromedp.Navigate(s.env.URL+"/"), chromedp.WaitVisible(css("section.cards")),
		chromedp.WaitVisible(css(`a[href="/reports/`+strconv.FormatInt(st.ID, 10)+`"]`)))
	browsertest.Screenshot(t, b, "dashboard-with-report")
	browsertest.Step(t, b, "notifications", chromedp.Navigate(s.env.URL+"/notifications"), chromedp.WaitVisible(css("#ch-target")))
	browsertest.Screenshot(t, b, "notifications")
}
