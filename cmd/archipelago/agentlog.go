package main

import (
	"context"
	"log/slog"
)

// quietHandler is the agent's logger for restic's runner: a member's timer runs the agent
// daily and its journal keeps every line, so the routine record of each restic command
// ("restic finished", exit code 0) is DEBUG; a record about a failure (a non-zero exit
// code, an err attribute, WARN and above) keeps its level.
type quietHandler struct{ h slog.Handler }

// Enabled lets INFO records through to Handle, which decides their level.
func (q quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return q.h.Enabled(ctx, l) || l == slog.LevelInfo
}

// Handle demotes routine INFO records to DEBUG.
func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && !reportsFailure(r) {
		r.Level = slog.LevelDebug
		if !q.h.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return q.h.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (q quietHandler) WithAttrs(as []slog.Attr) slog.Handler { return quietHandler{q.h.WithAttrs(as)} }

// WithGroup implements slog.Handler.
func (q quietHandler) WithGroup(name string) slog.Handler { return quietHandler{q.h.WithGroup(name)} }

// reportsFailure reports whether a record is about a failure: an err attribute, or an
// exit_code other than 0.
func reportsFailure(r slog.Record) bool {
	failed := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "err", "error":
			failed = true
		case "exit_code":
			if v := a.Value.Resolve(); v.Kind() == slog.KindInt64 && v.Int64() != 0 {
				failed = true
			}
		}
		return !failed
	})
	return failed
}
