package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	t.Parallel()
	p := Path(filepath.Join(t.TempDir(), "scratch")) // the scratch directory need not exist yet
	if _, err := Read(p); !errors.Is(err, ErrNone) {
		t.Fatalf("Read before any beat: %v, want ErrNone", err)
	}
	at := time.Date(2026, 12, 6, 3, 0, 0, 123, time.UTC)
	if err := Write(p, at); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil || !got.Equal(at) {
		t.Fatalf("Read = %v, %v; want %v", got, err, at)
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || errors.Is(err, ErrNone) {
		t.Fatalf("Read of a garbled file: %v, want a parse error", err)
	}
}

// Run beats while the check passes, stops beating when it fails, and removes the file
// when it stops.
func TestRun(t *testing.T) {
	t.Parallel()
	p := Path(t.TempDir())
	var healthy atomic.Bool
	var failed atomic.Int64 // failing checks seen
	healthy.Store(true)
	check := func(context.Context) error {
		if healthy.Load() {
			return nil
		}
		failed.Add(1)
		return errors.New("database unreachable")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, p, 10*time.Millisecond, check, slog.New(slog.DiscardHandler))
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var first time.Time
	waitFor("a first beat", func() bool { at, err := Read(p); first = at; return err == nil })
	waitFor("a second beat", func() bool { at, err := Read(p); return err == nil && at.After(first) })

	healthy.Store(false)
	// Run is sequential: once a check has failed, no earlier beat is still being written.
	waitFor("a failing check", func() bool { return failed.Load() >= 1 })
	stuck, _ := Read(p)
	waitFor("more failing checks", func() bool { return failed.Load() >= 4 })
	if at, _ := Read(p); !at.Equal(stuck) {
		t.Fatalf("the heartbeat moved (%v → %v) while the check failed", stuck, at)
	}
	healthy.Store(true)
	waitFor("beats again", func() bool { at, err := Read(p); return err == nil && at.After(stuck) })

	cancel()
	<-done
	if _, err := Read(p); !errors.Is(err, ErrNone) {
		t.Fatalf("after Run returned: %v, want the file removed", err)
	}
}
