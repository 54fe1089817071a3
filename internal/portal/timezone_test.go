package portal_test

import (
	"html"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
)

// loginAt is when actor a last logged in, per the audit log (the entry the audit page lists).
func (s *portalTest) loginAt(a *apptest.Actor) time.Time {
	s.t.Helper()
	var at time.Time
	if err := s.env.App.Pool.QueryRow(s.t.Context(), `SELECT at FROM audit_entries WHERE action = 'auth.login' AND actor_name = $1
		ORDER BY seq DESC LIMIT 1`, a.Email).Scan(&at); err != nil {
		s.t.Fatal(err)
	}
	return at
}

// shownAt asserts that the page shows the moment at relatively ("… ago"), with its exact time
// in loc on hover, and says nothing in "UTC".
func shownAt(t *testing.T, page *apptest.Response, at time.Time, loc *time.Location) {
	t.Helper()
	body := string(page.Body)
	el := `<time datetime="` + at.UTC().Format(time.RFC3339) + `" title="` + at.In(loc).Format("2006-01-02 15:04 MST") + `" data-clock="ago">`
	i := strings.Index(body, el)
	if page.Status != 200 || i < 0 {
		t.Fatalf("the page does not show %s as %s: %d\n%s", at, el, page.Status, body)
	}
	if text := html.UnescapeString(body[i+len(el) : i+len(el)+strings.Index(body[i+len(el):], "<")]); !strings.HasSuffix(text, " ago") && text != "just now" {
		t.Fatalf("the moment reads %q, not relative", text)
	}
	if strings.Contains(body, " UTC<") || strings.Contains(body, "(UTC)") {
		t.Fatalf("the page still speaks UTC:\n%s", body)
	}
}

// A person whose zone is Europe/Paris sees the audit list's moments relative ("… ago"),
// with the exact Paris time on hover.
func TestAPersonInParisSeesRelativeTimesWithTheParisTimeOnHover(t *testing.T) {
	s := newPortalTest(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if r := s.post(s.f.AdminA, "/account/time-zone", url.Values{"time_zone": {"Europe/Paris"}}); r.Status != 303 {
		t.Fatalf("set the zone: %d %s", r.Status, r.Body)
	}
	shownAt(t, s.get(s.f.AdminA, "/audit?action=auth.*"), s.loginAt(s.f.AdminA), paris)
	// Someone who chose nothing still sees the federation's zone (UTC here).
	shownAt(t, s.get(s.f.FedAdmin, "/audit?action=auth.*"), s.loginAt(s.f.FedAdmin), time.UTC)
}

// A federation admin sets the federation's time zone (an unknown one is refused, naming
// time_zone; others may not); a person who chose none then sees times in it, one who chose
// their own keeps theirs.
func TestTheFederationAdminSetsTheDefaultTimeZone(t *testing.T) {
	s := newPortalTest(t)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	r := s.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/federation/settings", Token: s.f.FedAdmin.Access, Body: map[string]any{"time_zone": "Mars/Olympus"}})
	if r.Status != 400 || !strings.Contains(string(r.Body), `"time_zone"`) {
		t.Fatalf("an unknown zone: %d %s", r.Status, r.Body)
	}
	// A patch with a good zone and a bad language changes nothing (never a half-done change).
	r = s.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/federation/settings", Token: s.f.FedAdmin.Access,
		Body: map[string]any{"time_zone": "Asia/Tokyo", "language": "de"}})
	if r.Status != 400 || !strings.Contains(string(r.Body), `"language"`) {
		t.Fatalf("a good zone with a bad language: %d %s", r.Status, r.Body)
	}
	var zone string
	if err := s.env.App.Pool.QueryRow(s.t.Context(), `SELECT time_zone FROM federation_settings`).Scan(&zone); err != nil || zone == "Asia/Tokyo" {
		t.Fatalf("a refused patch changed the zone to %q (%v)", zone, err)
	}
	if r := s.env.Do(apptest.Req{Method: "PATCH", Path: "/v1/federation/settings", Token: s.f.AdminA.Access, Body: map[string]any{"time_zone": "Asia/Tokyo"}}); r.Status != 403 {
		t.Fatalf("a member admin sets the federation's zone: %d %s", r.Status, r.Body)
	}
	if r := s.post(s.f.AdminA, "/account/federation-time-zone", url.Values{"time_zone": {"Asia/Tokyo"}}); r.Status != 403 {
		t.Fatalf("a member admin sets the federation's zone in the portal: %d", r.Status)
	}
	if r := s.post(s.f.AdminB, "/account/time-zone", url.Values{"time_zone": {"Europe/Paris"}}); r.Status != 303 {
		t.Fatalf("admin B's own zone: %d", r.Status)
	}

	if r := s.post(s.f.FedAdmin, "/account/federation-time-zone", url.Values{"time_zone": {"Asia/Tokyo"}}); r.Status != 303 ||
		r.Header.Get("Location") != "/account?done=federation-timezone" {
		t.Fatalf("the federation admin sets the zone: %d %s", r.Status, r.Body)
	}
	var st struct {
		TimeZone string `json:"time_zone"`
	}
	got := s.env.Do(apptest.Req{Method: "GET", Path: "/v1/federation/settings", Token: s.f.ViewerA.Access})
	got.Decode(t, &st)
	if got.Status != 200 || st.TimeZone != "Asia/Tokyo" {
		t.Fatalf("GET /v1/federation/settings: %d %+v", got.Status, st)
	}
	var audited int
	if err := s.env.App.Pool.QueryRow(s.t.Context(), `SELECT count(*) FROM audit_entries WHERE action = 'federation.time_zone'
		AND details->>'time_zone' = 'Asia/Tokyo'`).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("the change is audited %d times (%v)", audited, err)
	}

	shownAt(t, s.get(s.f.ViewerA, "/audit?action=auth.*"), s.loginAt(s.f.ViewerA), tokyo)
	paris, _ := time.LoadLocation("Europe/Paris")
	shownAt(t, s.get(s.f.AdminB, "/audit?action=auth.*"), s.loginAt(s.f.AdminB), paris)
	account := string(s.get(s.f.ViewerA, "/account").Body)
	if !strings.Contains(account, `placeholder="Asia/Tokyo"`) || strings.Contains(account, `id="federation-time-zone"`) {
		t.Fatalf("the viewer's account page does not offer the federation's zone as the default, or offers to change it:\n%s", account)
	}
}

// A page left open keeps its relative times true: clock.js rewrites every <time> of the
// clock from its datetime, with the words the page gave it.
func TestRelativeTimesStayTrueOnAPageLeftOpen(t *testing.T) {
	s := newPortalTest(t)
	ctx := s.login(s.f.AdminA, "/audit?action=auth.*", "time[data-clock]")
	// Make the first moment three hours older, as if the page had been left open that long;
	// the next refresh (at most 30 s) must say so.
	browsertest.Step(t, ctx, "age a moment", chromedp.Evaluate[chromedp.Void](`(() => {
		const el = document.querySelector("time[data-clock]");
		el.setAttribute("datetime", new Date(Date.parse(JSON.parse(document.getElementById("clock-words").textContent).now) - 3*3600*1000 - 60000).toISOString());
		el.textContent = "stale";
	})()`))
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if got := browsertest.Text(t, ctx, "time[data-clock]"); got == "3 h ago" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the moment still reads %q three minutes later", got)
		}
		time.Sleep(time.Second)
	}
}
