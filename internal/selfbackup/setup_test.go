package selfbackup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// bundle is one test's world: the coordinator's own database (a database of its own, which
// pg_dump dumps), the member standing for the federation with a vault on an island (a MinIO
// bucket with a read+write key for the backup and a read-only verifier key), restic, the
// restore-test service and this package's service.
type bundle struct {
	t        *testing.T
	ctx      context.Context
	dbURL    string
	pool     *pgxpool.Pool
	keyring  *seal.Keyring
	s3       testenv.S3Server
	restic   *restic.Runner
	memberID int64
	vaultID  int64
	bucket   string
	keyID    string // the backup's read+write key
	secret   string
	verify   *verify.Service
	scratch  string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{t: t, ctx: audit.WithActor(t.Context(), audit.System("selfbackup-test"))}
	b.dbURL = testenv.DBURL(t)
	var err error
	if b.pool, err = pgxpool.New(context.Background(), b.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	if b.keyring, err = seal.NewKeyring(key); err != nil {
		t.Fatal(err)
	}
	if b.restic, err = restic.New(b.ctx, restic.Config{KillGrace: 5 * time.Second}); err != nil {
		t.Fatalf("these tests run the real restic binary: %v (run `make tools`)", err)
	}
	b.s3 = testenv.S3(t)
	root, err := minio.New(b.s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(b.s3.AccessKey, b.s3.SecretKey, ""), Region: b.s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	b.bucket = testenv.Unique("fedvault-")
	if err := root.MakeBucket(b.ctx, b.bucket, minio.MakeBucketOptions{Region: b.s3.Region}); err != nil {
		t.Fatal(err)
	}
	verifierID, verifierSecret := b.s3User([]string{"s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"})
	b.keyID, b.secret = b.s3User([]string{"s3:*"})

	if err := b.pool.QueryRow(b.ctx, `INSERT INTO members (slug, name) VALUES ($1, 'La fédération') RETURNING id`,
		testenv.Unique("federation-")).Scan(&b.memberID); err != nil {
		t.Fatal(err)
	}
	var islandID int64
	if err := b.pool.QueryRow(b.ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
		replication_factor) VALUES ($1, 'http://127.0.0.1:1', 'x', $2, $3, 1) RETURNING id`,
		testenv.Unique("island-"), b.s3.URL(), b.s3.Region).Scan(&islandID); err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(b.ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
			status, placement) VALUES ($1, $2, $3, $3, $4, 1099511627776, 'active', 'automatic') RETURNING id`,
			b.memberID, islandID, b.bucket, strings.Repeat("ab", 32)).Scan(&b.vaultID); err != nil {
			return err
		}
		_, err := tx.Exec(b.ctx, `INSERT INTO vault_verifier_keys (vault_id, access_key_id, secret_sealed) VALUES ($1, $2, $3)`,
			b.vaultID, verifierID, b.keyring.SealString(fmt.Sprintf("vault/%d/verifier_secret", b.vaultID), verifierSecret))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.scratch = t.TempDir()
	b.verify = verify.New(b.pool, b.keyring, verify.Config{Logger: testenv.Logger(t), Restic: b.restic, ScratchDir: t.TempDir(),
		CacheDir: t.TempDir()})
	return b
}

// s3User makes a MinIO user allowed actions on the bucket only.
func (b *bundle) s3User(actions []string) (string, string) {
	t := b.t
	adm, err := madmin.NewWithOptions(b.s3.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(b.s3.AccessKey, b.s3.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ak, sk := "GK"+strings.ToUpper(testenv.Unique("")), "sk-"+hex.EncodeToString([]byte(rand.Text()))
	if err := adm.AddUser(b.ctx, ak, sk); err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{{
		"Effect": "Allow", "Action": actions,
		"Resource": []string{"arn:aws:s3:::" + b.bucket, "arn:aws:s3:::" + b.bucket + "/*"}}}})
	if err := adm.AddCannedPolicy(b.ctx, ak, policy); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(b.ctx, madmin.PolicyAssociationReq{Policies: []string{ak}, User: ak}); err != nil {
		t.Fatal(err)
	}
	return ak, sk
}

// service is this package's service on the bundle's database.
func (b *bundle) service(mod func(*Config)) *Service {
	cfg := Config{Logger: testenv.Logger(b.t), Restic: b.restic, DatabaseURL: b.dbURL, ScratchDir: b.scratch}
	if mod != nil {
		mod(&cfg)
	}
	return New(b.pool, b.keyring, cfg)
}

// coordinatorSnapshots lists the repository's snapshots, read with the kit.
func (b *bundle) coordinatorSnapshots(kit Kit) []restic.Snapshot {
	b.t.Helper()
	snaps, err := b.restic.Snapshots(b.ctx, kit.Repo(""))
	if err != nil {
		b.t.Fatalf("snapshots: %v", err)
	}
	return snaps
}
