package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the heartbeat file's name inside the worker's scratch directory
// (ARCHIPELAGO_SCRATCH_DIR), the one place a worker container can always write. The
// scratch directory's cleaners leave it alone (they remove only job-* and proc-* entries).
const FileName = "worker-heartbeat"

// Defaults: a beat every DefaultEvery; a heartbeat older than DefaultMaxAge (several missed
// beats) means the worker is stuck or its database has been unreachable that long.
const (
	DefaultEvery  = 10 * time.Second
	DefaultMaxAge = 90 * time.Second
)

// Path is the heartbeat file of a worker whose scratch directory is scratchDir.
func Path(scratchDir string) string { return filepath.Join(scratchDir, FileName) }

// Run writes a beat to path now and then every `every` until ctx ends, each time check
// succeeds (check is the worker's own health: its database answers). A failed check or
// write is logged and the beat skipped, so the file ages and the health check fails.
// It removes the file when it returns: a stopped worker is not alive.
func Run(ctx context.Context, path string, every time.Duration, check func(context.Context) error, log *slog.Logger) {
	if every <= 0 {
		every = DefaultEvery
	}
	defer os.Remove(path)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, every)
		err := check(cctx)
		cancel()
		if err == nil {
			err = Write(path, time.Now())
		}
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "worker heartbeat skipped", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Write records a beat at now: written to a temporary file then renamed, so a reader never
// sees half a timestamp.
func Write(path string, now time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(now.UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// ErrNone is returned by Read when there is no heartbeat file: no worker runs here, or it
// has not completed its first beat.
var ErrNone = errors.New("no heartbeat")

// Read returns the time of the last beat written to path.
func Read(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, ErrNone
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat %s: %w", path, err)
	}
	return at, nil
}
