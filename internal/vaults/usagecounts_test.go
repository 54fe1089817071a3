package vaults_test

import (
	"testing"
	"time"
)

// TestUsageAnswersSayHowManyThereAre: the usage history and the events a vault's page and
// GET /v1/vaults/{id}/usage show are bounded (the newest 2,000 samples, the newest events);
// UsageCounts says how many there are, so a vault with more is never shown as having only
// what is listed.
func TestUsageAnswersSayHowManyThereAre(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.create(t, b.memberA, 10*gb)
	now := time.Now()
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO vault_usage (vault_id, observed_at, bytes, objects, quota_bytes)
		SELECT $1, $2::timestamptz - g * interval '10 minutes', g, g, $3 FROM generate_series(1, 2005) g`, v.ID, now, v.QuotaBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(b.ctx, `INSERT INTO vault_events (vault_id, at, kind, detail)
		SELECT $1, $2::timestamptz - g * interval '1 hour', 'usage_80', 'seeded' FROM generate_series(1, 25) g`, v.ID, now); err != nil {
		t.Fatal(err)
	}
	since := now.Add(-30 * 24 * time.Hour)
	hist, err := b.svc.UsageHistory(b.ctx, v.ID, since, 2000)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := b.svc.Events(b.ctx, v.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	samples, events, err := b.svc.UsageCounts(b.ctx, v.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2000 || len(evs) != 20 {
		t.Fatalf("%d samples and %d events answered, want the bounds 2000 and 20", len(hist), len(evs))
	}
	var before int64
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM vault_events WHERE vault_id = $1`, v.ID).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if samples != 2005 || events != before || events < 25 {
		t.Fatalf("counts: %d samples, %d events; want 2005 and %d", samples, events, before)
	}
	// The window counts only its own samples.
	if s, _, err := b.svc.UsageCounts(b.ctx, v.ID, now.Add(-100*time.Minute)); err != nil || s != 10 {
		t.Fatalf("samples of the last 100 minutes: %d (%v), want 10", s, err)
	}
}
