package verify

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/restic"
)

// TestFutureSnapshotIsReportedAndDoesNotKeepFreshnessPassing: a backup host whose clock is
// three days ahead makes a snapshot dated in the future. The test reports it ("clock
// ahead", a warning) and judges freshness by the snapshot's upload time on the island;
// when backups then stop, freshness fails once the RPO target has passed, although the
// snapshot's own date is still in the future.
func TestFutureSnapshotIsReportedAndDoesNotKeepFreshnessPassing(t *testing.T) {
	t.Parallel()
	var skew time.Duration
	b := setup(t, Config{Now: func() time.Time { return time.Now().Add(skew) }})
	b.worker(nil)
	f := b.newRepo("restic/future", false, false, Policy{RPOSeconds: ptr(int64(26 * 3600))})
	// The repository also holds the fixture's first snapshot, dated now and uploaded just
	// before: the future-dated one, uploaded after it, is the newest plausible snapshot.
	future, err := b.restic.Backup(b.ctx, f.member, restic.BackupOptions{Paths: []string{f.src.dir}, Host: "member-host",
		Time: time.Now().Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	run := b.test(f)
	l := level(run, LevelFreshness)
	if run.Status != StatusWarning || l.Outcome != OutcomeWarning || !strings.Contains(l.Summary, "clock ahead") {
		t.Fatalf("a snapshot dated 3 days ahead: %s", describe(run))
	}
	if run.SnapshotAgeSeconds == nil || *run.SnapshotAgeSeconds < 0 || *run.SnapshotAgeSeconds > 600 {
		t.Errorf("snapshot age %v: want the age of the plausible time (seconds)", run.SnapshotAgeSeconds)
	}
	if newest := ptrString(run.SnapshotID); newest != future.SnapshotID {
		t.Fatalf("newest snapshot %.8s, want the future-dated one %.8s, by its upload time: %s", newest, future.SnapshotID, describe(run))
	}
	// Backups stop; 30 h later the future-dated snapshot is still "in the future" by its own
	// date, but it was uploaded 30 h ago: stale.
	skew = 30 * time.Hour
	run = b.test(f)
	l = level(run, LevelFreshness)
	if run.Status != StatusFailed || l.Outcome != OutcomeFailed || !strings.Contains(l.Summary, "clock ahead") ||
		!strings.Contains(l.Summary, "26h target") || !strings.Contains(l.Summary, "("+future.SnapshotID[:8]+")") {
		t.Fatalf("backups stopped behind a future-dated snapshot: %s", describe(run))
	}
}

// TestFreshnessTable: the freshness rule with a fixed now (no restic).
func TestFreshnessTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	id := func(c byte) string { return strings.Repeat(string(c), 64) }
	tests := []struct {
		name     string
		snaps    map[string]time.Time
		uploaded map[string]time.Time // nil: blind mode
		want     string
		newest   string
		clock    bool
	}{
		{"fresh", map[string]time.Time{id('a'): now.Add(-time.Hour)}, nil, OutcomePassed, id('a'), false},
		{"within tolerance", map[string]time.Time{id('a'): now.Add(10 * time.Minute)}, nil, OutcomePassed, id('a'), false},
		{"future beside an old one (blind)", map[string]time.Time{id('a'): now.Add(-30 * time.Hour), id('b'): now.Add(48 * time.Hour)}, nil,
			OutcomeFailed, id('a'), true},
		{"future judged by upload time", map[string]time.Time{id('a'): now.Add(-30 * time.Hour), id('b'): now.Add(48 * time.Hour)},
			map[string]time.Time{id('a'): now.Add(-30 * time.Hour), id('b'): now.Add(-time.Hour)}, OutcomeWarning, id('b'), true},
		{"only future, no plausible time", map[string]time.Time{id('b'): now.Add(48 * time.Hour)}, nil, OutcomeError, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &executor{now: func() time.Time { return now }, res: &result{},
				t: target{policy: EffectivePolicy{RPOSeconds: 26 * 3600}, clockTolerance: 15 * time.Minute}}
			l := LevelResult{Details: map[string]any{}}
			var up func() (map[string]time.Time, error)
			if tt.uploaded != nil {
				up = func() (map[string]time.Time, error) { return tt.uploaded, nil }
			}
			e.freshness(&l, tt.snaps, "test", up)
			if l.Outcome != tt.want || e.res.snapshotID != tt.newest || strings.Contains(l.Summary, "clock ahead") != tt.clock {
				t.Fatalf("outcome %s, newest %q, summary %q", l.Outcome, e.res.snapshotID, l.Summary)
			}
		})
	}
}

func ptrString(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

// A file restic reports once per damaged blob is named once in the reason and counted once.
func TestRestoreErrorsNameEachFileOnce(t *testing.T) {
	res := &restic.RestoreResult{Errors: []restic.ErrorEvent{
		{Item: "/srv/uploads/photo-002.jpg", Message: "blob a: ciphertext verification failed"},
		{Item: "/srv/uploads/photo-002.jpg", Message: "blob b: ciphertext verification failed"},
		{Item: "/srv/uploads/photo-007.jpg", Message: "blob c: ciphertext verification failed"},
		{Message: "restic could not open the index"},
	}}
	got := restoreErrorItems(res)
	want := []string{"/srv/uploads/photo-002.jpg", "/srv/uploads/photo-007.jpg", "restic could not open the index"}
	if !slices.Equal(got, want) {
		t.Fatalf("restoreErrorItems = %q, want %q", got, want)
	}
}
