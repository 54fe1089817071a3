package verify

import (
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/faultproxy"
)

// Tests of verdicts under island faults: a real fault-injecting proxy stands between the
// verifier (restic and its own S3 reads) and the real MinIO. A degraded island must make
// a test end in error (retried), never in failed; a truly damaged pack still fails.

// behindProxy points the island at a fault proxy in front of MinIO and bounds how long
// restic may keep retrying one failing request.
func behindProxy(t *testing.T, b *bundle) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(b.s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if _, err := b.pool.Exec(b.ctx, `UPDATE islands SET s3_endpoint = $2 WHERE id = $1`, b.islandID, p.URL()); err != nil {
		t.Fatal(err)
	}
	b.svc.cfg.Restic = b.restic.WithStorageFaultLimit(3 * time.Second)
	return p
}

// bigPack makes the repository hold one big data pack (a 12 MiB file) and returns its id:
// the sample restore and a full check read it, listing files does not.
func bigPack(t *testing.T, b *bundle, f *fixture) string {
	t.Helper()
	big := make([]byte, 12<<20)
	_, _ = rand.Read(big)
	f.src.write(t, "big/blob.bin", big)
	b.backup(f)
	key := packKeys(t, b, f)[0].Key
	return key[strings.LastIndex(key, "/")+1:]
}

// TestIslandFaultsMidCheckAreErrorsNotFailures: the island starts failing while restic
// check reads the data packs — 503, Garage's quorum error, connection resets, bodies cut
// short, for as long as the test lasts. Each test ends in error (the verifier could not
// judge), never failed; once the island is healthy again the same repository passes.
func TestIslandFaultsMidCheckAreErrorsNotFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/check-faults", false, false, Policy{CheckSubsets: ptr(1)})
	pack := bigPack(t, b, f)
	p := behindProxy(t, b)
	b.worker(nil)
	for _, kind := range []faultproxy.Kind{faultproxy.Unavailable, faultproxy.Quorum, faultproxy.Reset, faultproxy.Truncate} {
		// The structure (index, trees) is read, then the big pack fails whenever asked for.
		remove := p.Add(faultproxy.Rule{Kind: kind, Method: "GET", PathContains: pack})
		run := b.test(f)
		remove()
		if p.Faults(kind) == 0 {
			t.Fatalf("no %s injected: the test proves nothing: %s", kind, describe(run))
		}
		l := level(run, LevelIntegrity)
		if run.Status != StatusError || l.Outcome != OutcomeError || !strings.Contains(run.Reason, "says nothing about the backup") {
			t.Fatalf("island %s during check: %s", kind, describe(run))
		}
		t.Logf("%s mid-check: %s", kind, l.Summary)
	}
	if run := b.test(f); run.Status != StatusPassed {
		t.Fatalf("healthy island again: %s", describe(run))
	}
}

// TestIslandUnavailableMidRestoreIsAnError: the island answers 503 (and then Garage's
// quorum error) while the sample is being restored: error, not failed.
func TestIslandUnavailableMidRestoreIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	// No check in this test (not due): the first reads of the big pack are the restore's.
	f := b.newRepo("restic/restore-faults", false, false, Policy{CheckEveryRuns: ptr(1000),
		SampleBytes: ptr(int64(1 << 30)), SampleFiles: ptr(1000)})
	pack := bigPack(t, b, f)
	p := behindProxy(t, b)
	b.worker(nil)
	for _, kind := range []faultproxy.Kind{faultproxy.Unavailable, faultproxy.Quorum} {
		remove := p.Add(faultproxy.Rule{Kind: kind, Method: "GET", PathContains: pack})
		run := b.test(f)
		remove()
		if p.Faults(kind) == 0 {
			t.Fatalf("no %s injected: %s", kind, describe(run))
		}
		l := level(run, LevelSample)
		if run.Status != StatusError || l.Outcome != OutcomeError || level(run, LevelIntegrity).Outcome != OutcomeSkipped {
			t.Fatalf("island %s during restore: %s", kind, describe(run))
		}
	}
}

// TestDamageInTransitIsNotDamage: the island hands out a damaged copy of an intact pack to
// restic (both checks) but the pack reads back intact when read again: error, not failed.
// The same test with the pack really damaged in the bucket fails, naming it.
func TestDamageInTransitIsNotDamage(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/transit", false, false, Policy{CheckSubsets: ptr(1)})
	pack := bigPack(t, b, f)
	p := behindProxy(t, b)
	b.worker(nil)
	// Every read of the pack by restic is damaged on its way; the verifier's own re-read
	// (its own user agent) is not.
	byRestic := func(r *http.Request) bool { return !strings.Contains(r.UserAgent(), "archipelago-verifier") }
	p.Add(faultproxy.Rule{Kind: faultproxy.Corrupt, Method: "GET", PathContains: pack, Match: byRestic})
	run := b.test(f)
	l := level(run, LevelIntegrity)
	if p.Faults(faultproxy.Corrupt) == 0 {
		t.Fatalf("no fault injected: %s", describe(run))
	}
	if run.Status != StatusError || l.Outcome != OutcomeError || !strings.Contains(l.Summary, "reads back intact") {
		t.Fatalf("damage in transit: %s", describe(run))
	}

	// Now really damaged in the bucket: failed, naming the pack.
	p.Clear()
	b.putObject(packKeys(t, b, f)[0].Key, func() []byte { j := make([]byte, 12<<20); _, _ = rand.Read(j); return j }())
	run = b.test(f)
	l = level(run, LevelIntegrity)
	if run.Status != StatusFailed || l.Outcome != OutcomeFailed || !strings.Contains(l.Summary, pack[:8]) {
		t.Fatalf("a damaged pack behind the proxy: %s", describe(run))
	}
}

// TestResticMissingIsAnError: a worker without restic ends a full-mode test in error,
// saying so, never failed.
func TestResticMissingIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/norestic", false, false, Policy{})
	b.svc.cfg.Restic = nil
	b.worker(nil)
	run := b.test(f)
	if run.Status != StatusError || !strings.Contains(run.Reason, "restic is not available") ||
		!strings.Contains(run.Reason, "says nothing about the backup") {
		t.Fatalf("restic missing: %s", describe(run))
	}
}

// TestScratchDiskFullIsAnError: the scratch directory is a 3 MiB tmpfs and the sample is
// bigger: the restore fails with "no space left on device", which is our side's problem:
// error, not failed, and the scratch space is cleaned up.
func TestScratchDiskFullIsAnError(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root")
	}
	b := setup(t, Config{MaxAttempts: 1})
	f := b.newRepo("restic/diskfull", false, false, Policy{CheckEveryRuns: ptr(1000), SampleBytes: ptr(int64(1 << 30)),
		SampleFiles: ptr(1000)})
	bigPack(t, b, f)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	b.svc.cfg.ScratchDir = dir
	b.scratch = dir
	b.worker(nil)
	run := b.test(f)
	l := level(run, LevelSample)
	if run.Status != StatusError || l.Outcome != OutcomeError || !strings.Contains(l.Summary, "no space left on device") {
		t.Fatalf("scratch disk full: %s", describe(run))
	}
	if dirs := jobDirs(t, dir); len(dirs) != 0 {
		t.Fatalf("scratch left on the full disk: %v", dirs)
	}
}
