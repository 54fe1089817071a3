package protection_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

// startVerifier runs the restore-test workers on River until the test ends.
func startVerifier(t *testing.T, b *bundle, runner *restic.Runner) *verify.Service {
	t.Helper()
	svc := verify.New(b.pool, b.keys, verify.Config{Logger: testenv.Logger(t), Restic: runner, ScratchDir: t.TempDir()})
	workers := river.NewWorkers()
	svc.Register(workers)
	c, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Workers: workers, Logger: testenv.Logger(t),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}, jobs.QueueRestore: {MaxWorkers: 2}},
		FetchPollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc.UseQueue(c)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return svc
}

// runTest runs a restore test of the repository now and waits (generously) for its outcome.
func runTest(t *testing.T, ctx context.Context, svc *verify.Service, pool verifyQuerier, repoID int64) verify.Run {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		run, _, err := svc.RunNow(ctx, repoID)
		if err != nil {
			t.Fatalf("run now: %v", err)
		}
		for !run.Final() {
			if time.Now().After(deadline) {
				t.Fatalf("restore test %d not finished: %+v", run.ID, run)
			}
			time.Sleep(200 * time.Millisecond)
			if run, err = verify.RunGetByID(ctx, pool, run.ID); err != nil {
				t.Fatal(err)
			}
			if run.Final() {
				return run
			}
		}
		// "run now" answered with the previous, finished run: River has not closed its job yet.
		time.Sleep(100 * time.Millisecond)
	}
}

type verifyQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// TestRestoreTestTargetsTheCopy: a repository whose restore-test policy targets the copy
// is tested on the copy island with the copy's read-only verifier key, and passes while the
// vault itself has been emptied by the member's key (where a test of the source cannot
// pass); the run says which side it tested. The copy verifier key cannot write.
func TestRestoreTestTargetsTheCopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	v, key := b.vault(t)
	runner, err := restic.New(ctx, restic.Config{})
	if err != nil {
		t.Fatalf("this test runs the real restic binary: %v", err)
	}
	svc := startVerifier(t, b, runner)

	env := parseSnippet(t, key.Snippet)
	const password = "member repository password"
	member := restic.Repo{URL: env["RESTIC_REPOSITORY"], Password: password, S3AccessKey: env["AWS_ACCESS_KEY_ID"],
		S3SecretKey: env["AWS_SECRET_ACCESS_KEY"], S3Region: env["AWS_DEFAULT_REGION"], CacheDir: t.TempDir()}
	if _, err := runner.Init(ctx, member); err != nil {
		t.Fatalf("restic init: %v", err)
	}
	const archipelagoPassword = "archipelago key password"
	if _, err := runner.KeyAdd(ctx, member, archipelagoPassword, restic.KeyAddOptions{User: "archipelago"}); err != nil {
		t.Fatalf("key add: %v", err)
	}
	copyTarget, sample := verify.TargetCopy, 2
	repo, err := svc.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: b.memberA, VaultID: v.ID, Name: "laptop",
		Path: "restic", Password: archipelagoPassword, FullModeConsent: verify.FullModeStatementVersion,
		Policy: verify.Policy{Target: &copyTarget, SampleFiles: &sample}})
	if err != nil {
		t.Fatalf("register the repository: %v", err)
	}
	if repo.Effective.Target != verify.TargetCopy || repo.Policy.Target == nil {
		t.Fatalf("repository target = %+v / %q", repo.Policy.Target, repo.Effective.Target)
	}
	src := t.TempDir()
	for name, data := range map[string]string{"archipelago-canary.txt": repo.CanaryToken + "\n", "notes.txt": "the data to keep\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := runner.Backup(ctx, member, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy: %v", err)
	}

	// The copy verifier key reads the copy and cannot write in it.
	creds, err := b.prot.CopyVerifierCredentials(ctx, v.ID)
	if err != nil {
		t.Fatalf("copy verifier credentials: %v", err)
	}
	st, _ := b.prot.State(ctx, v.ID)
	if creds.Bucket != st.CopyBucket || creds.Bucket == v.BucketName || creds.AccessKeyID == key.AccessKeyID ||
		st.CopyVerifierKeyID == nil || *st.CopyVerifierKeyID != creds.AccessKeyID {
		t.Fatalf("copy verifier credentials = %v, copy %s", creds, st.CopyBucket)
	}
	cv := s3(t, creds.Endpoint, creds.Region, creds.AccessKeyID, creds.SecretAccessKey)
	if len(list(t, ctx, cv, creds.Bucket)) == 0 {
		t.Fatal("the copy verifier key lists nothing")
	}
	if err := put(ctx, cv, creds.Bucket, "restic/intrusion", []byte("x")); minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Fatalf("the copy verifier key writes in the copy: %v", err)
	}

	// The member's key empties the vault.
	thief(t, ctx, runner.Binary(), env, password, "forget", "--prune", snap.SnapshotID)
	mc := s3(t, v.S3Endpoint, v.S3Region, key.AccessKeyID, key.SecretAccessKey)
	for _, k := range list(t, ctx, mc, v.BucketName) {
		if err := mc.RemoveObject(ctx, v.BucketName, k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The test of the copy passes and says so.
	run := runTest(t, ctx, svc, b.pool, repo.ID)
	if run.Status != verify.StatusPassed || run.Target != verify.TargetCopy || run.SnapshotID == nil || *run.SnapshotID != snap.SnapshotID {
		t.Fatalf("restore test of the copy = %s (%s), target %q, snapshot %v; want passed on the copy", run.Status, run.Reason, run.Target, run.SnapshotID)
	}

	// The same repository tested on its source cannot pass: the vault is empty.
	source := verify.TargetSource
	if _, err := svc.PolicyUpdate(ctx, repo.ID, nil, verify.Policy{Target: &source, SampleFiles: &sample}, nil); err != nil {
		t.Fatal(err)
	}
	run = runTest(t, ctx, svc, b.pool, repo.ID)
	if run.Status == verify.StatusPassed || run.Target != verify.TargetSource {
		t.Fatalf("restore test of the emptied source = %s, target %q; want not passed, on the source", run.Status, run.Target)
	}

	// A bad target is refused, naming the field.
	bad := "both"
	if _, err := svc.PolicyUpdate(ctx, repo.ID, nil, verify.Policy{Target: &bad}, nil); err == nil || !strings.Contains(err.Error(), "policy.target") {
		t.Fatalf("bad target: %v", err)
	}
}
