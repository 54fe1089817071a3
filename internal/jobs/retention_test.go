package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestRetentionPrunesOldRowsOnly: rows past their retention period are pruned (a run's
// log emptied, old login failures, long-expired sessions, delivered events and consumed
// outbox rows, snapshots gone long ago); recent rows, an event a pending delivery still
// needs, snapshots still present and the audit log are kept.
func TestRetentionPrunesOldRowsOnly(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	old, recent := time.Now().Add(-400*24*time.Hour), time.Now().Add(-time.Hour)
	var member, island, vault, repo, user int64
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(pool.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('member-m', 'M') RETURNING id`).Scan(&member))
	must(pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region, replication_factor)
		VALUES ('isl', 'http://127.0.0.1:1', 'x', 'http://127.0.0.1:2', 'garage', 1) RETURNING id`).Scan(&island))
	must(pool.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, quota_bytes, placement)
		VALUES ($1, $2, 'vvv', 'member-m-vvv', 1000, 'automatic') RETURNING id`, member, island).Scan(&vault))
	must(pool.QueryRow(ctx, `INSERT INTO restic_repositories (member_id, vault_id, name, path, mode, canary_token)
		VALUES ($1, $2, 'r', 'restic', 'blind', 'archipelago-canary-abcdefghijklmnopqrstuvwxyz') RETURNING id`, member, vault).Scan(&repo))
	for _, at := range []time.Time{old, recent} {
		exec(`INSERT INTO restore_test_runs (repository_id, member_id, island_id, trigger, mode, rpo_target_seconds, rto_target_seconds,
			status, started_at, finished_at, log) VALUES ($1, $2, $3, 'schedule', 'blind', 1, 1, 'passed', $4, $4, 'restic said things')`,
			repo, member, island, at)
		exec(`INSERT INTO login_failures (email, source_ip, at) VALUES ('a@b.c', '127.0.0.1', $1)`, at)
		exec(`INSERT INTO restore_test_snapshots (repository_id, snapshot_id, snapshot_time, gone_at) VALUES ($1, $2, $3, $3)`,
			repo, snapshotID(at), at)
		exec(`INSERT INTO notify_events (member_id, kind, severity, subject, title, at) VALUES ($1, 'k', 'info', 's', 't', $2)`, member, at)
		exec(`INSERT INTO notify_outbox (source, ref_id, consumed_at) VALUES ('pledges', 1, $1)`, at)
	}
	exec(`INSERT INTO restore_test_snapshots (repository_id, snapshot_id, snapshot_time) VALUES ($1, $2, $3)`, repo, snapshotID(time.Time{}), old)
	// An old event a pending delivery still needs.
	var channel, needed int64
	must(pool.QueryRow(ctx, `INSERT INTO notify_channels (member_id, kind, name, target) VALUES ($1, 'email', 'c', 'a@b.c') RETURNING id`, member).Scan(&channel))
	must(pool.QueryRow(ctx, `INSERT INTO notify_events (member_id, kind, severity, subject, title, at) VALUES ($1, 'k', 'info', 's', 'needed', $2) RETURNING id`, member, old).Scan(&needed))
	exec(`INSERT INTO notify_deliveries (channel_id, kind, event_ids) VALUES ($1, 'event', ARRAY[$2::bigint])`, channel, needed)
	for _, at := range []time.Time{old, recent} { // finished deliveries: the old one goes
		exec(`INSERT INTO notify_deliveries (channel_id, kind, status, created_at) VALUES ($1, 'event', 'sent', $2)`, channel, at)
	}
	must(pool.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('u@b.c', 'x') RETURNING id`).Scan(&user))
	for _, at := range []time.Time{old, recent.Add(48 * time.Hour)} {
		exec(`INSERT INTO sessions (user_id, secret_hash, csrf_token, expires_at) VALUES ($1, $2, 'c', $3)`, user, []byte(at.String()), at)
	}
	var auditBefore int64
	must(pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&auditBefore))

	if _, err := jobs.ApplyRetention(ctx, pool, jobs.Retention{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	count := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		must(pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	for what, got := range map[string][2]int64{
		"runs with a log":         {count(`SELECT count(*) FROM restore_test_runs WHERE log <> ''`), 1},
		"runs":                    {count(`SELECT count(*) FROM restore_test_runs`), 2},
		"login failures":          {count(`SELECT count(*) FROM login_failures`), 1},
		"sessions":                {count(`SELECT count(*) FROM sessions`), 1},
		"snapshots":               {count(`SELECT count(*) FROM restore_test_snapshots`), 2},
		"events":                  {count(`SELECT count(*) FROM notify_events`), 2},
		"the needed event":        {count(`SELECT count(*) FROM notify_events WHERE id = $1`, needed), 1},
		"outbox rows":             {count(`SELECT count(*) FROM notify_outbox`), 1},
		"deliveries":              {count(`SELECT count(*) FROM notify_deliveries`), 2},
		"audit entries (never)":   {count(`SELECT count(*) FROM audit_entries`), auditBefore},
		"snapshots still present": {count(`SELECT count(*) FROM restore_test_snapshots WHERE gone_at IS NULL`), 1},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: %d left, want %d", what, got[0], got[1])
		}
	}
}

func snapshotID(at time.Time) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 64)
	n := at.UnixNano()
	for i := range b {
		b[i] = hex[(n>>(uint(i)%60))&15]
	}
	return string(b)
}
