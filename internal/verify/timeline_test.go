package verify

import (
	"fmt"
	"testing"
	"time"
)

// TestSnapshotTimeline: the snapshots of a range, oldest first, gone ones with the time
// a test found them gone, older ones left out and said so — and only this repository's.
func TestSnapshotTimeline(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	f := b.newRepo("timeline", true, true, Policy{})
	other := b.newRepo("timeline-other", true, true, Policy{})
	now := time.Now().UTC().Truncate(time.Second)
	add := func(repoID int64, n int, daysAgo int, gone *time.Time) {
		t.Helper()
		id := fmt.Sprintf("%064x", n)
		if _, err := b.pool.Exec(b.ctx, `INSERT INTO restore_test_snapshots (repository_id, snapshot_id, snapshot_time,
			first_seen_at, gone_at) VALUES ($1, $2, $3, $3, $4)`, repoID, id, now.AddDate(0, 0, -daysAgo), gone); err != nil {
			t.Fatal(err)
		}
	}
	goneAt := now.AddDate(0, 0, -1)
	for d := 1; d <= 40; d++ {
		var gone *time.Time
		if d == 3 {
			gone = &goneAt
		}
		add(f.repo.ID, d, d, gone)
	}
	add(other.repo.ID, 99, 2, nil)

	got, more, err := SnapshotTimeline(b.ctx, b.pool, f.repo.ID, now.AddDate(0, 0, -30), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30 || more {
		t.Fatalf("30 days: %d snapshots (more %v), want 30 and nothing left out", len(got), more)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Time.Before(got[i].Time) {
			t.Fatalf("not oldest first at %d: %v then %v", i, got[i-1].Time, got[i].Time)
		}
	}
	var gone int
	for _, s := range got {
		if s.GoneAt != nil {
			gone++
			if !s.GoneAt.Equal(goneAt) || !s.Time.Equal(now.AddDate(0, 0, -3)) {
				t.Errorf("gone snapshot: %+v", s)
			}
		}
	}
	if gone != 1 {
		t.Errorf("%d gone snapshots, want 1", gone)
	}
	got, more, err = SnapshotTimeline(b.ctx, b.pool, f.repo.ID, now.AddDate(0, 0, -30), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || !more || !got[9].Time.Equal(now.AddDate(0, 0, -1)) {
		t.Errorf("limit 10: %d snapshots, more %v, newest %v; want the 10 newest and more", len(got), more, got[len(got)-1].Time)
	}
}
