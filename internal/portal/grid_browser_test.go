package portal_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/testenv"
)

// seedGrid gives the fixture's two members and 48 more ("grid-01"…) five repositories each
// on one island, with mixed last outcomes: a failed repository every 7th member, an error
// every 5th, a warning every 4th, a never tested one every 9th, a paused one every 11th, a
// running test, snapshots up to 31 h old (some older than the 26 h RPO).
func seedGrid(t *testing.T, env *apptest.Env) {
	t.Helper()
	island := testenv.Unique("grid-island-")
	if _, err := env.App.Pool.Exec(context.Background(), `
		INSERT INTO members (slug, name, contact_email)
			SELECT 'grid-' || lpad(g::text, 2, '0'), 'Grid member ' || lpad(g::text, 2, '0'), 'g' || g || '@grid.example'
			FROM generate_series(1, 48) g;
		INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region, replication_factor)
			VALUES ('`+island+`', 'http://127.0.0.1:1', 'x', 'https://s3.grid.example', 'garage', 1);
		INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes, status, placement)
			SELECT m.id, i.id, 'grid-vault', 'grid-b-' || m.id, encode(sha256(('grid-' || m.id)::bytea), 'hex'), 1000000000,
				'active', 'automatic'
			FROM members m, islands i WHERE i.name = '`+island+`';
		INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token, next_run_at)
			SELECT v.member_id, v.id, 'repo-' || j, 'restic/r' || j, 'blind', 'archipelago-canary-' ||
				substr(translate(encode(sha256(('c' || v.id || '-' || j)::bytea), 'hex'), '0189', 'wxyz'), 1, 26), now() + interval '1 day'
			FROM vaults v, generate_series(1, 5) j WHERE v.name = 'grid-vault';
		INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, reason, queued_at,
				started_at, finished_at, snapshot_time, snapshot_age_seconds, rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, v.island_id, 'schedule', 'blind', s.status,
				CASE s.status WHEN 'failed' THEN 'canary: the canary file archipelago-canary.txt is missing from the newest snapshot'
					WHEN 'error' THEN 'island: the island did not answer the verifier key; the test is retried'
					WHEN 'warning' THEN 'freshness: the newest snapshot is close to the RPO target' ELSE 'every level passed' END,
				now() - interval '13 hours', now() - interval '13 hours', now() - (k.k % 12 + 1) * interval '1 hour',
				now() - (k.k % 30 + 2) * interval '1 hour', 3600, 93600, 86400
			FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id
			JOIN (SELECT id, row_number() OVER (ORDER BY slug) k FROM members) k ON k.id = r.member_id
			CROSS JOIN LATERAL (SELECT CASE WHEN k.k % 7 = 0 AND r.name = 'repo-2' THEN 'failed'
				WHEN k.k % 5 = 1 AND r.name = 'repo-3' THEN 'error' WHEN k.k % 4 = 2 AND r.name = 'repo-1' THEN 'warning'
				ELSE 'passed' END AS status) s
			WHERE v.name = 'grid-vault' AND NOT (k.k % 9 = 3 AND r.name = 'repo-5');
		UPDATE restic_repositories r SET last_run_id = l.id
			FROM (SELECT repository_id, max(id) id FROM restore_test_runs GROUP BY 1) l WHERE l.repository_id = r.id;
		UPDATE restic_repositories r SET paused = true FROM (SELECT id, row_number() OVER (ORDER BY slug) k FROM members) k
			WHERE k.id = r.member_id AND k.k % 11 = 5 AND r.name = 'repo-4';
		INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, queued_at, started_at,
				rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', 'running', now(), now(), 93600, 86400
			FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id JOIN members m ON m.id = r.member_id
			WHERE m.slug = 'grid-10' AND r.name = 'repo-1'`); err != nil {
		t.Fatal(err)
	}
}

