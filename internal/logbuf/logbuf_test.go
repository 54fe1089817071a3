package logbuf_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/logbuf"
)

// syncBuffer is a bytes.Buffer safe for the flush timer's goroutine.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) String() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

func TestLinesAreWrittenTogetherLaterAndWarningsAtOnce(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	w := logbuf.New(out)
	log := slog.New(logbuf.Handler(slog.NewTextHandler(w, nil), w))
	for i := range 200 {
		log.Info("http request", "n", i)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, writes := out.String()
		if strings.Count(s, "\n") == 200 {
			// One write per line is what the buffer saves (timers firing on a stalled
			// machine may split the lines into a few writes, never into one per line).
			if writes > 100 {
				t.Errorf("200 lines in %d writes", writes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("buffered lines never written: %d lines", strings.Count(s, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("before the warning")
	log.With("k", "v").Warn("something is wrong")
	if s, _ := out.String(); !strings.Contains(s, "before the warning") || !strings.Contains(s, "something is wrong") {
		t.Fatalf("a warning (and what came before it) was not written at once: %q", s)
	}
	log.Info("last words")
	w.Flush()
	if s, _ := out.String(); !strings.Contains(s, `msg="last words"`) {
		t.Fatalf("Flush left a line behind: %q", s)
	}
}
