package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chatons/archipelago/internal/apptest"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/vaults/vaultstest"
	"github.com/chatons/archipelago/internal/verify"
)

type e2eLevel struct {
	Level   string         `json:"level"`
	Outcome string         `json:"outcome"`
	Summary string         `json:"summary"`
	Details map[string]any `json:"details"`
}

type e2eRun struct {
	ID            int64      `json:"id"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	CheckSubset   string     `json:"check_subset"`
	SampleBytes   *int64     `json:"sample_bytes"`
	RTOEstimate   *int64     `json:"rto_estimate_seconds"`
	SnapshotID    *string    `json:"snapshot_id"`
	FinishedAt    *time.Time `json:"finished_at"`
	Levels        []e2eLevel `json:"levels"`
	Postponements int        `json:"postponements"`
}

func (r e2eRun) level(name string) e2eLevel {
	for _, l := range r.Levels {
		if l.Level == name {
			return l
		}
	}
	return e2eLevel{}
}

func (r e2eRun) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %d: %s (%s)\n", r.ID, r.Status, r.Reason)
	for _, l := range r.Levels {
		fmt.Fprintf(&b, "  %-9s %-7s %s\n", l.Level, l.Outcome, l.Summary)
	}
	return b.String()
}

// TestRestoreTestEndToEnd: a member makes a vault and a key through the API, backs up with
// restic into it (canary included) and registers the repository with the password of a
// key it added for Archipelago; the app's own River workers test it: passed, every level
// reported. Then a data pack's bytes are overwritten in the bucket: the next test fails and
// names the pack.
func TestRestoreTestEndToEnd(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.WithEnv("ARCHIPELAGO_SCRATCH_DIR", t.TempDir()),
		apptest.WithEnv("ARCHIPELAGO_JOB_POLL_INTERVAL", "100ms"), apptest.WithEnv("ARCHIPELAGO_SHUTDOWN_TIMEOUT", "10s"))
	f := env.Fixture()
	// A's vault lands on south (B's island); A's pledge on north gives it the quota.
	north := vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "north", 3, f.MemberA.ID)
	vaultstest.StartIsland(t, env.App.Pool, env.App.Keyring, "south", 3, f.MemberB.ID)
	vaultstest.Pledge(t, env.App.Pool, north, f.MemberA.ID, 300_000_000_000)
	admin := func(method, path string, body any) *apptest.Response {
		return env.Do(apptest.Req{Method: method, Path: path, Token: f.AdminA.Access, Body: body})
	}

	// The app's background workers, as `serve` with workers runs them.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.App.Run(ctx, nil, true) }()
	t.Cleanup(func() { // before apptest closes the pool (cleanups run last first)
		stop()
		if err := <-done; err != nil {
			t.Errorf("workers: %v", err)
		}
	})

	// A vault and a member key, through the API.
	res := admin("POST", "/v1/vaults", map[string]any{"member": "member-a", "name": testenv.Unique("backups-"), "quota_bytes": 1_000_000_000})
	var v apiVault
	res.Decode(t, &v)
	if res.Status != 201 || v.Status != "active" || v.Verifier == nil {
		t.Fatalf("create vault: %d %s", res.Status, res.Body)
	}
	res = admin("POST", fmt.Sprintf("/v1/vaults/%d/keys", v.ID), map[string]any{"name": "web01"})
	var key struct {
		Snippet string            `json:"restic_snippet"`
		Env     map[string]string `json:"env"`
	}
	res.Decode(t, &key)
	if res.Status != 201 || !strings.Contains(key.Snippet, "export RESTIC_REPOSITORY='"+key.Env["RESTIC_REPOSITORY"]+"'") {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}

	// The member's restic, configured from the snippet, in a repository under restic/web01.
	rctx := t.Context()
	rr, err := restic.New(rctx, restic.Config{KillGrace: 5 * time.Second})
	if err != nil {
		t.Fatalf("this test runs the real restic binary: %v (run `make tools`)", err)
	}
	u, err := url.Parse(strings.TrimPrefix(key.Env["RESTIC_REPOSITORY"], "s3:"))
	if err != nil {
		t.Fatal(err)
	}
	bucket, base, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	path := strings.Trim(base+"/restic/web01", "/")
	member := restic.Repo{URL: "s3:" + u.Scheme + "://" + u.Host + "/" + bucket + "/" + path, Password: "member-" + rand.Text(),
		S3AccessKey: key.Env["AWS_ACCESS_KEY_ID"], S3SecretKey: key.Env["AWS_SECRET_ACCESS_KEY"],
		S3Region: key.Env["AWS_DEFAULT_REGION"], CacheDir: filepath.Join(t.TempDir(), "cache")}
	if _, err := rr.Init(rctx, member); err != nil {
		t.Fatalf("restic init with the vault's key: %v", err)
	}
	verifierPassword := "archipelago-" + rand.Text()
	if _, err := rr.KeyAdd(rctx, member, verifierPassword, restic.KeyAddOptions{User: "archipelago", Host: "verifier"}); err != nil {
		t.Fatalf("restic key add: %v", err)
	}

	// Registered with the dedicated key's password; every pack read at each check.
	res = admin("POST", "/v1/repositories", map[string]any{"vault_id": v.ID, "name": "web01", "path": path,
		"password": verifierPassword, "full_mode_consent": verify.FullModeStatementVersion, "policy": map[string]any{"check_subsets": 1}})
	var repo struct {
		ID          int64  `json:"id"`
		Mode        string `json:"mode"`
		CanaryToken string `json:"canary_token"`
		BucketName  string `json:"bucket_name"`
	}
	res.Decode(t, &repo)
	if res.Status != 201 || repo.Mode != "full" || repo.BucketName != bucket || strings.Contains(string(res.Body), verifierPassword) {
		t.Fatalf("register repository: %d %s", res.Status, res.Body)
	}

	// The data, with the canary file holding the repository's token, backed up.
	src := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		write(fmt.Sprintf("srv/www/file%d.bin", i), data)
	}
	write("srv/archipelago-canary.txt", []byte(repo.CanaryToken+"\n"))
	if _, err := rr.Backup(rctx, member, restic.BackupOptions{Paths: []string{src}, Host: "web01"}); err != nil {
		t.Fatalf("restic backup: %v", err)
	}

	// Test now, through the API; the workers run it.
	test := func() e2eRun {
		t.Helper()
		var run e2eRun
		deadline := time.Now().Add(20 * time.Second)
		for {
			res := admin("POST", fmt.Sprintf("/v1/repositories/%d/tests", repo.ID), nil)
			if res.Status == 202 {
				res.Decode(t, &run)
				break
			}
			// 409: the last test has just finished and River still holds its job.
			if res.Status != 409 || time.Now().After(deadline) {
				t.Fatalf("run now: %d %s", res.Status, res.Body)
			}
		}
		deadline = time.Now().Add(90 * time.Second)
		for {
			res := admin("GET", fmt.Sprintf("/v1/restore-tests/%d", run.ID), nil)
			res.Decode(t, &run)
			if run.FinishedAt != nil {
				return run
			}
			if time.Now().After(deadline) {
				t.Fatalf("restore test not finished in time: %s", res.Body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	run := test()
	if run.Status != "passed" || len(run.Levels) != 7 {
		t.Fatalf("healthy repository: %s", run)
	}
	for _, name := range []string{"freshness", "deletions", "contenthash", "integrity", "sample", "canary"} {
		if l := run.level(name); l.Outcome != "passed" || l.Summary == "" {
			t.Errorf("level %s: %s (%s), want passed", name, l.Outcome, l.Summary)
		}
	}
	if l := run.level("full"); l.Outcome != "skipped" {
		t.Errorf("full restore without a cadence: %s", l.Outcome)
	}
	if run.CheckSubset != "1/1" || run.SampleBytes == nil || *run.SampleBytes < 3<<20 || run.RTOEstimate == nil || run.SnapshotID == nil {
		t.Errorf("measurements: %+v", run)
	}
	if l := run.level("canary"); l.Details["file"] == nil || !strings.HasSuffix(fmt.Sprint(l.Details["file"]), "/srv/archipelago-canary.txt") {
		t.Errorf("canary level details: %v", l.Details)
	}

	// Someone with the island's root credentials overwrites the bytes of the biggest pack.
	s3 := testenv.S3(t)
	root, err := minio.New(s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	var packKey string
	var size int64
	for obj := range root.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: path + "/data/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if obj.Size > size {
			packKey, size = obj.Key, obj.Size
		}
	}
	if packKey == "" {
		t.Fatalf("no data pack under %s/%s/data/", bucket, path)
	}
	junk := make([]byte, size)
	_, _ = rand.Read(junk)
	if _, err := root.PutObject(t.Context(), bucket, packKey, bytes.NewReader(junk), size, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	pack := packKey[strings.LastIndex(packKey, "/")+1:]

	run = test()
	l := run.level("integrity")
	if run.Status != "failed" || l.Outcome != "failed" || !strings.Contains(l.Summary, pack[:8]) || !strings.Contains(run.Reason, pack[:8]) {
		t.Fatalf("corrupted pack %s: %s", pack, run)
	}
	if packs, _ := l.Details["broken_packs"].([]any); len(packs) != 1 || packs[0] != pack {
		t.Errorf("broken_packs = %v, want [%s]", l.Details["broken_packs"], pack)
	}
}

// TestRepositoryFullRestoreDaysZeroMeansNever: a repository's full_restore_days 0 is
// accepted and means "never", even when the federation default has a cadence; null takes
// the default; a negative value names the field.
func TestRepositoryFullRestoreDaysZeroMeansNever(t *testing.T) {
	env, f := apptest.Parallel(t)
	vaultA := restoreVault(t, env, f.MemberA.ID)
	if _, err := env.App.Pool.Exec(context.Background(), `UPDATE restore_settings SET full_restore_days = 7`); err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string, body any) *apptest.Response {
		return env.Do(apptest.Req{Method: method, Path: path, Token: f.AdminA.Access, Body: body})
	}
	type policyOut struct {
		ID     int64 `json:"id"`
		Policy struct {
			FullRestoreDays *int `json:"full_restore_days"`
		} `json:"policy"`
		Effective struct {
			FullRestoreDays *int `json:"full_restore_days"`
		} `json:"effective_policy"`
	}
	res := admin("POST", "/v1/repositories", map[string]any{"vault_id": vaultA, "name": "never", "path": "restic/never",
		"policy": map[string]any{"full_restore_days": 0}})
	var repo policyOut
	res.Decode(t, &repo)
	if res.Status != 201 || repo.Policy.FullRestoreDays == nil || *repo.Policy.FullRestoreDays != 0 || repo.Effective.FullRestoreDays != nil {
		t.Fatalf("create with full_restore_days 0: %d %s", res.Status, res.Body)
	}
	// Null: the federation default (7 days).
	res = admin("PATCH", fmt.Sprintf("/v1/repositories/%d", repo.ID), map[string]any{"policy": map[string]any{"full_restore_days": nil}})
	res.Decode(t, &repo)
	if res.Status != 200 || repo.Policy.FullRestoreDays != nil || repo.Effective.FullRestoreDays == nil || *repo.Effective.FullRestoreDays != 7 {
		t.Fatalf("full_restore_days null: %d %s", res.Status, res.Body)
	}
	// Back to 0 through an update; then a value out of range names the field.
	res = admin("PATCH", fmt.Sprintf("/v1/repositories/%d", repo.ID), map[string]any{"policy": map[string]any{"full_restore_days": 0}})
	res.Decode(t, &repo)
	if res.Status != 200 || repo.Policy.FullRestoreDays == nil || *repo.Policy.FullRestoreDays != 0 || repo.Effective.FullRestoreDays != nil {
		t.Fatalf("update to full_restore_days 0: %d %s", res.Status, res.Body)
	}
	for _, bad := range []int{-1, 3651} {
		r := env.Do(apptest.Req{Method: "PATCH", Path: fmt.Sprintf("/v1/repositories/%d", repo.ID), Token: f.AdminA.Access,
			Body: map[string]any{"policy": map[string]any{"full_restore_days": bad}}, NoValidate: true})
		if r.Status != 400 || r.ErrorField() != "policy.full_restore_days" {
			t.Errorf("full_restore_days %d: %d %s", bad, r.Status, r.Body)
		}
	}
}
