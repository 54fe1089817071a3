package portal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/verify"
)

// finishedRun inserts a finished test of r whose newest snapshot was taken at snap (nil: the
// test could not read the snapshots) with the age it had then frozen at frozenAge seconds,
// and makes it the repository's last run.
func finishedRun(t *testing.T, env *apptest.Env, r verify.Repository, islandID int64, status, reason string, at time.Time, snap *time.Time, frozenAge int64) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode,
		status, reason, queued_at, started_at, finished_at, duration_ms, snapshot_time, snapshot_age_seconds, rpo_target_seconds,
		rto_target_seconds) VALUES ($1, $2, $3, 'schedule', $4, $5, $6, $7, $7, $7, 1000, $8, $9, 93600, 86400) RETURNING id`,
		r.ID, r.MemberID, islandID, r.Mode, status, reason, at, snap, frozenAge).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Pool.Exec(ctx, `UPDATE restic_repositories SET last_run_id = $2 WHERE id = $1`, r.ID, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// dashboardWorld: member A has two islands' worth of vaults (one island degraded, one
// healthy; one vault 87 % full) and three repositories (failed with a snapshot three days
// old, passed with one five hours old, an error whose snapshots only an earlier test saw);
// member B one passing repository.
type dashboardWorld struct {
	repoA1, repoA2, repoA3, repoB verify.Repository
}

func newDashboardWorld(t *testing.T, env *apptest.Env, f *apptest.Fixture) dashboardWorld {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	wa1 := newRestoreWorld(t, env, f.MemberA.ID)
	wa2 := newRestoreWorld(t, env, f.MemberA.ID)
	wb := newRestoreWorld(t, env, f.MemberB.ID)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE islands SET status = 'degraded' WHERE id = $1`, []any{wa1.islandID}},
		{`UPDATE islands SET status = 'healthy' WHERE id = ANY($1)`, []any{[]int64{wa2.islandID, wb.islandID}}},
		{`UPDATE vaults SET usage_bytes = 870000000, usage_objects = 10, usage_at = now() WHERE id = $1`, []any{wa1.vaultID}},
		{`UPDATE vaults SET usage_bytes = 120000000, usage_objects = 10, usage_at = now() WHERE id = ANY($1)`, []any{[]int64{wa2.vaultID, wb.vaultID}}},
	} {
		if _, err := env.App.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	var w dashboardWorld
	w.repoA1 = wa1.repo(t, f.MemberA.ID, "mail-server", "pw-a1-"+t.Name())
	w.repoA2 = wa2.repo(t, f.MemberA.ID, "web-server", "pw-a2-"+t.Name())
	w.repoA3 = wa2.repo(t, f.MemberA.ID, "wiki-server", "pw-a3-"+t.Name())
	w.repoB = wb.repo(t, f.MemberB.ID, "b-files", "pw-b-"+t.Name())
	// The ages frozen at test time (12 s) must never be what is shown: the age is now's.
	finishedRun(t, env, w.repoA1, wa1.islandID, verify.StatusFailed, "the canary file was not found", now.Add(-2*time.Hour), ago(72*time.Hour), 12)
	finishedRun(t, env, w.repoA2, wa2.islandID, verify.StatusPassed, "", now.Add(-4*time.Hour), ago(5*time.Hour+10*time.Minute), 12)
	finishedRun(t, env, w.repoA3, wa2.islandID, verify.StatusPassed, "", now.Add(-30*time.Hour), ago(31*time.Hour+30*time.Minute), 12)
	finishedRun(t, env, w.repoA3, wa2.islandID, verify.StatusError, "the island did not answer", now.Add(-1*time.Hour), nil, 0)
	finishedRun(t, env, w.repoB, wb.islandID, verify.StatusPassed, "", now.Add(-3*time.Hour), ago(7*time.Hour+5*time.Minute), 12)
	return w
}

