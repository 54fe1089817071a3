package verify

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/chatons/archipelago/internal/restic"
)

// Tests of what the verifier sees while the member works on its repository: an exclusive
// lock (a prune or a check running) and a pack that vanishes between check and re-check.

// holdExclusiveLock starts `restic check --read-data` with the member's key (check takes an
// exclusive lock) and stops it with SIGSTOP as soon as its lock object is in the bucket, so
// the lock stays there. It returns the lock's key and a function that lets restic go on
// (SIGCONT): it finishes its check and removes its lock. The process is killed when the
// test ends, whatever happened.
func holdExclusiveLock(t *testing.T, b *bundle, f *fixture) (lockKey string, release func()) {
	t.Helper()
	prefix := f.repo.Path + "/locks/"
	for try := 0; try < 5; try++ {
		cmd := exec.Command(b.restic.Binary(), "--json", "check", "--read-data")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC", "RESTIC_REPOSITORY=" + f.member.URL,
			"RESTIC_PASSWORD=" + f.member.Password, "AWS_ACCESS_KEY_ID=" + f.member.S3AccessKey,
			"AWS_SECRET_ACCESS_KEY=" + f.member.S3SecretKey, "AWS_DEFAULT_REGION=" + f.member.S3Region,
			"RESTIC_CACHE_DIR=" + f.member.CacheDir}
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		kill := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
		t.Cleanup(kill)
		// restic waits 200 ms after writing its lock before it goes on: polling the bucket
		// every few milliseconds finds the lock in that window.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var key string
			for obj := range b.root.ListObjects(b.ctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
				if obj.Err == nil {
					key = obj.Key
				}
			}
			if key != "" {
				_ = cmd.Process.Signal(syscall.SIGSTOP)
				if _, err := b.root.StatObject(b.ctx, b.bucket, key, minio.StatObjectOptions{}); err != nil {
					break // it finished and removed its lock before it stopped: try again
				}
				return key, func() {
					_ = cmd.Process.Signal(syscall.SIGCONT)
					done := make(chan struct{})
					go func() { _ = cmd.Wait(); close(done) }()
					select {
					case <-done:
					case <-time.After(2 * time.Minute):
						t.Error("the member's restic check did not finish after SIGCONT")
						_ = cmd.Process.Kill()
					}
				}
			}
			time.Sleep(3 * time.Millisecond)
		}
		kill()
	}
	t.Fatal("could not catch restic check holding its exclusive lock")
	return "", nil
}

