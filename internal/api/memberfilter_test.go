package api_test

import (
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// TestListsFilterByAMemberTheCallerMayRead: ?member=<slug> on the vault and grant lists
// keeps that member's rows; a member the caller may not read, or none, answers 404 naming
// the member, like a missing one.
func TestListsFilterByAMemberTheCallerMayRead(t *testing.T) {
	env, f := apptest.Parallel(t)
	for _, m := range []string{"member-a", "member-b"} {
		r := env.Do(apptest.Req{Method: "POST", Path: "/v1/quota/grants", Token: f.FedAdmin.Access,
			Body: map[string]any{"member": m, "bytes": 1_000_000_000, "reason": "filter test"}})
		if r.Status != 201 {
			t.Fatalf("grant for %s: %d %s", m, r.Status, r.Body)
		}
	}
	var grants struct {
		Grants []struct {
			MemberID int64 `json:"member_id"`
		} `json:"grants"`
	}
	env.Do(apptest.Req{Method: "GET", Path: "/v1/quota/grants?member=member-a", Token: f.FedAdmin.Access}).Decode(t, &grants)
	if len(grants.Grants) != 1 {
		t.Errorf("grants of member-a: %d, want 1", len(grants.Grants))
	}
	for _, g := range grants.Grants {
		if g.MemberID != f.MemberA.ID {
			t.Errorf("grant of member %d in member-a's list", g.MemberID)
		}
	}
	for _, list := range []string{"/v1/vaults", "/v1/quota/grants"} {
		if r := env.Do(apptest.Req{Method: "GET", Path: list + "?member=member-a", Token: f.AdminA.Access}); r.Status != 200 {
			t.Errorf("%s?member=member-a by its admin: %d %s", list, r.Status, r.Body)
		}
		for _, c := range []struct {
			who  *apptest.Actor
			slug string
		}{{f.AdminA, "member-b"}, {f.FedAdmin, "no-such-member"}} {
			r := env.Do(apptest.Req{Method: "GET", Path: list + "?member=" + c.slug, Token: c.who.Access})
			if r.Status != 404 {
				t.Errorf("%s?member=%s by %s: %d, want 404", list, c.slug, c.who.Name, r.Status)
			}
			if r.ErrorField() != "member" {
				t.Errorf("%s?member=%s: field %q, want member", list, c.slug, r.ErrorField())
			}
			if !strings.Contains(string(r.Body), "member "+c.slug+" not found") {
				t.Errorf("%s?member=%s: message %s", list, c.slug, r.Body)
			}
		}
	}
}
