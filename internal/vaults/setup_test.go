package vaults_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const gb = 1_000_000_000

// bundle is the federation of most tests: member A operates island north (where it
// pledges 300 GB, so it may hold 100 GB), member B operates island south.
type bundle struct {
	ctx          context.Context
	pool         *pgxpool.Pool
	keys         *seal.Keyring
	svc          *vaults.Service
	log          *testenv.Logs
	clock        *clock
	memberA      int64
	memberB      int64
	north, south vaultstest.Island
}

type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func setup(t *testing.T) *bundle { return setupWith(t, true) }

// setupWith builds the bundle; verbose sends the service's log to the test's log too.
func setupWith(t testing.TB, verbose bool) *bundle {
	t.Helper()
	b := &bundle{ctx: audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorUser, ID: "1", Name: "tester@example.org"}),
		pool: testenv.DB(t), log: &testenv.Logs{}, clock: &clock{}}
	kr, err := seal.ParseKeyring(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b.keys = kr
	var out io.Writer = b.log
	if verbose {
		out = io.MultiWriter(b.log, testenv.LogWriter(t))
	}
	logger := testenv.LoggerTo(out, slog.LevelDebug)
	isl := islands.New(b.pool, kr, logger, islands.Config{})
	b.svc = vaults.New(b.pool, kr, isl, logger, vaults.Config{PendingGrace: time.Nanosecond, Now: b.clock.Now,
		GarageTimeout: vaults.DefaultGarageTimeout}) // never tighter than production
	b.memberA = vaultstest.Member(t, b.pool, testenv.Unique("member-a-"))
	b.memberB = vaultstest.Member(t, b.pool, testenv.Unique("member-b-"))
	b.north = vaultstest.StartIsland(t, b.pool, kr, "north", 3, b.memberA)
	b.south = vaultstest.StartIsland(t, b.pool, kr, "south", 3, b.memberB)
	vaultstest.Pledge(t, b.pool, b.north, b.memberA, 300*gb)
	vaultstest.Pledge(t, b.pool, b.south, b.memberB, 300*gb)
	return b
}

// create makes a vault of member with a unique name, failing the test on error.
func (b *bundle) create(t *testing.T, member int64, quota int64) vaults.Vault {
	t.Helper()
	v, created, err := b.svc.Create(b.ctx, vaults.CreateInput{MemberID: member, Name: testenv.Unique("vault-"), QuotaBytes: quota})
	if err != nil || !created {
		t.Fatalf("create vault: %v (created %v)", err, created)
	}
	if v.Status != vaults.StatusActive {
		t.Fatalf("vault status %s (%s), want active", v.Status, v.StatusDetail)
	}
	return v
}

// s3 returns an S3 client for a vault's island with the given credentials.
func s3(t *testing.T, v vaults.Vault, accessKey, secret string) *minio.Client {
	t.Helper()
	u, err := url.Parse(v.S3Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secret, ""), Region: v.S3Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(ctx context.Context, c *minio.Client, bucket, name string, size int) error {
	_, err := c.PutObject(ctx, bucket, name, bytes.NewReader(make([]byte, size)), int64(size), minio.PutObjectOptions{})
	return err
}

// parseSnippet reads the export lines of a restic snippet into variables.
func parseSnippet(t *testing.T, snippet string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(snippet, "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(rest, "=")
		v = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
		env[k] = strings.ReplaceAll(v, `'\''`, "'")
	}
	return env
}
