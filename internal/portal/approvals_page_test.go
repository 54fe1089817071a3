package portal_test

import (
	"html"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/islands"
)

// TestApprovalsPageListsPageThroughEverything: the Approvals page's three lists (waiting for
// my vote, the other open requests, the history) each page on their own, at most 100 rows a
// page, newest first, every request on exactly one page of exactly one list, the other
// lists staying where they were — the page used to read the newest 200 requests (the rest
// silently left out) and to ask, one request at a time, whether the reader could vote.
func TestApprovalsPageListsPageThroughEverything(t *testing.T) {
	s := newPortalTest(t)
	pool := s.env.App.Pool
	target := 0
	insert := func(n int, by *apptest.Actor, requester, affected islands.Member, status string) []string {
		t.Helper()
		target += 1000 // one open request per target
		var ids []int64
		if err := pool.QueryRow(s.ctx, `WITH ins AS (
				INSERT INTO approval_requests (action, target_type, target_id, affected_member_id, effect, requested_by,
					requester_member_ids, authority, required_approvals, status, created_at, approval_expires_at)
				SELECT 'vault.delete', 'vault', ($6::int + g)::text, $2, 'test', (SELECT id FROM users WHERE email = $3), ARRAY[$4::bigint],
					'member_admin', 2, $5, now(), now() + interval '2 days'
				FROM generate_series(1, $1) g RETURNING id)
			SELECT array_agg(id ORDER BY id DESC) FROM ins`, n, affected.ID, by.Email, requester.ID, status, target).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = strconv.FormatInt(id, 10)
		}
		return out
	}
	// Member B's admin asks for 130 deletions: member A's admin may approve them. Member A's
	// admin asks for 3 (open, not theirs to approve). 230 requests are closed.
	toApprove := insert(130, s.f.AdminB, s.f.MemberB, s.f.MemberB, "pending")
	open := insert(3, s.f.AdminA, s.f.MemberA, s.f.MemberA, "pending")
	history := insert(230, s.f.AdminB, s.f.MemberB, s.f.MemberB, "rejected")

	c := fedClient{t: t, env: s.env}
	row := regexp.MustCompile(`<tr data-request="(\d+)"`)
	next := regexp.MustCompile(`<a rel="next" href="([^"]+)">`)
	section := func(body, id string) string {
		m := regexp.MustCompile(`(?s)<section aria-labelledby="` + id + `">(.*?)</section>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no section %s", id)
		}
		return m[1]
	}
	lists := []struct {
		id   string // the section's
		want []string
	}{{"to-approve", toApprove}, {"open", open}, {"history", history}}
	for _, l := range lists {
		var got []string
		path, pages := "/approvals", 0
		for path != "" {
			pages++
			body := fedExpect(t, path, c.get(s.f.AdminA, path), 200)
			rows := row.FindAllStringSubmatch(section(body, l.id), -1)
			if len(rows) > 100 {
				t.Fatalf("%s page %d: %d rows", l.id, pages, len(rows))
			}
			for _, m := range rows {
				got = append(got, m[1])
			}
			for _, other := range lists { // the other lists stay on their first page
				if other.id != l.id {
					first := row.FindAllStringSubmatch(section(body, other.id), -1)
					if len(first) != min(100, len(other.want)) || first[0][1] != other.want[0] {
						t.Fatalf("paging %s (page %d): %s shows %d rows from #%s", l.id, pages, other.id, len(first), first[0][1])
					}
				}
			}
			path = ""
			if m := next.FindStringSubmatch(section(body, l.id)); m != nil {
				path = html.UnescapeString(m[1])
			}
		}
		if !slices.Equal(got, l.want) {
			t.Errorf("%s: %d rows over %d pages (%v…), want %d (%v…)", l.id, len(got), pages, got[:min(3, len(got))], len(l.want), l.want[:3])
		}
	}
	fedExpect(t, "a foreign cursor", c.get(s.f.AdminA, "/approvals?history=bm9wZQ"), 400, "not valid")
}
