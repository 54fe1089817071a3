package portal_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/browsertest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

// restoreWorld is a member's vault with rows inserted the way internal/verify's tests do
// (no Garage, no verifier key: passwords are accepted unchecked).
type restoreWorld struct {
	env      *apptest.Env
	islandID int64
	vaultID  int64
}

func newRestoreWorld(t *testing.T, env *apptest.Env, memberID int64) *restoreWorld {
	t.Helper()
	w := &restoreWorld{env: env}
	ctx := context.Background()
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', 'https://s3.north.example', 'garage', 1) RETURNING id`,
		testenv.Unique("north-")).Scan(&w.islandID); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
		status, placement) VALUES ($1, $2, $3, $3, $4, 1000000000, 'active', 'automatic') RETURNING id`,
		memberID, w.islandID, testenv.Unique("backups-"), strings.Repeat("ef", 32)).Scan(&w.vaultID); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *restoreWorld) repo(t *testing.T, memberID int64, name, password string) verify.Repository {
	t.Helper()
	ctx := audit.WithActor(context.Background(), audit.System("portal-test"))
	r, err := w.env.App.Verify.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: memberID, VaultID: w.vaultID, Name: name,
		Path: "restic/" + name, Password: password, FullModeConsent: verify.FullModeStatementVersion})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// run inserts a test of the repository that finished at `at` (a non-final status leaves it
// running with progress) and makes it the repository's last run when final.
func (w *restoreWorld) run(t *testing.T, r verify.Repository, status, reason string, at time.Time, durS, ageS, rtoS int64, rate float64) int64 {
	t.Helper()
	ctx := context.Background()
	final := verify.Run{Status: status}.Final()
	var id int64
	var finished any
	if final {
		finished = at
	}
	if err := w.env.App.Pool.QueryRow(ctx, `INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode,
		status, reason, queued_at, started_at, finished_at, duration_ms, snapshot_age_seconds, rto_estimate_seconds, throughput_bps,
		rpo_target_seconds, rto_target_seconds, progress, progress_at, log)
		VALUES ($1, $2, $3, 'schedule', $4, $5, $6, $7, $7, $8, NULLIF($9, 0), NULLIF($10, 0), NULLIF($11, 0), NULLIF($12, 0), 93600, 86400, $13, $7, $14) RETURNING id`,
		r.ID, r.MemberID, w.islandID, r.Mode, status, reason, at.Add(-time.Duration(durS)*time.Second), finished, int64(durS*1000),
		ageS, rtoS, rate, map[string]any{"level": "sample", "phase": "restoring", "percent": 42},
		"restic snapshots --json --no-lock\nrestic restore latest --verify --no-lock\nverified 20 files").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if final {
		for i, l := range verify.Levels {
			outcome := "passed"
			if l == verify.LevelFull {
				outcome = "skipped"
			}
			if status == verify.StatusFailed && l == verify.LevelCanary {
				outcome = "failed"
			}
			if _, err := w.env.App.Pool.Exec(ctx, `INSERT INTO restore_test_levels (run_id, level, position, outcome, summary,
				started_at, duration_ms, details) VALUES ($1, $2, $3, $4, $5, $6, 1200, '{}')`, id, l, i+1, outcome,
				l+" "+outcome, at); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.env.App.Pool.Exec(ctx, `UPDATE restic_repositories SET last_run_id = $2 WHERE id = $1`, r.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestRestorePortalForms: member A's admin registers a repository with the form, replaces
// and erases its password, runs a test now and removes it; its viewer reads but cannot
// change; member B sees nothing of it.
func TestRestorePortalForms(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newRestoreWorld(t, env, f.MemberA.ID)
	get := func(a *apptest.Actor, path string) *apptest.Response { return pageGet(env, a, path) }
	post := func(a *apptest.Actor, path string, form url.Values) *apptest.Response {
		return formPost(env, a, path, form)
	}
	page := get(f.AdminA, "/restore-tests")
	if page.Status != 200 || !strings.Contains(string(page.Body), "restic key add --user archipelago --host verifier") ||
		!strings.Contains(string(page.Body), `name="vault"`) {
		t.Fatalf("restore tests page: %d\n%s", page.Status, page.Body)
	}
	if v := get(f.ViewerA, "/restore-tests"); strings.Contains(string(v.Body), `action="/restore-tests/repositories"`) {
		t.Error("a viewer is offered the register form")
	}
	const secret = "a long password for archipelago"
	vault := fmt.Sprint(w.vaultID)
	// Bad input: the message names the field.
	for _, c := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"vault": {vault}, "name": {"web01"}, "path": {"../x"}, "mode": {"blind"}}, "Path"},
		{url.Values{"vault": {vault}, "name": {"web01"}, "path": {"restic/web01"}, "mode": {"full"}}, "Full mode needs the password"},
		{url.Values{"vault": {vault}, "name": {"web01"}, "path": {"restic/web01"}, "mode": {"full"}, "password": {"short"}}, "Password must be 8"},
		// Full mode without the consent box: refused, saying why.
		{url.Values{"vault": {vault}, "name": {"web01"}, "path": {"restic/web01"}, "mode": {"full"}, "password": {secret}}, "needs the member&#39;s consent"},
	} {
		r := post(f.AdminA, "/restore-tests/repositories", c.form)
		if r.Status != 400 || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("register %v: %d, want 400 saying %q", c.form, r.Status, c.want)
		}
	}
	if r := post(f.AdminB, "/restore-tests/repositories", url.Values{"vault": {vault}, "name": {"x"}, "path": {"x"}, "mode": {"blind"}}); r.Status != 400 {
		t.Errorf("B registers in A's vault: %d", r.Status)
	}
	r := post(f.AdminA, "/restore-tests/repositories", url.Values{"vault": {vault}, "name": {"web01"}, "path": {"restic/web01"},
		"mode": {"full"}, "password": {secret}, "full_mode_consent": {verify.FullModeStatementVersion}})
	loc := r.Header.Get("Location")
	if r.Status != 303 || !strings.HasPrefix(loc, "/restore-tests/repositories/") {
		t.Fatalf("register: %d %s", r.Status, loc)
	}
	repoPath := strings.SplitN(loc, "?", 2)[0]
	detail := get(f.AdminA, loc)
	body := string(detail.Body)
	if detail.Status != 200 || !strings.Contains(body, "archipelago-canary-") || !strings.Contains(body, "s3:https://s3.north.example/") ||
		!strings.Contains(body, `id="run-now"`) || strings.Contains(body, secret) || !strings.Contains(body, `id="full-consent"`) ||
		!strings.Contains(body, `id="evidence"`) || !strings.Contains(body, `id="mode-meaning"`) {
		t.Fatalf("detail: %d\n%s", detail.Status, body)
	}
	if v := get(f.ViewerA, repoPath); v.Status != 200 || strings.Contains(string(v.Body), `id="run-now"`) {
		t.Errorf("viewer detail: %d (run-now shown: %v)", v.Status, strings.Contains(string(v.Body), `id="run-now"`))
	}
	for _, p := range []string{repoPath, "/restore-tests"} {
		if b := get(f.AdminB, p); (p == repoPath && b.Status != 404) || strings.Contains(string(b.Body), "web01") {
			t.Errorf("B GET %s: %d", p, b.Status)
		}
	}
	for _, action := range []string{"/run", "/password", "/password/remove", "/policy", "/delete"} {
		form := url.Values{"password": {"a replacement password"}}
		if r := post(f.ViewerA, repoPath+action, form); r.Status != 403 {
			t.Errorf("viewer %s: %d", action, r.Status)
		}
		if r := post(f.AdminB, repoPath+action, form); r.Status != 404 {
			t.Errorf("B %s: %d", action, r.Status)
		}
	}
	// The policy form: bad values are refused naming the field, and kept in the form.
	for _, c := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"rpo_hours": {"a day"}}, "RPO target (hours) must be a number"},
		{url.Values{"rpo_hours": {"0"}}, "RPO target must be between 1 minute and 365 days"},
		{url.Values{"sample_files": {"2.5"}}, "Sample files must be a number"},
		{url.Values{"schedule": {"@every 1m"}}, "Schedule"},
		{url.Values{"target": {"both"}}, "Tested side"},
	} {
		r := post(f.AdminA, repoPath+"/policy", c.form)
		if b := string(r.Body); r.Status != 400 || !strings.Contains(b, c.want) {
			t.Errorf("policy %v: %d, want 400 saying %q", c.form, r.Status, c.want)
		}
	}
	if b := string(post(f.AdminA, repoPath+"/policy", url.Values{"rpo_hours": {"a day"}, "canary_path": {"kept.txt"}}).Body); !strings.Contains(b, `value="kept.txt"`) {
		t.Error("the policy form does not keep what was posted")
	}
	r = post(f.AdminA, repoPath+"/policy", url.Values{"schedule": {"0 4 * * *"}, "rpo_hours": {"36"}, "rto_minutes": {"90"}, "sample_files": {"7"},
		"full_restore_days": {"0"}, "canary_path": {"canary.txt"}, "target": {"copy"}})
	if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "done=policy") {
		t.Fatalf("save the policy: %d %s", r.Status, r.Header.Get("Location"))
	}
	saved, err := verify.RepositoryGetByID(context.Background(), env.App.Pool, lastID(t, repoPath))
	if err != nil {
		t.Fatal(err)
	}
	if e := saved.Effective; e.Schedule != "0 4 * * *" || e.RPOSeconds != 36*3600 || e.RTOSeconds != 90*60 || e.SampleFiles != 7 ||
		e.FullRestoreDays != nil || saved.Policy.FullRestoreDays == nil || *saved.Policy.FullRestoreDays != 0 || e.CanaryPath != "canary.txt" || saved.Paused || e.Target != verify.TargetCopy {
		t.Errorf("saved policy: %+v paused %v", e, saved.Paused)
	}
	if b := string(get(f.AdminA, repoPath+"?done=policy").Body); !strings.Contains(b, "The policy was saved") || !strings.Contains(b, `value="36"`) ||
		!strings.Contains(b, `<option value="copy" selected>`) || !strings.Contains(b, "protected copy on its second island") {
		t.Error("the page does not show the saved policy")
	}
	// Blank fields go back to the federation's defaults; pausing stops the schedule.
	if r := post(f.AdminA, repoPath+"/policy", url.Values{"paused": {"1"}}); r.Status != 303 {
		t.Fatalf("pause: %d", r.Status)
	}
	if saved, _ = verify.RepositoryGetByID(context.Background(), env.App.Pool, saved.ID); !saved.Paused || saved.Policy.RPOSeconds != nil || saved.Policy.Schedule != nil {
		t.Errorf("after blanking and pausing: paused %v, policy %+v", saved.Paused, saved.Policy)
	}
	if b := string(get(f.AdminA, repoPath).Body); !strings.Contains(b, "paused") {
		t.Error("the page does not say the tests are paused")
	}
	if r := post(f.AdminA, repoPath+"/policy", url.Values{}); r.Status != 303 {
		t.Fatalf("resume: %d", r.Status)
	}
	if r := post(f.AdminA, repoPath+"/password", url.Values{"password": {"short"}}); r.Status != 400 {
		t.Errorf("short password: %d", r.Status)
	}
	if r := post(f.AdminA, repoPath+"/password", url.Values{"password": {"a replacement password"}}); r.Status != 303 {
		t.Errorf("replace: %d", r.Status)
	}
	if r := post(f.AdminA, repoPath+"/password/remove", url.Values{"confirm": {"yes"}}); r.Status != 303 {
		t.Errorf("remove: %d", r.Status)
	}
	if b := string(get(f.AdminA, repoPath).Body); !strings.Contains(b, "Set the password (full mode)") {
		t.Error("after removing the password the page does not offer to set one")
	}
	// Run now: to the run's page, with a live progress bar that degrades to a refresh link.
	r = post(f.AdminA, repoPath+"/run", url.Values{})
	if r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/restore-tests/runs/") {
		t.Fatalf("run now: %d %s", r.Status, r.Header.Get("Location"))
	}
	runPage := get(f.ViewerA, r.Header.Get("Location"))
	if b := string(runPage.Body); runPage.Status != 200 || !strings.Contains(b, `data-progress-url="/v1/restore-tests/`) ||
		!strings.Contains(b, "data-progress-refresh") || !strings.Contains(b, "/static/restore.js") {
		t.Fatalf("run page: %d\n%s", runPage.Status, b)
	}
	if b := get(f.AdminB, r.Header.Get("Location")); b.Status != 404 {
		t.Errorf("B reads A's run: %d", b.Status)
	}
	if r := post(f.AdminA, repoPath+"/run", url.Values{}); r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "done=already") {
		t.Errorf("run now twice: %d %s", r.Status, r.Header.Get("Location"))
	}
	if r := post(f.AdminA, repoPath+"/delete", url.Values{"confirm": {"yes"}}); r.Status != 303 {
		t.Errorf("delete: %d", r.Status)
	}
	if r := get(f.AdminA, repoPath); r.Status != 404 {
		t.Errorf("deleted repository page: %d", r.Status)
	}
}

