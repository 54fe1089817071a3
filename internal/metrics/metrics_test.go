package metrics_test

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/chatons/archipelago/internal/metrics"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// seeded returns a pool (statements counted) on a database seeded with size.
func seeded(t *testing.T, size scaleseed.Size) (*pgxpool.Pool, *testenv.Statements) {
	t.Helper()
	pool, c := testenv.CountedDB(t)
	if err := scaleseed.Seed(t.Context(), pool, size); err != nil {
		t.Fatal(err)
	}
	return pool, c
}

// scrape reads the collector as /metrics serves it (WriteText, parsed as Prometheus parses
// it) and returns the families by name, and the statements the scrape cost.
func scrape(t *testing.T, pool *pgxpool.Pool, c *testenv.Statements, cfg metrics.Config) (map[string]*dto.MetricFamily, int64) {
	t.Helper()
	col := metrics.New(pool, testenv.Logger(t), cfg)
	before := c.Count()
	var buf bytes.Buffer
	if err := col.WriteText(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	n := c.Count() - before
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams, n
}

// gather reads the collector through a (pedantic) Prometheus registry.
func gather(t *testing.T, pool *pgxpool.Pool, cfg metrics.Config) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(pool, testenv.Logger(t), cfg))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// flat lists a family's series as "labels=value" lines, sorted; values that are ages
// (computed against now() at each read) are rounded to the minute.
func flat(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var l []string
		for _, p := range m.GetLabel() {
			l = append(l, p.GetName()+"="+p.GetValue())
		}
		slices.Sort(l)
		v := m.GetGauge().GetValue()
		if strings.Contains(f.GetName(), "age_seconds") || strings.Contains(f.GetName(), "oldest") {
			v = math.Round(v / 60)
		}
		out = append(out, strings.Join(l, ",")+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	slices.Sort(out)
	return out
}

// TestTextIsWhatTheRegistryWouldServe: /metrics writes the domain families as text itself
// (WriteText); Prometheus parses it into exactly the families, help, types and series the
// client library's registry gathers from the same collector, per-object series included.
func TestTextIsWhatTheRegistryWouldServe(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 6, VaultsPerMember: 2, Days: 3})
	if _, err := pool.Exec(t.Context(), `UPDATE restic_repositories SET name = 'quote " back \ end' WHERE id = (SELECT min(id) FROM restic_repositories);
		UPDATE vaults SET usage_bytes = quota_bytes WHERE id = (SELECT min(id) FROM vaults)`); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []metrics.Config{{}, {PerObject: true}} {
		text, _ := scrape(t, pool, c, cfg)
		reg := gather(t, pool, cfg)
		if len(text) != len(reg) || len(text) < 10 {
			t.Fatalf("per object %v: %d families written, %d gathered", cfg.PerObject, len(text), len(reg))
		}
		for name, g := range reg {
			w := text[name]
			if w == nil {
				t.Fatalf("per object %v: %s gathered, not written", cfg.PerObject, name)
			}
			if w.GetHelp() != g.GetHelp() || w.GetType() != g.GetType() {
				t.Errorf("%s: help %q type %v written, %q %v gathered", name, w.GetHelp(), w.GetType(), g.GetHelp(), g.GetType())
			}
			if a, b := flat(w), flat(g); !slices.Equal(a, b) {
				t.Errorf("%s: written %v\ngathered %v", name, a, b)
			}
		}
	}
}

func series(fams map[string]*dto.MetricFamily) int {
	n := 0
	for _, f := range fams {
		n += len(f.GetMetric())
	}
	return n
}

func sum(f *dto.MetricFamily, label, value string) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && (value == "" || l.GetValue() == value) {
				s += m.GetGauge().GetValue()
			}
		}
	}
	return s
}

