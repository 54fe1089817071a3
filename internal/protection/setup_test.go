package protection_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const gb = 1_000_000_000

// clock is the services' clock: real time moved forward by tests, never slept on.
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

// bundle is a federation of three members, each operating one island: A runs north,
// B south and C east. A's vault lands on south (or east), and its copy on the remaining
// island A does not operate.
type bundle struct {
	ctx                context.Context
	pool               *pgxpool.Pool
	keys               *seal.Keyring
	clock              *clock
	vaults             *vaults.Service
	prot               *protection.Service
	memberA            int64
	north, south, east vaultstest.Island
	memberB, memberC   int64
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{ctx: audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorUser, ID: "1", Name: "admin@example.org"}),
		pool: testenv.DB(t), clock: &clock{}}
	kr, err := seal.ParseKeyring(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b.keys = kr
	logger := testenv.LoggerTo(testenv.LogWriter(t), slog.LevelInfo)
	isl := islands.New(b.pool, kr, logger, islands.Config{CallTimeout: time.Minute})
	b.vaults = vaults.New(b.pool, kr, isl, logger, vaults.Config{Now: b.clock.Now, GarageTimeout: time.Minute})
	b.prot = protection.New(b.pool, kr, isl, b.vaults, logger, protection.Config{Now: b.clock.Now, TempDir: t.TempDir(), GarageTimeout: time.Minute})
	b.memberA = vaultstest.Member(t, b.pool, testenv.Unique("member-a-"))
	b.memberB = vaultstest.Member(t, b.pool, testenv.Unique("member-b-"))
	b.memberC = vaultstest.Member(t, b.pool, testenv.Unique("member-c-"))
	b.north = vaultstest.StartIsland(t, b.pool, kr, "north", 1, b.memberA)
	b.south = vaultstest.StartIsland(t, b.pool, kr, "south", 1, b.memberB)
	b.east = vaultstest.StartIsland(t, b.pool, kr, "east", 1, b.memberC)
	vaultstest.Pledge(t, b.pool, b.north, b.memberA, 100*gb)
	return b
}

// vault creates a vault of member A with a member key.
func (b *bundle) vault(t *testing.T) (vaults.Vault, vaults.NewKey) {
	t.Helper()
	v, _, err := b.vaults.Create(b.ctx, vaults.CreateInput{MemberID: b.memberA, Name: testenv.Unique("vault-"), QuotaBytes: gb})
	if err != nil {
		t.Fatalf("create vault: %v", err)
	}
	if v.IslandID == b.north.ID {
		t.Fatalf("vault of A placed on north, which A operates")
	}
	k, err := b.vaults.KeyCreate(b.ctx, v.ID, vaults.KeyInput{Name: "laptop"})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return v, k
}

func s3(t *testing.T, endpoint, region, accessKey, secret string) *minio.Client {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secret, ""), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(ctx context.Context, c *minio.Client, bucket, name string, data []byte) error {
	_, err := c.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	return err
}

func get(ctx context.Context, c *minio.Client, bucket, name string) ([]byte, error) {
	o, err := c.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func list(t *testing.T, ctx context.Context, c *minio.Client, bucket string) []string {
	t.Helper()
	var keys []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
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

// auditCount counts audit entries of an action on a vault.
func (b *bundle) auditCount(t *testing.T, action string, vaultID int64) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries WHERE action = $1 AND target_id = $2`,
		action, strconv.FormatInt(vaultID, 10)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// events returns the notification events of a kind about a vault, as severity list.
func (b *bundle) events(t *testing.T, kind string, vaultID int64) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT severity FROM notify_events WHERE kind = $1 AND (detail->>'vault_id')::bigint = $2 ORDER BY id`,
		kind, vaultID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
