package sandbox_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// demoOutcomes are the outcomes the sandbox's round of restore tests must show, by demo
// repository, with the level that decides a failure.
var demoOutcomes = map[string]struct {
	Mode     string
	Statuses []string
	Level    string // the level that must have failed
}{
	"web01 (healthy)":          {"full", []string{"passed"}, ""},
	"mail01 (stale backups)":   {"full", []string{"failed"}, "freshness"},
	"files01 (corrupted pack)": {"full", []string{"failed"}, "integrity"},
	"cloud01 (no canary)":      {"full", []string{"failed"}, "canary"},
	"db01 (blind)":             {"blind", []string{"passed", "warning"}, ""},
	// Attested: blind for the federation, plus one signed attestation by the member's agent (checked below).
	"web02 (attested by the member)":   {"attested", []string{"passed", "warning"}, ""},
	"photos01 (blind, corrupted pack)": {"blind", []string{"failed"}, "contenthash"},
	// Other members' repositories (the federation's views compare members).
	"nextcloud (healthy)":      {"full", []string{"passed"}, ""},
	"mailbox (corrupted pack)": {"full", []string{"failed"}, "integrity"},
	"gitea (blind)":            {"blind", []string{"passed", "warning"}, ""},
	"wiki (stale backups)":     {"full", []string{"failed"}, "freshness"},
}

// checkDemoRestoreTests waits (up to 10 minutes: a loaded machine) for the round of restore tests the
// sandbox enqueued at start, and checks every demo repository shows its state.
func checkDemoRestoreTests(t *testing.T, dbURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the sandbox's database: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	type repo struct {
		Mode, Status, Reason string
		Failed               []string
		Runs                 int
		Demo                 int  // synthetic history runs (trigger demo)
		DemoFirst            bool // all of them before the live test
	}
	var got map[string]repo
	for {
		got = map[string]repo{}
		rows, err := conn.Query(ctx, `SELECT r.name, r.mode, coalesce(t.status, ''), coalesce(t.reason, ''),
			coalesce((SELECT array_agg(l.level ORDER BY l.position) FROM restore_test_levels l
			          WHERE l.run_id = t.id AND l.outcome = 'failed'), '{}'),
			(SELECT count(*) FROM restore_test_runs x WHERE x.repository_id = r.id AND x.trigger <> 'demo'),
			(SELECT count(*) FROM restore_test_runs x WHERE x.repository_id = r.id AND x.trigger = 'demo'),
			coalesce((SELECT max(x.id) < t.id FROM restore_test_runs x WHERE x.repository_id = r.id AND x.trigger = 'demo'), false)
			FROM restic_repositories r LEFT JOIN restore_test_runs t ON t.id = r.last_run_id
			WHERE r.deleted_at IS NULL`)
		if err != nil {
			t.Fatalf("read the demo repositories: %v", err)
		}
		for rows.Next() {
			var name string
			var r repo
			if err := rows.Scan(&name, &r.Mode, &r.Status, &r.Reason, &r.Failed, &r.Runs, &r.Demo, &r.DemoFirst); err != nil {
				t.Fatal(err)
			}
			got[name] = r
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		done := true
		for name := range demoOutcomes {
			if got[name].Status == "" {
				done = false
			}
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the round of restore tests did not finish: %s", describe(got))
		case <-time.After(time.Second):
		}
	}
	for name, want := range demoOutcomes {
		r := got[name]
		if r.Mode != want.Mode || !slices.Contains(want.Statuses, r.Status) || r.Runs < 1 ||
			(want.Level != "" && !slices.Contains(r.Failed, want.Level)) {
			t.Errorf("demo repository %q: mode %s, %d runs, last %s (failed levels %v: %s); want mode %s, a run, %v (failed level %q)",
				name, r.Mode, r.Runs, r.Status, r.Failed, r.Reason, want.Mode, want.Statuses, want.Level)
		}
		// A month of demo history, labelled as such, before the live test (which stays the last run).
		if r.Demo != 30 || !r.DemoFirst {
			t.Errorf("demo repository %q: %d runs of demo history (want 30), all before the live test: %v", name, r.Demo, r.DemoFirst)
		}
	}
	var attested string
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(a.status), '') FROM agent_attestations a
		JOIN restic_repositories r ON r.id = a.repository_id WHERE r.name = 'web02 (attested by the member)'`).Scan(&attested); err != nil || attested != "passed" {
		t.Errorf("the attested demo repository's agent attestation: %q %v", attested, err)
	}
	if t.Failed() {
		t.Logf("all repositories: %s", describe(got))
	}
}

func describe[V any](m map[string]V) string {
	s := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s += fmt.Sprintf("\n  %s: %+v", k, m[k])
	}
	return s
}
