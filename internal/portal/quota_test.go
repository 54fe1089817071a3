package portal_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
)

// quotaSetup is the fixture with numbers the policy can work on: member A operates a
// "home" island where it pledges 1 TB (active), and may place vaults on an "away" island
// of 100 TB that B operates (replication factor 1 on both, so A's quota is ratio × 1 TB
// plus grants).
type quotaSetup struct {
	env *apptest.Env
	f   *apptest.Fixture
}

func setupQuota(t *testing.T) *quotaSetup {
	t.Helper()
	env := apptest.New(t)
	f := env.Fixture()
	ctx := context.Background()
	island := func(name string, operator int64, capacity int64) int64 {
		var id int64
		if err := env.App.Pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
			replication_factor, status, layout_capacity_bytes) VALUES ($1, 'http://127.0.0.1:1', 'x', 'https://s3.quota.example',
			'garage', 1, 'healthy', $2) RETURNING id`, testenv.Unique(name), capacity).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Pool.Exec(ctx, `INSERT INTO island_operators (island_id, member_id) VALUES ($1, $2)`, id, operator); err != nil {
			t.Fatal(err)
		}
		return id
	}
	home := island("home-", f.MemberA.ID, 1_000_000_000_000)
	island("away-", f.MemberB.ID, 100_000_000_000_000)
	if _, err := env.App.Pool.Exec(ctx, `INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes, status)
		VALUES ($1, $2, $3, 'a', 1000000000000, 'active')`, f.MemberA.ID, home, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	return &quotaSetup{env: env, f: f}
}

func (s *quotaSetup) get(a *apptest.Actor, path string) *apptest.Response {
	return pageGet(s.env, a, path)
}

func (s *quotaSetup) post(a *apptest.Actor, path string, form url.Values) *apptest.Response {
	return formPost(s.env, a, path, form)
}

// best is member A's largest possible vault now, as the API explains it.
func (s *quotaSetup) best(t *testing.T) int64 {
	t.Helper()
	res := s.env.Do(apptest.Req{Method: "GET", Path: "/v1/quota?member=member-a", Token: s.f.FedAdmin.Access})
	if res.Status != 200 {
		t.Fatalf("explain: %d %s", res.Status, res.Body)
	}
	var rep vaults.QuotaReport
	res.Decode(t, &rep)
	return rep.BestAvailableBytes
}

// redirected asserts a 303 to the quota page with the flash marker, and that the page
// it leads to shows the flash.
func (s *quotaSetup) redirected(t *testing.T, a *apptest.Actor, res *apptest.Response, done, flash string) string {
	t.Helper()
	loc := res.Header.Get("Location")
	if res.Status != 303 || !strings.HasPrefix(loc, "/quota?") || !strings.Contains(loc, "done="+done) {
		t.Fatalf("want 303 to /quota?…done=%s, got %d %q\n%s", done, res.Status, loc, res.Body)
	}
	page := s.get(a, loc)
	if page.Status != 200 || !strings.Contains(string(page.Body), flash) {
		t.Fatalf("page after %s: %d, want the flash %q\n%s", done, page.Status, flash, page.Body)
	}
	return string(page.Body)
}

var bestRE = regexp.MustCompile(`id="quota-best">([^<]*)<`)

func bestShown(t *testing.T, body string) string {
	t.Helper()
	m := bestRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no quota-best on the page:\n%s", body)
	}
	return m[1]
}

func refused(t *testing.T, res *apptest.Response, status int, says string) {
	t.Helper()
	if res.Status != status || !strings.Contains(string(res.Body), says) {
		t.Errorf("status %d, want %d saying %q\n%s", res.Status, status, says, res.Body)
	}
}

// TestQuotaSettingsForm: a federation admin changes the quota ratio and member A's
// explained quota follows; bad values are refused naming the field; everyone reads the
// settings, nobody else sees or may post the form.
func TestQuotaSettingsForm(t *testing.T) {
	t.Parallel()
	s := setupQuota(t)
	f := s.f
	if got := s.best(t); got != 1_000_000_000_000 {
		t.Fatalf("A's best before: %d, want 1 TB", got)
	}
	for _, a := range []*apptest.Actor{f.ViewerA, f.AdminA, f.AdminB} {
		page := string(s.get(a, "/quota").Body)
		if !strings.Contains(page, `id="quota-settings"`) || !strings.Contains(page, `id="setting-quota-ratio">1.0`) {
			t.Errorf("%s does not see the federation's settings:\n%s", a.Name, page)
		}
		if strings.Contains(page, `action="/quota/settings"`) || strings.Contains(page, `action="/quota/grants"`) {
			t.Errorf("%s is offered the federation admin's forms", a.Name)
		}
		refused(t, s.post(a, "/quota/settings", url.Values{"quota_ratio": {"2"}}), 403, "Only federation admins")
	}
	admin := string(s.get(f.FedAdmin, "/quota?member=member-a").Body)
	for _, want := range []string{`action="/quota/settings"`, `name="quota_ratio" inputmode="decimal" value="1.0"`,
		`name="key_grace_days" inputmode="decimal" value="7"`, `name="vault_delete_grace_days" inputmode="decimal" value="30"`} {
		if !strings.Contains(admin, want) {
			t.Errorf("the admin's page lacks %s", want)
		}
	}
	if got := bestShown(t, admin); got != "1 TB" {
		t.Errorf("page shows %q before, want 1 TB", got)
	}

	// Bad values: 400, the page again, the message names the field.
	for _, c := range []struct {
		form url.Values
		says string
	}{
		{url.Values{"quota_ratio": {"lots"}}, "Quota ratio must be a decimal number"},
		{url.Values{"quota_ratio": {"0"}}, "Quota ratio must be more than 0"},
		{url.Values{"overcommit": {"NaN"}}, "Overcommit must be a decimal number"},
		{url.Values{"overcommit": {"101"}}, "Overcommit must be more than 0 and at most 100"},
		{url.Values{"key_grace_days": {"a week"}}, "Key grace period must be a number of days"},
		{url.Values{"vault_delete_grace_days": {"400"}}, "Vault deletion grace period must be from 0 to 365 days"},
	} {
		c.form.Set("member", "member-a")
		res := s.post(f.FedAdmin, "/quota/settings", c.form)
		refused(t, res, 400, c.says)
		if !strings.Contains(string(res.Body), `id="quota-settings-form"`) {
			t.Errorf("%v: the refusal does not show the form again", c.form)
		}
	}
	if got := s.best(t); got != 1_000_000_000_000 {
		t.Fatalf("a refused form changed the quota: %d", got)
	}

	// Unchanged values change nothing (and write no audit entry).
	res := s.post(f.FedAdmin, "/quota/settings", url.Values{"member": {"member-a"}, "quota_ratio": {"1.0"}, "overcommit": {"1"},
		"key_grace_days": {"7"}, "vault_delete_grace_days": {"30"}})
	s.redirected(t, f.FedAdmin, res, "unchanged", "No setting changed.")

	res = s.post(f.FedAdmin, "/quota/settings", url.Values{"member": {"member-a"}, "quota_ratio": {"2"}, "overcommit": {"1.0"},
		"key_grace_days": {"3.5"}, "vault_delete_grace_days": {"30"}})
	page := s.redirected(t, f.FedAdmin, res, "settings", "quota settings were changed")
	if got := bestShown(t, page); got != "2 TB" {
		t.Errorf("page shows %q after ratio 2, want 2 TB", got)
	}
	if got := s.best(t); got != 2_000_000_000_000 {
		t.Errorf("A's best after ratio 2: %d, want 2 TB", got)
	}
	st, err := s.env.App.Vaults.SettingsGet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.QuotaRatio != 2 || st.Overcommit != 1 || st.KeyGrace != 84*time.Hour || st.VaultDeleteGrace != 30*24*time.Hour {
		t.Errorf("settings after the form: %+v", st)
	}
	// Member A's users read the new policy.
	if page := string(s.get(f.ViewerA, "/quota").Body); !strings.Contains(page, `id="setting-quota-ratio">2.0`) ||
		bestShown(t, page) != "2 TB" {
		t.Errorf("A's viewer does not see the new ratio:\n%s", page)
	}
	// The domain audited the change, with what changed only.
	var details string
	if err := s.env.App.Pool.QueryRow(context.Background(), `SELECT details::text FROM audit_entries
		WHERE action = 'federation.settings_update' ORDER BY seq DESC LIMIT 1`).Scan(&details); err != nil {
		t.Fatalf("no audit entry for the settings change: %v", err)
	}
	if !strings.Contains(details, `"quota_ratio"`) || !strings.Contains(details, `"key_grace_seconds"`) ||
		strings.Contains(details, `"overcommit"`) {
		t.Errorf("audit details %s, want quota_ratio and key_grace_seconds only", details)
	}
}

// TestQuotaGrantForms: a federation admin grants 500 GB to member A with a reason; the
// grant shows on A's page and raises A's quota; a grant without a reason or with a bad
// amount is refused naming the field; revoking removes it from the quota. A's admin never
// sees the forms and gets 403; B's admin sees nothing of A's grants.
func TestQuotaGrantForms(t *testing.T) {
	t.Parallel()
	s := setupQuota(t)
	f := s.f

	for _, c := range []struct {
		form url.Values
		says string
	}{
		{url.Values{"member": {"member-a"}, "amount": {"500"}, "unit": {"GB"}, "reason": {"  "}}, "Reason is required"},
		{url.Values{"member": {"member-a"}, "amount": {"-5"}, "unit": {"GB"}, "reason": {"x"}}, "Amount must be a positive number of GB"},
		{url.Values{"member": {"member-a"}, "amount": {"lots"}, "unit": {"TB"}, "reason": {"x"}}, "Amount must be a positive number of TB"},
		{url.Values{"member": {"member-a"}, "amount": {"5"}, "unit": {"PB"}, "reason": {"x"}}, "Unit must be GB or TB"},
		{url.Values{"member": {"member-a"}, "amount": {"5"}, "unit": {"GB"}, "reason": {"x"}, "expires": {"soon"}}, "Expiry date must be a date"},
		{url.Values{"member": {"member-a"}, "amount": {"5"}, "unit": {"GB"}, "reason": {"x"}, "expires": {"2001-01-01"}}, "Expiry date must be in the future"},
		{url.Values{"member": {"nobody"}, "amount": {"5"}, "unit": {"GB"}, "reason": {"x"}}, "Member must be one of"},
	} {
		res := s.post(f.FedAdmin, "/quota/grants", c.form)
		refused(t, res, 400, c.says)
		if !strings.Contains(string(res.Body), `id="quota-grant-form"`) {
			t.Errorf("%v: the refusal does not show the form again", c.form)
		}
	}
	// The form keeps what was typed.
	if res := s.post(f.FedAdmin, "/quota/grants", url.Values{"member": {"member-a"}, "amount": {"500"}, "unit": {"TB"}, "reason": {""}}); !strings.Contains(string(res.Body), `name="amount" required inputmode="decimal" value="500"`) ||
		!strings.Contains(string(res.Body), `<option value="TB" selected>`) {
		t.Errorf("the refused form lost the amount or unit:\n%s", res.Body)
	}
	for _, a := range []*apptest.Actor{f.ViewerA, f.AdminA, f.AdminB} {
		refused(t, s.post(a, "/quota/grants", url.Values{"member": {"member-a"}, "amount": {"500"}, "unit": {"GB"}, "reason": {"x"}}), 403, "Only federation admins")
	}
	if got := s.best(t); got != 1_000_000_000_000 {
		t.Fatalf("A's best before the grant: %d, want 1 TB", got)
	}

	expires := time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly)
	res := s.post(f.FedAdmin, "/quota/grants", url.Values{"member": {"member-a"}, "amount": {"500"}, "unit": {"GB"},
		"reason": {"migration from the old cluster"}, "expires": {expires}})
	page := s.redirected(t, f.FedAdmin, res, "granted", "The grant was recorded")
	if got := s.best(t); got != 1_500_000_000_000 {
		t.Errorf("A's best after the grant: %d, want 1.5 TB", got)
	}
	gs, err := s.env.App.Vaults.GrantList(context.Background(), f.MemberA.ID)
	if err != nil || len(gs) != 1 {
		t.Fatalf("grants of A: %v %v", gs, err)
	}
	g := gs[0]
	if g.Bytes != 500_000_000_000 || g.ExpiresAt == nil || g.ExpiresAt.UTC().Format(time.DateOnly) != expires || g.GrantedBy != "fed@federation.example" {
		t.Errorf("grant %+v", g)
	}
	row := fmt.Sprintf(`data-grant="%d"`, g.ID)
	revoke := fmt.Sprintf(`action="/quota/grants/%d/revoke"`, g.ID)
	if !strings.Contains(page, row) || !strings.Contains(page, revoke) || bestShown(t, page) != "1.5 TB" {
		t.Errorf("the admin's page lacks the grant, its revoke button or the new quota:\n%s", page)
	}
	// A's users see the grant, its reason and expiry, and no button.
	for _, a := range []*apptest.Actor{f.ViewerA, f.AdminA} {
		page := string(s.get(a, "/quota").Body)
		for _, want := range []string{row, "500 GB", "migration from the old cluster", expires, "by fed@federation.example", `id="quota-best">1.5 TB<`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s's quota page lacks %q", a.Name, want)
			}
		}
		if strings.Contains(page, revoke) || strings.Contains(page, `action="/quota/grants"`) || strings.Contains(page, `action="/quota/settings"`) {
			t.Errorf("%s is offered the federation admin's forms", a.Name)
		}
		refused(t, s.post(a, "/quota/grants/"+fmt.Sprint(g.ID)+"/revoke", url.Values{}), 403, "Only federation admins")
	}
	// B sees nothing of A's grants: A's page is not found, B's own page does not list it,
	// and revoking it is not found.
	if res := s.get(f.AdminB, "/quota?member=member-a"); res.Status != 404 || strings.Contains(string(res.Body), "migration from the old cluster") {
		t.Errorf("B reads A's quota page: %d", res.Status)
	}
	if page := string(s.get(f.AdminB, "/quota").Body); strings.Contains(page, row) || strings.Contains(page, "migration from the old cluster") {
		t.Errorf("B's quota page lists A's grant")
	}
	refused(t, s.post(f.AdminB, "/quota/grants/"+fmt.Sprint(g.ID)+"/revoke", url.Values{}), 404, "")
	refused(t, s.post(f.FedAdmin, "/quota/grants/999999/revoke", url.Values{}), 404, "")
	if got := s.best(t); got != 1_500_000_000_000 {
		t.Fatalf("a refused revoke changed A's quota: %d", got)
	}

	res = s.post(f.FedAdmin, "/quota/grants/"+fmt.Sprint(g.ID)+"/revoke", url.Values{"confirm": {"yes"}})
	page = s.redirected(t, f.FedAdmin, res, "revoked", "The grant was revoked")
	if got := s.best(t); got != 1_000_000_000_000 {
		t.Errorf("A's best after the revoke: %d, want 1 TB", got)
	}
	if bestShown(t, page) != "1 TB" || strings.Contains(page, revoke) || !strings.Contains(page, `<span class="state bad">revoked</span>`) {
		t.Errorf("after the revoke the page still counts or offers the grant:\n%s", page)
	}
	// Revoking twice is harmless.
	s.redirected(t, f.FedAdmin, s.post(f.FedAdmin, "/quota/grants/"+fmt.Sprint(g.ID)+"/revoke", url.Values{"confirm": {"yes"}}), "revoked", "The grant was revoked")

	// The domain audited the grant with its reason, and the revoke once.
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	var grants, revokes int
	var reason string
	if err := s.env.App.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'quota.grant'),
		count(*) FILTER (WHERE action = 'quota.grant_revoke'),
		coalesce(max(details->>'reason') FILTER (WHERE action = 'quota.grant'), '')
		FROM audit_entries WHERE target_type = 'quota_grant' AND target_id = $1`, fmt.Sprint(g.ID)).Scan(&grants, &revokes, &reason); err != nil {
		t.Fatal(err)
	}
	if grants != 1 || revokes != 1 || reason != "migration from the old cluster" {
		t.Errorf("audit: %d grant, %d revoke entries, reason %q", grants, revokes, reason)
	}
}
