package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestTasksRunOnStartPeriodicallyAndOnDemand(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	var runs, fails atomic.Int32
	r, err := jobs.New(pool, jobs.Config{Logger: testenv.Logger(t), Work: true, FetchPollInterval: 200 * time.Millisecond},
		jobs.Task{Name: "count", Every: time.Hour, Run: func(context.Context) error { runs.Add(1); return nil }},
		jobs.Task{Name: "flaky", Every: time.Hour, Run: func(context.Context) error {
			if fails.Add(1) == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	waitFor(t, "run on start", func() bool { return runs.Load() >= 1 })
	// A run still being completed absorbs the request; once it is done, a new one queues.
	waitFor(t, "run on demand queued", func() bool {
		queued, err := r.RunTaskNow(ctx, "count")
		if err != nil {
			t.Fatal(err)
		}
		return queued
	})
	waitFor(t, "run on demand", func() bool { return runs.Load() >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if fails.Load() < 1 {
		t.Fatal("flaky task never ran")
	}
}

func TestInvalidTasksAreRefused(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	if _, err := jobs.New(pool, jobs.Config{Work: true}, jobs.Task{Name: "x", Every: time.Second}); err == nil {
		t.Fatal("task without a function accepted")
	}
	f := func(context.Context) error { return nil }
	if _, err := jobs.New(pool, jobs.Config{Work: true}, jobs.Task{Name: "x", Every: time.Second, Run: f},
		jobs.Task{Name: "x", Every: time.Second, Run: f}); err == nil {
		t.Fatal("duplicate task accepted")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
