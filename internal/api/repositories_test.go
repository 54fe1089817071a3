package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

// restoreVault inserts an island and an active vault of the member, the way
// internal/verify's tests do (no Garage, no verifier key: a password is then accepted
// unchecked, and the first test would tell).
func restoreVault(t *testing.T, env *apptest.Env, memberID int64) int64 {
	t.Helper()
	ctx := context.Background()
	var islandID, vaultID int64
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', 'https://s3.island.example', 'garage', 1) RETURNING id`,
		testenv.Unique("island-")).Scan(&islandID); err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Unique("vault-")
	if err := env.App.Pool.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
		status, placement) VALUES ($1, $2, $3, $3, $4, 1099511627776, 'active', 'automatic') RETURNING id`,
		memberID, islandID, bucket, strings.Repeat("ab", 32)).Scan(&vaultID); err != nil {
		t.Fatal(err)
	}
	return vaultID
}

type repoOut struct {
	ID          int64  `json:"id"`
	MemberID    int64  `json:"member_id"`
	Name        string `json:"name"`
	Mode        string `json:"mode"`
	HasPassword bool   `json:"has_password"`
	CanaryToken string `json:"canary_token"`
	Paused      bool   `json:"paused"`
	Policy      struct {
		Schedule   *string `json:"schedule"`
		RPOSeconds *int64  `json:"rpo_seconds"`
	} `json:"policy"`
	Effective struct {
		Schedule string `json:"schedule"`
	} `json:"effective_policy"`
}

type runOut struct {
	ID           int64  `json:"id"`
	RepositoryID int64  `json:"repository_id"`
	Status       string `json:"status"`
	Trigger      string `json:"trigger"`
	RequestedBy  string `json:"requested_by"`
}

// TestRepositoryLifecycle: member A's admin registers a repository in full mode, reads,
// lists, updates its policy, replaces and removes its password, runs a test and deletes
// it; the password never appears in an answer or the audit log; bad input names the field.
func TestRepositoryLifecycle(t *testing.T) {
	env, f := apptest.Parallel(t)
	vaultA := restoreVault(t, env, f.MemberA.ID)
	const secret = "correct horse battery staple 42"
	const secret2 = "another long restic key password"

	admin := func(method, path string, body any) *apptest.Response {
		return env.Do(apptest.Req{Method: method, Path: path, Token: f.AdminA.Access, Body: body})
	}
	// Bad input names the field.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "web01", "path": "restic/web01"}, "vault_id"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "../etc"}, "path"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "/restic//x/"}, "path"},
		{map[string]any{"vault_id": vaultA, "name": "", "path": "restic/web01"}, "name"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "password": "short"}, "password"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "mode": "full"}, "password"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "mode": "blind", "password": secret}, "password"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "mode": "sideways"}, "mode"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "mode": "attested", "password": secret}, "password"},
		// Full mode needs the consent to what a restic key implies, quoting the statement.
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "password": secret}, "full_mode_consent"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "mode": "full", "password": secret, "full_mode_consent": "yes"}, "full_mode_consent"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"schedule": "every day"}}, "policy.schedule"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"schedule": "@every 1x"}}, "policy.schedule"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"window_start_minute": 1440}}, "policy.window_start_minute"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"sample_bytes": -1}}, "policy.sample_bytes"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"full_restore_days": -1}}, "policy.full_restore_days"},
		{map[string]any{"vault_id": vaultA, "name": "web01", "path": "restic/web01", "policy": map[string]any{"rpo": 5}}, "rpo"},
	} {
		res := env.Do(apptest.Req{Method: "POST", Path: "/v1/repositories", Token: f.AdminA.Access, Body: c.body, NoValidate: true})
		if res.Status != 400 || res.ErrorField() != c.field {
			t.Errorf("create %v: %d field %q, want 400 naming %s (%s)", c.body, res.Status, res.ErrorField(), c.field, res.Body)
		}
	}

	// Create (full mode: a password means full).
	res := admin("POST", "/v1/repositories", map[string]any{"vault_id": vaultA, "name": "web01", "path": "/restic/web01/",
		"password": secret, "full_mode_consent": verify.FullModeStatementVersion, "policy": map[string]any{"schedule": "0 3 * * *", "rpo_seconds": 7200}})
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var repo repoOut
	res.Decode(t, &repo)
	if repo.Mode != "full" || !repo.HasPassword || !strings.HasPrefix(repo.CanaryToken, "archipelago-canary-") || repo.Effective.Schedule != "0 3 * * *" {
		t.Fatalf("created: %s", res.Body)
	}
	id := fmt.Sprint(repo.ID)
	if strings.Contains(string(res.Body), secret) {
		t.Fatal("the password is in the answer")
	}
	// The consent is recorded (who, when, which statement) and audited with the creation.
	var consent struct {
		FullConsent *struct {
			By string `json:"by"`
		} `json:"full_consent"`
	}
	res.Decode(t, &consent)
	var consentBy, consentVersion string
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT full_consent_by, full_consent_version FROM restic_repositories
		WHERE id = $1 AND full_consent_at IS NOT NULL`, repo.ID).Scan(&consentBy, &consentVersion); err != nil ||
		consentVersion != verify.FullModeStatementVersion || consentBy == "" || consent.FullConsent == nil {
		t.Fatalf("consent not recorded: %q %q %v %s", consentBy, consentVersion, err, res.Body)
	}
	var audited int
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_entries WHERE action = 'repository.create'
		AND target_id = $1 AND details->>'full_mode_consent' = $2`, id, verify.FullModeStatementVersion).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("consent not audited: %d %v", audited, err)
	}
	// Same name again: 409 naming name; same path: 409 naming path (a duplicate is a conflict everywhere).
	if r := admin("POST", "/v1/repositories", map[string]any{"vault_id": vaultA, "name": "WEB01", "path": "restic/other"}); r.Status != 409 || r.ErrorField() != "name" {
		t.Errorf("duplicate name: %d %s", r.Status, r.Body)
	}
	if r := admin("POST", "/v1/repositories", map[string]any{"vault_id": vaultA, "name": "other", "path": "restic/web01"}); r.Status != 409 || r.ErrorField() != "path" {
		t.Errorf("duplicate path: %d %s", r.Status, r.Body)
	}

	// Read and list: A's viewer sees it; B sees nothing of it.
	if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/repositories/" + id, Token: f.ViewerA.Access}); r.Status != 200 || strings.Contains(string(r.Body), secret) {
		t.Fatalf("viewer get: %d %s", r.Status, r.Body)
	}
	var list struct{ Repositories []repoOut }
	env.Do(apptest.Req{Method: "GET", Path: "/v1/repositories?member=member-a", Token: f.ViewerA.Access}).Decode(t, &list)
	if len(list.Repositories) != 1 || list.Repositories[0].ID != repo.ID {
		t.Fatalf("list A: %+v", list)
	}
	env.Do(apptest.Req{Method: "GET", Path: "/v1/repositories", Token: f.AdminB.Access}).Decode(t, &list)
	if len(list.Repositories) != 0 {
		t.Fatalf("B lists A's repositories: %+v", list)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/v1/repositories/" + id}, {"PATCH", "/v1/repositories/" + id},
		{"PUT", "/v1/repositories/" + id + "/password"}, {"DELETE", "/v1/repositories/" + id + "/password"},
		{"POST", "/v1/repositories/" + id + "/tests"}, {"DELETE", "/v1/repositories/" + id}, {"GET", "/v1/repositories?member=member-a"}} {
		var body any
		if c.method == "PATCH" || c.method == "PUT" {
			body = map[string]any{"password": secret2}
			if c.method == "PATCH" {
				body = map[string]any{"paused": true}
			}
		}
		if r := env.Do(apptest.Req{Method: c.method, Path: c.path, Token: f.AdminB.Access, Body: body}); r.Status != 404 {
			t.Errorf("B %s %s: %d, want 404", c.method, c.path, r.Status)
		}
		if c.method != "GET" {
			if r := env.Do(apptest.Req{Method: c.method, Path: c.path, Token: f.ViewerA.Access, Body: body}); r.Status != 403 {
				t.Errorf("viewer A %s %s: %d, want 403", c.method, c.path, r.Status)
			}
		}
	}
	// B cannot register a repository in A's vault (404 naming vault_id); A's viewer gets 403.
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/repositories", Token: f.AdminB.Access, Body: map[string]any{"vault_id": vaultA, "name": "x", "path": "x"}}); r.Status != 404 || r.ErrorField() != "vault_id" {
		t.Errorf("B create in A's vault: %d %s", r.Status, r.Body)
	}
	if r := env.Do(apptest.Req{Method: "POST", Path: "/v1/repositories", Token: f.ViewerA.Access, Body: map[string]any{"vault_id": vaultA, "name": "x", "path": "x"}}); r.Status != 403 {
		t.Errorf("viewer create: %d %s", r.Status, r.Body)
	}

	// Update: pause and rename keep the policy; a new policy replaces it.
	r := admin("PATCH", "/v1/repositories/"+id, map[string]any{"paused": true, "name": "web01-main"})
	var upd repoOut
	r.Decode(t, &upd)
	if r.Status != 200 || !upd.Paused || upd.Name != "web01-main" || upd.Policy.Schedule == nil || *upd.Policy.Schedule != "0 3 * * *" {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	r = admin("PATCH", "/v1/repositories/"+id, map[string]any{"policy": map[string]any{"schedule": "@every 12h"}})
	r.Decode(t, &upd)
	if r.Status != 200 || *upd.Policy.Schedule != "@every 12h" || upd.Policy.RPOSeconds != nil {
		t.Fatalf("policy: %d %s", r.Status, r.Body)
	}
	if r := admin("PATCH", "/v1/repositories/"+id, map[string]any{"policy": map[string]any{"window_minutes": 2000}}); r.Status != 400 || r.ErrorField() != "policy.window_minutes" {
		t.Errorf("bad window: %d %s", r.Status, r.Body)
	}

	// Password: replace, then remove (blind), then remove again (409), then set again (full).
	if r := admin("PUT", "/v1/repositories/"+id+"/password", map[string]any{"password": "short"}); r.Status != 400 || r.ErrorField() != "password" {
		t.Errorf("short password: %d %s", r.Status, r.Body)
	}
	if r := admin("PUT", "/v1/repositories/"+id+"/password", map[string]any{"password": secret2}); r.Status != 200 || strings.Contains(string(r.Body), secret2) {
		t.Fatalf("replace: %d %s", r.Status, r.Body)
	}
	r = admin("DELETE", "/v1/repositories/"+id+"/password", nil)
	r.Decode(t, &upd)
	if r.Status != 200 || upd.Mode != "blind" || upd.HasPassword {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if r := admin("DELETE", "/v1/repositories/"+id+"/password", nil); r.Status != 409 {
		t.Errorf("remove twice: %d %s", r.Status, r.Body)
	}
	// Back to full mode: the consent is asked again.
	if r := admin("PUT", "/v1/repositories/"+id+"/password", map[string]any{"password": secret}); r.Status != 400 || r.ErrorField() != "full_mode_consent" {
		t.Fatalf("set without consent: %d %s", r.Status, r.Body)
	}
	if r := admin("PUT", "/v1/repositories/"+id+"/password", map[string]any{"password": secret, "full_mode_consent": verify.FullModeStatementVersion}); r.Status != 200 {
		t.Fatalf("set: %d %s", r.Status, r.Body)
	}

	// Modes: full → attested erases the password (audited); full is not entered this way.
	if r := admin("PUT", "/v1/repositories/"+id+"/mode", map[string]any{"mode": "full"}); r.Status != 400 || r.ErrorField() != "mode" {
		t.Errorf("mode full without password: %d %s", r.Status, r.Body)
	}
	r = admin("PUT", "/v1/repositories/"+id+"/mode", map[string]any{"mode": "attested"})
	r.Decode(t, &upd)
	if r.Status != 200 || upd.Mode != "attested" || upd.HasPassword {
		t.Fatalf("mode attested: %d %s", r.Status, r.Body)
	}
	var sealed *string
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT password_sealed FROM restic_repositories WHERE id = $1`, repo.ID).Scan(&sealed); err != nil || sealed != nil {
		t.Fatalf("password kept after leaving full mode: %v", err)
	}
	if err := env.App.Pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_entries WHERE action = 'repository.mode_change'
		AND target_id = $1 AND details->>'password_erased' = 'true' AND details->>'to' = 'attested'`, id).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("mode change not audited: %d %v", audited, err)
	}
	// Evidence: the mode, what it means, and (no test yet) no evidence.
	var ev struct {
		Mode     string `json:"mode"`
		Evidence []any  `json:"evidence"`
	}
	if r := admin("GET", "/v1/repositories/"+id+"/evidence", nil); r.Status != 200 {
		t.Fatalf("evidence: %d %s", r.Status, r.Body)
	} else if r.Decode(t, &ev); ev.Mode != "attested" || ev.Evidence == nil {
		t.Fatalf("evidence: %s", r.Body)
	}
	if r := admin("GET", "/v1/full-mode-statement", nil); r.Status != 200 || !strings.Contains(string(r.Body), "cat masterkey") {
		t.Fatalf("statement: %d %s", r.Status, r.Body)
	}
	// A repository registered without mode or password is blind.
	r = admin("POST", "/v1/repositories", map[string]any{"vault_id": vaultA, "name": "dflt", "path": "restic/dflt"})
	r.Decode(t, &upd)
	if r.Status != 201 || upd.Mode != "blind" || upd.HasPassword {
		t.Fatalf("default mode: %d %s", r.Status, r.Body)
	}

	// Run now: 202 queues a test; asking again returns it (200). No worker runs here.
	r = admin("POST", "/v1/repositories/"+id+"/tests", nil)
	var run runOut
	r.Decode(t, &run)
	if r.Status != 202 || run.Status != "queued" || run.Trigger != "manual" || run.RepositoryID != repo.ID || r.Header.Get("Location") == "" {
		t.Fatalf("run now: %d %s", r.Status, r.Body)
	}
	var again runOut
	r = admin("POST", "/v1/repositories/"+id+"/tests", nil)
	r.Decode(t, &again)
	if r.Status != 200 || again.ID != run.ID {
		t.Fatalf("run now again: %d %s", r.Status, r.Body)
	}
	rid := fmt.Sprint(run.ID)
	// The test, its progress and log: A's viewer reads them; B gets 404.
	for _, p := range []string{"/v1/restore-tests/" + rid, "/v1/restore-tests/" + rid + "/progress", "/v1/restore-tests/" + rid + "/log"} {
		if r := env.Do(apptest.Req{Method: "GET", Path: p, Token: f.ViewerA.Access}); r.Status != 200 {
			t.Errorf("viewer %s: %d %s", p, r.Status, r.Body)
		}
		if r := env.Do(apptest.Req{Method: "GET", Path: p, Token: f.AdminB.Access}); r.Status != 404 {
			t.Errorf("B %s: %d", p, r.Status)
		}
	}
	// The live level log says a finished level's summary in the caller's language (said),
	// the stored summary staying English: the portal's page shows it before reloading.
	if _, err := env.App.Pool.Exec(t.Context(), `UPDATE restore_test_runs SET progress = $2 WHERE id = $1`, run.ID,
		`{"levels_done":[{"level":"freshness","outcome":"passed","summary":"first look: 12345 snapshots recorded","duration_ms":12}]}`); err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string]string{"fr": "premier regard\u202f: 12\u202f345 instantanés relevés", "en": "first look: 12345 snapshots recorded"} {
		var pr struct {
			Progress struct {
				LevelsDone []struct{ Summary, Said string } `json:"levels_done"`
			}
		}
		r := env.Do(apptest.Req{Method: "GET", Path: "/v1/restore-tests/" + rid + "/progress", Token: f.ViewerA.Access, Header: map[string]string{"Accept-Language": lang}})
		r.Decode(t, &pr)
		if r.Status != 200 || len(pr.Progress.LevelsDone) != 1 || pr.Progress.LevelsDone[0].Said != want ||
			pr.Progress.LevelsDone[0].Summary != "first look: 12345 snapshots recorded" {
			t.Errorf("progress in %s: %d %s, want said %q", lang, r.Status, r.Body, want)
		}
	}
	var runs struct {
		Runs       []runOut
		NextCursor *string `json:"next_cursor"`
	}
	env.Do(apptest.Req{Method: "GET", Path: "/v1/restore-tests?repository_id=" + id + "&status=queued", Token: f.ViewerA.Access}).Decode(t, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID {
		t.Fatalf("list runs: %+v", runs)
	}
	env.Do(apptest.Req{Method: "GET", Path: "/v1/restore-tests", Token: f.AdminB.Access}).Decode(t, &runs)
	if len(runs.Runs) != 0 {
		t.Fatalf("B lists A's runs: %+v", runs)
	}
	for _, q := range []string{"status=nope", "since=yesterday", "limit=0", "repository_id=x", "cursor=nope", "limit=501"} {
		if r := env.Do(apptest.Req{Method: "GET", Path: "/v1/restore-tests?" + q, Token: f.ViewerA.Access, NoValidate: true}); r.Status != 400 || r.ErrorField() != strings.SplitN(q, "=", 2)[0] {
			t.Errorf("list ?%s: %d %s", q, r.Status, r.Body)
		}
	}

	// The quirk: a test that has just finished while River still holds its job. Run-now
	// answers 409 (after retrying) rather than handing back the finished run.
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE restore_test_runs SET status = 'passed', finished_at = now()
		WHERE id = $1`, run.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := admin("POST", "/v1/repositories/"+id+"/tests", nil); r.Status != 409 || r.Header.Get("Retry-After") == "" {
		t.Errorf("run now right after a finish: %d %s", r.Status, r.Body)
	} else if time.Since(start) < 2*time.Second {
		t.Errorf("run now gave up after %s without waiting for the queue", time.Since(start))
	}
	// Once River has let the job go, run-now queues a new test.
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE river_job SET state = 'completed', finalized_at = now()
		WHERE id = (SELECT river_job_id FROM restore_test_runs WHERE id = $1)`, run.ID); err != nil {
		t.Fatal(err)
	}
	var next runOut
	r = admin("POST", "/v1/repositories/"+id+"/tests", nil)
	r.Decode(t, &next)
	if r.Status != 202 || next.ID == run.ID {
		t.Fatalf("run now after the job completed: %d %s", r.Status, r.Body)
	}

	// Delete: gone for everyone; its tests stay readable.
	if r := admin("DELETE", "/v1/repositories/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := admin("GET", "/v1/repositories/"+id, nil); r.Status != 404 {
		t.Errorf("deleted repository: %d", r.Status)
	}
	if r := admin("GET", "/v1/restore-tests/"+rid, nil); r.Status != 200 {
		t.Errorf("history of a deleted repository: %d", r.Status)
	}

	// The audit log recorded every change, never the passwords.
	var n int
	if err := env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries
		WHERE details::text LIKE '%'||$1||'%' OR details::text LIKE '%'||$2||'%'`, secret, secret2).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d audit entries carry a password", n)
	}
	var actions []string
	rows, err := env.App.Pool.Query(context.Background(), `SELECT action FROM audit_entries WHERE target_type IN ('restic_repository', 'restore_test') ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	rows.Close()
	want := "repository.create repository.update repository.update repository.password_replace repository.password_remove repository.password_set repository.mode_change repository.create restore_test.run restore_test.run repository.delete"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit actions:\n got %s\nwant %s", got, want)
	}
}
