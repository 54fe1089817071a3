package protection_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/restic"
)

// thief runs the restic CLI as an attacker holding the member's credentials would.
func thief(t *testing.T, ctx context.Context, bin string, env map[string]string, password string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "RESTIC_PASSWORD=" + password, "RESTIC_CACHE_DIR=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restic %v: %v\n%s", args, err, out)
	}
	return out
}

// TestStolenKeyCannotDestroyBackups is the scenario on real restic, MinIO and
// PostgreSQL through the Garage simulator: with the member's own key, forget --prune of
// every snapshot, delete every remaining object and set an Expiration rule; within one
// tripwire period and one copy period the lifecycle alert fired and the rule is gone, the
// deletions are reported, the copy still holds every snapshot, and restic restores from
// the copy with the member's read-only copy key bit for bit; past the grace period the
// deletions propagate. A member key cannot write or delete in the copy.
func TestStolenKeyCannotDestroyBackups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	v, key := b.vault(t)
	runner, err := restic.New(ctx, restic.Config{})
	if err != nil {
		t.Fatalf("this test runs the real restic binary: %v (run `make tools`)", err)
	}

	// The member backs up twice with its key.
	env := parseSnippet(t, key.Snippet)
	const password = "correct horse battery staple"
	repo := restic.Repo{URL: env["RESTIC_REPOSITORY"], Password: password, S3AccessKey: env["AWS_ACCESS_KEY_ID"],
		S3SecretKey: env["AWS_SECRET_ACCESS_KEY"], S3Region: env["AWS_DEFAULT_REGION"]}
	if _, err := runner.Init(ctx, repo); err != nil {
		t.Fatalf("restic init: %v", err)
	}
	src := t.TempDir()
	files := map[string][]byte{}
	for i, size := range []int{10, 200_000, 3_000_000} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		name := filepath.Join(src, "file"+string(rune('a'+i)))
		files[name] = data
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, err := runner.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	firstFiles := map[string][]byte{}
	for k, d := range files {
		firstFiles[k] = d
	}
	extra := make([]byte, 500_000)
	_, _ = rand.Read(extra)
	files[filepath.Join(src, "later")] = extra
	if err := os.WriteFile(filepath.Join(src, "later"), extra, 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := runner.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatalf("second backup: %v", err)
	}

	// The tripwire puts Archipelago's abort rule on the vault; the first copy run copies everything.
	if err := b.prot.CheckLifecycle(ctx); err != nil {
		t.Fatalf("tripwire: %v", err)
	}
	if n := b.auditCount(t, "vault.lifecycle_set", v.ID); n != 1 {
		t.Fatalf("lifecycle_set audited %d times, want 1", n)
	}
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy: %v", err)
	}
	st, err := b.prot.State(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.CopyStatus != protection.CopyActive || st.CopyIslandID == nil || *st.CopyIslandID == v.IslandID || *st.CopyIslandID == b.north.ID {
		t.Fatalf("copy state = %+v (vault on %d, A operates north %d)", st, v.IslandID, b.north.ID)
	}
	if st.LastRun == nil || st.LastRun.Status != "ok" || st.LastRun.ObjectsCopied == 0 || st.CopiedThrough == nil || st.Behind {
		t.Fatalf("first copy run = %+v, state %+v", st.LastRun, st)
	}
	member := s3(t, v.S3Endpoint, v.S3Region, key.AccessKeyID, key.SecretAccessKey)
	source := list(t, ctx, member, v.BucketName)
	var locks int
	for _, k := range source {
		if protection.IsLockFile(k) {
			locks++
		}
	}
	if st.LastRun.ObjectsInCopy != int64(len(source)-locks) {
		t.Fatalf("copy holds %d objects, the vault %d (%d locks)", st.LastRun.ObjectsInCopy, len(source), locks)
	}

	// The member gets a read-only key to the copy, with a restic snippet.
	reader, err := b.prot.ReaderKeyCreate(ctx, v.ID)
	if err != nil {
		t.Fatalf("reader key: %v", err)
	}
	renv := parseSnippet(t, reader.Snippet)
	copyEndpoint := strings.TrimPrefix(renv["RESTIC_REPOSITORY"], "s3:")
	copyEndpoint = copyEndpoint[:strings.Index(copyEndpoint, "/"+st.CopyBucket+"/")]
	if renv["RESTIC_REPOSITORY"] != "s3:"+copyEndpoint+"/"+st.CopyBucket+"/restic" || renv["AWS_SECRET_ACCESS_KEY"] != reader.SecretAccessKey {
		t.Fatalf("reader snippet:\n%s", reader.Snippet)
	}
	readerS3 := s3(t, copyEndpoint, renv["AWS_DEFAULT_REGION"], reader.AccessKeyID, reader.SecretAccessKey)
	memberOnCopy := s3(t, copyEndpoint, renv["AWS_DEFAULT_REGION"], key.AccessKeyID, key.SecretAccessKey)

	// A member key cannot write or delete in the copy; nor can the read-only copy key.
	inCopy := list(t, ctx, readerS3, st.CopyBucket)
	if len(inCopy) == 0 {
		t.Fatal("the reader key lists nothing in the copy")
	}
	for name, c := range map[string]*minio.Client{"member key": memberOnCopy, "reader key": readerS3} {
		if err := put(ctx, c, st.CopyBucket, "restic/intrusion", []byte("x")); minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Errorf("%s writes in the copy: %v", name, err)
		}
		if err := c.RemoveObject(ctx, st.CopyBucket, inCopy[0], minio.RemoveObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Errorf("%s deletes in the copy: %v", name, err)
		}
		bomb := lifecycle.NewConfiguration()
		bomb.Rules = []lifecycle.Rule{{ID: "x", Status: "Enabled", Expiration: lifecycle.Expiration{Days: 1}}}
		if err := c.SetBucketLifecycle(ctx, st.CopyBucket, bomb); minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Errorf("%s sets a lifecycle on the copy: %v", name, err)
		}
	}

	// The attack, with the member's own key: forget --prune everything, delete every
	// remaining object, set an Expiration rule.
	bin := runner.Binary()
	thief(t, ctx, bin, env, password, "forget", "--prune", first.SnapshotID, second.SnapshotID)
	for _, k := range list(t, ctx, member, v.BucketName) {
		if err := member.RemoveObject(ctx, v.BucketName, k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("the thief cannot delete %s: %v", k, err)
		}
	}
	if left := list(t, ctx, member, v.BucketName); len(left) != 0 {
		t.Fatalf("vault not empty after the attack: %v", left)
	}
	bomb := lifecycle.NewConfiguration()
	bomb.Rules = []lifecycle.Rule{{ID: "cleanup", Status: "Enabled", Expiration: lifecycle.Expiration{Days: 1}}}
	if err := member.SetBucketLifecycle(ctx, v.BucketName, bomb); err != nil {
		t.Fatalf("the member key cannot set a lifecycle (Garage lets it): %v", err)
	}

	// One tripwire period later: the alert fired and the rule is gone.
	b.clock.Advance(protection.DefaultTripwireEvery)
	if err := b.prot.CheckLifecycle(ctx); err != nil {
		t.Fatalf("tripwire: %v", err)
	}
	info, err := b.south.Client.GetBucketInfo(ctx, garage.BucketLookup{ID: *v.GarageBucketID})
	if v.IslandID == b.east.ID {
		info, err = b.east.Client.GetBucketInfo(ctx, garage.BucketLookup{ID: *v.GarageBucketID})
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range info.LifecycleRules {
		if r.Expiration != nil {
			t.Fatalf("the Expiration rule is still on the vault: %+v", info.LifecycleRules)
		}
	}
	if len(info.LifecycleRules) != 1 || info.LifecycleRules[0].ID != protection.AbortRuleID {
		t.Fatalf("vault rules after the tripwire = %+v", info.LifecycleRules)
	}
	if sev := b.events(t, notify.KindLifecycleRule, v.ID); !slices.Equal(sev, []string{notify.SeverityCritical}) {
		t.Fatalf("lifecycle alerts = %v, want one critical", sev)
	}
	if n := b.auditCount(t, "vault.lifecycle_removed", v.ID); n != 1 {
		t.Fatalf("lifecycle_removed audited %d times", n)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if st.LifecycleTrippedAt == nil || !strings.Contains(st.LifecycleDetail, "expire objects 1 day old") {
		t.Fatalf("tripwire state = %v %q", st.LifecycleTrippedAt, st.LifecycleDetail)
	}

	// One copy period later: the deletions are reported and kept in the copy.
	b.clock.Advance(time.Hour)
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy after the attack: %v", err)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if st.LastRun == nil || st.LastRun.DeletionsSeen != int64(len(inCopy)) || st.LastRun.DeletionsApplied != 0 ||
		st.PendingDeletionCount != int64(len(inCopy)) || len(st.PendingDeletions) == 0 {
		t.Fatalf("after the attack: run %+v, pending %d (copy had %d objects)", st.LastRun, st.PendingDeletionCount, len(inCopy))
	}
	wantAfter := st.LastRun.StartedAt.Add(30 * 24 * time.Hour)
	if !st.PendingDeletions[0].DeleteAfter.Equal(wantAfter) {
		t.Fatalf("pending deletion date %v, want %v", st.PendingDeletions[0].DeleteAfter, wantAfter)
	}
	if sev := b.events(t, notify.KindCopyDeletions, v.ID); len(sev) != 1 {
		t.Fatalf("deletion reports = %v", sev)
	}
	if got := list(t, ctx, readerS3, st.CopyBucket); !slices.Equal(got, inCopy) {
		t.Fatalf("the copy lost objects: %d left of %d", len(got), len(inCopy))
	}

	// restic restores every snapshot from the copy with the read-only copy key, bit for bit.
	copyRepo := restic.Repo{URL: renv["RESTIC_REPOSITORY"], Password: password, S3AccessKey: renv["AWS_ACCESS_KEY_ID"],
		S3SecretKey: renv["AWS_SECRET_ACCESS_KEY"], S3Region: renv["AWS_DEFAULT_REGION"]}
	snaps, err := runner.Snapshots(ctx, copyRepo)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots in the copy: %d, %v", len(snaps), err)
	}
	for _, c := range []struct {
		id   string
		want map[string][]byte
	}{{first.SnapshotID, firstFiles}, {second.SnapshotID, files}} {
		target := t.TempDir()
		if _, err := runner.Restore(ctx, copyRepo, restic.RestoreOptions{SnapshotID: c.id, Target: target, Verify: true}); err != nil {
			t.Fatalf("restore %s from the copy: %v", c.id[:8], err)
		}
		for name, data := range c.want {
			got, err := os.ReadFile(filepath.Join(target, name))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("restored %s differs (%d bytes, want %d): %v", name, len(got), len(data), err)
			}
		}
	}
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), reader.SecretAccessKey) {
		t.Fatal("the state shows the reader secret")
	}

	// With the clock past the grace period, the deletions propagate (and are audited).
	b.clock.Advance(30*24*time.Hour + time.Minute)
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatalf("copy past the grace period: %v", err)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if st.LastRun.DeletionsApplied != int64(len(inCopy)) || st.PendingDeletionCount != 0 || st.LastRun.ObjectsInCopy != 0 {
		t.Fatalf("past the grace period: %+v", st.LastRun)
	}
	if got := list(t, ctx, readerS3, st.CopyBucket); len(got) != 0 {
		t.Fatalf("copy still holds %d objects past the grace period", len(got))
	}
	if n := b.auditCount(t, "vault_copy.deletions_applied", v.ID); n != 1 {
		t.Fatalf("deletions_applied audited %d times", n)
	}
}
