package testenv

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// Logs keeps a logger's output for a test to search (that no secret reaches it, that a
// repository is shown redacted); writes from a service's goroutines are safe.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LogWriter writes each write as one line of the test's log.
func LogWriter(t testing.TB) io.Writer { return testWriter{t} }

// LoggerTo returns a text logger at level writing to w (a Logs, LogWriter(t), or both
// through io.MultiWriter).
func LoggerTo(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
