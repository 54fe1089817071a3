package verify

import (
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/restic"
)

func TestNextRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 14, 30, 0, 0, time.UTC)
	tests := []struct {
		name     string
		schedule string
		window   Window
		jitter   time.Duration
		repo     int64
		wantFrom time.Time // inclusive
		wantTo   time.Time // exclusive
	}{
		{"every 24h no jitter", "@every 24h", Window{}, 0, 1, now.Add(24 * time.Hour), now.Add(24*time.Hour + time.Second)},
		{"cron daily 03:00", "0 3 * * *", Window{}, 0, 1,
			time.Date(2026, 3, 11, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 3, 0, 1, 0, time.UTC)},
		{"jitter stays within its hour", "0 3 * * *", Window{}, time.Hour, 7,
			time.Date(2026, 3, 11, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 4, 0, 0, 0, time.UTC)},
		{"inside the window", "0 3 * * *", Window{StartMinute: 120, Minutes: 240}, 0, 1,
			time.Date(2026, 3, 11, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 3, 0, 1, 0, time.UTC)},
		{"moved into the next window", "@every 1h", Window{StartMinute: 60, Minutes: 120}, 0, 3,
			time.Date(2026, 3, 11, 1, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 3, 0, 0, 0, time.UTC)},
		{"window spanning midnight", "@every 1h", Window{StartMinute: 23 * 60, Minutes: 120}, 0, 3,
			time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 1, 0, 0, 0, time.UTC)},
		{"jitter pushing out of the window moves to the next one", "0 4 * * *", Window{StartMinute: 180, Minutes: 61}, 2 * time.Hour, 11,
			time.Date(2026, 3, 11, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 12, 4, 1, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sch, err := ParseSchedule(tt.schedule)
			if err != nil {
				t.Fatal(err)
			}
			got := NextRun(sch, tt.window, tt.jitter, tt.repo, now)
			if got.Before(tt.wantFrom) || !got.Before(tt.wantTo) {
				t.Fatalf("NextRun = %s, want in [%s, %s)", got, tt.wantFrom, tt.wantTo)
			}
			if !tt.window.contains(got) {
				t.Fatalf("NextRun = %s is outside the window %+v", got, tt.window)
			}
			if again := NextRun(sch, tt.window, tt.jitter, tt.repo, now); !again.Equal(got) {
				t.Fatalf("not deterministic: %s then %s", got, again)
			}
		})
	}
}

func TestJitterSpreadsRepositoriesOverTheWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	sch, _ := ParseSchedule("0 2 * * *")
	// 600 repositories, a one-hour jitter: no ten-minute bucket gets more than twice its share.
	buckets := make([]int, 6)
	for id := int64(1); id <= 600; id++ {
		at := NextRun(sch, Window{}, time.Hour, id, now)
		buckets[int(at.Sub(time.Date(2026, 3, 11, 2, 0, 0, 0, time.UTC))/(10*time.Minute))]++
	}
	for i, n := range buckets {
		if n < 50 || n > 200 {
			t.Errorf("bucket %d has %d of 600 starts: %v", i, n, buckets)
		}
	}
}

func TestParseScheduleRefuses(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "every day", "@every 1m", "61 * * * *", "* * * * * *"} {
		if _, err := ParseSchedule(s); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", s)
		}
	}
}

func TestOutcomeSaysWhoIsAtFault(t *testing.T) {
	t.Parallel()
	lv := func(outcomes ...string) []LevelResult {
		var out []LevelResult
		for i, o := range outcomes {
			out = append(out, LevelResult{Level: Levels[i], Outcome: o, Summary: Levels[i] + " " + o})
		}
		return out
	}
	tests := []struct {
		levels []LevelResult
		want   string
	}{
		{lv("passed", "passed", "passed", "passed", "passed", "skipped"), StatusPassed},
		{lv("warning", "passed", "passed", "passed", "passed", "skipped"), StatusWarning},
		{lv("passed", "warning", "error", "skipped", "skipped", "skipped"), StatusError},
		{lv("failed", "passed", "error", "skipped", "skipped", "skipped"), StatusFailed},
		{lv("passed", "passed", "passed", "passed", "failed", "skipped"), StatusFailed},
	}
	for i, tt := range tests {
		if got, _ := outcome(tt.levels); got != tt.want {
			t.Errorf("%d: outcome = %s, want %s", i, got, tt.want)
		}
	}
}

func TestPickSampleAndCanary(t *testing.T) {
	t.Parallel()
	var files []restic.Node
	for i := range 100 {
		files = append(files, restic.Node{Name: "f", Path: "/d/f" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Size: uint64(i * 10), Type: "file"})
	}
	s := pickSample(files, 10, 1000, 42)
	var sum uint64
	for _, n := range s {
		sum += n.Size
	}
	if len(s) == 0 || len(s) > 10 || sum > 1000 {
		t.Fatalf("sample of %d files, %d bytes", len(s), sum)
	}
	if all := pickSample(files, 1000, 1<<40, 1); len(all) != 100 {
		t.Fatalf("everything fits: %d", len(all))
	}
	files = append(files, restic.Node{Name: "archipelago-canary.txt", Path: "/srv/x/archipelago-canary.txt"},
		restic.Node{Name: "archipelago-canary.txt", Path: "/srv/archipelago-canary.txt"})
	if c := findCanary(files, "archipelago-canary.txt"); c == nil || c.Path != "/srv/archipelago-canary.txt" {
		t.Fatalf("canary by name: %+v", c)
	}
	if c := findCanary(files, "/srv/x/archipelago-canary.txt"); c == nil || c.Path != "/srv/x/archipelago-canary.txt" {
		t.Fatalf("canary by path: %+v", c)
	}
	if escapePattern("/a/b*[c]?") != `/a/b\*\[c]\?` {
		t.Fatal(escapePattern("/a/b*[c]?"))
	}
}

func TestProjectRTO(t *testing.T) {
	t.Parallel()
	// 100 MiB in 2 s with ≤1 s fixed cost: 10 GiB take about 1 + 102.4 s.
	if got := projectRTO(10<<30, 100<<20, 2*time.Second); got < 100 || got > 106 {
		t.Fatalf("projectRTO = %d", got)
	}
}
