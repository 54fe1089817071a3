package verify

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/chatons/archipelago/internal/restic"
)

// MemberCheck is what the member-side agent (internal/attest, `archipelago agent`) needs
// to run the levels that need the repository password on the member's own machine, with
// the member's own S3 key, through the island's S3 endpoint: the same code as the
// federation's full-mode tests, so both say the same thing about the same repository.
type MemberCheck struct {
	Creds    Credentials // the member's own key on the vault (read access is enough)
	Prefix   string      // the repository's path in the vault
	Password string      // never leaves the member's machine
	// CanaryToken and CanaryPath: the canary level (the repository page shows both).
	CanaryToken string
	CanaryPath  string
	// SampleFiles and SampleBytes bound the sample restore.
	SampleFiles int
	SampleBytes int64
	RPOSeconds  int64
	RTOSeconds  int64
	// Subset n of Subsets: `restic check --read-data-subset n/Subsets` (1-based).
	Subset, Subsets int
	Scratch         string // a directory for the sample restore (the caller removes it)
	CacheDir        string // restic's cache ("": in Scratch)
	Seed            uint64 // for the random sample
}

// MemberResult is what a member-side run found.
type MemberResult struct {
	Status       string // passed, warning, failed or error (never postponed: see Postponed)
	Reason       string
	Postponed    string // non-empty: an exclusive lock is in the repository, nothing ran
	Levels       []LevelResult
	SnapshotID   string
	SnapshotTime time.Time
	Snapshots    int
	CheckSubset  string
	SampleFiles  int64
	SampleBytes  int64
	RestoreSecs  float64
}

// MemberRun runs freshness, integrity (check with data subset Subset/Subsets), sample
// restore with --verify and the canary, as a full-mode test does, but with the member's
// key and password. The full restore is not run (it is the federation's, on request).
func MemberRun(ctx context.Context, r *restic.Runner, c MemberCheck, now func() time.Time) MemberResult {
	if now == nil {
		now = time.Now
	}
	subsets := max(c.Subsets, 1)
	n := min(max(c.Subset, 1), subsets)
	t := target{mode: ModeFull, prefix: c.Prefix, creds: c.Creds, password: c.Password, canaryToken: c.CanaryToken,
		policy: EffectivePolicy{RPOSeconds: cmp.Or(c.RPOSeconds, 36*3600), RTOSeconds: cmp.Or(c.RTOSeconds, 24*3600),
			SampleFiles: c.SampleFiles, SampleBytes: c.SampleBytes, CheckEveryRuns: 1, CheckSubsets: subsets,
			CanaryPath: cmp.Or(c.CanaryPath, "archipelago-canary.txt")},
		checkCount: int64(n - 1), scratch: c.Scratch, cacheDir: c.CacheDir, clockTolerance: 5 * time.Minute, seed: c.Seed}
	res := execute(ctx, r, t, now, nil, nil, nil)
	res.waitRemoval() // the caller finds its scratch without the restored sample
	out := MemberResult{Status: res.status, Reason: res.reason, Postponed: res.postpone, SnapshotID: res.snapshotID,
		SnapshotTime: res.snapshotTime, Snapshots: res.snapshotCount, CheckSubset: res.checkSubset,
		SampleFiles: res.sampleFiles, SampleBytes: res.sampleBytes, RestoreSecs: res.restoreSeconds}
	for _, l := range res.levels {
		if l.Level == LevelDeletions || l.Level == LevelFull {
			continue // the federation's own business: it knows the history and decides full restores
		}
		out.Levels = append(out.Levels, l)
	}
	if out.Postponed == "" {
		out.Status, out.Reason = outcome(out.Levels)
	}
	if out.CheckSubset == "" {
		out.CheckSubset = fmt.Sprintf("%d/%d", n, subsets)
	}
	return out
}
