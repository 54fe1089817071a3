package portal_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/testenv"
)

// fedClient sends portal requests as the fixture's actors: their session cookie, and
// their CSRF token in every form.
type fedClient struct {
	t   *testing.T
	env *apptest.Env
}

func (c fedClient) get(a *apptest.Actor, path string) *apptest.Response {
	c.t.Helper()
	return pageGet(c.env, a, path)
}

func (c fedClient) post(a *apptest.Actor, path string, form url.Values) *apptest.Response {
	c.t.Helper()
	return formPost(c.env, a, path, form)
}

// fedExpect fails the test unless the response has the status and its body holds every want.
func fedExpect(t *testing.T, what string, r *apptest.Response, status int, wants ...string) string {
	t.Helper()
	body := string(r.Body)
	if r.Status != status {
		t.Errorf("%s: status %d, want %d\n%s", what, r.Status, status, body)
		return body
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: the page lacks %q\n%s", what, w, body)
		}
	}
	return body
}

// fedRedirect fails the test unless the response is a 303 to a location starting with prefix,
// and returns the location.
func fedRedirect(t *testing.T, what string, r *apptest.Response, prefix string) string {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.Status != 303 || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("%s: %d to %q, want 303 to %s…\n%s", what, r.Status, loc, prefix, r.Body)
	}
	return loc
}

