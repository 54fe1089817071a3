package portal_test

import (
	"html"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
)

// TestFederationReportMembersPageThroughEverything: the portal shows a federation report of
// 232 members 100 members a page, every member once over the pages, with the next-page link
// of the portal's lists; a cursor that is not one of the report's is refused.
func TestFederationReportMembersPageThroughEverything(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	if err := scaleseed.Seed(t.Context(), env.App.Pool, scaleseed.Size{Members: 230, VaultsPerMember: 1, Days: 1}); err != nil {
		t.Fatal(err)
	}
	f := env.Fixture() // members A and B, and the actors
	now := time.Now()
	st, err := env.App.Reports.Generate(audit.WithActor(t.Context(), audit.System("test")), reports.Request{Scope: reports.ScopeFederation,
		Period: reports.Period{Kind: reports.PeriodCustom, Start: now.AddDate(0, 0, -7), End: now}})
	if err != nil {
		t.Fatal(err)
	}
	c := fedClient{t: t, env: env}
	next := regexp.MustCompile(`<a rel="next" href="([^"]+)">`)
	row := regexp.MustCompile(`<th scope="row">[^<]*<span class="rpt-muted">\(([^)]+)\)</span></th>`)
	seen := map[string]bool{}
	base := "/reports/" + strconv.FormatInt(st.ID, 10)
	path, pages := base, 0
	for path != "" {
		pages++
		body := fedExpect(t, "the report", c.get(f.FedAdmin, path), 200)
		rows := row.FindAllStringSubmatch(body, -1)
		if len(rows) == 0 || len(rows) > 100 {
			t.Fatalf("page %d: %d members", pages, len(rows))
		}
		for _, m := range rows {
			if seen[m[1]] {
				t.Fatalf("%s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := next.FindStringSubmatch(body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	if len(seen) != 232 || pages != 3 {
		t.Fatalf("%d members over %d pages, want 232 over 3", len(seen), pages)
	}
	fedExpect(t, "a foreign cursor", c.get(f.FedAdmin, base+"?cursor=bm9wZQ"), 400, "not valid")
}