// TestScrapeCostAndCardinalityDoNotGrowWithHistoryOrObjects: the default scrape exports
// aggregates per member and island only, in a number of statements independent of the
// federation's size, and its numbers add up to the seeded federation.
func TestScrapeCostAndCardinalityDoNotGrowWithHistoryOrObjects(t *testing.T) {
	t.Parallel()
	small := scaleseed.Size{Members: 4, VaultsPerMember: 2, Days: 3}
	large := scaleseed.Size{Members: 40, VaultsPerMember: 3, Days: 20}
	var statements []int64
	for _, size := range []scaleseed.Size{small, large} {
		pool, c := seeded(t, size)
		fams, n := scrape(t, pool, c, metrics.Config{})
		statements = append(statements, n)
		repos := float64(size.Members * size.VaultsPerMember)
		if got := sum(fams["archipelago_member_repositories"], "member", ""); got != repos {
			t.Errorf("%d members: member_repositories add up to %v, want %v", size.Members, got, repos)
		}
		if got := sum(fams["archipelago_island_repositories"], "island", ""); got != repos {
			t.Errorf("%d members: island_repositories add up to %v, want %v", size.Members, got, repos)
		}
		if got := sum(fams["archipelago_restore_repositories"], "outcome", ""); got != repos {
			t.Errorf("%d members: restore_repositories add up to %v, want %v", size.Members, got, repos)
		}
		if got := sum(fams["archipelago_island_vaults"], "island", ""); got != repos {
			t.Errorf("%d members: island_vaults add up to %v, want %v", size.Members, got, repos)
		}
		if got := sum(fams["archipelago_island_pledges"], "status", "active"); got != float64(size.Members) {
			t.Errorf("%d members: %v active pledges, want %d", size.Members, got, size.Members)
		}
		if len(fams["archipelago_member_restore_oldest_success_age_seconds"].GetMetric()) != size.Members {
			t.Errorf("%d members: oldest success age not exported per member", size.Members)
		}
		for name := range fams {
			if strings.HasPrefix(name, "archipelago_restore_last_") || name == "archipelago_vault_usage_bytes" || name == "archipelago_pledge_status" {
				t.Errorf("per-object series %s exported without Config.PerObject", name)
			}
		}
		// The documented bound: at most 12 series per member, 12 per island, 40 others.
		if n, bound := series(fams), 12*size.Members+12*size.Islands()+40; n > bound {
			t.Errorf("%d members: %d series, more than the documented bound %d", size.Members, n, bound)
		}
		// Per-object series on request.
		detail, _ := scrape(t, pool, c, metrics.Config{PerObject: true})
		if got := len(detail["archipelago_restore_rpo_seconds"].GetMetric()); got != int(repos) {
			t.Errorf("per-object: %d rpo series, want %v", got, repos)
		}
	}
	if statements[0] != statements[1] {
		t.Fatalf("a scrape costs %d statements at %d members and %d at %d", statements[0], small.Members, statements[1], large.Members)
	}
}

// TestSeriesDoNotGrowWithRepositories: the same members and islands with four times the
// vaults, repositories and runs export the same series (outcome and status breakdowns
// aside, which depend on what the tests found), within the documented bound.
func TestSeriesDoNotGrowWithRepositories(t *testing.T) {
	t.Parallel()
	counts := make([]map[string]int, 2)
	for i, size := range []scaleseed.Size{{Members: 8, VaultsPerMember: 2, Days: 2}, {Members: 8, VaultsPerMember: 8, Days: 6}} {
		pool, c := seeded(t, size)
		fams, _ := scrape(t, pool, c, metrics.Config{})
		if got := sum(fams["archipelago_restore_repositories"], "outcome", ""); got != float64(size.Members*size.VaultsPerMember) {
			t.Fatalf("%d repositories counted, want %d", int(got), size.Members*size.VaultsPerMember)
		}
		if n, bound := series(fams), 12*size.Members+12*size.Islands()+40; n > bound {
			t.Errorf("%d repositories: %d series, more than the documented bound %d", size.Members*size.VaultsPerMember, n, bound)
		}
		counts[i] = map[string]int{}
		for name, f := range fams {
			switch name {
			case "archipelago_member_repositories", "archipelago_island_repositories", "archipelago_island_pledges",
				"archipelago_member_repositories_stale", "archipelago_member_vaults_over_ratio", "archipelago_job_queue_depth":
				continue // one series per outcome, status or ratio found
			}
			counts[i][name] = len(f.GetMetric())
		}
	}
	for name, n := range counts[0] {
		if counts[1][name] != n {
			t.Errorf("%s: %d series with 16 repositories, %d with 64", name, n, counts[1][name])
		}
	}
	if len(counts[0]) != len(counts[1]) || len(counts[0]) < 6 {
		t.Fatalf("families differ or too few compared: %v / %v", counts[0], counts[1])
	}
}