// TestRestorePagesInTheBrowser: the matrix shows green, amber and red repositories with
// snapshot age and RTO estimate; a repository's page draws its history charts (inline SVG)
// and shows a running test's progress bar, which restore.js keeps up to date under the CSP.
func TestRestorePagesInTheBrowser(t *testing.T) {
	env, f := apptest.Parallel(t)
	w := newRestoreWorld(t, env, f.MemberA.ID)
	now := time.Now()
	web := w.repo(t, f.MemberA.ID, "web01", "a long password for archipelago")
	for i := 20; i >= 1; i-- {
		status, reason := verify.StatusPassed, "every level passed"
		if i == 6 {
			status, reason = verify.StatusWarning, "the newest snapshot is 23 h old, close to the 26 h RPO target"
		}
		w.run(t, web, status, reason, now.Add(-time.Duration(i)*24*time.Hour), int64(60+i*7%40), int64(3600*(2+i%5)), int64(5400+i*60), float64(20e6+float64(i%4)*5e6))
	}
	mail := w.repo(t, f.MemberA.ID, "mail", "another long password here")
	w.run(t, mail, verify.StatusWarning, "a projected full restore would take 30 h, longer than the 24 h RTO target", now.Add(-3*time.Hour), 300, 20000, 108000, 9e6)
	db := w.repo(t, f.MemberA.ID, "db", "")
	// Two snapshots the tests saw, one gone since (the timeline shows both, the gone one apart).
	if _, err := env.App.Pool.Exec(context.Background(), `INSERT INTO restore_test_snapshots (repository_id, snapshot_id,
		snapshot_time, first_seen_at, gone_at) VALUES ($1, repeat('a', 64), now() - interval '3 days', now() - interval '3 days', now() - interval '1 day'),
		($1, repeat('b', 64), now() - interval '1 day', now() - interval '1 day', NULL)`, web.ID); err != nil {
		t.Fatal(err)
	}
	dbRun := w.run(t, db, verify.StatusFailed, "the canary file archipelago-canary.txt is missing from the newest snapshot", now.Add(-time.Hour), 90, 100000, 2000, 30e6)
	runningID := w.run(t, web, verify.StatusRunning, "", now, 0, 0, 0, 0)
	w.repo(t, f.MemberA.ID, "new-one", "")

	b := browserLogin(t, env, f.AdminA, "/restore-tests", "table.restore-matrix")
	for sel, want := range map[string]string{
		fmt.Sprintf(`li[data-repository="%d"]`, web.ID):  "passed",
		fmt.Sprintf(`li[data-repository="%d"]`, mail.ID): "warning",
		fmt.Sprintf(`li[data-repository="%d"]`, db.ID):   "failed",
	} {
		if got := browsertest.Text(t, b, sel); !strings.Contains(got, want) || !strings.Contains(got, "RTO estimate") {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	browsertest.Screenshot(t, b, "restore-tests-matrix")

	browsertest.Step(t, b, "repository page", chromedp.Navigate(fmt.Sprintf("%s/restore-tests/repositories/%d", env.URL, web.ID)),
		chromedp.WaitVisible(css("figure.chart svg")), chromedp.WaitVisible(css(".live-progress .bar")))
	charts, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg polyline").length`))
	if err != nil || charts != 3 {
		t.Fatalf("charts drawn: %d (%v)", charts, err)
	}
	dots, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg circle").length`))
	if dots != 60 {
		t.Errorf("chart points: %d, want 3 × 20", dots)
	}
	// The snapshot timeline: one tick per snapshot seen in the range, a gone one apart.
	ticks, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("figure.timeline rect.chart-tick").length`))
	gone, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("figure.timeline rect.chart-tick.bad").length`))
	if ticks != 2 || gone != 1 {
		t.Errorf("snapshot timeline: %d ticks, %d gone; want 2 and 1", ticks, gone)
	}
	// restore.js reads the progress (42 %) and, once the test ends, reloads the page.
	browsertest.Step(t, b, "progress shown", chromedp.Poll[chromedp.Void](`document.querySelector("[data-progress-text]").textContent.includes("42%")`,
		chromedp.WithPollingTimeout(browsertest.StepTimeout)))
	browsertest.Screenshot(t, b, "restore-repository")
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE restore_test_runs SET status = 'passed', reason = 'every level passed',
		finished_at = now(), progress_at = now() WHERE id = $1`, runningID); err != nil {
		t.Fatal(err)
	}
	// The reload detaches any running evaluation: ask again until the new page answers.
	reloaded := false
	for deadline := time.Now().Add(browsertest.StepTimeout); !reloaded && time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		gone, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.readyState === "complete" && document.querySelector(".live-progress") === null`))
		reloaded = err == nil && gone
	}
	if !reloaded {
		t.Fatal("the repository page did not reload when its test ended")
	}

	browsertest.Step(t, b, "run page", chromedp.Navigate(fmt.Sprintf("%s/restore-tests/runs/%d", env.URL, dbRun)),
		chromedp.WaitVisible(css("pre.restore-log")), chromedp.WaitVisible(css(`tr[data-level="canary"]`)))
	if got := browsertest.Text(t, b, `tr[data-level="canary"]`); !strings.Contains(got, "failed") {
		t.Errorf("canary level = %q", got)
	}
	if got := browsertest.Text(t, b, "pre.restore-log"); !strings.Contains(got, "verified 20 files") {
		t.Errorf("log = %q", got)
	}
	browsertest.Screenshot(t, b, "restore-run")

	// The range picker: 7 days draw only that week's tests (20 daily tests over 20 days).
	browsertest.Step(t, b, "repository page, 7 days", chromedp.Navigate(fmt.Sprintf("%s/restore-tests/repositories/%d?range=7d", env.URL, web.ID)),
		chromedp.WaitVisible(css(`.range-picker a.current[href^="?range=7d"]`)))
	week, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("figure.chart svg circle").length`))
	if week == 0 || week >= 60 || week%3 != 0 {
		t.Errorf("chart points over 7 days: %d, want 3 × (at most 8)", week)
	}
}

// lastID is the number ending a path such as /restore-tests/repositories/12.
func lastID(t *testing.T, p string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(p[strings.LastIndex(p, "/")+1:], 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return id
}
