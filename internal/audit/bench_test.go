package audit

// Benchmarks of the log's costs, printed as ratios (not run by `make test`):
//
//	go test -run '^$' -bench 'Append$' -benchtime 1x ./internal/audit/   (5 rounds)
//	go test -run '^$' -bench Verify1M -benchtime 5x ./internal/audit/    (5 rounds)
//
// Each prints its ratio per round and in how many rounds the goal holds.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/testenv"
)

// plainRecord is Record without the tree: the same lock and the same row, without the tree
// hashes, into a copy of the table (plainTable), the lock and the insert sent together as
// Record sends them. The baseline of BenchmarkAppend.
func plainRecord(ctx context.Context, tx pgx.Tx, e Entry) error {
	raw, err := json.Marshal(e.Details)
	if err != nil {
		return err
	}
	actor, req := actorOf(ctx), RequestFrom(ctx)
	var seq int64
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, appendLockID)
	b.Queue(`
		INSERT INTO plain_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action,
		                           target_type, target_id, request_id, source_ip, details)
		SELECT coalesce(max(seq) + 1, 0), $1::timestamptz, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::text,
		       $9::text, $10::text, $11::json
		FROM plain_entries
		RETURNING seq`, time.Now().UTC().Truncate(time.Microsecond), string(actor.Kind), actor.ID, actor.Name, e.MemberID, e.Action,
		e.TargetType, e.TargetID, req.ID, req.SourceIP, string(raw)).QueryRow(func(row pgx.Row) error {
		return row.Scan(&seq)
	})
	return tx.SendBatch(ctx, b).Close()
}

func actorOf(ctx context.Context) Actor {
	a, _ := ActorFrom(ctx)
	return a
}

// plainTable is audit_entries as it would be without the tree: the same columns but
// tree_hashes, the same constraints, indexes and foreign key.
const plainTable = `
	CREATE TABLE plain_entries (LIKE audit_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
	ALTER TABLE plain_entries DROP COLUMN tree_hashes;
	ALTER TABLE plain_entries ADD FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE RESTRICT`

// appendWith8Writers runs n committed appends from 8 concurrent writers and returns the
// mean latency of one transaction (begin → commit).
func appendWith8Writers(b *testing.B, pool *pgxpool.Pool, n int, rec func(ctx context.Context, tx pgx.Tx, i int) error) time.Duration {
	ctx := WithRequest(WithActor(context.Background(), Actor{Kind: ActorUser, ID: "7", Name: "ana@example.org"}),
		Request{ID: "req", SourceIP: "192.0.2.1"})
	const writers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total time.Duration
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				start := time.Now()
				if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return rec(ctx, tx, i) }); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				total += time.Since(start)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total / time.Duration(n)
}