// TestAFailedPartIsExportedAsFailedNotPartially: when one part cannot be read, its success
// gauge is 0 and none of its series is exported; the other parts are whole.
func TestAFailedPartIsExportedAsFailedNotPartially(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 4, VaultsPerMember: 1, Days: 1})
	if _, err := pool.Exec(t.Context(), `ALTER TABLE pledges RENAME TO pledges_elsewhere`); err != nil {
		t.Fatal(err)
	}
	fams, _ := scrape(t, pool, c, metrics.Config{})
	if _, ok := fams["archipelago_island_pledges"]; ok {
		t.Fatal("pledge series exported although the part failed")
	}
	up := map[string]float64{}
	for _, m := range fams["archipelago_metrics_collect_success"].GetMetric() {
		up[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if up["pledges"] != 0 || up["restore"] != 1 || up["vaults"] != 1 {
		t.Fatalf("collect success %v", up)
	}
	if sum(fams["archipelago_member_repositories"], "member", "") != 4 {
		t.Fatal("the restore part is not whole")
	}
}

// TestSummariesFollowEveryChange: the summaries /metrics reads (restore_summary,
// restore_member_summary, vault_summary and the last-run columns, migration 018) are kept by
// triggers; after tests finish, fail, a repository is deleted and vaults change, they equal
// what the base tables say, and the scrape exports the change.
func TestSummariesFollowEveryChange(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 6, VaultsPerMember: 2, Days: 3})
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var ids []int64
	if err := pool.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM restic_repositories`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	// A new test of each of the first three repositories finishes: failed, error, passed.
	for i, status := range []string{"failed", "error", "passed"} {
		exec(`WITH run AS (INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, status, reason,
				queued_at, started_at, finished_at, snapshot_time, rpo_target_seconds, rto_target_seconds)
			SELECT r.id, r.member_id, v.island_id, 'manual', 'blind', $2, 'test', now(), now(), now(), now() - interval '30 days',
				93600, 86400
			FROM restic_repositories r JOIN vaults v ON v.id = r.vault_id WHERE r.id = $1 RETURNING id)
			UPDATE restic_repositories SET last_run_id = (SELECT id FROM run) WHERE id = $1`, ids[i], status)
	}
	exec(`UPDATE restic_repositories SET deleted_at = now() WHERE id = $1`, ids[3])
	exec(`UPDATE restic_repositories SET last_run_id = NULL WHERE id = $1`, ids[4])
	exec(`INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token)
		SELECT member_id, vault_id, 'added', 'added/path', 'blind', 'archipelago-canary-aaaaaaaaaaaaaaaaaaaaaaaaaa' FROM restic_repositories WHERE id = $1`, ids[5])
	exec(`UPDATE vaults SET usage_bytes = quota_bytes WHERE id = (SELECT min(id) FROM vaults)`)
	exec(`UPDATE vaults SET quota_bytes = quota_bytes * 2 WHERE id = (SELECT max(id) FROM vaults)`)
	exec(`UPDATE vaults SET status = 'deleting' WHERE id = (SELECT min(id) + 1 FROM vaults)`)

	differ := func(what, summary, direct string) {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM ((`+summary+` EXCEPT `+direct+`) UNION ALL (`+direct+` EXCEPT `+summary+`)) d`).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows differ between the summary and the base tables", what, n)
		}
	}
	differ("last run columns", `SELECT id, last_status, last_snapshot_time FROM restic_repositories`,
		`SELECT r.id, lr.status, lr.snapshot_time FROM restic_repositories r LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id`)
	differ("restore_summary", `SELECT member_id, island_id, outcome, repositories FROM restore_summary WHERE repositories > 0`,
		`SELECT r.member_id, v.island_id, coalesce(lr.status, 'none'), count(*) FROM restic_repositories r
			JOIN vaults v ON v.id = r.vault_id LEFT JOIN restore_test_runs lr ON lr.id = r.last_run_id
			WHERE r.deleted_at IS NULL GROUP BY 1, 2, 3`)
	differ("restore_member_summary", `SELECT member_id, oldest_success_at FROM restore_member_summary WHERE oldest_success_at IS NOT NULL`,
		`SELECT r.member_id, min(ls.finished_at) FROM restic_repositories r
			CROSS JOIN LATERAL (SELECT x.finished_at FROM restore_test_runs x WHERE x.repository_id = r.id
				AND x.status IN ('passed', 'warning') ORDER BY x.id DESC LIMIT 1) ls
			WHERE r.deleted_at IS NULL GROUP BY 1`)
	differ("vault_summary", `SELECT member_id, island_id, vaults, quota_bytes, usage_bytes, over95, over100 FROM vault_summary WHERE vaults > 0`,
		`SELECT member_id, island_id, count(*), sum(quota_bytes)::numeric, coalesce(sum(usage_bytes), 0)::numeric,
			count(*) FILTER (WHERE usage_bytes >= 0.95 * quota_bytes), count(*) FILTER (WHERE usage_bytes >= quota_bytes)
			FROM vaults WHERE status IN ('pending', 'active') GROUP BY 1, 2`)

	fams, _ := scrape(t, pool, c, metrics.Config{})
	if got := sum(fams["archipelago_restore_repositories"], "outcome", "failed"); got < 1 {
		t.Errorf("the failed test is not counted: %v failed", got)
	}
	if got := sum(fams["archipelago_restore_repositories"], "outcome", ""); got != 12 {
		t.Errorf("restore_repositories add up to %v, want 12 (12 seeded, one deleted, one added)", got)
	}
	// The three tests above saw a snapshot 30 days old: past the default RPO (26 h).
	if got := sum(fams["archipelago_member_repositories_stale"], "member", ""); got != 3 {
		t.Errorf("%v stale repositories, want 3", got)
	}
	if got := sum(fams["archipelago_member_vaults_over_ratio"], "ratio", "1"); got != 1 {
		t.Errorf("%v full vaults, want 1", got)
	}
}