// TestExclusiveLockPostponesThenPasses: while a real restic holds an exclusive lock in the
// repository, the test is postponed (not failed, not an error) and retried later; once the
// lock is gone it runs and passes.
func TestExclusiveLockPostponesThenPasses(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{PostponeDelay: 500 * time.Millisecond, MaxPostponements: 100})
	b.worker(nil)
	// Big enough that restic check --read-data does not end before it is stopped.
	f := b.newRepo("restic/locked", false, false, Policy{CheckSubsets: ptr(1)})
	big := make([]byte, 24<<20)
	_, _ = rand.Read(big)
	f.src.write(t, "big/blob.bin", big)
	b.backup(f)

	lockKey, release := holdExclusiveLock(t, b, f)
	locks, err := b.restic.ListLocks(b.ctx, f.member)
	if err != nil || len(locks) != 1 || !locks[0].Exclusive {
		t.Fatalf("the repository should hold one exclusive lock: %+v, %v", locks, err)
	}

	run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Postponed, and tried again later (still postponed: the lock is still there).
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, err := RunGetByID(b.ctx, b.pool, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Final() {
			release()
			t.Fatalf("a test with an exclusive lock in the repository ended: %s", describe(r))
		}
		if r.Status == StatusPostponed && r.Postponements >= 2 {
			if !strings.Contains(r.Reason, "exclusive lock") || !strings.Contains(r.Reason, "prune or repair") {
				t.Errorf("postponed run's reason: %q", r.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			release()
			t.Fatalf("not postponed twice: %s (postponements %d)", describe(r), r.Postponements)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The member's check goes on and removes its lock: the next attempt runs and passes.
	release()
	if _, err := b.root.StatObject(b.ctx, b.bucket, lockKey, minio.StatObjectOptions{}); err == nil {
		t.Fatal("the member's restic left its lock")
	}
	done := b.wait(run.ID, 2*time.Minute)
	if done.Status != StatusPassed || done.Postponements < 2 || level(done, LevelIntegrity).Outcome != OutcomePassed {
		t.Fatalf("after the lock went away: %s (postponements %d)", describe(done), done.Postponements)
	}
}

// TestTooManyPostponementsIsAnError: a lock that never goes away ends the test in error
// (our side could not judge), never in failed.
func TestTooManyPostponementsIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{PostponeDelay: 200 * time.Millisecond, MaxPostponements: 2, MaxAttempts: 1})
	b.worker(nil)
	f := b.newRepo("restic/stuck", false, false, Policy{})
	big := make([]byte, 24<<20)
	_, _ = rand.Read(big)
	f.src.write(t, "big/blob.bin", big)
	b.backup(f)
	_, release := holdExclusiveLock(t, b, f)
	defer release()

	run := b.test(f)
	if run.Status != StatusError || !strings.Contains(run.Reason, "postponed 2 times") || !strings.Contains(run.Reason, "exclusive lock") {
		t.Fatalf("a lock that stays: %s", describe(run))
	}
}

// packKeys lists the object keys of the repository's data packs, biggest first.
func packKeys(t *testing.T, b *bundle, f *fixture) []minio.ObjectInfo {
	t.Helper()
	var objs []minio.ObjectInfo
	for obj := range b.root.ListObjects(b.ctx, b.bucket, minio.ListObjectsOptions{Prefix: f.repo.Path + "/data/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		objs = append(objs, obj)
	}
	slices.SortFunc(objs, func(a, b minio.ObjectInfo) int { return int(b.Size - a.Size) })
	if len(objs) == 0 {
		t.Fatal("no data pack")
	}
	return objs
}

func (b *bundle) getObject(key string) []byte {
	b.t.Helper()
	o, err := b.root.GetObject(b.ctx, b.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func (b *bundle) putObject(key string, data []byte) {
	b.t.Helper()
	if _, err := b.root.PutObject(b.ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		b.t.Fatal(err)
	}
}

// TestVanishedPackIsRecheckedBeforeCallingAnythingCorrupt: the first check finds a pack
// missing (a concurrent prune deleted it while the check read it); when the re-check is
// clean the test says so as a warning, never as failed. When the re-check finds the same
// damage, the test fails naming the pack.
func TestVanishedPackIsRecheckedBeforeCallingAnythingCorrupt(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/pruned", false, false, Policy{CheckSubsets: ptr(1)})
	pack := packKeys(t, b, f)[0]
	packID := pack.Key[strings.LastIndex(pack.Key, "/")+1:]
	orig := b.getObject(pack.Key)

	// Transient: the pack is gone for the first check and back for the re-check.
	var mu sync.Mutex
	var firsts []*restic.CheckResult
	var restore func()
	b.svc.beforeRecheck = func(first *restic.CheckResult) {
		mu.Lock()
		defer mu.Unlock()
		firsts = append(firsts, first)
		if restore != nil {
			restore()
		}
	}
	if err := b.root.RemoveObject(b.ctx, b.bucket, pack.Key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	restore = func() { b.putObject(pack.Key, orig) }
	run := b.test(f)
	l := level(run, LevelIntegrity)
	if len(firsts) != 1 {
		t.Fatalf("the re-check hook ran %d times, want once: %s", len(firsts), describe(run))
	}
	t.Logf("first check of a vanished pack: %+v", *firsts[0])
	if run.Status != StatusWarning || l.Outcome != OutcomeWarning || !strings.Contains(l.Summary, "re-check none") {
		t.Fatalf("transient check error: %s", describe(run))
	}
	for _, other := range []string{LevelFreshness, LevelDeletions, LevelSample, LevelCanary} {
		if o := level(run, other).Outcome; o != OutcomePassed {
			t.Errorf("level %s = %s after a transient check error", other, o)
		}
	}
	// The next test, with nothing wrong, passes and runs no re-check.
	if run := b.test(f); run.Status != StatusPassed || len(firsts) != 1 {
		t.Fatalf("clean test after the transient error (%d re-checks): %s", len(firsts), describe(run))
	}

	// Persistent: the pack's bytes are damaged for both checks. Failed, naming the pack,
	// only after the re-check.
	junk := make([]byte, len(orig))
	_, _ = rand.Read(junk)
	b.putObject(pack.Key, junk)
	restore = nil
	run = b.test(f)
	l = level(run, LevelIntegrity)
	if len(firsts) != 2 || !slices.Contains(firsts[1].BrokenPacks, packID) {
		t.Fatalf("the damaged pack was not re-checked (%d re-checks): %s", len(firsts), describe(run))
	}
	if run.Status != StatusFailed || l.Outcome != OutcomeFailed || !strings.Contains(l.Summary, packID[:8]) ||
		!strings.Contains(run.Reason, packID[:8]) {
		t.Fatalf("persistent damage: %s", describe(run))
	}
	if packs, _ := l.Details["broken_packs"].([]any); !slices.Contains(packs, any(packID)) {
		t.Errorf("broken_packs = %v, want %s", l.Details["broken_packs"], packID)
	}
}
