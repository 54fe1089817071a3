package restic

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// restic's reports about the storage requests it retries (internal/backend/retry):
//
//	Load(<data/0123abcd>, 0, 0) returned error, retrying after 1.2s: <error>
//	Load(<data/0123abcd>, 0, 0) operation successful after 3 retries
//	Load(<data/0123abcd>, 0, 0) failed: <error>
var (
	retryReport   = regexp.MustCompile(`^([A-Za-z]+\(.*?\)) returned error, retrying after [^:]+: (.*)$`)
	retrySuccess  = regexp.MustCompile(`^([A-Za-z]+\(.*?\)) operation successful after \d+ retries`)
	retryGaveUp   = regexp.MustCompile(`^([A-Za-z]+\(.*?\)) failed: `)
	retryMaxError = 300
)

// storageWatch follows restic's retry reports and says when one storage request has been
// failing for longer than limit: restic retries a failing request for 15 minutes, which
// for a verifier means a degraded island holds a worker for that long and ends in an error
// that looks like damage.
type storageWatch struct {
	limit   time.Duration
	failing map[string]time.Time // request → first failure of its current streak
	lastErr map[string]string
}

// see records one line of restic output.
func (w *storageWatch) see(msg string, now time.Time) {
	if w.limit <= 0 {
		return
	}
	msg = strings.TrimSpace(msg)
	if m := retryReport.FindStringSubmatch(msg); m != nil {
		if w.failing == nil {
			w.failing, w.lastErr = map[string]time.Time{}, map[string]string{}
		}
		if _, ok := w.failing[m[1]]; !ok {
			w.failing[m[1]] = now
		}
		e := m[2]
		if len(e) > retryMaxError {
			e = e[:retryMaxError] + "…"
		}
		w.lastErr[m[1]] = e
		return
	}
	if m := retrySuccess.FindStringSubmatch(msg); m != nil {
		delete(w.failing, m[1])
		return
	}
	if m := retryGaveUp.FindStringSubmatch(msg); m != nil {
		delete(w.failing, m[1])
	}
}

// overdue returns an error wrapping ErrStorageUnavailable when a request has been failing
// for longer than the limit.
func (w *storageWatch) overdue(now time.Time) error {
	for req, since := range w.failing {
		if d := now.Sub(since); d > w.limit {
			return fmt.Errorf("%w: %s kept failing for %s: %s", ErrStorageUnavailable, req, d.Round(100*time.Millisecond), w.lastErr[req])
		}
	}
	return nil
}
