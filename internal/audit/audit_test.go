package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRecordRefusesAnUnattributedChange(t *testing.T) {
	t.Parallel()
	tx := testenv.Tx(t)
	_, err := audit.Record(context.Background(), tx, audit.Entry{Action: "member.create"})
	if !errors.Is(err, audit.ErrNoActor) {
		t.Fatalf("err = %v, want ErrNoActor", err)
	}
}

func TestConcurrentAppendsAreGapFree(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := audit.WithActor(context.Background(), audit.System("test"))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := audit.Record(ctx, tx, audit.Entry{Action: "test.append", Details: map[string]any{"i": i}}); err != nil {
					t.Error(err)
				}
				if i%3 == 0 {
					_ = tx.Rollback(ctx) // rolled-back appends must not leave gaps
				} else if err := tx.Commit(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var n, maxSeq int64
	if err := pool.QueryRow(ctx, `SELECT count(*), max(seq) FROM audit_entries`).Scan(&n, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != 8*6 || maxSeq != n-1 {
		t.Fatalf("%d entries with max seq %d: gaps or duplicates", n, maxSeq)
	}
	// The tree is consistent with the entries: no fork, no missing hash.
	keys, err := audit.KeysFromSeed("t/archipelago-audit", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewService(pool, keys, testenv.Logger(t)).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, pool, keys)
	if err != nil || !rep.OK() || rep.Entries != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestFingerprintHidesTheSecret(t *testing.T) {
	t.Parallel()
	key := []byte("k")
	a, b := audit.Fingerprint(key, "secret-1"), audit.Fingerprint(key, "secret-2")
	if a == b || a != audit.Fingerprint(key, "secret-1") {
		t.Fatal("fingerprints not stable or not distinct")
	}
}