// BenchmarkAppend compares appends to the tree with the same inserts without it, with 8
// concurrent writers (goal: at most 1.3× the latency).
func BenchmarkAppend(b *testing.B) {
	n := max(b.N, appendMin)
	details := map[string]any{"name": "backups", "quota_bytes": 500000000000, "island": 3}
	// One connection per writer (Config returns a copy: a pool of its own is needed).
	writersPool := func() *pgxpool.Pool {
		cfg := testenv.DB(b).Config()
		cfg.MaxConns = 8
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		return p
	}
	plainPool, treePool := writersPool(), writersPool()
	if _, err := plainPool.Exec(context.Background(), plainTable); err != nil {
		b.Fatal(err)
	}
	entry := Entry{Action: "vault.create", TargetType: "vault", TargetID: "12", Details: details}
	plainRun := func(n int) time.Duration {
		return appendWith8Writers(b, plainPool, n, func(ctx context.Context, tx pgx.Tx, i int) error { return plainRecord(ctx, tx, entry) })
	}
	app := NewAppender() // the tree side's process appends as archipelago's do (WithAppender)
	treeRun := func(n int) time.Duration {
		return appendWith8Writers(b, treePool, n, func(ctx context.Context, tx pgx.Tx, i int) error {
			_, err := Record(WithAppender(ctx, app), tx, entry)
			return err
		})
	}
	// Warm up (each connection prepares its statements and settles on their plans). Then
	// each round alternates slices of plain and tree appends (plain first in even slices,
	// tree first in odd ones), so that a change in the machine's load within a round weighs
	// on both sides alike: on a machine shared with other work, a round made of one run of
	// each side measured the load of the moment as much as the log.
	plainRun(appendWarmUp)
	treeRun(appendWarmUp)
	b.ResetTimer()
	var (
		plain, tree time.Duration
		ratios      []float64
	)
	per := (n + appendRounds*appendSlices - 1) / (appendRounds * appendSlices) // appends per slice and side
	for range appendRounds {
		var p, t time.Duration
		for s := range appendSlices {
			if s%2 == 0 {
				p += plainRun(per)
				t += treeRun(per)
			} else {
				t += treeRun(per)
				p += plainRun(per)
			}
		}
		p, t = p/appendSlices, t/appendSlices
		plain, tree = plain+p, tree+t
		ratios = append(ratios, float64(t)/float64(p))
	}
	per *= appendSlices
	b.StopTimer()
	// What was measured is a log that verifies, written mostly from the process's head.
	if rep, err := Verify(context.Background(), treePool, Keys{}); err != nil || !rep.OK() {
		b.Fatalf("the tree side's log does not verify: %v %v", err, rep)
	}
	predicted, redone := app.AppendCounts()
	ratio := float64(tree) / float64(plain)
	b.ReportMetric(ratio, "tree/plain")
	fmt.Fprintf(os.Stderr, "append, 8 writers, %d appends in %d rounds: plain %v, tree %v per transaction: ratio %.2f× (goal ≤ 1.3×)\n",
		per*appendRounds, appendRounds, plain/appendRounds, tree/appendRounds, ratio)
	fmt.Fprintf(os.Stderr, "  per round, tree ÷ plain: %s — ≤ 1.3× in %d of %d rounds\n", roundList(ratios, "%.2f×"),
		countIf(ratios, func(x float64) bool { return x <= 1.3 }), len(ratios))
	fmt.Fprintf(os.Stderr, "  tree side: %d appends computed from the process's head, %d by the database (audit.Appender)\n", predicted, redone)
}

// roundList formats per-round ratios.
func roundList(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " ")
}

// countIf counts the ratios that meet a goal.
func countIf(xs []float64, ok func(float64) bool) int {
	n := 0
	for _, x := range xs {
		if ok(x) {
			n++
		}
	}
	return n
}

// appendWarmUp, appendRounds and appendSlices shape BenchmarkAppend: untimed appends
// first, then the timed ones in rounds of alternating slices.
// Fewer than appendMin appends measure the machine's noise more than the log.
const (
	appendWarmUp = 8 * 20
	appendRounds = 5
	appendSlices = 10 // per round and side
	appendMin    = 10000
)

// syntheticEntries returns n entries shaped like real ones.
func syntheticEntries(n int) []LogEntry {
	es := make([]LogEntry, n)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range es {
		m := int64(i%40 + 1)
		es[i] = LogEntry{Seq: int64(i), At: base.Add(time.Duration(i) * time.Second), Actor: Actor{Kind: ActorUser, ID: "17", Name: "admin@member.example"},
			MemberID: &m, Action: "vault.update", TargetType: "vault", TargetID: fmt.Sprint(i % 997), RequestID: "host/AbCdEf0123-000042",
			SourceIP: "2001:db8::17", Details: json.RawMessage(fmt.Sprintf(`{"quota_bytes": %d, "name": "backups-%d", "island": 3}`, i*1000, i))}
	}
	return es
}

