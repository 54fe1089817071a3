package protection_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/vaults"
)

func named(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// TestCopyVerifiesNamesKeepsGoodObjectsSkipsLocks: objects are copied by name once their
// content matches the SHA-256 in their name; an object overwritten in the vault is never
// copied over the good one and is reported; a new object whose content does not match its
// name is not copied; lock files are not copied; config (no hash) is copied.
func TestCopyVerifiesNamesKeepsGoodObjectsSkipsLocks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	v, key := b.vault(t)
	member := s3(t, v.S3Endpoint, v.S3Region, key.AccessKeyID, key.SecretAccessKey)
	good := "pack content"
	pack := "restic/data/" + named(good)[:2] + "/" + named(good)
	lock := "restic/locks/" + named("lock")
	bad := "restic/index/" + named("what the name promises")
	for name, content := range map[string]string{"restic/config": "config", pack: good, lock: "lock", bad: "something else"} {
		if err := put(ctx, member, v.BucketName, name, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.prot.CopyAll(ctx) // one object fails verification: reported in the run
	st, err := b.prot.State(ctx, v.ID)
	if err != nil || st.LastRun == nil {
		t.Fatalf("state %+v, %v", st, err)
	}
	if st.LastRun.Status != "partial" || st.LastRun.ObjectsCopied != 2 || st.LastRun.Overwrites != 1 || len(st.LastRun.Errors) != 1 ||
		!strings.Contains(st.LastRun.Errors[0], bad) {
		t.Fatalf("first run = %+v", st.LastRun)
	}
	if st.CopiedThrough != nil {
		t.Fatal("an incomplete run counts as a complete copy")
	}
	if sev := b.events(t, notify.KindCopyFailed, v.ID); len(sev) != 1 {
		t.Fatalf("copy.failed events = %v", sev)
	}
	reader, err := b.prot.ReaderKeyCreate(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	renv := parseSnippet(t, reader.Snippet)
	endpoint := strings.TrimPrefix(renv["RESTIC_REPOSITORY"], "s3:")
	endpoint = endpoint[:strings.Index(endpoint, "/"+st.CopyBucket+"/")]
	rc := s3(t, endpoint, renv["AWS_DEFAULT_REGION"], reader.AccessKeyID, reader.SecretAccessKey)
	if got := list(t, ctx, rc, st.CopyBucket); !slices.Equal(got, []string{pack, "restic/config"}) && !slices.Equal(got, []string{"restic/config", pack}) {
		t.Fatalf("copy holds %v", got)
	}

	// The pack is overwritten in the vault: the copy keeps the good content and reports it.
	if err := member.RemoveObject(ctx, v.BucketName, bad, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, member, v.BucketName, pack, []byte("ransomware was here")); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	if _, err := b.prot.CopyVault(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if st.LastRun.Overwrites != 1 || st.LastRun.ObjectsCopied != 0 || len(st.Overwrites) != 1 || st.Overwrites[0].Key != pack ||
		!strings.Contains(st.Overwrites[0].Detail, "no longer matches its name") {
		t.Fatalf("after the overwrite: run %+v, overwrites %+v", st.LastRun, st.Overwrites)
	}
	if got, err := get(ctx, rc, st.CopyBucket, pack); err != nil || string(got) != good {
		t.Fatalf("the copy's pack is now %q, %v", got, err)
	}
	if sev := b.events(t, notify.KindCopyOverwrite, v.ID); !slices.Equal(sev, []string{notify.SeverityCritical}) {
		t.Fatalf("overwrite reports = %v", sev)
	}

	// The good content comes back: the overwrite is cleared, nothing copied.
	if err := put(ctx, member, v.BucketName, pack, []byte(good)); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	if _, err := b.prot.CopyVault(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if len(st.Overwrites) != 0 || st.LastRun.Status != "ok" || st.CopiedThrough == nil || st.Behind {
		t.Fatalf("after the repair: %+v, overwrites %+v", st.LastRun, st.Overwrites)
	}
	// The copy falls behind when no run happens for two intervals.
	b.clock.Advance(3 * time.Hour)
	if st, _ = b.prot.State(ctx, v.ID); !st.Behind || st.LagSeconds == nil || *st.LagSeconds < 3*3600 {
		t.Fatalf("a copy 3 h old is not behind its hourly schedule: %+v", st)
	}
}

// TestFreeze: a frozen vault's member keys are read-only on Garage at once (also keys
// created meanwhile, and after a reconciliation), deletions stop reaching the copy, and
// an unfreeze takes effect only after the delay. Audited.
func TestFreeze(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	v, key := b.vault(t)
	member := s3(t, v.S3Endpoint, v.S3Region, key.AccessKeyID, key.SecretAccessKey)
	for _, n := range []string{"restic/config", "restic/keys/" + named("k")} {
		content := "k"
		if strings.HasSuffix(n, "config") {
			content = "config"
		}
		if err := put(ctx, member, v.BucketName, n, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.prot.CopyAll(ctx); err != nil {
		t.Fatal(err)
	}
	// A deletion before the freeze becomes pending.
	if err := member.RemoveObject(ctx, v.BucketName, "restic/config", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	if _, err := b.prot.CopyVault(ctx, v.ID); err != nil {
		t.Fatal(err)
	}

	st, err := b.prot.Freeze(ctx, v.ID, "laptop stolen")
	if err != nil {
		t.Fatalf("freeze: %v", err)
	}
	if !st.Frozen || st.FreezeReason != "laptop stolen" || st.UnfreezeAfter != nil {
		t.Fatalf("state after freeze = %+v", st)
	}
	writeRefused := func(c *minio.Client, what string) {
		t.Helper()
		if err := put(ctx, c, v.BucketName, "restic/x", []byte("x")); minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Fatalf("%s writes in a frozen vault: %v", what, err)
		}
		if err := c.RemoveObject(ctx, v.BucketName, "restic/keys/"+named("k"), minio.RemoveObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Fatalf("%s deletes in a frozen vault: %v", what, err)
		}
		if _, err := get(ctx, c, v.BucketName, "restic/keys/"+named("k")); err != nil {
			t.Fatalf("%s cannot read a frozen vault: %v", what, err)
		}
	}
	writeRefused(member, "the member key")
	// A reconciliation keeps it read-only; a key created meanwhile is read-only too.
	if _, err := b.vaults.ReconcileVault(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	writeRefused(member, "the member key after reconciliation")
	k2, err := b.vaults.KeyCreate(ctx, v.ID, vaults.KeyInput{Name: "new laptop"})
	if err != nil {
		t.Fatal(err)
	}
	writeRefused(s3(t, v.S3Endpoint, v.S3Region, k2.AccessKeyID, k2.SecretAccessKey), "a key created while frozen")

	// Past the grace period, a frozen vault's deletions do not reach the copy.
	b.clock.Advance(31 * 24 * time.Hour)
	run, err := b.prot.CopyVault(ctx, v.ID)
	if err != nil || run.DeletionsApplied != 0 || run.DeletionsPending != 1 {
		t.Fatalf("copy of a frozen vault: %+v, %v", run, err)
	}

	// Unfreezing waits the delay.
	st, err = b.prot.RequestUnfreeze(ctx, v.ID)
	if err != nil || st.UnfreezeAfter == nil || !st.Frozen {
		t.Fatalf("unfreeze request: %+v, %v", st, err)
	}
	if _, err := b.prot.RequestUnfreeze(ctx, v.ID); err == nil {
		t.Fatal("a second unfreeze request was accepted")
	}
	if err := b.prot.ApplyUnfreezes(ctx); err != nil {
		t.Fatal(err)
	}
	writeRefused(member, "the member key right after the unfreeze request")
	b.clock.Advance(23 * time.Hour)
	_ = b.prot.ApplyUnfreezes(ctx)
	writeRefused(member, "the member key 23 h after the unfreeze request")
	b.clock.Advance(2 * time.Hour)
	if err := b.prot.ApplyUnfreezes(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = b.prot.State(ctx, v.ID)
	if st.Frozen {
		t.Fatal("still frozen 25 h after the unfreeze request")
	}
	if err := put(ctx, member, v.BucketName, "restic/x", []byte("x")); err != nil {
		t.Fatalf("the member key cannot write after the unfreeze: %v", err)
	}
	run, err = b.prot.CopyVault(ctx, v.ID)
	if err != nil || run.DeletionsApplied != 1 {
		t.Fatalf("copy after the unfreeze: %+v, %v", run, err)
	}
	for action, want := range map[string]int{"vault.freeze": 1, "vault.unfreeze_request": 1, "vault.unfreeze": 1} {
		if n := b.auditCount(t, action, v.ID); n != want {
			t.Errorf("%s audited %d times, want %d", action, n, want)
		}
	}
}

// TestNoCopyIslandAndSettings: without an island the member does not operate besides the
// vault's, the copy is "none" and says why; the grace period is never under three days.
func TestNoCopyIslandAndSettings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	// A also operates east: its vault lands on south, and no third island is left for the copy.
	if _, err := b.pool.Exec(ctx, `INSERT INTO island_operators (island_id, member_id) VALUES ($1, $2)`, b.east.ID, b.memberA); err != nil {
		t.Fatal(err)
	}
	v, _ := b.vault(t)
	if v.IslandID != b.south.ID {
		t.Fatalf("vault on %d, want south", v.IslandID)
	}
	status, err := b.prot.EnsureCopy(ctx, v.ID)
	if err != nil || status != protection.CopyNone {
		t.Fatalf("EnsureCopy = %q, %v", status, err)
	}
	st, _ := b.prot.State(ctx, v.ID)
	if st.CopyStatus != protection.CopyNone || !strings.Contains(st.CopyDetail, "does not operate") || st.Behind {
		t.Fatalf("state = %+v", st)
	}
	// More than two copy intervals later, a vault that cannot have a copy is still not behind.
	b.clock.Advance(3 * time.Hour)
	if st, _ := b.prot.State(ctx, v.ID); st.Behind {
		t.Fatalf("a vault without a copy island is shown behind 3 h later: %+v", st)
	}
	short := 2 * 24 * time.Hour
	var fe *protection.FieldError
	if _, err := b.prot.SettingsUpdate(ctx, protection.SettingsInput{DeletionGrace: &short}); !errors.As(err, &fe) || fe.Field != "deletion_grace_seconds" {
		// The database's CHECK is the last line, not the answer: it would be a 500.
		t.Fatalf("a 2-day grace period: %v, want a refusal naming deletion_grace_seconds", err)
	}
	long := 5 * 24 * time.Hour
	s, err := b.prot.SettingsUpdate(ctx, protection.SettingsInput{DeletionGrace: &long})
	if err != nil || s.DeletionGrace != long {
		t.Fatalf("settings = %+v, %v", s, err)
	}
}
