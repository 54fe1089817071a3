package audit

// BenchmarkAppendCPU measures what BenchmarkAppend's latencies blur on a busy machine: the
// CPU the database backend spends per append (from /proc, so with PostgreSQL on this
// machine, as testenv runs it), tree against plain, one writer per side, in alternating
// slices, and the CPU of the whole test process (the client's encoding and hashing, which
// run on the same cores):
//
//	go test -run '^$' -bench AppendCPU -benchtime 1x ./internal/audit/
//
// ARCHIPELAGO_BENCH_PIDS=FILE writes the two backends' process ids to FILE and waits 5 s
// before measuring (time to attach a profiler to them: perf record -p PID).

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/testenv"
)

// backendCPU is the CPU time the process pid has run on a core (/proc/PID/schedstat, in
// nanoseconds: finer than the clock ticks of /proc/PID/stat).
func backendCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw))
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendCPU compares the backend CPU of appends to the tree with that of the same
// inserts without it (the work done under the append lock, on the critical path).
func BenchmarkAppendCPU(b *testing.B) {
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		b.Skip("no /proc/PID/schedstat: the backends' CPU cannot be read")
	}
	ctx := WithRequest(WithActor(context.Background(), Actor{Kind: ActorUser, ID: "7", Name: "ana@example.org"}),
		Request{ID: "req", SourceIP: "192.0.2.1"})
	one := func() (*pgxpool.Pool, int) {
		cfg := testenv.DB(b).Config()
		cfg.MaxConns, cfg.MinConns = 1, 1
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		var pid int
		if err := p.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			b.Fatal(err)
		}
		return p, pid
	}
	pp, ppid := one()
	tp, tpid := one()
	if _, err := pp.Exec(ctx, plainTable); err != nil {
		b.Fatal(err)
	}
	entry := Entry{Action: "vault.create", TargetType: "vault", TargetID: "12", Details: map[string]any{"name": "backups", "quota_bytes": 500000000000, "island": 3}}
	app := NewAppender()        // the tree side appends as archipelago's processes do (WithAppender)
	var client [2]time.Duration // the test process's CPU during plain and tree slices
	run := func(p *pgxpool.Pool, n int, tree bool) {
		c0 := selfCPU()
		for i := 0; i < n; i++ {
			err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
				if tree {
					_, err := Record(WithAppender(ctx, app), tx, entry)
					return err
				}
				return plainRecord(ctx, tx, entry)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		k := 0
		if tree {
			k = 1
		}
		client[k] += selfCPU() - c0
	}
	run(pp, 200, false)
	run(tp, 200, true)
	if f := os.Getenv("ARCHIPELAGO_BENCH_PIDS"); f != "" {
		if err := os.WriteFile(f, []byte(fmt.Sprintf("%d %d\n", ppid, tpid)), 0o644); err != nil {
			b.Fatal(err)
		}
		time.Sleep(5 * time.Second)
	}
	client = [2]time.Duration{}
	const slices, per = 80, 400
	var pc, tc time.Duration
	for s := 0; s < slices; s++ {
		p0, t0 := backendCPU(b, ppid), backendCPU(b, tpid)
		if s%2 == 0 {
			run(pp, per, false)
			run(tp, per, true)
		} else {
			run(tp, per, true)
			run(pp, per, false)
		}
		pc += backendCPU(b, ppid) - p0
		tc += backendCPU(b, tpid) - t0
	}
	n := time.Duration(slices * per)
	fmt.Fprintf(os.Stderr, "backend CPU per append, %d appends each: plain %v, tree %v: %.3f×; client CPU per append: plain %v, tree %v\n",
		n, pc/n, tc/n, float64(tc)/float64(pc), client[0]/n, client[1]/n)
}
