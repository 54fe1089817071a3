package verify

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/testenv"
)

// holdingProxy is a reverse proxy in front of MinIO that holds restic's pack reads while
// it is closed: a restore test caught in the middle, for as long as the test needs.
type holdingProxy struct {
	mu     sync.Mutex
	closed chan struct{}
	held   chan struct{}
	addr   string
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	h := &holdingProxy{held: make(chan struct{}, 1000)}
	u, _ := url.Parse("http://" + target)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		c := h.closed
		h.mu.Unlock()
		if c != nil && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") {
			h.held <- struct{}{}
			select {
			case <-c:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { h.open(); _ = srv.Close() })
	return h
}

func (h *holdingProxy) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed == nil {
		h.closed = make(chan struct{})
	}
}

func (h *holdingProxy) open() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		close(h.closed)
		h.closed = nil
	}
}

// riverCompleterRetries is about how long River keeps retrying to record a job's end
// (jobcompleter: 3 attempts, 1 s, 2 s and 4 s apart).
const riverCompleterRetries = 7 * time.Second

// TestPostgresRestartWhileWorkersRun: PostgreSQL goes down while a worker is in the middle
// of a restore test and stays down until that attempt has ended (its result could not be
// recorded and River's completer could not record the attempt's end during the outage).
// Once PostgreSQL is back, the same worker process (never restarted) gives the run exactly
// one result: the worker hands the error of recording to River, which records the attempt
// and retries it (the sweeper would, were the worker dead), and the retry passes. The run
// is never left `running`. The island slot's session advisory lock died with the
// connection; the retry takes a slot again.
func TestPostgresRestartWhileWorkersRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(pg.Stop)
	dbURL, err := pg.CreateDatabase(ctx, "archipelago")
	if err != nil {
		t.Fatal(err)
	}
	mp, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := database.MigrateUp(ctx, mp, nil); err != nil {
		t.Fatal(err)
	}
	mp.Close()

	b := setupOn(t, fastLiveness, dbURL)
	f := b.newRepo("restic/restart", false, false, Policy{})
	b.backup(f)
	hold := startHoldingProxy(t, b.s3.Endpoint)
	if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET s3_endpoint = $1 WHERE id = $2`, "http://"+hold.addr, b.islandID); err != nil {
		t.Fatal(err)
	}
	b.worker(&river.Config{PeriodicJobs: b.svc.PeriodicJobs()})

	hold.close()
	run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	select { // the test is reading packs: in the middle of its work
	case <-hold.held:
	case <-time.After(3 * time.Minute):
		t.Fatal("the restore test never read a pack")
	}
	if dirs := jobDirs(t, b.scratch); len(dirs) != 1 {
		t.Fatalf("job directories while the test runs: %v", dirs)
	}

	if err := pg.Halt(false); err != nil {
		t.Fatalf("halt PostgreSQL: %v", err)
	}
	hold.open()
	// The attempt ends while the database is down (its scratch goes with it).
	for deadline := time.Now().Add(5 * time.Minute); len(jobDirs(t, b.scratch)) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the attempt did not end while PostgreSQL was down: %v", jobDirs(t, b.scratch))
		}
	}
	// The outage lasts well beyond River's own retries of the attempt's completion (3 tries,
	// about 7 s): River cannot record that the attempt ended, and its job stays `running`
	// with no worker on it. This is the fault's duration, not a wait for an outcome.
	time.Sleep(3 * riverCompleterRetries)
	if err := pg.Resume(ctx); err != nil {
		t.Fatalf("resume PostgreSQL: %v", err)
	}

	done := b.wait(run.ID, 3*time.Minute) // the bound is HeartbeatTimeout + SweepEvery (3 s here) plus a test
	// The attempt's result could not be recorded: the worker hands that failure to River
	// (it never swallows it), and River retries the test once it can record the attempt's
	// end. The backup is healthy, so the retry's verdict is passed. An error outcome here
	// means the test was not retried: a run closed by the sweeper because its job
	// completed without a result (what happens when the worker drops its recording error).
	if done.Status != StatusPassed || done.Attempt < 2 {
		t.Fatalf("after the restart: %s, want passed on a retry (attempt 2 or later)", describe(done))
	}
	t.Logf("after the restart: %s (attempt %d)", done.Status, done.Attempt)
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM restore_test_runs WHERE repository_id = $1`, f.repo.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d runs recorded for one test (err %v)", n, err)
	}
}
