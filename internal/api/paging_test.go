package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/scaleseed"
)

// walkAPI reads every page of an API list with the given limit and returns the ids seen
// and the number of pages; it fails on a repeated id, an empty page or an overfull one.
func walkAPI(t *testing.T, env *apptest.Env, token, path, items string, limit int) (map[int64]bool, int) {
	t.Helper()
	seen := map[int64]bool{}
	cursor, pages := "", 0
	for {
		pages++
		u := fmt.Sprintf("%s%climit=%d", path, map[bool]rune{true: '&', false: '?'}[containsQuery(path)], limit)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		r := env.Do(apptest.Req{Method: "GET", Path: u, Token: token})
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", u, r.Status, r.Body)
		}
		var doc map[string]json.RawMessage
		r.Decode(t, &doc)
		var list []struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(doc[items], &list); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		var next *string
		if err := json.Unmarshal(doc["next_cursor"], &next); err != nil {
			t.Fatalf("%s: next_cursor: %v", u, err)
		}
		if len(list) > limit || (next != nil && len(list) != limit) || (len(list) == 0 && pages > 1) {
			t.Fatalf("%s page %d: %d items, next %v", path, pages, len(list), next)
		}
		for _, it := range list {
			if seen[it.ID] {
				t.Fatalf("%s: id %d on two pages", path, it.ID)
			}
			seen[it.ID] = true
		}
		if next == nil {
			return seen, pages
		}
		cursor = *next
	}
}

func containsQuery(p string) bool {
	for _, c := range p {
		if c == '?' {
			return true
		}
	}
	return false
}

// TestAPIListsPageCompletelyAtExactMultiples: every paged list ends without an empty page
// (or a 500) when its length is an exact multiple of the limit, and holds everything: the
// member list used to panic there, the vault list to stop at 1,000.
func TestAPIListsPageCompletelyAtExactMultiples(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	if err := scaleseed.Seed(t.Context(), env.App.Pool, scaleseed.Size{Members: 118, VaultsPerMember: 9, Days: 1,
		ChannelsPerMember: 1, ReportsPerMember: 1}); err != nil {
		t.Fatal(err)
	}
	f := env.Fixture() // 2 more members: 120
	fed := f.FedAdmin.Access
	// 600 quota grants: the list used to stop silently at 500.
	if _, err := env.App.Pool.Exec(t.Context(), `INSERT INTO quota_grants (member_id, bytes, reason, granted_by)
		SELECT id, 1, 'seeded', 'test' FROM members, generate_series(1, 5)`); err != nil {
		t.Fatal(err)
	}
	// 600 events at 300 distinct times (pairs share one: the cursor breaks ties by id); the
	// list used to answer the newest 500 at most, with no way to the rest.
	if _, err := env.App.Pool.Exec(t.Context(), `INSERT INTO notify_events (member_id, kind, severity, subject, title, at)
		SELECT id, 'quota.80', 'warning', 'vault/' || g, 'event ' || g, now() - ((id * 5 + g) / 2) * interval '1 second'
		FROM members, generate_series(1, 5) g`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, items string
		limit, want int
	}{
		{"/v1/members", "members", 40, 120},
		{"/v1/members", "members", 7, 120},
		{"/v1/islands", "islands", 10, 30},
		{"/v1/pledges", "pledges", 59, 118},
		{"/v1/vaults", "vaults", 500, 1062},
		{"/v1/vaults", "vaults", 354, 1062},
		{"/v1/repositories", "repositories", 500, 1062},
		{"/v1/restore-tests", "runs", 354, 1062},
		{"/v1/notify/channels", "channels", 59, 118},
		{"/v1/reports", "reports", 118, 118},
		{"/v1/quota/grants", "grants", 500, 600},
		{"/v1/quota/grants", "grants", 120, 600},
		{"/v1/notify/events", "events", 500, 600},
		{"/v1/notify/events", "events", 7, 600},
	} {
		seen, pages := walkAPI(t, env, fed, c.path, c.items, c.limit)
		if len(seen) != c.want || pages != (c.want+c.limit-1)/c.limit {
			t.Errorf("%s limit %d: %d items in %d pages, want %d", c.path, c.limit, len(seen), pages, c.want)
		}
	}
	// A member admin pages through its own vaults only.
	if seen, _ := walkAPI(t, env, f.AdminA.Access, "/v1/vaults", "vaults", 1); len(seen) != 0 {
		t.Errorf("member A sees %d vaults", len(seen))
	}
	if seen, _ := walkAPI(t, env, f.AdminA.Access, "/v1/quota/grants", "grants", 2); len(seen) != 5 {
		t.Errorf("member A sees %d grants, want its 5", len(seen))
	}
	if seen, _ := walkAPI(t, env, f.AdminA.Access, "/v1/notify/events", "events", 2); len(seen) != 5 {
		t.Errorf("member A sees %d events, want its 5", len(seen))
	}
	// Bad parameters are refused naming them.
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=bm9wZQ"} {
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/vaults?" + q, Token: fed, NoValidate: true})
		if want := map[bool]string{true: "cursor", false: "limit"}[q[0] == 'c']; r.Status != 400 || r.ErrorField() != want {
			t.Errorf("?%s: %d %s", q, r.Status, r.Body)
		}
	}
}
