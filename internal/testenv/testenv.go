// Package testenv gives tests real parts: each test gets its own PostgreSQL database
// (cloned from a migrated template, dropped afterwards) or a rolled-back transaction, and a
// real MinIO S3 server shared by the test process.
//
// When `make test` started the services it passes them in ARCHIPELAGO_TEST_PG_URL and
// ARCHIPELAGO_TEST_S3_* (see `archipelago testenv`); otherwise the first test that needs a
// service starts a throwaway one, and Main stops it when the package's tests end. Packages
// that use this harness call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/migrations"
)

// Environment variables through which `archipelago testenv` hands its services to tests.
const (
	EnvPGURL       = "ARCHIPELAGO_TEST_PG_URL"
	EnvS3Endpoint  = "ARCHIPELAGO_TEST_S3_ENDPOINT"
	EnvS3AccessKey = "ARCHIPELAGO_TEST_S3_ACCESS_KEY"
	EnvS3SecretKey = "ARCHIPELAGO_TEST_S3_SECRET_KEY"
	EnvS3Region    = "ARCHIPELAGO_TEST_S3_REGION"
)

// S3Server is a real S3 server (MinIO) with root credentials.
type S3Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Region    string
}

// URL is the server's http URL.
func (s S3Server) URL() string { return "http://" + s.Endpoint }

// process-wide state: one cluster, one template, one MinIO per test binary.
var (
	mu       sync.Mutex
	cluster  *pgcluster.Cluster
	minio    *minioserver.Server
	adminURL string
	admin    *pgxpool.Pool
	template string
	shared   *pgxpool.Pool
	s3       *S3Server
)

// Main runs the package's tests and then stops every service this process started.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the services this process started. Main calls it.
func Shutdown() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.Close()
	}
	if admin != nil {
		admin.Close()
	}
	if cluster != nil {
		cluster.Stop()
		cluster = nil
	}
	if minio != nil {
		minio.Stop()
		minio = nil
	}
}

func adminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if admin != nil {
		return admin
	}
	ctx := context.Background()
	adminURL = os.Getenv(EnvPGURL)
	if adminURL == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{})
		if err != nil {
			t.Fatalf("testenv: start PostgreSQL: %v", err)
		}
		cluster = c
		adminURL = c.URL("postgres")
	}
	p, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		t.Fatalf("testenv: connect to PostgreSQL: %v", err)
	}
	admin = p
	return admin
}

// templateName is keyed by the migrations' content, so a changed migration gets a fresh
// template in a long-lived cluster.
func templateName() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(migrations.FS, path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	h.Write([]byte(database.ExtraSchemaVersion))
	return "archipelago_tpl_" + hex.EncodeToString(h.Sum(nil))[:16]
}

func dbURL(name string) string {
	i := strings.LastIndex(adminURL, "/")
	rest := ""
	if q := strings.Index(adminURL[i:], "?"); q >= 0 {
		rest = adminURL[i+q:]
	}
	return adminURL[:i+1] + name + rest
}

// ensureTemplate creates the migrated template database once per cluster; concurrent test
// processes serialise on an advisory lock.
func ensureTemplate(t testing.TB) string {
	t.Helper()
	pool := adminPool(t)
	mu.Lock()
	defer mu.Unlock()
	if template != "" {
		return template
	}
	ctx := context.Background()
	name := templateName()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(424242)`); err != nil {
		t.Fatalf("testenv: lock: %v", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(424242)`)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if !exists {
		building := name + "_build"
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{building}.Sanitize()+` WITH (FORCE)`)
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{building}.Sanitize()); err != nil {
			t.Fatalf("testenv: create template: %v", err)
		}
		p, err := pgxpool.New(ctx, dbURL(building))
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		err = database.MigrateUp(ctx, p, nil)
		p.Close()
		if err != nil {
			t.Fatalf("testenv: migrate template: %v", err)
		}
		if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{building}.Sanitize()+` RENAME TO `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	template = name
	return template
}

// DBURL creates a fresh, fully migrated database for this test and returns its URL. The
// database is dropped when the test ends.
func DBURL(t testing.TB) string {
	t.Helper()
	tpl := ensureTemplate(t)
	pool := adminPool(t)
	name := "t_" + randHex(8)
	ctx := context.Background()
	var err error
	for i := 0; i < 20; i++ {
		_, err = pool.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{tpl}.Sanitize())
		// "source database is being accessed by other users": another process is cloning it.
		if err == nil || !strings.Contains(err.Error(), "being accessed") {
			break
		}
		time.Sleep(time.Duration(50+i*20) * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: create test database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	})
	return dbURL(name)
}

// DB returns a pool on a fresh, fully migrated database of this test's own, for tests that
// must commit (or run concurrent transactions). It is closed and dropped after the test.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	// Opened as production opens its pool: every acquire has a deadline.
	p, err := database.Open(context.Background(), DBURL(t), time.Minute)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Close) // registered after the drop, so it runs before it
	return p
}

// Tx returns a transaction on a migrated database shared by the test process, rolled back
// when the test ends: the cheapest isolation, for tests that need not commit.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	mu.Lock()
	p := shared
	mu.Unlock()
	if p == nil {
		url := DBURL(&keepT{t}) // not dropped per test: shared by the process
		np, err := pgxpool.New(context.Background(), url)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		mu.Lock()
		if shared == nil {
			shared = np
		} else {
			np.Close()
		}
		p = shared
		mu.Unlock()
	}
	tx, err := p.Begin(context.Background())
	if err != nil {
		t.Fatalf("testenv: begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(context.Background())) })
	return tx
}

// keepT drops Cleanup registrations: the shared database lives as long as the cluster.
type keepT struct{ testing.TB }

func (keepT) Cleanup(func()) {}

// S3 returns the process's MinIO server, starting it on first use.
func S3(t testing.TB) S3Server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if s3 != nil {
		return *s3
	}
	if ep := os.Getenv(EnvS3Endpoint); ep != "" {
		s3 = &S3Server{Endpoint: ep, AccessKey: os.Getenv(EnvS3AccessKey), SecretKey: os.Getenv(EnvS3SecretKey),
			Region: os.Getenv(EnvS3Region)}
		if s3.Region == "" {
			s3.Region = "garage"
		}
		return *s3
	}
	srv, err := minioserver.Start(context.Background(), minioserver.Options{})
	if err != nil {
		t.Fatalf("testenv: start MinIO: %v", err)
	}
	minio = srv
	s3 = &S3Server{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region}
	return *s3
}

// Logger returns a logger writing to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Unique returns a short random name with prefix, for buckets, users and slugs that must
// not collide between parallel tests.
func Unique(prefix string) string { return fmt.Sprintf("%s%s", prefix, randHex(5)) }

// Statements counts the statements a pool sends (a pgx.QueryTracer): tests that prove a
// page or a report costs a fixed number of statements read it before and after.
type Statements struct{ n atomic.Int64 }

// TraceQueryStart counts one statement.
func (s *Statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}

// TraceQueryEnd does nothing.
func (s *Statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Count is how many statements the pool has sent so far.
func (s *Statements) Count() int64 { return s.n.Load() }

// CountedDB is DB's fresh database of the test's own, on a pool whose statements the
// returned Statements count.
func CountedDB(t testing.TB) (*pgxpool.Pool, *Statements) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(DBURL(t))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s := &Statements{}
	cfg.ConnConfig.Tracer = s
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close) // registered after the drop, so it runs before it
	return pool, s
}