// dashboardRow reads the cells of the dashboard line of a repository or vault inside scope.
func dashboardRow(t *testing.T, ctx context.Context, scope, attr, name string) map[string]string {
	t.Helper()
	sel := scope + ` tr[` + attr + `="` + name + `"]`
	row := map[string]string{}
	for _, c := range []string{"m-restorable", "m-snapshot", "m-quota", "m-island"} {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('`+sel+` td.`+c+`').length`))
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			row[c] = browsertest.Text(t, ctx, sel+" td."+c)
		}
	}
	if len(row) == 0 {
		t.Fatalf("no dashboard line %s", sel)
	}
	return row
}

// dashboardOrder lists the names of the lines of a dashboard table, top to bottom.
func dashboardOrder(t *testing.T, ctx context.Context, sel, attr string) []string {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('`+sel+`')).map(e => e.getAttribute('`+attr+`'))`))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDashboardAnswersTheFourMorningQuestions: a member admin, a viewer and a federation
// admin each see, on the dashboard, for every repository and vault: whether it is
// restorable (the last outcome, when), the newest snapshot's age now (not the age frozen
// when the test ran), the share of the quota used and the island's health — worst first,
// every line a link.
func TestDashboardAnswersTheFourMorningQuestions(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newDashboardWorld(t, env, f)
	ctx := browsertest.New(t)

	for _, who := range []*apptest.Actor{f.AdminA, f.ViewerA} {
		browsertest.Step(t, ctx, "log in as "+who.Name, chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(css("#email")),
			chromedp.SendKeys(css("#email"), who.Email), chromedp.SendKeys(css("#password"), who.Password),
			chromedp.Click(css("button[type=submit]")), chromedp.WaitVisible(css(`article[data-member="member-a"]`)))
		card := `article[data-member="member-a"]`
		if got := dashboardOrder(t, ctx, card+" tr[data-repository]", "data-repository"); strings.Join(got, ",") != "mail-server,wiki-server,web-server" {
			t.Fatalf("%s: repositories not worst first: %v", who.Name, got)
		}
		want := map[string][4]string{
			"mail-server": {"failed", "3 d old", "87% of 1 GB", "degraded"},
			"wiki-server": {"could not judge", "31 h old", "12% of 1 GB", "healthy"},
			"web-server":  {"restorable", "5 h old", "12% of 1 GB", "healthy"},
		}
		for name, cells := range want {
			row := dashboardRow(t, ctx, card, "data-repository", name)
			for i, c := range []string{"m-restorable", "m-snapshot", "m-quota", "m-island"} {
				if !strings.Contains(row[c], cells[i]) {
					t.Errorf("%s: %s %s = %q, want it to say %q", who.Name, name, c, row[c], cells[i])
				}
			}
			if strings.Contains(row["m-snapshot"], "12 s") {
				t.Errorf("%s: %s shows the age frozen at test time: %q", who.Name, name, row["m-snapshot"])
			}
		}
		if row := dashboardRow(t, ctx, card, "data-repository", "mail-server"); !strings.Contains(row["m-snapshot"], "older than the RPO") ||
			!strings.Contains(row["m-restorable"], "2 h ago") {
			t.Errorf("%s: mail-server %v", who.Name, row)
		}
		// The failing line links to its repository, its last test, its vault and its island.
		links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('`+card+
			` tr[data-repository="mail-server"] a')).map(a => a.getAttribute('href'))`))
		if err != nil || len(links) < 4 || !strings.HasPrefix(links[0], "/restore-tests/repositories/") ||
			!strings.HasPrefix(links[1], "/restore-tests/runs/") || !strings.HasPrefix(links[2], "/vaults/") || !strings.HasPrefix(links[3], "/islands/") {
			t.Errorf("%s: mail-server links %v (%v)", who.Name, links, err)
		}
		vaults := dashboardOrder(t, ctx, card+" tr[data-vault]", "data-vault")
		if len(vaults) != 2 {
			t.Fatalf("%s: vaults %v", who.Name, vaults)
		}
		for i, v := range vaults {
			row := dashboardRow(t, ctx, card, "data-vault", v)
			wantQuota, wantIsland := "12%", "healthy"
			if i == 0 { // the degraded island's 87 % full vault comes first
				wantQuota, wantIsland = "87%", "degraded"
			}
			if !strings.Contains(row["m-quota"], wantQuota) || !strings.Contains(row["m-island"], wantIsland) {
				t.Errorf("%s: vault %s %v, want %s and %s", who.Name, v, row, wantQuota, wantIsland)
			}
		}
		if strings.Contains(browsertest.Text(t, ctx, "main"), "b-files") {
			t.Fatalf("%s sees member B's repository", who.Name)
		}
		browsertest.Screenshot(t, ctx, "dashboard-"+who.Name)
		browsertest.Step(t, ctx, "log out", chromedp.Click(css(".who button")), chromedp.WaitVisible(css("#email")))
	}

	browsertest.Step(t, ctx, "log in as the federation admin", chromedp.SendKeys(css("#email"), f.FedAdmin.Email),
		chromedp.SendKeys(css("#password"), f.FedAdmin.Password), chromedp.Click(css("button[type=submit]")),
		chromedp.WaitVisible(css("article.home-federation")))
	fed := "article.home-federation"
	got := dashboardOrder(t, ctx, fed+" tr[data-repository]", "data-repository")
	if len(got) < 4 || got[0] != "mail-server" || got[1] != "wiki-server" {
		t.Fatalf("federation: repositories not worst first: %v", got)
	}
	for name, cells := range map[string][4]string{
		"mail-server": {"failed", "3 d old", "87%", "degraded"},
		"web-server":  {"restorable", "5 h old", "12%", "healthy"},
		"b-files":     {"restorable", "7 h old", "12%", "healthy"},
	} {
		row := dashboardRow(t, ctx, fed, "data-repository", name)
		for i, c := range []string{"m-restorable", "m-snapshot", "m-quota", "m-island"} {
			if !strings.Contains(row[c], cells[i]) {
				t.Errorf("federation: %s %s = %q, want %q", name, c, row[c], cells[i])
			}
		}
	}
	if n := len(dashboardOrder(t, ctx, fed+" tr[data-vault]", "data-vault")); n < 3 {
		t.Errorf("federation: %d vaults", n)
	}
	for _, v := range dashboardOrder(t, ctx, fed+" tr[data-vault]", "data-vault") {
		row := dashboardRow(t, ctx, fed, "data-vault", v)
		if !strings.Contains(row["m-quota"], "% of") || !strings.Contains(row["m-island"], "health") && !strings.Contains(row["m-island"], "degraded") {
			t.Errorf("federation: vault %s %v", v, row)
		}
	}
	browsertest.Screenshot(t, ctx, "dashboard-federation-admin")
	_ = w
}
