package api_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// TestMemberListPagesAtExactMultiplesAndEmptySearches: paging through members whose count
// is an exact multiple of the page size ends with an empty page (not a 500), and a search
// with no match answers an empty list, also when it holds LIKE's wildcards.
func TestMemberListPagesAtExactMultiplesAndEmptySearches(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	f := env.Fixture() // members A and B
	for i := range 4 {
		env.Member(fmt.Sprintf("page-%d", i), fmt.Sprintf("Paged %d", i))
	}
	type page struct {
		Members []struct {
			ID   int64  `json:"id"`
			Slug string `json:"slug"`
		} `json:"members"`
		NextCursor *string `json:"next_cursor"`
	}
	for _, limit := range []int{1, 2, 3, 6} { // 6 members: exact multiples of 1, 2, 3 and 6
		seen := 0
		path := fmt.Sprintf("/v1/members?limit=%d", limit)
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			r := env.Do(apptest.Req{Method: "GET", Path: path, Token: f.ViewerA.Access})
			if r.Status != 200 {
				t.Fatalf("limit %d, %s: %d %s", limit, path, r.Status, r.Body)
			}
			var p page
			r.Decode(t, &p)
			seen += len(p.Members)
			if p.NextCursor == nil {
				break
			}
			path = fmt.Sprintf("/v1/members?limit=%d&cursor=%s", limit, url.QueryEscape(*p.NextCursor))
		}
		if seen != 6 {
			t.Fatalf("limit %d: saw %d members, want 6", limit, seen)
		}
	}
	// LIKE's wildcards are taken literally: no member's slug or name holds "%" or "_".
	for _, q := range []string{"no-such-member", "no-such-member&limit=1", "%25", "_", "ged_2", `%5C`} {
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/members?q=" + q, Token: f.ViewerA.Access})
		var p page
		if r.Status != 200 {
			t.Fatalf("q=%s: %d %s", q, r.Status, r.Body)
		}
		if r.Decode(t, &p); len(p.Members) != 0 || p.NextCursor != nil {
			t.Fatalf("q=%s: %s", q, r.Body)
		}
	}
	r := env.Do(apptest.Req{Method: "GET", Path: "/v1/members?q=ged+2", Token: f.ViewerA.Access})
	var p page
	if r.Decode(t, &p); r.Status != 200 || len(p.Members) != 1 || p.Members[0].Slug != "page-2" {
		t.Fatalf("q=ged 2: %d %s", r.Status, r.Body)
	}
}
