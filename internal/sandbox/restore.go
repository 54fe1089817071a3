package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Demo repository states: one repository of the demo member shows each outcome.
const (
	stateHealthy       = "healthy"         // passes every level
	stateStale         = "stale"           // newest snapshot older than the RPO target: failed
	stateCorrupted     = "corrupted"       // a data pack overwritten in the bucket: failed
	stateMissingCanary = "missing-canary"  // no canary file in the snapshot: failed
	stateBlind         = "blind"           // registered without a password: passed (freshness, deletions, content hashes)
	stateBlindCorrupt  = "blind-corrupted" // blind, a data pack overwritten: failed, the content-hash level names it
)

// demoRepository is one restic repository the sandbox makes for a demo member.
type demoRepository struct {
	Member string // the member's slug
	Name   string // the repository's name in Archipelago
	Host   string // the host recorded in its snapshots
	State  string
}

// demoRepositories: libre-nuage (alice@libre-nuage.example) has one repository in each
// state; chaton-rouge and vercors-libre have a few, so that the federation's views and
// reports compare members.
var demoRepositories = []demoRepository{
	{Member: "libre-nuage", Name: "web01 (healthy)", Host: "web01.libre-nuage.example", State: stateHealthy},
	{Member: "libre-nuage", Name: "mail01 (stale backups)", Host: "mail01.libre-nuage.example", State: stateStale},
	{Member: "libre-nuage", Name: "files01 (corrupted pack)", Host: "files01.libre-nuage.example", State: stateCorrupted},
	{Member: "libre-nuage", Name: "cloud01 (no canary)", Host: "cloud01.libre-nuage.example", State: stateMissingCanary},
	{Member: "libre-nuage", Name: "db01 (blind)", Host: "db01.libre-nuage.example", State: stateBlind},
	{Member: "libre-nuage", Name: "web02 (attested by the member)", Host: "web02.libre-nuage.example", State: stateAttested},
	{Member: "libre-nuage", Name: "photos01 (blind, corrupted pack)", Host: "photos01.libre-nuage.example", State: stateBlindCorrupt},
	{Member: "chaton-rouge", Name: "nextcloud (healthy)", Host: "nextcloud.chaton-rouge.example", State: stateHealthy},
	{Member: "chaton-rouge", Name: "mailbox (corrupted pack)", Host: "mx.chaton-rouge.example", State: stateCorrupted},
	{Member: "vercors-libre", Name: "gitea (blind)", Host: "git.vercors-libre.example", State: stateBlind},
	{Member: "vercors-libre", Name: "wiki (stale backups)", Host: "wiki.vercors-libre.example", State: stateStale},
}

// staleAge is how old the stale repository's only snapshot is: past the default 26 h RPO.
const staleAge = 72 * time.Hour