// TestMemberAdministrationForms: a federation admin adds, edits and deletes members from
// the Members page; bad input is refused naming the field; member admins and viewers see
// no form and get 403 when they post.
func TestMemberAdministrationForms(t *testing.T) {
	env, f := apptest.Parallel(t)
	c := fedClient{t, env}

	fedExpect(t, "fed members page", c.get(f.FedAdmin, "/members"), 200, `id="member-add"`, `&amp;edit=`+fmt.Sprint(f.MemberA.ID)+`#member-`)
	fedExpect(t, "fed member's forms", c.get(f.FedAdmin, "/members?edit="+fmt.Sprint(f.MemberA.ID)), 200,
		`action="/members/`+fmt.Sprint(f.MemberA.ID)+`/edit"`)
	for _, a := range []*apptest.Actor{f.AdminA, f.ViewerA} {
		body := fedExpect(t, a.Name+" members page", c.get(a, "/members"), 200, "Member A")
		// The search (a GET form) is for everyone; no form posts to /members, except the
		// language form of the member's own admin (TestMemberLanguageFromTheMembersPage).
		rest := strings.ReplaceAll(body, `method="post" action="/members/`+fmt.Sprint(f.MemberA.ID)+`/language"`, "")
		if strings.Contains(rest, `method="post" action="/members`) || strings.Contains(body, "Add a member") {
			t.Errorf("%s is offered the member forms", a.Name)
		}
		fedExpect(t, a.Name+" adds", c.post(a, "/members", url.Values{"slug": {"sneaky"}, "name": {"Sneaky"}}), 403, "federation admin")
		fedExpect(t, a.Name+" edits", c.post(a, fmt.Sprintf("/members/%d/edit", f.MemberB.ID), url.Values{"name": {"Hijacked"}}), 403)
		fedExpect(t, a.Name+" deletes", c.post(a, fmt.Sprintf("/members/%d/delete", f.MemberB.ID), url.Values{}), 403)
	}

	// Bad input: 400 naming the field, and the form keeps what was posted.
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"slug": {"Not A Slug"}, "name": {"Chaton du Coin"}}, "Slug must be 2 to 63 lowercase letters"},
		{url.Values{"slug": {"chaton-du-coin"}, "name": {""}}, "Name is required"},
		{url.Values{"slug": {"chaton-du-coin"}, "name": {"Chaton du Coin"}, "contact_email": {"not an address"}}, "Contact email must be an email address"},
		{url.Values{"slug": {"chaton-du-coin"}, "name": {"Chaton du Coin"}, "website": {"ftp://x"}}, "Website must be an http(s) URL"},
	} {
		body := fedExpect(t, fmt.Sprintf("add %v", bad.form), c.post(f.FedAdmin, "/members", bad.form), 400, bad.want)
		if n := bad.form.Get("name"); n != "" && !strings.Contains(body, `value="`+n+`"`) {
			t.Errorf("add %v: the form lost the name", bad.form)
		}
	}
	fedExpect(t, "duplicate slug", c.post(f.FedAdmin, "/members", url.Values{"slug": {"member-a"}, "name": {"Again"}}), 409,
		"Slug is already used by another member")

	loc := fedRedirect(t, "add", c.post(f.FedAdmin, "/members", url.Values{"slug": {"chaton-du-coin"}, "name": {"Chaton du Coin"},
		"contact_email": {"contact@chaton.example"}, "website": {"https://chaton.example"}, "description": {"Un petit chaton"}}), "/members?done=added")
	for _, a := range []*apptest.Actor{f.FedAdmin, f.ViewerA} {
		fedExpect(t, a.Name+" sees the new member", c.get(a, loc), 200, "Chaton du Coin", "contact@chaton.example", "https://chaton.example",
			`data-member="chaton-du-coin"`)
	}
	fedExpect(t, "flash", c.get(f.FedAdmin, loc), 200, "Member chaton-du-coin was added")
	var id int64
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT id FROM members WHERE slug = 'chaton-du-coin'`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	// Edit: bad input names the field and reopens that member's form with what was posted.
	edit := fmt.Sprintf("/members/%d/edit", id)
	body := fedExpect(t, "bad edit", c.post(f.FedAdmin, edit, url.Values{"name": {"Chaton du Coin"}, "website": {"chaton.example"}}), 400,
		"chaton-du-coin: Website must be an http(s) URL", `value="chaton.example"`)
	if !strings.Contains(body, "<details open>\n      <summary>Edit<span class=\"sr\"> chaton-du-coin") {
		t.Error("the refused edit form is not open")
	}
	fedRedirect(t, "edit", c.post(f.FedAdmin, edit, url.Values{"name": {"Chaton du Quartier"}, "contact_email": {"admin@chaton.example"},
		"website": {"https://chaton.example"}, "description": {"Un petit chaton"}}), "/members?done=updated")
	body = fedExpect(t, "after edit", c.get(f.FedAdmin, "/members"), 200, "Chaton du Quartier", "admin@chaton.example")
	if strings.Contains(body, "contact@chaton.example") {
		t.Error("the old contact is still shown")
	}
	// The list writes a line's edit and delete forms only when its Edit link asks for them
	// (they were 60 % of the page's weight); the link opens that member's forms, first.
	link := fmt.Sprintf(`href="/members?q=chaton-du-coin&amp;edit=%d#member-chaton-du-coin"`, id)
	if !strings.Contains(body, link) || strings.Contains(body, `class="stack member-edit"`) || strings.Contains(body, "/delete\"") {
		t.Error("the list should link to each member's forms, not write them")
	}
	body = fedExpect(t, "the Edit link", c.get(f.FedAdmin, fmt.Sprintf("/members?q=chaton-du-coin&edit=%d", id)), 200,
		"<details open>\n      <summary>Edit<span class=\"sr\"> chaton-du-coin", fmt.Sprintf(`action="/members/%d/edit"`, id),
		fmt.Sprintf(`action="/members/%d/delete"`, id), `value="Chaton du Quartier"`)
	if strings.Count(body, `class="stack member-edit"`) != 1 {
		t.Error("the Edit link should open one member's forms")
	}
	if body := fedExpect(t, "viewer's list", c.get(f.ViewerA, "/members"), 200, "Chaton du Quartier"); strings.Contains(body, "member-edit") {
		t.Error("a viewer is offered to edit members")
	}
	var details string
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT details::text FROM audit_entries WHERE action = 'member.update'
		AND target_id = $1 ORDER BY seq DESC LIMIT 1`, fmt.Sprint(id)).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(details, "Chaton du Quartier") || strings.Contains(details, "Un petit chaton") {
		t.Errorf("the audit entry of the edit should hold only what changed: %s", details)
	}

	// Delete: refused while the member is referenced (here: it operates an island), with
	// the domain's reason; then allowed.
	isl := registerSimIsland(t, env, c, f.FedAdmin)
	fedRedirect(t, "add operator", c.post(f.FedAdmin, fmt.Sprintf("/islands/%d/operators", isl.id), url.Values{"member": {fmt.Sprint(id)}}),
		fmt.Sprintf("/islands/%d?done=operator-added", isl.id))
	fedExpect(t, "delete an operator", c.post(f.FedAdmin, fmt.Sprintf("/members/%d/delete", id), url.Values{"confirm": {"yes"}}), 409,
		"Member chaton-du-coin cannot be deleted: still referenced by")
	fedRedirect(t, "remove operator", c.post(f.FedAdmin, fmt.Sprintf("/islands/%d/operators/%d/remove", isl.id, id), url.Values{"confirm": {"yes"}}),
		fmt.Sprintf("/islands/%d?done=operator-removed", isl.id))
	loc = fedRedirect(t, "delete", c.post(f.FedAdmin, fmt.Sprintf("/members/%d/delete", id), url.Values{"confirm": {"yes"}}), "/members?done=deleted")
	if body := fedExpect(t, "after delete", c.get(f.FedAdmin, loc), 200, "Member chaton-du-coin was deleted"); strings.Contains(body, `data-member="chaton-du-coin"`) {
		t.Error("the deleted member is still listed")
	}
	fedExpect(t, "delete again", c.post(f.FedAdmin, fmt.Sprintf("/members/%d/delete", id), url.Values{}), 404)
}

