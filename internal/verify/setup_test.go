package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childWorker())
	}
	testenv.Main(m)
}

// bundle is one test's world: a database, a member with a vault on an island (a bucket in
// MinIO with a read-only verifier key), the service and restic.
type bundle struct {
	t        *testing.T
	ctx      context.Context
	pool     *pgxpool.Pool
	dbURL    string
	keyHex   string
	keyring  *seal.Keyring
	s3       testenv.S3Server
	root     *minio.Client
	restic   *restic.Runner
	memberID int64
	islandID int64
	vaultID  int64
	bucket   string
	svc      *Service
	scratch  string
}

func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	return setupOn(t, cfg, testenv.DBURL(t))
}

// setupOn is setup on a migrated database of the caller's (one it can restart).
func setupOn(t *testing.T, cfg Config, dbURL string) *bundle {
	t.Helper()
	b := &bundle{t: t, ctx: audit.WithActor(t.Context(), audit.System("verify-test"))}
	b.dbURL = dbURL
	var err error
	b.pool, err = pgxpool.New(context.Background(), b.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	b.keyHex = hex.EncodeToString(key)
	b.keyring, err = seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	b.s3 = testenv.S3(t)
	b.root, err = minio.New(b.s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(b.s3.AccessKey, b.s3.SecretKey, ""), Region: b.s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	b.restic, err = restic.New(b.ctx, restic.Config{KillGrace: 5 * time.Second})
	if err != nil {
		t.Fatalf("these tests run the real restic binary: %v (run `make tools`)", err)
	}
	b.memberID = b.member("m")
	b.islandID = b.island("http://" + b.s3.Endpoint)
	b.vaultID, b.bucket = b.vault(b.memberID, b.islandID)

	b.scratch = t.TempDir()
	cfg.Logger = testenv.Logger(t)
	cfg.Restic = b.restic
	cfg.ScratchDir = b.scratch
	cfg.CacheDir = t.TempDir() // kept between tests, so not in the scratch directory the tests watch
	cfg.SlotWait = 300 * time.Millisecond
	b.svc = New(b.pool, b.keyring, cfg)
	return b
}

func (b *bundle) member(prefix string) int64 {
	var id int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO members (slug, name) VALUES ($1, $1) RETURNING id`,
		testenv.Unique(prefix+"-")).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	return id
}

func (b *bundle) island(s3URL string) int64 {
	var id int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', $2, $3, 1) RETURNING id`,
		testenv.Unique("island-"), s3URL, b.s3.Region).Scan(&id); err != nil {
		b.t.Fatal(err)
	}
	return id
}

// vault creates a bucket with a read-only verifier key and the vault rows for it.
func (b *bundle) vault(memberID, islandID int64) (int64, string) {
	t := b.t
	bucket := testenv.Unique("vault-")
	if err := b.root.MakeBucket(b.ctx, bucket, minio.MakeBucketOptions{Region: b.s3.Region}); err != nil {
		t.Fatal(err)
	}
	adm, err := madmin.NewWithOptions(b.s3.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(b.s3.AccessKey, b.s3.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ak, sk := "GK"+strings.ToUpper(testenv.Unique("")), "sk-"+rand.Text()
	if err := adm.AddUser(b.ctx, ak, sk); err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": []string{"s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"},
		"Resource": []string{"arn:aws:s3:::" + bucket, "arn:aws:s3:::" + bucket + "/*"}}}})
	if err := adm.AddCannedPolicy(b.ctx, ak, policy); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(b.ctx, madmin.PolicyAssociationReq{Policies: []string{ak}, User: ak}); err != nil {
		t.Fatal(err)
	}
	var id int64
	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(b.ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
			status, placement) VALUES ($1, $2, $3, $3, $4, 1099511627776, 'active', 'automatic') RETURNING id`,
			memberID, islandID, bucket, strings.Repeat("ab", 32)).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(b.ctx, `INSERT INTO vault_verifier_keys (vault_id, access_key_id, secret_sealed) VALUES ($1, $2, $3)`,
			id, ak, b.keyring.SealString(fmt.Sprintf("vault/%d/verifier_secret", id), sk))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, bucket
}

// memberRepo is the member's own view of its repository: read-write root keys.
func (b *bundle) memberRepo(bucket, path, password string) restic.Repo {
	return restic.Repo{URL: "s3:http://" + b.s3.Endpoint + "/" + bucket + "/" + path, Password: password,
		S3AccessKey: b.s3.AccessKey, S3SecretKey: b.s3.SecretKey, S3Region: b.s3.Region, CacheDir: filepath.Join(b.t.TempDir(), "cache")}
}

// source is a directory to back up.
type source struct {
	dir   string
	files map[string][]byte
}

func (b *bundle) source(randomBytes int) *source {
	s := &source{dir: filepath.Join(b.t.TempDir(), "data"), files: map[string][]byte{}}
	for i := range 4 {
		data := make([]byte, randomBytes/4)
		_, _ = rand.Read(data)
		s.write(b.t, fmt.Sprintf("docs/file%d.bin", i), data)
	}
	s.write(b.t, "notes/readme.txt", []byte("hello\n"))
	return s
}

func (s *source) write(t *testing.T, rel string, data []byte) {
	p := filepath.Join(s.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s.files[rel] = data
}

// fixture is a member repository registered with Archipelago.
type fixture struct {
	repo     Repository
	member   restic.Repo // the member's full-access view
	src      *source
	password string // Archipelago's key password
}

// newRepo initialises a repository at path, adds a dedicated key for Archipelago, registers
// it (full mode unless blind), writes the canary (unless noCanary) and makes a backup.
func (b *bundle) newRepo(path string, blind, noCanary bool, p Policy) *fixture {
	t := b.t
	f := &fixture{src: b.source(2 << 20)}
	f.member = b.memberRepo(b.bucket, path, "member-password-"+rand.Text())
	if _, err := b.restic.Init(b.ctx, f.member); err != nil {
		t.Fatalf("init: %v", err)
	}
	in := RepositoryInput{MemberID: b.memberID, VaultID: b.vaultID, Name: path, Path: path, Policy: p}
	if !blind {
		f.password = "archipelago-key-" + rand.Text()
		if _, err := b.restic.KeyAdd(b.ctx, f.member, f.password, restic.KeyAddOptions{User: "archipelago"}); err != nil {
			t.Fatalf("key add: %v", err)
		}
		in.Password, in.FullModeConsent = f.password, FullModeStatementVersion
	}
	var err error
	f.repo, err = b.svc.RepositoryCreate(b.ctx, in)
	if err != nil {
		t.Fatalf("register repository: %v", err)
	}
	if !noCanary {
		f.src.write(t, "archipelago-canary.txt", []byte(f.repo.CanaryToken+"\n"))
	}
	b.backup(f)
	return f
}

func (b *bundle) backup(f *fixture) {
	b.t.Helper()
	if _, err := b.restic.Backup(b.ctx, f.member, restic.BackupOptions{Paths: []string{f.src.dir}, Host: "member-host"}); err != nil {
		b.t.Fatalf("backup: %v", err)
	}
}

// worker runs River with the restore workers until the test ends.
func (b *bundle) worker(cfg *river.Config) *river.Client[pgx.Tx] {
	t := b.t
	workers := river.NewWorkers()
	b.svc.Register(workers)
	if cfg == nil {
		cfg = &river.Config{}
	}
	cfg.Workers = workers
	cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}, queueRestore: {MaxWorkers: 3}}
	cfg.FetchPollInterval = 100 * time.Millisecond
	cfg.Logger = testenv.Logger(t)
	c, err := river.NewClient(riverpgxv5.New(b.pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(c)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// test runs a test of the repository now and waits for its outcome.
func (b *bundle) test(f *fixture) Run {
	b.t.Helper()
	// River marks a job completed just after its result is recorded: until then "run now"
	// answers with the finished run.
	for {
		run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
		if err != nil {
			b.t.Fatalf("run now: %v", err)
		}
		if !run.Final() {
			return b.wait(run.ID, 3*time.Minute)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bundle) wait(runID int64, limit time.Duration) Run {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		run, err := RunGetByID(b.ctx, b.pool, runID)
		if err != nil {
			b.t.Fatal(err)
		}
		if run.Final() {
			return run
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("restore test %d not finished after %s: %+v", runID, limit, run)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func level(run Run, name string) LevelResult {
	for _, l := range run.Levels {
		if l.Level == name {
			return l
		}
	}
	return LevelResult{}
}

func describe(run Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %d: %s (%s)\n", run.ID, run.Status, run.Reason)
	for _, l := range run.Levels {
		fmt.Fprintf(&b, "  %-9s %-7s %s\n", l.Level, l.Outcome, l.Summary)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }
