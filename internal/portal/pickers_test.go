package portal_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/apptest"
)

// TestLongChoiceListsBecomeTypedFields: a form's member or island choice is a select while
// the federation is small, and a typed field (a member's slug, an island's name) checked when
// the form is posted once it has more than 200: a page never renders the whole federation
// into a form. The Members page shows what its members operate and pledge.
func TestLongChoiceListsBecomeTypedFields(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	s := &peoplePortal{env: env, f: env.Fixture()}
	f := s.f
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := env.App.Pool.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	expect := func(what string, r *apptest.Response, status int, want ...string) string {
		t.Helper()
		body := string(r.Body)
		if r.Status != status {
			t.Fatalf("%s: status %d, want %d:\n%s", what, r.Status, status, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Fatalf("%s: no %q in\n%s", what, w, body)
			}
		}
		return body
	}

	expect("few members", s.get(f.FedAdmin, "/vaults"), 200, `<select id="vault-member" name="member">`, `<select id="vault-island"`)
	var firstIsland int64
	if err := env.App.Pool.QueryRow(t.Context(), `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint,
			s3_region, replication_factor, status)
		VALUES ('isle-000', 'http://127.0.0.1:9/0', 'placeholder', 'http://127.0.0.1:9', 'garage', 3, 'healthy') RETURNING id`).Scan(&firstIsland); err != nil {
		t.Fatal(err)
	}
	islandPage := "/islands/" + strconv.FormatInt(firstIsland, 10)
	expect("island, few members", s.get(f.FedAdmin, islandPage), 200, `<select id="op-member" name="member">`)

	// 250 more members and 210 islands; the first island is operated by member A, which
	// pledges one node on it.
	exec(`INSERT INTO members (slug, name) SELECT 'bulk-' || lpad(g::text, 3, '0'), 'Bulk ' || g FROM generate_series(1, 250) g`)
	exec(`INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region, replication_factor, status)
		SELECT 'isle-' || lpad(g::text, 3, '0'), 'http://127.0.0.1:9/' || g, 'placeholder', 'http://127.0.0.1:9', 'garage', 3, 'healthy'
		FROM generate_series(1, 210) g`)
	exec(`INSERT INTO island_operators (island_id, member_id) SELECT id, $1 FROM islands WHERE name = 'isle-001'`, f.MemberA.ID)
	exec(`INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes, status)
		SELECT $1, id, encode(sha256('node-a'::bytea), 'hex'), 'zone-a', 2000000000000, 'short' FROM islands WHERE name = 'isle-001'`, f.MemberA.ID)

	body := expect("many members", s.get(f.FedAdmin, "/vaults"), 200, `<input id="vault-member" name="member"`,
		`<input id="vault-island" name="island"`)
	if strings.Contains(body, "<option") && strings.Contains(body, "Bulk 2") || strings.Contains(body, ">isle-150<") {
		t.Fatalf("the vault form still lists every member or island:\n%s", body)
	}
	// An island's new operator: a typed slug, not every member (the page listed them all).
	body = expect("island, many members", s.get(f.FedAdmin, islandPage), 200, `<input id="op-member" name="member"`)
	if strings.Contains(body, "Bulk 2") {
		t.Fatalf("the island page still lists every member:\n%s", body)
	}
	expect("unknown operator slug", s.post(f.FedAdmin, islandPage+"/operators", url.Values{"member": {"no-such-member"}}), 400,
		"Member must be chosen from the list")
	if r := s.post(f.FedAdmin, islandPage+"/operators", url.Values{"member": {"bulk-240"}}); r.Status != 303 {
		t.Fatalf("typed operator: status %d:\n%s", r.Status, r.Body)
	}
	var operates bool
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM island_operators o JOIN members m ON m.id = o.member_id
		WHERE o.island_id = $1 AND m.slug = 'bulk-240')`, firstIsland).Scan(&operates); err != nil || !operates {
		t.Fatalf("bulk-240 does not operate island %d after the typed form (%v)", firstIsland, err)
	}
	// A member admin still chooses among their own members.
	expect("member admin", s.get(f.AdminA, "/vaults"), 200, `<select id="vault-member" name="member"><option value="member-a"`)
	// A typed slug or island name that names nothing is refused, saying so; nothing is created.
	expect("unknown slug", s.post(f.FedAdmin, "/vaults", url.Values{"member": {"no-such-member"}, "name": {"typed-vault"},
		"quota_gb": {"1"}}), 400, "Choose one of the members you administer.")
	expect("unknown island", s.post(f.FedAdmin, "/vaults", url.Values{"member": {"bulk-240"}, "name": {"typed-vault"},
		"quota_gb": {"1"}, "island": {"no-such-island"}}), 400, "No island is named")

	// The People page: a typed slug field, and a typed slug finds its member.
	expect("people picker", s.get(f.FedAdmin, "/people"), 200, `<input id="people-member" name="member"`)
	expect("people by slug", s.get(f.FedAdmin, "/people?member=bulk-240"), 200, "People of Bulk 240", `value="bulk-240"`)
	expect("quota picker", s.get(f.FedAdmin, "/quota?member=bulk-240"), 200, `<input id="quota-member" name="member"`)

	// The Members page shows member A's island and pledge (read for the page's members only).
	body = expect("members page", s.get(f.FedAdmin, "/members"), 200, `data-member="member-a"`)
	row := body[strings.Index(body, `data-member="member-a"`):]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{"isle-001", "2 TB", "(1 pledge)", `<span class="state warn">1</span>`} {
		if !strings.Contains(row, want) {
			t.Fatalf("member A's row has no %q:\n%s", want, row)
		}
	}
}