// gridSlugs reads the slugs of members, in the order of the SQL's ORDER BY.
func gridSlugs(t *testing.T, env *apptest.Env, sql string) []string {
	t.Helper()
	rows, err := env.App.Pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFederationGridInTheBrowser: a federation admin's restore-tests page holds 50 members ×
// 5 repositories on one 1400 × 900 screen: 250 cells, each naming its repository and outcome
// in text for screen readers (not colour alone); worst first by default; the column heads
// sort by name, the form filters by outcome and searches members, without JavaScript. At
// 400 px the page does not scroll sideways (the grid scrolls in its own box).
func TestFederationGridInTheBrowser(t *testing.T) {
	env, f := apptest.Parallel(t)
	seedGrid(t, env)
	b := browserLogin(t, env, f.FedAdmin, "/restore-tests", "table.fed-grid")
	browsertest.Step(t, b, "1400 × 900", chromedp.EmulateViewport(1400, 900), chromedp.Navigate(env.URL+"/restore-tests"),
		chromedp.WaitVisible(css("table.fed-grid")))
	browsertest.Screenshot(t, b, "federation-grid-1400")
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	rowsOf := func() []string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("table.fed-grid tbody tr")).map(r => r.dataset.member + "=" + r.dataset.worst).join(",")`))
		if err != nil {
			t.Fatal(err)
		}
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	if rows, cells := count("table.fed-grid tbody tr"), count("table.fed-grid a.gc"); rows != 50 || cells != 250 {
		t.Fatalf("the grid shows %d members and %d cells, want 50 and 250", rows, cells)
	}
	// One screen: with the grid scrolled to the top of the window, every cell (and the whole
	// table) is inside the 1400 × 900 viewport.
	box, err := chromedp.Run(b, chromedp.Evaluate[map[string]float64](`(() => {
		const table = document.querySelector("table.fed-grid");
		window.scrollTo(0, table.getBoundingClientRect().top + window.scrollY);
		let top = Infinity, left = Infinity, bottom = -Infinity, right = -Infinity;
		for (const c of document.querySelectorAll("table.fed-grid a.gc")) {
			const r = c.getBoundingClientRect();
			top = Math.min(top, r.top); left = Math.min(left, r.left); bottom = Math.max(bottom, r.bottom); right = Math.max(right, r.right);
		}
		const t = table.getBoundingClientRect();
		return {top, left, bottom, right, tableTop: t.top, tableBottom: t.bottom, tableRight: t.right, w: window.innerWidth, h: window.innerHeight};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if box["top"] < 0 || box["left"] < 0 || box["bottom"] > box["h"] || box["right"] > box["w"] ||
		box["tableTop"] < -1 || box["tableBottom"] > box["h"] || box["tableRight"] > box["w"] {
		t.Errorf("the grid does not fit one 1400 × 900 screen: %v", box)
	}
	browsertest.Screenshot(t, b, "federation-grid-1400-one-screen")

	// A cell names its repository and outcome for screen readers; the title adds the reason.
	failed := gridSlugs(t, env, `SELECT r.id::text FROM restic_repositories r WHERE r.last_status = 'failed' ORDER BY r.id LIMIT 1`)[0]
	errored := gridSlugs(t, env, `SELECT r.id::text FROM restic_repositories r WHERE r.last_status = 'error' ORDER BY r.id LIMIT 1`)[0]
	for id, want := range map[string]string{failed: "repo-2: failed, ", errored: "repo-3: error (could not judge), "} {
		sel := `table.fed-grid a.gc[href="/restore-tests/repositories/` + id + `"]`
		sr, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel+" .sr")+`).textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sr, want) || !strings.Contains(sr, " h ago") {
			t.Errorf("screen-reader text of repository %s: %q, want %q… h ago", id, sr, want)
		}
		title, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).title`))
		if err != nil || !strings.Contains(title, "h ago") || !(strings.Contains(title, "canary file") || strings.Contains(title, "did not answer")) {
			t.Errorf("title of repository %s: %q (%v)", id, title, err)
		}
	}
	// Error is styled apart from failed (not the member's fault): another colour and border.
	styles, err := chromedp.Run(b, chromedp.Evaluate[string](`["failed", "error"].map(s => {
		const c = getComputedStyle(document.querySelector("a.gc.gs-" + s)); return c.backgroundColor + " " + c.borderStyle; }).join(" | ")`))
	if parts := strings.Split(styles, " | "); err != nil || len(parts) != 2 || parts[0] == parts[1] {
		t.Errorf("failed and error cells look the same: %q (%v)", styles, err)
	}
	for _, state := range []string{"passed", "warning", "failed", "error", "running", "untested", "paused"} {
		if count(`table.fed-grid a.gc[data-state="`+state+`"]`) == 0 {
			t.Errorf("no %s cell", state)
		}
	}

	// Worst first by default.
	rank := map[string]int{"failed": 0, "error": 1, "warning": 2, "untested": 3, "passed": 4, "": 5}
	rows := rowsOf()
	for i := 1; i < len(rows); i++ {
		_, prev, _ := strings.Cut(rows[i-1], "=")
		_, cur, _ := strings.Cut(rows[i], "=")
		if rank[cur] < rank[prev] {
			t.Fatalf("not worst first at %d: %v", i, rows)
		}
	}
	if !strings.HasSuffix(rows[0], "=failed") {
		t.Errorf("first line %s, want a member with a failed repository", rows[0])
	}

	// The "Member" column head sorts by name.
	browsertest.Step(t, b, "sort by name", chromedp.Click(css(`table.fed-grid thead a[href*="sort=name"]`)),
		chromedp.WaitVisible(css(`table.fed-grid th[aria-sort][scope=col] a[href*="sort=name"]`)))
	var names []string
	for _, r := range rowsOf() {
		slug, _, _ := strings.Cut(r, "=")
		names = append(names, slug)
	}
	if want := gridSlugs(t, env, `SELECT slug FROM members ORDER BY name, id`); !slices.Equal(names, want) {
		t.Errorf("by name: %v, want %v", names, want)
	}
	browsertest.Screenshot(t, b, "federation-grid-by-name")

	// The form: only members with a failed or error repository (order kept: by name). Each
	// step waits for the "Show every member" link, which only a filtered page has.
	browsertest.Step(t, b, "filter failed or error", chromedp.SetValue(css("#gf-outcome"), "attention"),
		chromedp.Click(css(".fed-grid-filter button[type=submit]")), chromedp.WaitVisible(css(`.fed-grid-filter a[href="/restore-tests?sort=name"]`)))
	var needy []string
	for _, r := range rowsOf() {
		slug, worst, _ := strings.Cut(r, "=")
		if worst != "failed" && worst != "error" {
			t.Errorf("member %s (worst %q) shown among those with a failed or error repository", slug, worst)
		}
		needy = append(needy, slug)
	}
	want := gridSlugs(t, env, `SELECT m.slug FROM members m WHERE EXISTS (SELECT 1 FROM restic_repositories r
		WHERE r.member_id = m.id AND r.deleted_at IS NULL AND r.last_status IN ('failed', 'error')) ORDER BY m.name, m.id`)
	if len(want) == 0 || len(want) == 50 || !slices.Equal(needy, want) {
		t.Errorf("failed or error: %v, want %v", needy, want)
	}
	browsertest.Screenshot(t, b, "federation-grid-attention")

	// A search on the slug or the name.
	browsertest.Step(t, b, "search", chromedp.Navigate(env.URL+"/restore-tests"), chromedp.WaitVisible(css("#gf-q")),
		chromedp.SendKeys(css("#gf-q"), "Grid member 07"), chromedp.Click(css(".fed-grid-filter button[type=submit]")),
		chromedp.WaitVisible(css(`.fed-grid-filter a[href="/restore-tests"]`)))
	if got := rowsOf(); len(got) != 1 || !strings.HasPrefix(got[0], "grid-07=") {
		t.Errorf("search Grid member 07: %v", got)
	}
	if href, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("table.fed-grid tbody th a").getAttribute("href")`)); err != nil || href != "/members?q=grid-07#member-grid-07" {
		t.Errorf("the member's link: %q (%v)", href, err)
	}

	// 400 px: the page does not scroll sideways; the grid scrolls in its own box.
	browsertest.Step(t, b, "400 px", chromedp.EmulateViewport(400, 900), chromedp.Navigate(env.URL+"/restore-tests"),
		chromedp.WaitVisible(css("table.fed-grid")))
	browsertest.Screenshot(t, b, "federation-grid-400")
	over, err := chromedp.Run(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || over > 0 {
		t.Errorf("at 400 px the page is %d px wider than the screen (%v)", over, err)
	}
	wrap, err := chromedp.Run(b, chromedp.Evaluate[string](`(() => { const w = document.querySelector(".fed-grid-wrap"); const s = getComputedStyle(w);
		return s.overflowX + " " + (w.getBoundingClientRect().right <= window.innerWidth); })()`))
	if err != nil || wrap != "auto true" {
		t.Errorf("at 400 px the grid's box: %q (%v), want it scrolling inside the screen", wrap, err)
	}
	if n := count("table.fed-grid a.gc"); n != 250 {
		t.Errorf("at 400 px: %d cells", n)
	}
	// Usable: a line's name, worst outcome and cells are on the screen without scrolling the grid.
	right, err := chromedp.Run(b, chromedp.Evaluate[float64](`Math.max(...Array.from(document.querySelectorAll("table.fed-grid tbody tr:first-child a.gc")).map(c => c.getBoundingClientRect().right))`))
	if err != nil || right > 400 {
		t.Errorf("at 400 px the first line's cells end at %v px (%v), off the screen", right, err)
	}
}

// TestMembersSearch: the Members page finds a member among many by slug or name (?q=), and
// a member whose slug is the search comes first (the dashboard links to
// /members?q=<slug>#member-<slug>).
func TestMembersSearch(t *testing.T) {
	env, f := apptest.Parallel(t)
	seedGrid(t, env)
	if _, err := env.App.Pool.Exec(context.Background(), `INSERT INTO members (slug, name, contact_email)
		VALUES ('grid', 'The grid', 'grid@grid.example')`); err != nil {
		t.Fatal(err)
	}
	rowsOf := func(body string) []string {
		var out []string
		for _, part := range strings.Split(body, `data-member="`)[1:] {
			slug, _, _ := strings.Cut(part, `"`)
			out = append(out, slug)
		}
		return out
	}
	r := pageGet(env, f.FedAdmin, "/members?q=member+07")
	if got := rowsOf(string(r.Body)); r.Status != 200 || !slices.Equal(got, []string{"grid-07"}) || !strings.Contains(string(r.Body), `id="member-grid-07"`) ||
		!strings.Contains(string(r.Body), `value="member 07"`) {
		t.Errorf("search member 07: %d %v", r.Status, got)
	}
	r = pageGet(env, f.FedAdmin, "/members?q=grid")
	if got := rowsOf(string(r.Body)); len(got) != 49 || got[0] != "grid" {
		t.Errorf("search grid: %d members, first %v; want 49, the member whose slug is grid first", len(got), got)
	}
	if r := pageGet(env, f.FedAdmin, "/members?q=nobody-here"); !strings.Contains(string(r.Body), "No member") || len(rowsOf(string(r.Body))) != 0 {
		t.Errorf("search nobody-here: %v", rowsOf(string(r.Body)))
	}
	if r := pageGet(env, f.FedAdmin, "/members?q="+strings.Repeat("x", 201)); r.Status != 400 {
		t.Errorf("a 201-character search: %d", r.Status)
	}
	// The dashboard's member links land on the member.
	home := pageGet(env, f.FedAdmin, "/")
	if !strings.Contains(string(home.Body), `href="/members?q=grid-`) || strings.Contains(string(home.Body), `href="/members#member-`) {
		t.Errorf("the dashboard's member links do not search the member")
	}
	// Paged grid links keep their sort and filter; a bad one is refused, saying which.
	if r := pageGet(env, f.FedAdmin, "/restore-tests?sort=newest"); r.Status != 400 || !strings.Contains(string(r.Body), "Order") {
		t.Errorf("sort=newest: %d", r.Status)
	}
	if r := pageGet(env, f.FedAdmin, "/restore-tests?outcome=bad"); r.Status != 400 || !strings.Contains(string(r.Body), "Show") {
		t.Errorf("outcome=bad: %d", r.Status)
	}
	if r := pageGet(env, f.FedAdmin, fmt.Sprintf("/restore-tests?sort=oldest&outcome=failed&q=%s", "grid")); r.Status != 200 ||
		!strings.Contains(string(r.Body), `class="table-wrap fed-grid-wrap"`) {
		t.Errorf("sorted and filtered grid: %d", r.Status)
	}
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	return "`" + strings.NewReplacer("`", "\\`", `\`, `\\`, "${", "\\${").Replace(s) + "`"
}
