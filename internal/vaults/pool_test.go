package vaults_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/vaults"
)

// TestPoolSizedKeyCreationsAllComplete runs as many concurrent key creations as the
// pool has connections (ARCHIPELAGO_DB_MAX_CONNS at its minimum, 4), first on one vault
// (each waiting for the vault's lock) and then on as many vaults (each holding a lock).
// Before, a waiter held a pooled connection while waiting for the lock and a holder
// kept its lock's connection while it needed a second one for its transaction: the pool
// ran dry and every call hung until its deadline. Now every one completes.
func TestPoolSizedKeyCreationsAllComplete(t *testing.T) {
	t.Parallel()
	b := setupWith(t, false)
	const maxConns = 4
	pool, err := database.Open(b.ctx, b.pool.Config().ConnString(), 10*time.Second, maxConns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.DiscardHandler)
	svc := vaults.New(pool, b.keys, islands.New(pool, b.keys, log, islands.Config{CallTimeout: 30 * time.Second}), log,
		vaults.Config{GarageTimeout: 90 * time.Second})

	run := func(name string, vaultIDs []int64) {
		var wg sync.WaitGroup
		errs := make([]error, len(vaultIDs))
		for i, id := range vaultIDs {
			wg.Go(func() {
				_, errs[i] = svc.KeyCreate(b.ctx, id, vaults.KeyInput{Name: fmt.Sprintf("k%d", i)})
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s: %d concurrent key creations on a pool of %d still running after 3 minutes", name, len(vaultIDs), maxConns)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s: key creation %d: %v", name, i, err)
			}
		}
	}

	one := b.create(t, b.memberB, 1_000_000)
	run("one vault", []int64{one.ID, one.ID, one.ID, one.ID})

	var several []int64
	for range maxConns {
		several = append(several, b.create(t, b.memberB, 1_000_000).ID)
	}
	run("several vaults", several)
	if st := pool.Stat(); st.AcquiredConns() != 0 {
		t.Errorf("%d connections still acquired", st.AcquiredConns())
	}
}

// TestPoolAcquireHasADeadline: a pool opened by database.Open gives up waiting for a
// connection (rather than hanging) even when the caller's context has no deadline.
func TestPoolAcquireHasADeadline(t *testing.T) {
	t.Parallel()
	b := setupWith(t, false)
	pool, err := database.OpenWithAcquireTimeout(b.ctx, b.pool.Config().ConnString(), 10*time.Second, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var held []func()
	release := func() {
		for _, r := range held {
			r()
		}
		held = nil
	}
	t.Cleanup(release) // before pool.Close (cleanups run last first), which waits for them
	for range 4 {
		c, err := pool.Acquire(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c.Release)
	}
	done := make(chan error, 1)
	go func() {
		_, err := pool.Exec(context.Background(), `SELECT 1`)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a fifth connection out of a pool of 4")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("acquire on an exhausted pool is still waiting after 2 minutes")
	}
	release()
}