// simIsland is an island registered through the portal against a Garage simulator.
type simIsland struct {
	id    int64
	name  string
	token string
	sim   *garagesim.Sim
}

// registerSimIsland starts a Garage simulator and registers it with the portal's form.
func registerSimIsland(t *testing.T, env *apptest.Env, c fedClient, fed *apptest.Actor) simIsland {
	t.Helper()
	s3 := testenv.S3(t)
	isl := simIsland{name: testenv.Unique("Île "), token: testenv.Unique("garage-admin-token-")}
	var err error
	isl.sim, err = garagesim.Start(context.Background(), garagesim.Config{AdminToken: isl.token, ReplicationFactor: 3,
		S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = isl.sim.Close() })
	loc := fedRedirect(t, "register", c.post(fed, "/islands", url.Values{"name": {isl.name}, "admin_endpoint": {isl.sim.URL()},
		"admin_token": {isl.token}, "s3_endpoint": {"http://" + isl.sim.S3Endpoint()}, "s3_region": {isl.sim.Region()},
		"replication_factor": {"3"}}), "/islands/")
	if _, err := fmt.Sscanf(loc, "/islands/%d?done=registered", &isl.id); err != nil {
		t.Fatalf("register: location %s: %v", loc, err)
	}
	return isl
}

// TestIslandAdministrationForms: a federation admin registers an island against the Garage
// simulator, edits it, polls it, adds and removes operators and deletes it from the portal;
// its admin token never appears in a page or the audit log; a wrong token and an
// unreachable admin API are reported as such; member admins see no form and get 403.
func TestIslandAdministrationForms(t *testing.T) {
	env, f := apptest.Parallel(t)
	c := fedClient{t, env}

	fedExpect(t, "fed islands page", c.get(f.FedAdmin, "/islands"), 200, `id="island-register"`, `name="admin_token" type="password"`)
	for _, a := range []*apptest.Actor{f.AdminA, f.ViewerA} {
		if body := fedExpect(t, a.Name+" islands page", c.get(a, "/islands"), 200); strings.Contains(body, `action="/islands"`) {
			t.Errorf("%s is offered the register form", a.Name)
		}
		fedExpect(t, a.Name+" registers", c.post(a, "/islands", url.Values{"name": {"x"}}), 403, "Only a federation admin may register islands")
	}

	s3 := testenv.S3(t)
	token := testenv.Unique("garage-admin-token-")
	sim, err := garagesim.Start(context.Background(), garagesim.Config{AdminToken: token, ReplicationFactor: 3,
		S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey, S3Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	form := func(name, admin, tok string) url.Values {
		return url.Values{"name": {name}, "admin_endpoint": {admin}, "admin_token": {tok}, "s3_endpoint": {"http://" + sim.S3Endpoint()},
			"s3_region": {sim.Region()}, "replication_factor": {"3"}}
	}
	noToken := func(what, body string, tokens ...string) {
		t.Helper()
		for _, tok := range tokens {
			if strings.Contains(body, tok) {
				t.Errorf("%s: the page holds an admin token", what)
			}
		}
	}

	// Bad input: 400 naming the field; a wrong token is the token's fault (400); an admin
	// API that does not answer is the world's (502). The token is never echoed back.
	wrong := testenv.Unique("wrong-token-")
	withRF := func(rf string) url.Values {
		v := form("Île Test", sim.URL(), token)
		v.Set("replication_factor", rf)
		return v
	}
	for _, bad := range []struct {
		form   url.Values
		status int
		want   string
	}{
		{form("Île Test", "ftp://garage.example", token), 400, "Admin endpoint must be an http(s) URL"},
		{form("", sim.URL(), token), 400, "Name is required"},
		{form("Île Test", sim.URL(), ""), 400, "Admin token is required"},
		{withRF("9"), 400, "Replication factor must be from 1 to 7"},
		{withRF("three"), 400, "Replication factor must be a whole number"},
		{form("Île Test", sim.URL(), wrong), 400, "Admin token refused"},
		{form("Île Test", "http://127.0.0.1:1", token), 502, "The island&#39;s admin API did not answer"},
	} {
		body := fedExpect(t, fmt.Sprintf("register %v", bad.form), c.post(f.FedAdmin, "/islands", bad.form), bad.status, bad.want, `id="island-register"`)
		noToken("refused registration", body, token, wrong)
		if bad.form.Get("name") != "" && !strings.Contains(body, `value="Île Test"`) {
			t.Errorf("register %v: the form lost the name", bad.form)
		}
	}
	var n int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM islands`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused registrations stored %d islands (%v)", n, err)
	}

	loc := fedRedirect(t, "register", c.post(f.FedAdmin, "/islands", form("Île Test", sim.URL(), token)), "/islands/")
	var id int64
	if _, err := fmt.Sscanf(loc, "/islands/%d?done=registered", &id); err != nil {
		t.Fatalf("location %s: %v", loc, err)
	}
	islandPath := fmt.Sprintf("/islands/%d", id)
	body := fedExpect(t, "registered island", c.get(f.FedAdmin, loc), 200, "The island was registered", "Île Test", "healthy",
		sim.URL(), `id="poll-now"`, `id="island-edit"`, `id="operator-add"`, `id="island-delete"`)
	noToken("island page", body, token)
	body = fedExpect(t, "islands list", c.get(f.FedAdmin, "/islands"), 200, "Île Test")
	noToken("islands page", body, token)
	fedExpect(t, "duplicate name", c.post(f.FedAdmin, "/islands", form("Île Test", sim.URL(), token)), 409, "Name is already used by another island")
	for _, a := range []*apptest.Actor{f.AdminA, f.ViewerA} {
		body := fedExpect(t, a.Name+" island page", c.get(a, islandPath), 200, "Île Test")
		for _, form := range []string{`id="poll-now"`, `id="island-edit"`, `id="operator-add"`, `id="island-delete"`, "/remove"} {
			if strings.Contains(body, form) {
				t.Errorf("%s is offered %s", a.Name, form)
			}
		}
		for _, action := range []string{"/edit", "/poll", "/delete", "/operators", fmt.Sprintf("/operators/%d/remove", f.MemberA.ID)} {
			fedExpect(t, a.Name+" "+action, c.post(a, islandPath+action, url.Values{"name": {"Hijacked"}, "member": {fmt.Sprint(f.MemberA.ID)}}), 403)
		}
	}

	// Operators: add two, remove one.
	for _, m := range []int64{f.MemberA.ID, f.MemberB.ID} {
		fedRedirect(t, "add operator", c.post(f.FedAdmin, islandPath+"/operators", url.Values{"member": {fmt.Sprint(m)}}), islandPath+"?done=operator-added")
	}
	fedExpect(t, "unknown operator", c.post(f.FedAdmin, islandPath+"/operators", url.Values{"member": {"999999"}}), 400, "Member must be chosen from the list")
	body = fedExpect(t, "operators", c.get(f.FedAdmin, islandPath), 200, `data-operator="member-a"`, `data-operator="member-b"`)
	if strings.Contains(body, `<option value="`+fmt.Sprint(f.MemberA.ID)+`">`) {
		t.Error("an operator is still offered in the add list")
	}
	fedRedirect(t, "remove operator", c.post(f.FedAdmin, fmt.Sprintf("%s/operators/%d/remove", islandPath, f.MemberB.ID), url.Values{"confirm": {"yes"}}),
		islandPath+"?done=operator-removed")
	if body := fedExpect(t, "after removal", c.get(f.FedAdmin, islandPath+"?done=operator-removed"), 200, "The operator was removed",
		`data-operator="member-a"`); strings.Contains(body, `data-operator="member-b"`) {
		t.Error("the removed operator is still listed")
	}
	fedExpect(t, "remove again", c.post(f.FedAdmin, fmt.Sprintf("%s/operators/%d/remove", islandPath, f.MemberB.ID), url.Values{"confirm": {"yes"}}), 404)

	// Poll now.
	loc = fedRedirect(t, "poll", c.post(f.FedAdmin, islandPath+"/poll", url.Values{}), islandPath+"?done=polled")
	fedExpect(t, "polled", c.get(f.FedAdmin, loc), 200, "Polled just now: the island is healthy")

	// Edit: an empty token keeps the current one; a wrong one is refused; a bad field is
	// named and the form keeps what was posted.
	edit := form("Île Renommée", sim.URL(), "")
	fedRedirect(t, "rename", c.post(f.FedAdmin, islandPath+"/edit", edit), islandPath+"?done=updated")
	fedExpect(t, "renamed", c.get(f.FedAdmin, islandPath), 200, "Île Renommée")
	fedRedirect(t, "unchanged", c.post(f.FedAdmin, islandPath+"/edit", edit), islandPath+"?done=unchanged")
	body = fedExpect(t, "edit with a wrong token", c.post(f.FedAdmin, islandPath+"/edit", form("Île Renommée", sim.URL(), wrong)), 400, "Admin token refused")
	noToken("edit with a wrong token", body, token, wrong)
	body = fedExpect(t, "bad s3 endpoint", c.post(f.FedAdmin, islandPath+"/edit", url.Values{"name": {"Île Renommée"}, "admin_endpoint": {sim.URL()},
		"s3_endpoint": {"s3.example.org"}, "s3_region": {sim.Region()}, "replication_factor": {"3"}}), 400, "S3 endpoint must be an http(s) URL",
		`value="s3.example.org"`, "<details open>\n<summary>Change the island")
	fedRedirect(t, "new token", c.post(f.FedAdmin, islandPath+"/edit", form("Île Renommée", sim.URL(), token)), islandPath+"?done=updated")
	var leaks int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE details::text LIKE '%' || $1 || '%'`,
		token).Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("the admin token is in %d audit entries (%v)", leaks, err)
	}

	// The admin API goes away: "Poll now" says so (502) and the island turns unreachable.
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	body = fedExpect(t, "poll an unreachable island", c.post(f.FedAdmin, islandPath+"/poll", url.Values{}), 502,
		"Polled just now: the island&#39;s admin API did not answer", "unreachable")
	noToken("unreachable poll", body, token)
	fedExpect(t, "change the endpoint to a dead one", c.post(f.FedAdmin, islandPath+"/edit", form("Île Renommée", "http://127.0.0.1:1", "")), 502,
		"The island&#39;s admin API did not answer")

	// Delete: refused while a member pledges to it, then allowed.
	if _, err := env.App.Pool.Exec(context.Background(), `INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes)
		VALUES ($1, $2, $3, 'member-a', 1000000000)`, f.MemberA.ID, id, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	fedExpect(t, "delete with a live pledge", c.post(f.FedAdmin, islandPath+"/delete", url.Values{"confirm": {"yes"}}), 409,
		"Island Île Renommée cannot be deleted: island &#34;Île Renommée&#34; has 1 live pledges; withdraw them first")
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE pledges SET withdrawn_at = now(), status = 'withdrawn' WHERE island_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	loc = fedRedirect(t, "delete", c.post(f.FedAdmin, islandPath+"/delete", url.Values{"confirm": {"yes"}}), "/islands?done=deleted")
	if body := fedExpect(t, "after delete", c.get(f.FedAdmin, loc), 200, "The island was deleted"); strings.Contains(body, "Île Renommée") {
		t.Error("the deleted island is still listed")
	}
	fedExpect(t, "deleted island page", c.get(f.FedAdmin, islandPath), 404)
}
