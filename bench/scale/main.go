// Command scale is Archipelago's scale benchmark (`make bench-scale`, docs/scale.md). For
// each federation size it seeds a fresh database (internal/scaleseed: members × vaults, one
// restic repository per vault, days of daily restore tests), starts `archipelago serve`
// (workers off) as its own process, and prints: the time to read every page of each API
// list, the main portal pages, /metrics and a federation report, the SQL statements each
// costs (from pg_stat_statements), and the server's resident memory (steady and peak).
// Then the P3 benchmark: authenticated GET /v1/vaults/{id} against a bare chi+pgx handler
// running the same vault query on the same database, under the same client load, in
// interleaved rounds, printing min/median/max of the throughput ratio.
//
// It starts its own PostgreSQL (with pg_stat_statements) and stops it, and stops the
// servers it starts, by their process ids.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/vaults"
)

func main() {
	var (
		sizes      = flag.String("sizes", "10,100,1000", "federation sizes (members), comma-separated")
		perMember  = flag.Int("vaults", 10, "vaults (each with one repository) per member")
		days       = flag.Int("days", 7, "days of daily restore tests per repository")
		bin        = flag.String("bin", "bin/archipelago", "the archipelago binary to serve with")
		p3Rounds   = flag.Int("p3-rounds", 5, "P3: interleaved rounds")
		p3Duration = flag.Duration("p3-duration", 3*time.Second, "P3: load duration of each side of a round")
		p3Clients  = flag.Int("p3-clients", 8, "P3: concurrent clients")
		repeat     = flag.Int("repeat", 3, "timed repetitions of each page (the median is printed)")
		maxPages   = flag.Int("max-pages", 0, "read at most this many pages of each API list (0: every page); the output says when a list was not read to its end")
		workers    = flag.Bool("workers", false, "also run `archipelago worker` (River and every periodic job) beside serve, and print both processes' RSS (after start, after the pages, and after -settle of workers running)")
		settle     = flag.Duration("settle", 60*time.Second, "with -workers: how long the workers run before the last RSS reading")
		pages      = flag.String("pages", "/,/restore-tests,/islands,/vaults,/members,/pledges,/people,/reports,/notifications,/tokens,/audit", "portal pages read as the federation admin, comma-separated")
		timeout    = flag.Duration("timeout", 5*time.Minute, "client timeout of each request")
		hold       = flag.Bool("hold", false, "after seeding the first size and starting serve, print the database URL, the server's address and the callers' credentials, and wait (until interrupted) instead of measuring: for EXPLAIN ANALYZE and profiling by hand")
		bareDB     = flag.String("bare-serve", "", "internal: serve the bare chi+pgx handler on this database URL")
		bareListen = flag.String("bare-listen", "", "internal: the bare handler's listen address")
	)
	flag.Parse()
	if *bareDB != "" {
		if err := serveBare(*bareDB, *bareListen); err != nil {
			fatal(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-sizes: %q is not a member count", s))
		}
		ns = append(ns, n)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log,
		Settings: []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.max=10000"}})
	if err != nil {
		fatal(err)
	}
	defer cluster.Stop()
	b := &bench{bin: *bin, cluster: cluster, repeat: *repeat, log: log, maxPages: *maxPages, workers: *workers, settle: *settle,
		pages: strings.Split(*pages, ","), timeout: *timeout, hold: *hold}
	for i, n := range ns {
		size := scaleseed.Size{Members: n, VaultsPerMember: *perMember, Days: *days, ChannelsPerMember: 1, ReportsPerMember: 2}
		p3 := i == len(ns)-1
		if err := b.run(ctx, size, p3, *p3Rounds, *p3Duration, *p3Clients); err != nil {
			fatal(fmt.Errorf("%d members: %w", n, err))
		}
	}
}

// metricsToken is the bench server's /metrics bearer token.
const metricsToken = "bench-scale-metrics-token"

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-scale:", err)
	os.Exit(1)
}

type bench struct {
	bin      string
	cluster  *pgcluster.Cluster
	repeat   int
	log      *slog.Logger
	maxPages int
	workers  bool
	settle   time.Duration
	pages    []string
	timeout  time.Duration
	hold     bool
}

// creds are the seeded federation's callers.
type creds struct {
	fedAccess     string // federation admin: access token (JWT)
	fedSession    string // federation admin: portal session
	memberToken   string // a member admin's API token (P3)
	memberVaults  []int64
	memberSession string
}

func (b *bench) run(ctx context.Context, size scaleseed.Size, p3 bool, rounds int, dur time.Duration, clients int) error {
	name := fmt.Sprintf("scale_%d_%d", size.Members, time.Now().UnixNano())
	url, err := b.cluster.CreateDatabase(ctx, name)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.MigrateUp(ctx, pool, nil); err != nil {
		return err
	}
	t0 := time.Now()
	if err := scaleseed.Seed(ctx, pool, size); err != nil {
		return err
	}
	counts, err := scaleseed.Counts(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Printf("\n== %d members: %d vaults, %d repositories, %d restore test runs, %d islands (seeded in %s)\n",
		size.Members, counts["vaults"], counts["restic_repositories"], counts["restore_test_runs"], counts["islands"],
		time.Since(t0).Round(time.Millisecond))

	jwtKey := seal.NewKey()
	port, err := freePort()
	if err != nil {
		return err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	c, err := makeCreds(ctx, pool, jwtKey, base)
	if err != nil {
		return err
	}
	masterKey := seal.NewKey()
	srv, err := b.serve(ctx, url, jwtKey, masterKey, port)
	if err != nil {
		return err
	}
	defer srv.stop()
	var wrk *server
	if b.workers {
		if wrk, err = b.worker(url, jwtKey, masterKey); err != nil {
			return err
		}
		defer wrk.stop()
	}
	stats, err := newStatements(ctx, b.cluster, name)
	if err != nil {
		return err
	}
	defer stats.close()
	h := &client{base: base, http: &http.Client{Timeout: b.timeout}}
	if b.hold {
		fmt.Printf("holding (interrupt to stop):\n  database %s\n  server %s\n  federation admin: Cookie archipelago_session=%s\n"+
			"  federation admin: Authorization: Bearer %s\n  member admin: Cookie archipelago_session=%s\n  /metrics: Authorization: Bearer %s\n",
			url, base, c.fedSession, c.fedAccess, c.memberSession, metricsToken)
		<-ctx.Done()
		return nil
	}
	fmt.Printf("server RSS after start: %.1f MiB\n", mib(rss(srv.pid, "VmRSS")))
	if wrk != nil {
		fmt.Printf("worker RSS after start: %.1f MiB\n", mib(rss(wrk.pid, "VmRSS")))
		fmt.Println("(the worker runs: the SQL counts below include its statements)")
	}

	fmt.Printf("%-34s %6s %8s %10s %10s %10s %10s\n", "API list (every page, limit 500)", "pages", "items", "total", "per page", "max page", "SQL/page")
	for _, path := range []string{"/v1/members", "/v1/islands", "/v1/pledges", "/v1/vaults", "/v1/repositories",
		"/v1/restore-tests", "/v1/notify/channels", "/v1/reports", "/v1/tokens", "/v1/quota/grants", "/v1/audit/entries"} {
		before := stats.count(ctx)
		pages, items, total, slowest, more, err := h.walk(ctx, path, c.fedAccess, b.maxPages)
		after := stats.count(ctx)
		if err != nil {
			fmt.Printf("%-34s error: %v\n", path, err)
			continue
		}
		fmt.Printf("%-34s %6d %8d %10s %10s %10s %10.1f%s\n", path, pages, items, ms(total), ms(total/time.Duration(max(1, pages))),
			ms(slowest), float64(after-before)/float64(max(1, pages)), map[bool]string{true: "  (stopped at -max-pages: more pages follow)"}[more])
	}

	fmt.Printf("%-34s %10s %10s %8s %8s\n", "portal page (federation admin)", "median", "max", "SQL", "KiB")
	for _, path := range b.pages {
		b.timed(ctx, h, stats, path, "GET", nil, map[string]string{"Cookie": "archipelago_session=" + c.fedSession})
	}
	fmt.Printf("%-34s %10s %10s %8s %8s\n", "portal page (member admin)", "median", "max", "SQL", "KiB")
	for _, path := range []string{"/", "/restore-tests", "/vaults"} {
		b.timed(ctx, h, stats, path, "GET", nil, map[string]string{"Cookie": "archipelago_session=" + c.memberSession})
	}
	fmt.Printf("%-34s %10s %10s %8s %8s\n", "other", "median", "max", "SQL", "KiB")
	body, _ := b.timed(ctx, h, stats, "/metrics", "GET", nil, map[string]string{"Authorization": "Bearer " + metricsToken})
	series := 0
	for _, l := range strings.Split(string(body), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			series++
		}
	}
	fmt.Printf("%-34s %d series\n", "  /metrics", series)
	b.timed(ctx, h, stats, "/v1/reports (federation report)", "POST",
		[]byte(`{"scope": "federation", "period": "custom"}`), map[string]string{"Authorization": "Bearer " + c.fedAccess})

	fmt.Printf("server RSS: steady %.1f MiB, peak %.1f MiB\n", mib(rss(srv.pid, "VmRSS")), mib(rss(srv.pid, "VmHWM")))
	if wrk != nil {
		fmt.Printf("worker RSS after the pages: %.1f MiB, peak %.1f MiB\n", mib(rss(wrk.pid, "VmRSS")), mib(rss(wrk.pid, "VmHWM")))
		// The workers keep running (polls, reconciliation, usage, notifications, River's
		// own maintenance); serve answers a round of pages meanwhile.
		deadline := time.Now().Add(b.settle)
		for time.Now().Before(deadline) {
			for _, path := range []string{"/", "/restore-tests", "/islands", "/vaults"} {
				_, _, _, _ = h.do(ctx, "GET", path, nil, map[string]string{"Cookie": "archipelago_session=" + c.fedSession})
			}
			_, _, _, _ = h.do(ctx, "GET", "/metrics", nil, map[string]string{"Authorization": "Bearer " + metricsToken})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wrk.done:
				return errors.New("archipelago worker exited")
			case <-time.After(5 * time.Second):
			}
		}
		fmt.Printf("after %s of workers running, with pages and /metrics every 5 s:\n", b.settle)
		fmt.Printf("  server RSS: steady %.1f MiB, peak %.1f MiB\n", mib(rss(srv.pid, "VmRSS")), mib(rss(srv.pid, "VmHWM")))
		fmt.Printf("  worker RSS: steady %.1f MiB, peak %.1f MiB\n", mib(rss(wrk.pid, "VmRSS")), mib(rss(wrk.pid, "VmHWM")))
	}
	if p3 {
		return b.p3(ctx, pool, h, c, rounds, dur, clients)
	}
	return nil
}

// timed requests path once untimed (warm-up, and to count its statements), then b.repeat
// times, and prints the median and max latency, the statements and the response size.
func (b *bench) timed(ctx context.Context, h *client, stats *statements, path, method string, body []byte,
	hdr map[string]string) ([]byte, error) {
	url := path
	if i := strings.Index(path, " "); i > 0 {
		url = path[:i]
	}
	before := stats.count(ctx)
	out, status, _, err := h.do(ctx, method, url, body, hdr)
	sql := stats.count(ctx) - before
	if err == nil && status >= 400 {
		err = fmt.Errorf("status %d: %.200s", status, out)
	}
	if err != nil {
		fmt.Printf("  %-32s error: %v\n", path, err)
		return nil, err
	}
	var ds []time.Duration
	for range b.repeat {
		_, _, d, err := h.do(ctx, method, url, body, hdr)
		if err != nil {
			fmt.Printf("  %-32s error: %v\n", path, err)
			return nil, err
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	fmt.Printf("  %-32s %10s %10s %8d %8.0f\n", path, ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), sql, float64(len(out))/1024)
	return out, nil
}

// makeCreds creates a federation admin and a member admin (of the first member) with their
// sessions, an access token and an API token, directly through internal/identity.
func makeCreds(ctx context.Context, pool *pgxpool.Pool, jwtKey, base string) (creds, error) {
	ids := identity.New(pool, slog.New(slog.DiscardHandler), identity.Config{JWTKey: []byte(jwtKey), Issuer: base,
		AccessTTL: 6 * time.Hour})
	actx := audit.WithActor(ctx, audit.System("bench-scale"))
	var first int64
	if err := pool.QueryRow(ctx, `SELECT min(id) FROM members`).Scan(&first); err != nil {
		return creds{}, err
	}
	const password = "bench-scale-password-1"
	err := pgx.BeginFunc(actx, pool, func(tx pgx.Tx) error {
		if _, err := ids.UserCreate(actx, tx, identity.NewUser{Email: "fed@bench.example", Password: password, FederationAdmin: true}); err != nil {
			return err
		}
		u, err := ids.UserCreate(actx, tx, identity.NewUser{Email: "admin@bench.example", Password: password})
		if err != nil {
			return err
		}
		return ids.MembershipSet(actx, tx, u.ID, first, identity.RoleAdmin)
	})
	if err != nil {
		return creds{}, err
	}
	var c creds
	fed, err := ids.Login(actx, "fed@bench.example", password, "192.0.2.1", "bench-scale")
	if err != nil {
		return c, err
	}
	c.fedAccess, c.fedSession = fed.AccessToken, fed.SessionSecret
	adm, err := ids.Login(actx, "admin@bench.example", password, "192.0.2.1", "bench-scale")
	if err != nil {
		return c, err
	}
	c.memberSession = adm.SessionSecret
	_, c.memberToken, err = ids.TokenCreate(identity.WithPrincipal(actx, adm.Principal), adm.Principal,
		identity.NewToken{Name: "bench", MemberID: first, Role: identity.RoleViewer})
	if err != nil {
		return c, err
	}
	if err := pool.QueryRow(ctx, `SELECT array_agg(id) FROM vaults WHERE member_id = $1`, first).Scan(&c.memberVaults); err != nil {
		return c, err
	}
	return c, nil
}

// server is a running `archipelago serve`.
type server struct {
	pid  int
	cmd  *exec.Cmd
	done chan struct{}
}

// worker starts `archipelago worker` on the seeded database: River and the periodic jobs.
// The seeded islands are placeholders (nothing answers at their addresses): polls and
// reconciliation fail fast and are retried, as with islands that are down.
func (b *bench) worker(url, jwtKey, masterKey string) (*server, error) {
	cmd := exec.Command(b.bin, "worker")
	cmd.Env = append(os.Environ(), "ARCHIPELAGO_DATABASE_URL="+url, "ARCHIPELAGO_MASTER_KEY="+masterKey,
		"ARCHIPELAGO_JWT_KEY="+jwtKey, "ARCHIPELAGO_LOG_LEVEL=error", "ARCHIPELAGO_REPORT_PERIODS=none")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case <-s.done:
		return nil, errors.New("archipelago worker exited at start")
	case <-time.After(3 * time.Second):
	}
	return s, nil
}

func (b *bench) serve(ctx context.Context, url, jwtKey, masterKey string, port int) (*server, error) {
	cmd := exec.Command(b.bin, "serve")
	cmd.Env = append(os.Environ(), "ARCHIPELAGO_DATABASE_URL="+url, "ARCHIPELAGO_MASTER_KEY="+masterKey,
		"ARCHIPELAGO_JWT_KEY="+jwtKey, "ARCHIPELAGO_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"ARCHIPELAGO_PUBLIC_URL=http://127.0.0.1:"+strconv.Itoa(port), "ARCHIPELAGO_RUN_WORKERS=false",
		"ARCHIPELAGO_LOG_LEVEL=warn", "ARCHIPELAGO_REPORT_PERIODS=none", "ARCHIPELAGO_METRICS_TOKEN="+metricsToken)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, errors.New("archipelago serve exited at start")
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("archipelago serve not ready after 60 s")
		}
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// statements reads pg_stat_statements' call count for one database, from a connection to
// another (so reading it is not counted).
type statements struct {
	conn *pgx.Conn
	db   string
}

func newStatements(ctx context.Context, c *pgcluster.Cluster, db string) (*statements, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return &statements{conn: conn, db: db}, nil
}

func (s *statements) count(ctx context.Context) int64 {
	var n int64
	if err := s.conn.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)`, s.db).Scan(&n); err != nil {
		return -1
	}
	return n
}

func (s *statements) close() { _ = s.conn.Close(context.Background()) }

// client makes requests to the server under test.
type client struct {
	base string
	http *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) ([]byte, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return out, resp.StatusCode, time.Since(start), err
}

// walk reads every page of an API list (?limit=500, following next_cursor; at most
// maxPages when > 0, more then says that pages remain) and counts the items of its one
// array property.
func (c *client) walk(ctx context.Context, path, token string, maxPages int) (pages, items int, total, slowest time.Duration,
	more bool, err error) {
	cursor := ""
	for {
		if maxPages > 0 && pages == maxPages {
			return pages, items, total, slowest, true, nil
		}
		u := path + "?limit=500"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		body, status, d, err := c.do(ctx, "GET", u, nil, map[string]string{"Authorization": "Bearer " + token})
		if err != nil {
			return pages, items, total, slowest, false, err
		}
		if status != 200 {
			return pages, items, total, slowest, false, fmt.Errorf("%s: status %d: %.200s", u, status, body)
		}
		pages++
		total += d
		slowest = max(slowest, d)
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(body, &doc); err != nil {
			return pages, items, total, slowest, false, err
		}
		for k, v := range doc {
			var arr []json.RawMessage
			if k != "next_cursor" && json.Unmarshal(v, &arr) == nil {
				items += len(arr)
			}
		}
		cursor = ""
		if raw, ok := doc["next_cursor"]; ok {
			_ = json.Unmarshal(raw, &cursor)
		}
		if cursor == "" {
			return pages, items, total, slowest, false, nil
		}
	}
}

// p3 compares an authenticated GET /v1/vaults/{id} with a bare chi+pgx handler running the
// same vault query on the same database, in interleaved rounds of equal client load.
func (b *bench) p3(ctx context.Context, pool *pgxpool.Pool, h *client, c creds, rounds int, dur time.Duration, clients int) error {
	// The bare handler runs in a process of its own, as the server does, so neither shares
	// a Go runtime with the load generator.
	port, err := freePort()
	if err != nil {
		return err
	}
	bareBase := "http://127.0.0.1:" + strconv.Itoa(port)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-bare-serve", pool.Config().ConnString(), "-bare-listen", "127.0.0.1:"+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	bare := &server{pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(bare.done) }()
	defer bare.stop()
	for i := 0; ; i++ {
		resp, err := http.Get(bareBase + "/vaults/" + strconv.FormatInt(c.memberVaults[0], 10))
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			return errors.New("bare server not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	bareBase += "/vaults/"

	load := func(base string, hdr map[string]string) (float64, error) {
		tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		var n, fails atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(dur)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					id := c.memberVaults[rand.IntN(len(c.memberVaults))]
					req, _ := http.NewRequestWithContext(ctx, "GET", base+strconv.FormatInt(id, 10), nil)
					for k, v := range hdr {
						req.Header.Set(k, v)
					}
					resp, err := hc.Do(req)
					if err != nil {
						fails.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						fails.Add(1)
						continue
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if fails.Load() > 0 {
			return 0, fmt.Errorf("%d failed requests to %s", fails.Load(), base)
		}
		return float64(n.Load()) / dur.Seconds(), nil
	}
	authHdr := map[string]string{"Authorization": "Bearer " + c.memberToken}
	// Warm both sides.
	if _, err := load(h.base+"/v1/vaults/", authHdr); err != nil {
		return err
	}
	if _, err := load(bareBase, nil); err != nil {
		return err
	}
	fmt.Printf("P3: authenticated GET /v1/vaults/{id} (API token) vs bare chi+pgx, %d clients, %s per side, %d rounds\n",
		clients, dur, rounds)
	var ratios []float64
	for i := range rounds {
		var a, bb float64
		var err error
		if i%2 == 0 { // alternate which side goes first
			if a, err = load(h.base+"/v1/vaults/", authHdr); err == nil {
				bb, err = load(bareBase, nil)
			}
		} else {
			if bb, err = load(bareBase, nil); err == nil {
				a, err = load(h.base+"/v1/vaults/", authHdr)
			}
		}
		if err != nil {
			return err
		}
		ratios = append(ratios, a/bb)
		fmt.Printf("  round %d: archipelago %.0f req/s, bare %.0f req/s, ratio %.2f\n", i+1, a, bb, a/bb)
	}
	sort.Float64s(ratios)
	fmt.Printf("P3 ratio: min %.2f, median %.2f, max %.2f (goal: median >= 0.50)\n", ratios[0], ratios[len(ratios)/2], ratios[len(ratios)-1])
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rss reads a memory field (VmRSS, VmHWM) of a process, in bytes.
func rss(pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return -1
}

func mib(b float64) float64 { return b / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// serveBare serves GET /vaults/{id} with chi and pgx only: the vault query Archipelago's
// handler runs (vaults.VaultGetByID), no authentication, no middleware. It runs until killed.
func serveBare(dbURL, listen string) error {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 25 // as Archipelago's pool (ARCHIPELAGO_DB_MAX_CONNS)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	r := chi.NewRouter()
	r.Get("/vaults/{id}", func(w http.ResponseWriter, req *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(req, "id"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		v, err := vaults.VaultGetByID(req.Context(), pool, id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
	srv := &http.Server{Addr: listen, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