// seedRestoreTests makes the demo members' restic repositories, through restic on the
// sandbox's islands, registers them for restore verification with a month of synthetic
// history (seedHistory) and enqueues a test of each; it returns the enqueued runs.
// Repositories that exist already (a kept sandbox started again) are skipped and get no
// new test; one whose data is gone from its vault is removed and made again.
func seedRestoreTests(ctx context.Context, a *app.App, s3 *minioserver.Server, log *slog.Logger) ([]int64, error) {
	mc, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		return nil, err
	}
	members := map[string]islands.Member{}
	var memberIDs []int64
	for _, d := range demoRepositories {
		if _, ok := members[d.Member]; ok {
			continue
		}
		m, err := islands.MemberGetBySlug(ctx, a.Pool, d.Member)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", d.Member, err)
		}
		members[d.Member] = m
		memberIDs = append(memberIDs, m.ID)
	}
	existing, err := verify.RepositoryList(ctx, a.Pool, verify.RepositoryFilter{MemberIDs: memberIDs})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, r := range existing {
		if !slices.ContainsFunc(demoRepositories, func(d demoRepository) bool { return d.Name == r.Name }) {
			continue
		}
		// A kept sandbox started again re-provisions its vaults on new simulators, with
		// empty buckets: a repository whose data is gone is made again.
		_, err := mc.StatObject(ctx, r.BucketName, r.Path+"/config", minio.StatObjectOptions{})
		switch code := minio.ToErrorResponse(err).Code; {
		case err == nil:
			have[r.Name] = true
		case code == "NoSuchKey" || code == "NoSuchBucket":
			if err := a.Verify.RepositoryDelete(ctx, r.ID); err != nil {
				return nil, fmt.Errorf("remove demo repository %q, whose data is gone: %w", r.Name, err)
			}
		default:
			return nil, fmt.Errorf("look for demo repository %q in its vault: %w", r.Name, err)
		}
	}
	var todo []demoRepository
	for _, d := range demoRepositories {
		if !have[d.Name] {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	rr, err := restic.New(ctx, restic.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("the demo restic repositories need restic: %w", err)
	}
	vaultOf := map[string]vaults.Vault{}
	for _, d := range todo {
		if _, ok := vaultOf[d.Member]; ok {
			continue
		}
		if vaultOf[d.Member], err = restoreDemoVault(ctx, a, members[d.Member]); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "archipelago-demo-data-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// restic's key derivation (scrypt) dominates: make the repositories side by side.
	runs := make([]int64, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, d := range todo {
		wg.Go(func() {
			s := repoSeeder{a: a, r: rr, mc: mc, vault: vaultOf[d.Member], memberID: members[d.Member].ID,
				dir: filepath.Join(dir, fmt.Sprint(i))}
			runs[i], errs[i] = s.seed(ctx, d)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("demo repository %q: %w", d.Name, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return runs, nil
}

// restoreDemoVault returns an active vault of the member (the one with most room the vaults seeding made, or a new
// one the placement rule puts on an island the member does not operate).
func restoreDemoVault(ctx context.Context, a *app.App, m islands.Member) (vaults.Vault, error) {
	vs, err := a.Vaults.VaultList(ctx, vaults.VaultFilter{MemberIDs: []int64{m.ID}, Status: vaults.StatusActive})
	if err != nil {
		return vaults.Vault{}, err
	}
	if len(vs) > 0 {
		// The one with the most room: a member's nearly full vault (the quota demo) stays so.
		return slices.MaxFunc(vs, func(x, y vaults.Vault) int {
			return cmp.Compare(x.QuotaBytes-deref(x.UsageBytes), y.QuotaBytes-deref(y.UsageBytes))
		}), nil
	}
	v, err := retrySeed(ctx, a.Log, "vault "+m.Slug+"-restic", func(ctx context.Context) (vaults.Vault, error) {
		v, _, err := a.Vaults.Create(ctx, vaults.CreateInput{MemberID: m.ID, Name: m.Slug + "-restic",
			QuotaBytes: 50 * demoGB, IdempotencyKey: "sandbox-restore-demo"})
		return v, err
	})
	if err != nil {
		return v, err
	}
	return activeVault(ctx, a, v)
}

// repoSeeder makes one demo repository.
type repoSeeder struct {
	a        *app.App
	r        *restic.Runner
	mc       *minio.Client
	vault    vaults.Vault
	memberID int64
	dir      string // scratch for the generated data
}

func (s repoSeeder) seed(ctx context.Context, d demoRepository) (int64, error) {
	// The member's own key (read+write) and password, as a member's backup job has them.
	key, err := retrySeed(ctx, s.a.Log, "key of "+s.vault.Name, func(ctx context.Context) (vaults.NewKey, error) {
		return s.a.Vaults.KeyCreate(ctx, s.vault.ID, vaults.KeyInput{Name: "backup " + d.Host})
	})
	if err != nil {
		return 0, fmt.Errorf("member key: %w", err)
	}
	// A fresh path each time: an attempt that died half-way leaves its repository behind.
	path := "restic/" + d.Host + "-" + rand.Text()[:6]
	repo := restic.Repo{URL: vaults.Snippet(s.vault, path, key.AccessKeyID, key.SecretAccessKey)["RESTIC_REPOSITORY"],
		Password: rand.Text() + rand.Text(), S3AccessKey: key.AccessKeyID, S3SecretKey: key.SecretAccessKey,
		S3Region: s.vault.S3Region}
	if _, err := s.r.Init(ctx, repo); err != nil {
		return 0, err
	}
	in := verify.RepositoryInput{MemberID: s.memberID, VaultID: s.vault.ID, Name: d.Name, Path: path,
		// Small repositories: every check reads every pack, so the damaged one is found at once.
		Policy: verify.Policy{CheckSubsets: ptr(1), CheckEveryRuns: ptr(1)}}
	switch d.State {
	case stateBlind, stateBlindCorrupt:
		in.Mode = verify.ModeBlind
	case stateAttested:
		in.Mode = verify.ModeAttested
	default:
		// Full mode: a restic key of Archipelago's own, revocable without touching the member's.
		in.Password, in.FullModeConsent = rand.Text()+rand.Text(), verify.FullModeStatementVersion
		if _, err := s.r.KeyAdd(ctx, repo, in.Password, restic.KeyAddOptions{User: "archipelago", Host: "verifier"}); err != nil {
			return 0, err
		}
	}
	reg, err := s.a.Verify.RepositoryCreate(ctx, in)
	if err != nil {
		return 0, fmt.Errorf("register: %w", err)
	}
	withCanary := d.State != stateMissingCanary
	if err := writeSampleData(s.dir, d.Host, reg.CanaryToken, withCanary); err != nil {
		return 0, err
	}
	opts := restic.BackupOptions{Paths: []string{s.dir}, Host: d.Host, Tags: []string{"demo"}}
	if d.State == stateStale {
		opts.Time = time.Now().Add(-staleAge)
	}
	if _, err := s.r.Backup(ctx, repo, opts); err != nil {
		return 0, err
	}
	if d.State == stateCorrupted || d.State == stateBlindCorrupt {
		if err := corruptLargestPack(ctx, s.mc, s.vault.BucketName, path); err != nil {
			return 0, fmt.Errorf("corrupt a pack: %w", err)
		}
	}
	if d.State == stateAttested {
		if err := s.attestDemo(ctx, reg, repo, key); err != nil {
			return 0, err
		}
	}
	if err := seedHistory(ctx, s.a, reg, d.State, sampleDataBytes); err != nil {
		return 0, err
	}
	run, _, err := s.a.Verify.RunNow(ctx, reg.ID)
	if err != nil {
		return 0, fmt.Errorf("enqueue its test: %w", err)
	}
	return run.ID, nil
}

// sampleDataBytes is about what writeSampleData writes.
const sampleDataBytes = 3 << 20

// writeSampleData generates a small server tree (about 3 MiB): random "uploads" that do
// not compress, some text, and the canary file holding token.
func writeSampleData(dir, host, token string, canary bool) error {
	files := map[string][]byte{
		"etc/hostname":                 []byte(host + "\n"),
		"etc/app/config.toml":          []byte("[server]\nname = \"" + host + "\"\nlisten = \"127.0.0.1:8080\"\n"),
		"srv/www/index.html":           bytes.Repeat([]byte("<p>Bienvenue sur "+host+"</p>\n"), 200),
		"srv/uploads/photo-001.jpg":    randomBytes(1 << 20),
		"srv/uploads/photo-002.jpg":    randomBytes(1 << 20),
		"srv/uploads/report-2026.pdf":  randomBytes(512 << 10),
		"var/backups/db-dump.sql":      bytes.Repeat([]byte("INSERT INTO posts VALUES (1, 'bonjour');\n"), 5000),
		"var/log/app/access-2026.log":  bytes.Repeat([]byte("127.0.0.1 - - \"GET / HTTP/1.1\" 200 512\n"), 3000),
		"srv/uploads/notes/readme.txt": []byte("Demo data generated by the Archipelago sandbox.\n"),
	}
	if canary {
		files["srv/archipelago-canary.txt"] = []byte(token + "\n")
	}
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// corruptLargestPack overwrites bytes in the middle of the repository's largest pack (a
// data pack: tree packs are small), as a failing disk would, directly in MinIO.
func corruptLargestPack(ctx context.Context, mc *minio.Client, bucket, path string) error {
	var largest minio.ObjectInfo
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: path + "/data/", Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if obj.Size > largest.Size {
			largest = obj
		}
	}
	if largest.Key == "" {
		return errors.New("no pack in the repository")
	}
	o, err := mc.GetObject(ctx, bucket, largest.Key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	data, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		return err
	}
	mid := len(data) / 2
	for i := mid; i < min(mid+256, len(data)); i++ {
		data[i] ^= 0xA5
	}
	_, err = mc.PutObject(ctx, bucket, largest.Key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	return err
}

// awaitRound waits until every run of the round has its outcome, ctx ends, or limit
// passes, and reports whether the round finished.
func awaitRound(ctx context.Context, a *app.App, runs []int64, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		done := true
		for _, id := range runs {
			r, err := verify.RunGetByID(ctx, a.Pool, id)
			if err != nil || !r.Final() {
				done = false
				break
			}
		}
		if done {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// reportsAfterRound publishes the demo reports once the round of tests has its outcomes
// (at once when there is no round), so they show every state. The returned stop waits for
// the goroutine it may start; it must be called before the app is closed.
func reportsAfterRound(ctx context.Context, a *app.App, runs []int64, log *slog.Logger) (stop func(), err error) {
	if len(runs) == 0 {
		return func() {}, publishReports(ctx, a)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if !awaitRound(ctx, a, runs, 5*time.Minute) && ctx.Err() != nil {
			return
		}
		if err := publishReports(ctx, a); err != nil && ctx.Err() == nil && log != nil {
			log.Error("publish demo reports", "err", err)
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