// BenchmarkVerify1M compares recomputing the tree of 1,000,000 entries as Verify does
// (encode each leaf, hash it, build the tree, compare each entry's stored hashes, compute
// the root) with raw SHA-256 over the same leaf bytes (goal: raw/verify ≥ 0.5).
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	es := syntheticEntries(n)
	leaves := make([][]byte, n)
	stored := make([][]byte, n) // the tree hashes each entry's row holds
	ref := &refTree{hashes: make([]tlog.Hash, 0, 2*n)}
	size := 0
	var rows []byte // (one array, as Verify scans rows one after the other)
	for i := range es {
		leaves[i] = es[i].Leaf()
		size += len(leaves[i])
		rows = append(rows, ref.add(b, &es[i])...)
	}
	for i, at := 0, 0; i < n; i++ {
		k := storedCount(int64(i)) * tlog.HashSize
		stored[i], at = rows[at:at+k:at+k], at+k
	}
	runtime.GC() // (the fixture's garbage collected before timing)
	b.ResetTimer()
	var (
		raw, verify time.Duration
		ratios      []float64 // per iteration (round): raw ÷ tree
	)
	for it := 0; it < b.N; it++ {
		rawBefore, verifyBefore := raw, verify
		start := time.Now()
		var sink [32]byte
		for _, l := range leaves {
			sink = sha256.Sum256(l)
		}
		_ = sink
		raw += time.Since(start)

		start = time.Now()
		// As Verify does: batches of leaves and their subtrees hashed in parallel, each
		// entry's stored hashes compared, the frontier between batches kept in order on
		// another goroutine while the next batch is hashed, and the root computed.
		tc := newTreeCheck([]int64{n}, func(p Problem) { b.Fatal(p) })
		for lo := 0; lo < n; lo += leafBatch {
			buf := tc.pipe.next()
			// (Verify fills its buffers as it reads.)
			buf.entries, buf.stored = es[lo:min(lo+leafBatch, n)], stored[lo:min(lo+leafBatch, n)]
			tc.pipe.send(buf)
		}
		if err := tc.pipe.wait(); err != nil {
			b.Fatal(err)
		}
		if _, ok := tc.roots[n]; !ok {
			b.Fatal("no root")
		}
		verify += time.Since(start)
		ratios = append(ratios, float64(raw-rawBefore)/float64(verify-verifyBefore))
	}
	b.StopTimer()
	ratio := float64(raw) / float64(verify)
	b.ReportMetric(ratio, "raw/verify")
	fmt.Fprintf(os.Stderr, "verify 1,000,000 entries (%d MB of leaves): raw SHA-256 %v, tree %v: ratio %.2f (goal ≥ 0.5)\n",
		size>>20, raw/time.Duration(b.N), verify/time.Duration(b.N), ratio)
	fmt.Fprintf(os.Stderr, "  per round (-benchtime 5x: 5 rounds), raw ÷ tree: %s — ≥ 0.5 in %d of %d rounds\n", roundList(ratios, "%.2f"),
		countIf(ratios, func(x float64) bool { return x >= 0.5 }), len(ratios))
}

// BenchmarkVerifyDB1M runs Verify end to end on a database of 1,000,000 entries (slow to
// set up: only with ARCHIPELAGO_BENCH_DB=1).
func BenchmarkVerifyDB1M(b *testing.B) {
	if os.Getenv("ARCHIPELAGO_BENCH_DB") == "" {
		b.Skip("set ARCHIPELAGO_BENCH_DB=1 to load 1,000,000 entries into PostgreSQL")
	}
	const n = 1_000_000
	ctx := context.Background()
	pool := testenv.DB(b)
	es := syntheticEntries(n)
	ref := &refTree{hashes: make([]tlog.Hash, 0, 2*n)}
	rows := make([][]byte, n)
	for i := range es {
		rows[i] = ref.add(b, &es[i])
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"audit_entries"}, []string{"seq", "at", "actor_kind", "actor_id", "actor_name",
		"member_id", "action", "target_type", "target_id", "request_id", "source_ip", "details", "tree_hashes"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			e := es[i]
			return []any{e.Seq, e.At, string(e.Actor.Kind), e.Actor.ID, e.Actor.Name, e.MemberID, e.Action, e.TargetType, e.TargetID,
				e.RequestID, e.SourceIP, string(e.Details), rows[i]}, nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := KeysFromSeed("bench/archipelago-audit", make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := NewService(pool, keys, testenv.Logger(b)).Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		rep, err := Verify(ctx, pool, keys)
		if err != nil || !rep.OK() {
			b.Fatalf("%v %+v", err, rep)
		}
		fmt.Fprintf(os.Stderr, "Verify from PostgreSQL, %d entries: %v\n", rep.Entries, rep.Duration)
	}
}
