package vaults

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/testenv"
)

// TestEveryVaultHandledWithASmallBudget: islands with many vaults and a time budget that
// lets a run handle only some of them. Each run resumes after the last vault handled on
// each island, so after a few runs every vault was handled (before, every run started
// again from the lowest id and the tail of a large island was never reconciled, sampled
// or purged); and islands are worked on in parallel (a slow island does not eat the
// others' time).
func TestEveryVaultHandledWithASmallBudget(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := context.Background()
	var islands [2]int64
	for i := range islands {
		if err := pool.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region, replication_factor)
			VALUES ($1, 'http://127.0.0.1:1', 'x', 'http://127.0.0.1:2', 'garage', 1) RETURNING id`, testenv.Unique("isl-")).Scan(&islands[i]); err != nil {
			t.Fatal(err)
		}
	}
	const perIsland, budget = 300, 40 // vaults per island; vaults a run may handle per island
	var refs []vaultRef
	for i, isl := range islands {
		for n := range perIsland {
			refs = append(refs, vaultRef{ID: int64(i*10_000 + n + 1), IslandID: isl})
		}
	}
	s := New(pool, nil, nil, nil, Config{IslandTimeout: time.Second})

	var mu sync.Mutex
	seen := map[int64]bool{}
	var calls [2]int
	secondStarted := make(chan struct{})
	var once sync.Once
	parallel := true
	fn := func(ctx context.Context, id int64) error {
		i := int(id / 10_000)
		mu.Lock()
		calls[i]++
		n := calls[i]
		first := n == 1
		mu.Unlock()
		if i == 1 && first {
			once.Do(func() { close(secondStarted) })
		}
		if i == 0 && first && parallel {
			// The first island waits for the second to start: with islands handled one
			// after the other, it would wait until its budget ran out.
			select {
			case <-secondStarted:
			case <-ctx.Done():
				mu.Lock()
				parallel = false
				mu.Unlock()
				return ctx.Err()
			}
		}
		if n > budget {
			<-ctx.Done() // this vault takes the rest of the island's budget
			return ctx.Err()
		}
		mu.Lock()
		seen[id] = true
		mu.Unlock()
		return nil
	}
	for run := 1; ; run++ {
		calls = [2]int{}
		if err := s.byIsland(ctx, "test", refs, fn); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		mu.Lock()
		n, p := len(seen), parallel
		mu.Unlock()
		if !p {
			t.Fatal("the islands were not handled in parallel")
		}
		if n == len(refs) {
			t.Logf("every one of %d vaults handled after %d runs", n, run)
			break
		}
		if run > 2*perIsland/budget {
			t.Fatalf("%d of %d vaults handled after %d runs of %d per island", n, len(refs), run, budget)
		}
	}
}
