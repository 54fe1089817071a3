package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// The agent's restic logger: routine INFO records become DEBUG (hidden at the default
// level, shown at debug); records about a failure keep their level.
func TestQuietHandlerDemotesRoutineRecordsOnly(t *testing.T) {
	t.Parallel()
	for _, lvl := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(quietHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lvl})})
		log.Info("restic finished", slog.Int("exit_code", 0))
		log.Info("restic finished", slog.Int("exit_code", 12))
		log.Info("restic call", "err", errors.New("wrong password"))
		log.Warn("restic warned")
		out := buf.String()
		routine := strings.Contains(out, "level=DEBUG msg=\"restic finished\" exit_code=0")
		if routine != (lvl == slog.LevelDebug) || strings.Contains(out, "level=INFO msg=\"restic finished\" exit_code=0") {
			t.Errorf("level %v: the routine record: %q", lvl, out)
		}
		for _, want := range []string{"level=INFO msg=\"restic finished\" exit_code=12", "level=INFO msg=\"restic call\" err=\"wrong password\"",
			"level=WARN msg=\"restic warned\""} {
			if !strings.Contains(out, want) {
				t.Errorf("level %v: %q missing from %q", lvl, want, out)
			}
		}
	}
}
