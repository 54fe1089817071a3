// Package logbuf makes the process log cheap per line: log lines are gathered in memory and
// written out together at most Interval later (or as soon as MaxBuffer bytes wait), instead
// of one write system call per line — the request log at INFO otherwise cost more than a
// simple handler (issue 20; BenchmarkRequestLog in internal/server). A record at WARN or
// above is written out at once, with everything before it, and Flush writes what waits
// (the CLI calls it before the process exits).
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Defaults of a Writer.
const (
	Interval  = 100 * time.Millisecond
	MaxBuffer = 64 << 10
)

// Writer buffers what is written to it (whole log lines, as slog handlers write them) and
// writes it to the underlying writer later, in order.
type Writer struct {
	mu      sync.Mutex
	out     io.Writer
	buf     []byte
	pending bool // a flush is scheduled
}

// New returns a Writer in front of out.
func New(out io.Writer) *Writer { return &Writer{out: out} }

// Write appends p to the buffer; it writes the buffer out when it holds MaxBuffer bytes,
// and otherwise schedules that within Interval. It never fails: a write error of the
// underlying writer is dropped, as a log line that cannot be written is.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) >= MaxBuffer {
		w.flushLocked()
	} else if !w.pending {
		w.pending = true
		time.AfterFunc(Interval, w.Flush)
	}
	return len(p), nil
}

// Flush writes out whatever waits.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	w.pending = false
}

func (w *Writer) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	_, _ = w.out.Write(w.buf)
	if cap(w.buf) > 4*MaxBuffer {
		w.buf = nil // a burst's buffer is not kept
	} else {
		w.buf = w.buf[:0]
	}
}

// Handler wraps a handler writing to w so that a record at WARN or above is written out at
// once, with every line before it.
func Handler(h slog.Handler, w *Writer) slog.Handler { return flushing{h, w} }

type flushing struct {
	slog.Handler
	w *Writer
}

func (f flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		f.w.Flush()
	}
	return err
}

func (f flushing) WithAttrs(as []slog.Attr) slog.Handler {
	return flushing{f.Handler.WithAttrs(as), f.w}
}

func (f flushing) WithGroup(name string) slog.Handler {
	return flushing{f.Handler.WithGroup(name), f.w}
}