// TestCoordinatorBackupAndStaleAgentSeries: the coordinator's own backup exports whether it
// is set up, per kind the time since its latest success (since the setup when none
// succeeded), whether the latest run failed and the configured interval; the repositories
// whose agent is stale (their agent.stale alert raised) are counted per member and in all.
func TestCoordinatorBackupAndStaleAgentSeries(t *testing.T) {
	t.Parallel()
	pool, c := seeded(t, scaleseed.Size{Members: 3, VaultsPerMember: 2, Days: 1})
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	cfg := metrics.Config{BackupInterval: 24 * time.Hour, RestoreCheckInterval: 7 * 24 * time.Hour}
	values := func(fams map[string]*dto.MetricFamily, name string) []string {
		f, ok := fams[name]
		if !ok {
			return nil
		}
		return flat(f)
	}
	check := func(fams map[string]*dto.MetricFamily, name string, want ...string) {
		t.Helper()
		if got := values(fams, name); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// Not set up: nothing can be late; the intervals are there for the rules.
	fams, _ := scrape(t, pool, c, cfg)
	check(fams, "archipelago_coordinator_backup_configured", "=0")
	check(fams, "archipelago_coordinator_backup_last_success_age_seconds")
	check(fams, "archipelago_coordinator_backup_last_run_failed")
	check(fams, "archipelago_coordinator_backup_interval_seconds", "kind=backup=86400", "kind=restore_check=604800")
	check(fams, "archipelago_agents_stale", "=0")
	check(fams, "archipelago_member_agents_stale")

	// Set up three hours ago, never run: both kinds are three hours without a success.
	exec(`INSERT INTO coordinator_backup (vault_id, repository_id, repository_url, access_key_id, secret_sealed, password_sealed, created_at)
		SELECT r.vault_id, r.id, 's3:http://island/coordinator', 'GK1', 'x', 'y', now() - interval '3 hours'
		FROM restic_repositories r ORDER BY r.id LIMIT 1`)
	fams, _ = scrape(t, pool, c, cfg)
	check(fams, "archipelago_coordinator_backup_configured", "=1")
	check(fams, "archipelago_coordinator_backup_last_success_age_seconds", "kind=backup=180", "kind=restore_check=180")
	check(fams, "archipelago_coordinator_backup_last_run_failed")

	// A backup succeeded two hours ago and the next one failed an hour ago; a restore check
	// succeeded 30 minutes ago.
	run := func(kind, status, errText, ago string) {
		exec(`INSERT INTO coordinator_backup_runs (kind, status, error, started_at, finished_at)
			VALUES ($1, $2, $3, now() - $4::interval, now() - $4::interval)`, kind, status, errText, ago)
	}
	run("backup", "ok", "", "2 hours")
	run("backup", "failed", "pg_dump: connection refused", "1 hour")
	run("restore_check", "ok", "", "30 minutes")
	fams, _ = scrape(t, pool, c, cfg)
	check(fams, "archipelago_coordinator_backup_last_success_age_seconds", "kind=backup=120", "kind=restore_check=30")
	check(fams, "archipelago_coordinator_backup_last_run_failed", "kind=backup=1", "kind=restore_check=0")

	// Agents: two repositories of one member and one of another are stale, a fourth has a
	// schedule and reports; a stale one that is deleted no longer counts.
	var repos []struct {
		ID     int64
		Member string
	}
	rows, err := pool.Query(ctx, `SELECT r.id, m.slug FROM restic_repositories r JOIN members m ON m.id = r.member_id ORDER BY m.slug, r.id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r struct {
			ID     int64
			Member string
		}
		if err := rows.Scan(&r.ID, &r.Member); err != nil {
			t.Fatal(err)
		}
		repos = append(repos, r)
	}
	if rows.Err() != nil || len(repos) != 6 {
		t.Fatalf("%d repositories (%v)", len(repos), rows.Err())
	}
	schedule := func(id int64, stale bool) {
		exec(`INSERT INTO agent_schedules (repository_id, interval_seconds, grace_seconds, alerted_at)
			VALUES ($1, 86400, 3600, CASE WHEN $2 THEN now() END)`, id, stale)
	}
	schedule(repos[0].ID, true)
	schedule(repos[1].ID, true) // same member as repos[0]
	schedule(repos[2].ID, true)
	schedule(repos[4].ID, false)
	schedule(repos[5].ID, true)
	exec(`UPDATE restic_repositories SET deleted_at = now() WHERE id = $1`, repos[5].ID)
	fams, _ = scrape(t, pool, c, cfg)
	check(fams, "archipelago_member_agents_stale", "member="+repos[0].Member+"=2", "member="+repos[2].Member+"=1")
	check(fams, "archipelago_agents_stale", "=3")
	up := map[string]float64{}
	for _, m := range fams["archipelago_metrics_collect_success"].GetMetric() {
		up[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if up["coordinator_backup"] != 1 || up["agents"] != 1 {
		t.Errorf("collect success %v", up)
	}
}
