package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// scheduleParser accepts 5-field cron expressions and descriptors (@daily, @every 6h).
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a schedule: a 5-field cron expression (UTC) or a descriptor such as
// "@daily" or "@every 24h". Intervals under 10 minutes are refused.
func ParseSchedule(s string) (cron.Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("schedule is empty")
	}
	sch, err := scheduleParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", s, err)
	}
	if every, ok := sch.(cron.ConstantDelaySchedule); ok && every.Delay < 10*time.Minute {
		return nil, fmt.Errorf("schedule %q: tests may not run more often than every 10 minutes", s)
	}
	return sch, nil
}

// Window is the daily start window (UTC) of tests: they start within
// [StartMinute, StartMinute+Minutes) of a day. Minutes = 0 means any time.
type Window struct {
	StartMinute int
	Minutes     int
}

// contains reports whether t falls within the window.
func (w Window) contains(t time.Time) bool {
	if w.Minutes <= 0 || w.Minutes >= 1440 {
		return true
	}
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	end := w.StartMinute + w.Minutes
	if end <= 1440 {
		return m >= w.StartMinute && m < end
	}
	return m >= w.StartMinute || m < end-1440 // the window spans midnight
}

// nextOpening is the first window opening at or after t.
func (w Window) nextOpening(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	open := day.Add(time.Duration(w.StartMinute) * time.Minute)
	if open.Before(t) {
		open = open.AddDate(0, 0, 1)
	}
	return open
}

// spread maps (repository, nominal time) to a fraction in [0, 1): the same repository and
// slot always get the same offset, different repositories get offsets spread uniformly.
func spread(repoID int64, nominal time.Time) float64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(repoID))
	binary.BigEndian.PutUint64(b[8:], uint64(nominal.Unix()))
	h := sha256.Sum256(b[:])
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / float64(1<<53)
}

// NextRun returns when the next test of repository repoID starts after now: the schedule's
// next time, plus a jitter in [0, jitter) derived from the repository and that time (so
// tests of many repositories spread out instead of all starting at once); when a window is
// set and that time falls outside it, the start moves into the next window, spread over
// the window's length.
func NextRun(sch cron.Schedule, w Window, jitter time.Duration, repoID int64, now time.Time) time.Time {
	nominal := sch.Next(now.UTC())
	at := nominal
	if jitter > 0 {
		at = at.Add(time.Duration(spread(repoID, nominal) * float64(jitter))).Truncate(time.Second)
	}
	if w.contains(at) {
		return at
	}
	open := w.nextOpening(at)
	return open.Add(time.Duration(spread(repoID, open) * float64(time.Duration(w.Minutes)*time.Minute))).Truncate(time.Second)
}
