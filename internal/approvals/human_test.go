package approvals

import (
	"testing"
	"time"
)

// The durations in an approval request's effect are words, never Go's raw "2m0s": the
// sandbox's 2-minute cooling-off reads "2 min" (which Retell keeps as it is in French).
func TestHumanDurationsAreWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Minute:           "2 min",
		90 * time.Minute:          "1 h 30 min",
		45 * time.Second:          "45 s",
		72 * time.Hour:            "3 days",
		24 * time.Hour:            "1 day",
		5 * time.Hour:             "5 h",
		time.Hour + 2*time.Second: "1 h 2 s",
		0:                         "0 s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
