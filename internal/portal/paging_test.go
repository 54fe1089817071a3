package portal_test

import (
	"html"
	"regexp"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/scaleseed"
)

// TestPortalListsPageThroughEverything: a federation of 230 members (2,300 vaults) shows
// every member and every vault across the pages of /members and /vaults, each at most 100
// rows, none twice — the lists used to stop silently at 500 and 1,000.
func TestPortalListsPageThroughEverything(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	if err := scaleseed.Seed(t.Context(), env.App.Pool, scaleseed.Size{Members: 230, VaultsPerMember: 10}); err != nil {
		t.Fatal(err)
	}
	f := env.Fixture() // members A and B, and the actors
	c := fedClient{t: t, env: env}
	next := regexp.MustCompile(`<a rel="next" href="([^"]+)">`)
	for _, list := range []struct {
		path string
		row  *regexp.Regexp
		want int
	}{
		{"/members", regexp.MustCompile(`<tr data-member="([^"]+)"`), 232},
		{"/vaults", regexp.MustCompile(`<td><a href="/vaults/(\d+)">`), 2300},
	} {
		seen := map[string]bool{}
		path, pages := list.path, 0
		for path != "" {
			pages++
			body := fedExpect(t, list.path, c.get(f.FedAdmin, path), 200)
			rows := list.row.FindAllStringSubmatch(body, -1)
			if len(rows) == 0 || len(rows) > 100 {
				t.Fatalf("%s page %d: %d rows", list.path, pages, len(rows))
			}
			for _, m := range rows {
				if seen[m[1]] {
					t.Fatalf("%s: %s on two pages", list.path, m[1])
				}
				seen[m[1]] = true
			}
			path = ""
			if m := next.FindStringSubmatch(body); m != nil {
				path = html.UnescapeString(m[1])
			}
		}
		if len(seen) != list.want {
			t.Fatalf("%s: %d rows over %d pages, want %d", list.path, len(seen), pages, list.want)
		}
	}
	fedExpect(t, "a foreign cursor", c.get(f.FedAdmin, "/vaults?cursor=bm9wZQ"), 400, "not valid")
}
