package portal_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The language of what is sent to a member (reports, notification emails) is set on the
// Members page: by the member's admins for their member, by the federation's admins for
// any; audited like the API's PUT /v1/members/{id}/language (the same domain function);
// viewers and other members' admins cannot; the form speaks the page's language.
func TestMemberLanguageFromTheMembersPage(t *testing.T) {
	s := newPortalTest(t)
	a, b := s.f.MemberA, s.f.MemberB
	form := func(slug string) string { return `id="member-language-` + slug + `"` }
	if page := getIn(s.env, s.f.AdminA, "/members", "en"); !strings.Contains(page, form(a.Slug)) || strings.Contains(page, form(b.Slug)) ||
		!strings.Contains(page, "Language of the reports and emails sent to "+a.Name) {
		t.Fatalf("member A's admin should have the form of member A only:\n%s", page)
	}
	if page := getIn(s.env, s.f.ViewerA, "/members", "en"); strings.Contains(page, form(a.Slug)) {
		t.Fatal("a viewer has the language form")
	}
	if page := getIn(s.env, s.f.FedAdmin, "/members", "fr"); !strings.Contains(page, form(a.Slug)) || !strings.Contains(page, form(b.Slug)) ||
		!strings.Contains(page, "Langue des rapports et courriels envoyés à "+b.Name) || !strings.Contains(page, "Celle de la fédération") {
		t.Fatalf("a federation admin should have every member's form, in French:\n%s", page)
	}

	path := func(id int64) string { return "/members/" + strconv.FormatInt(id, 10) + "/language" }
	lang := func(id int64) string {
		t.Helper()
		var l *string
		if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT language FROM members WHERE id = $1`, id).Scan(&l); err != nil {
			t.Fatal(err)
		}
		if l == nil {
			return ""
		}
		return *l
	}
	if r := s.post(s.f.AdminA, path(a.ID), url.Values{"language": {"fr"}}); r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/members?done=language") {
		t.Fatalf("member A's admin sets French: %d %s", r.Status, r.Body)
	}
	if got := lang(a.ID); got != "fr" {
		t.Fatalf("member A's language is %q", got)
	}
	var n int
	if err := s.env.App.Pool.QueryRow(s.ctx, `SELECT count(*) FROM audit_entries WHERE action = 'member.language' AND member_id = $1
		AND details->>'language' = 'fr' AND actor_name = $2`, a.ID, s.f.AdminA.Email).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the change is not audited as member A's admin's: %d %v", n, err)
	}
	if page := getIn(s.env, s.f.AdminA, "/members?done=language&member="+a.Slug, "en"); !strings.Contains(page, "the language of its reports and emails was saved") ||
		!strings.Contains(page, `<option value="fr" lang="fr" selected>`) {
		t.Fatalf("after saving:\n%s", page)
	}
	if r := s.post(s.f.ViewerA, path(a.ID), url.Values{"language": {"en"}}); r.Status != 403 {
		t.Fatalf("a viewer sets the language: %d", r.Status)
	}
	if r := s.post(s.f.AdminA, path(b.ID), url.Values{"language": {"en"}}); r.Status != 404 {
		t.Fatalf("member A's admin sets member B's language: %d", r.Status)
	}
	if r := s.post(s.f.AdminA, path(a.ID), url.Values{"language": {"tlh"}}); r.Status != 400 || !strings.Contains(string(r.Body), "must be en, fr") {
		t.Fatalf("an unknown language: %d %s", r.Status, r.Body)
	}
	if r := s.post(s.f.FedAdmin, path(b.ID), url.Values{"language": {"fr"}}); r.Status != 303 || lang(b.ID) != "fr" {
		t.Fatalf("a federation admin sets member B's language: %d", r.Status)
	}
	if r := s.post(s.f.FedAdmin, path(b.ID), url.Values{"language": {""}}); r.Status != 303 || lang(b.ID) != "" {
		t.Fatalf("back to the federation's: %d", r.Status)
	}
	if got := lang(a.ID); got != "fr" {
		t.Fatalf("member A's language changed to %q", got)
	}
}
