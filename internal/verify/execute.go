package verify

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/quota"
	"github.com/chatons/archipelago/internal/restic"
)

// target is everything one test needs to know about its repository.
type target struct {
	repoID      int64
	mode        string
	prefix      string
	creds       Credentials
	password    string // full mode only
	policy      EffectivePolicy
	canaryToken string
	// known are the snapshots earlier tests saw and that were not gone yet (id → time).
	known          map[string]time.Time
	checkCount     int64
	runsSinceCheck int
	lastFull       *time.Time
	scratch        string        // this job's scratch directory (created, and removed, by the caller)
	clockTolerance time.Duration // a snapshot dated further in the future is implausible
	cacheDir       string        // restic's cache of this repository, kept warm between tests ("": in scratch)
	keyHint        string        // the id of the repository key the password opens, when known (keyhint.go)
	seed           uint64        // for the random sample
	// content-hash rotation: what earlier tests hashed, when the last one did, the cycle
	chKnown map[string]chKnown
	chLast  *time.Time
	chCycle time.Duration
}

// result is what one test found.
type result struct {
	levels   []LevelResult
	status   string
	reason   string
	postpone string // non-empty: the test must wait (an exclusive lock); nothing else is set

	snapshotID    string
	snapshotTime  time.Time
	snapshotCount int
	snapshots     map[string]time.Time // everything seen now
	gone          []string
	checkSubset   string
	checkDone     bool
	fullDone      bool
	contentHash   *contentHashResult

	sampleFiles, sampleBytes int64
	restoreSeconds           float64
	throughput               float64
	repoSize                 int64
	rtoEstimate              int64
	measured                 bool
	// worker, when set, is recorded as the run's worker instead of this process (the
	// sweeper closing the run of a dead worker keeps its name).
	worker string
	// removal, when set, is closed once the restored sample is removed: the outcome is
	// committed only after it (waitRemoval), so that no restored data is left when it shows.
	removal <-chan struct{}
}

// waitRemoval waits until the restored sample is removed.
func (r *result) waitRemoval() {
	if r != nil && r.removal != nil {
		<-r.removal
	}
}

// executor runs the levels of one test.
type executor struct {
	restic   *restic.Runner
	now      func() time.Time
	progress func(Progress)
	t        target
	res      *result
	repo     restic.Repo
	halted   bool // a level errored: the following levels are skipped
	// beforeRecheck, when set, runs between a check that found errors and its re-check
	// (Service.beforeRecheck: a test seam).
	beforeRecheck func(first *restic.CheckResult)
	// removeSample removes the restored sample (os.RemoveAll; Service.removeSample: a test
	// seam).
	removeSample func(dir string) error
}

// lockFresh is restic's own staleness limit: a lock not refreshed for 30 minutes is stale.
const lockFresh = 30 * time.Minute

func (t target) resticRepo() restic.Repo {
	return restic.Repo{URL: t.creds.resticURL(t.prefix), Password: t.password, S3AccessKey: t.creds.AccessKeyID,
		S3SecretKey: t.creds.SecretAccessKey, S3Region: t.creds.Region, CacheDir: cmp.Or(t.cacheDir, filepath.Join(t.scratch, "cache")), KeyHint: t.keyHint}
}

// execute runs one test. It never returns an error: whatever went wrong is in the levels,
// and the outcome says whose fault it was.
// beforeRecheck may be nil (see Service.beforeRecheck), and removeSample too (then
// os.RemoveAll; see Service.removeSample).
func execute(ctx context.Context, r *restic.Runner, t target, now func() time.Time, progress func(Progress),
	beforeRecheck func(first *restic.CheckResult), removeSample func(dir string) error) *result {
	e := &executor{restic: r, now: now, progress: progress, t: t, res: &result{}, repo: t.resticRepo(), beforeRecheck: beforeRecheck,
		removeSample: removeSample}
	if removeSample == nil {
		e.removeSample = os.RemoveAll
	}
	if progress == nil {
		e.progress = func(Progress) {}
	}
	if t.mode != ModeFull {
		e.blind(ctx)
	} else {
		if !e.full(ctx) {
			return e.res
		}
	}
	e.res.status, e.res.reason = outcome(e.res.levels)
	return e.res
}

// level runs fn as the named level and records its result.
func (e *executor) level(name string, fn func(l *LevelResult)) {
	l := LevelResult{Level: name, StartedAt: e.now().UTC(), Details: map[string]any{}}
	if e.halted {
		l.Outcome, l.Summary = OutcomeSkipped, "not run: an earlier level could not complete"
	} else {
		e.progress(Progress{Level: name, Phase: levelPhase[name]})
		fn(&l)
	}
	l.DurationMS = e.now().Sub(l.StartedAt).Milliseconds()
	if l.Outcome == OutcomeError {
		e.halted = true
	}
	e.res.levels = append(e.res.levels, l)
	e.progress(Progress{Level: name, done: &LevelDone{Level: name, Outcome: l.Outcome, Summary: truncate(l.Summary, 300),
		DurationMS: l.DurationMS}})
}

var levelPhase = map[string]string{
	LevelFreshness: "listing snapshots", LevelDeletions: "comparing with the last test", LevelContentHash: "hashing objects",
	LevelIntegrity: "restic check", LevelSample: "restoring a sample", LevelCanary: "reading the canary",
	LevelFull: "full restore",
}

// Phases are the words Progress.Phase takes: what a running level is doing ("restoring a
// sample"), for front ends that say them in another language.
func Phases() []string {
	out := make([]string, 0, len(levelPhase))
	for _, p := range levelPhase {
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// fail fills l from an error of restic: failed only when restic proved the data damaged.
func fail(l *LevelResult, what string, err error) {
	switch restic.Classify(err) {
	case restic.FaultRepository:
		l.Outcome = OutcomeFailed
		l.Summary = what + ": the repository is damaged: " + short(err)
	case restic.FaultAccess:
		l.Outcome = OutcomeError
		l.Summary = what + ": " + accessHint(err)
	case restic.FaultOperational:
		l.Outcome = OutcomeError
		if errors.Is(err, restic.ErrStorageUnavailable) {
			l.Summary = what + ": the island kept failing and restic was stopped (this says nothing about the backup; the test is retried): " + short(err)
		} else {
			l.Summary = what + ": the verifier could not do it (this says nothing about the backup): " + short(err)
		}
	default:
		l.Outcome = OutcomeError
		l.Summary = what + ": the verifier could not do it (this says nothing about the backup): " + short(err)
	}
	l.Details["error"] = short(err)
}

func accessHint(err error) string {
	switch {
	case errors.Is(err, restic.ErrWrongPassword):
		return "the password Archipelago holds no longer opens the repository (was its key removed?); replace it"
	case errors.Is(err, restic.ErrRepositoryNotFound):
		return "there is no restic repository at this path of the vault; check the repository's path"
	case errors.Is(err, restic.ErrAccessDenied):
		return "the vault refused the verifier key; the federation admins have been told"
	}
	return "could not open the repository: " + short(err)
}

func short(err error) string {
	s := err.Error()
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// blind runs the levels that need no password, from the objects' timestamps.
func (e *executor) blind(ctx context.Context) {
	var objs map[string]time.Time
	e.level(LevelFreshness, func(l *LevelResult) {
		var err error
		objs, err = listSnapshotObjects(ctx, e.t.creds, e.t.prefix)
		if err != nil {
			probeFailed(l, err)
			return
		}
		e.freshness(l, objs, "upload time of the newest object under snapshots/", nil)
	})
	e.level(LevelDeletions, func(l *LevelResult) { e.deletions(l, objs) })
	e.level(LevelContentHash, func(l *LevelResult) { e.contentHash(ctx, l) })
	why := "needs the repository password: this repository is registered in blind mode"
	if e.t.mode == ModeAttested {
		why = "needs the repository password: in attested mode the member's agent runs it (see the member's attestations)"
	}
	for _, name := range []string{LevelIntegrity, LevelSample, LevelCanary, LevelFull} {
		e.res.levels = append(e.res.levels, LevelResult{Level: name, Outcome: OutcomeSkipped, StartedAt: e.now().UTC(),
			Summary: why, Details: map[string]any{}})
	}
}

// probeFailed records a failed look at the vault: never the member's fault.
func probeFailed(l *LevelResult, err error) {
	l.Outcome = OutcomeError
	l.Details["error"] = short(err)
	var be *blindError
	if errors.As(err, &be) && be.access {
		l.Summary = "no repository could be read at this path with the vault's verifier key (check the repository's path; this says nothing about the backup): " + short(err)
	} else {
		l.Summary = "the island could not be reached (this says nothing about the backup): " + short(err)
	}
}

// freshness judges the newest plausible snapshot's age against the RPO target. A snapshot
// dated more than the clock tolerance in the future (the clock of the machine that made it
// is ahead) is reported, and judged by its upload time on the island when uploaded is
// given (nil in blind mode, whose times are upload times already); without a plausible
// time it does not count, so that one future date cannot make freshness pass forever.
func (e *executor) freshness(l *LevelResult, snaps map[string]time.Time, basis string, uploaded func() (map[string]time.Time, error)) {
	e.res.snapshots = snaps
	e.res.snapshotCount = len(snaps)
	rpo := time.Duration(e.t.policy.RPOSeconds) * time.Second
	l.Details["snapshots"] = len(snaps)
	l.Details["rpo_seconds"] = e.t.policy.RPOSeconds
	l.Details["basis"] = basis
	if len(snaps) == 0 {
		l.Outcome, l.Summary = OutcomeFailed, "the repository holds no snapshot: no backup has been made into it yet"
		return
	}
	now := e.now()
	horizon := now.Add(e.t.clockTolerance)
	effective := make(map[string]time.Time, len(snaps))
	var future []string
	for id, ts := range snaps {
		if ts.After(horizon) {
			future = append(future, id)
			continue
		}
		effective[id] = ts
	}
	clockNote := ""
	if len(future) > 0 {
		slices.SortFunc(future, func(a, b string) int { return snaps[b].Compare(snaps[a]) })
		ahead := snaps[future[0]].Sub(now)
		var byUpload map[string]time.Time
		if uploaded != nil {
			var err error
			if byUpload, err = uploaded(); err != nil {
				l.Details["upload_times_error"] = short(err)
			}
		}
		for _, id := range future {
			if up, ok := byUpload[id]; ok && !up.After(horizon) {
				effective[id] = up
			}
		}
		who := "the clock of the machine that made it is ahead"
		if uploaded == nil {
			who = "the island's clock is ahead of the verifier's"
		}
		clockNote = fmt.Sprintf("clock ahead: %d snapshot(s) dated in the future, the newest (%s) %s ahead of now (%s); freshness is judged on plausible times (upload time on the island)",
			len(future), future[0][:8], human(ahead), who)
		l.Details["clock_ahead"] = true
		l.Details["future_snapshots"] = capList(future, 20)
		l.Details["ahead_seconds"] = int64(ahead.Seconds())
	}
	var newestID string
	var newest time.Time
	for id, ts := range effective {
		if ts.After(newest) || (ts.Equal(newest) && id > newestID) {
			newest, newestID = ts, id
		}
	}
	if newestID == "" {
		l.Outcome = OutcomeError
		l.Summary = clockNote + ": no snapshot has a plausible time, so freshness cannot be judged; set the clocks right (NTP)"
		return
	}
	e.res.snapshotID, e.res.snapshotTime = newestID, newest
	age := now.Sub(newest)
	l.Details["newest_snapshot"] = newestID
	l.Details["newest_time"] = newest
	l.Details["age_seconds"] = int64(age.Seconds())
	switch {
	case age > rpo:
		l.Outcome = OutcomeFailed
		l.Summary = fmt.Sprintf("the newest snapshot (%s) is %s old, more than the %s target: backups have stopped or fail; check the backup job",
			newestID[:8], human(age), human(rpo))
	case age > rpo*8/10:
		l.Outcome = OutcomeWarning
		l.Summary = fmt.Sprintf("the newest snapshot (%s) is %s old, close to the %s target", newestID[:8], human(age), human(rpo))
	default:
		l.Outcome = OutcomePassed
		l.Summary = fmt.Sprintf("newest snapshot %s is %s old (target %s)", newestID[:8], human(age), human(rpo))
	}
	if clockNote != "" {
		if l.Outcome == OutcomePassed {
			l.Outcome = OutcomeWarning
		}
		l.Summary = clockNote + "; " + l.Summary
	}
}

// deletions reports snapshots earlier tests saw that are gone now.
func (e *executor) deletions(l *LevelResult, snaps map[string]time.Time) {
	if len(e.t.known) == 0 {
		l.Outcome, l.Summary = OutcomePassed, fmt.Sprintf("first look: %d snapshots recorded", len(snaps))
		return
	}
	var gone []string
	for id := range e.t.known {
		if _, ok := snaps[id]; !ok {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(gone, func(a, b string) int { return e.t.known[a].Compare(e.t.known[b]) })
	e.res.gone = gone
	l.Details["gone"] = gone
	if len(gone) == 0 {
		l.Outcome, l.Summary = OutcomePassed, fmt.Sprintf("no snapshot disappeared since the last test (%d now)", len(snaps))
		return
	}
	var ids []string
	for _, id := range gone[:min(len(gone), 5)] {
		ids = append(ids, fmt.Sprintf("%s (%s)", id[:8], e.t.known[id].Format("2006-01-02 15:04")))
	}
	more := ""
	if len(gone) > 5 {
		more = fmt.Sprintf(" and %d more", len(gone)-5)
	}
	l.Outcome = OutcomeWarning
	l.Summary = fmt.Sprintf("%d snapshots disappeared since the last test: %s%s; expected if you run restic forget, alarming otherwise",
		len(gone), strings.Join(ids, ", "), more)
}

// full runs every level with restic. It reports false when the test is postponed.
func (e *executor) full(ctx context.Context) bool {
	// A quick look with the verifier key first: restic retries an unreachable island for
	// many minutes.
	if err := probe(ctx, e.t.creds, e.t.prefix); err != nil {
		e.level(LevelFreshness, func(l *LevelResult) { probeFailed(l, err) })
		for _, name := range Levels[1:] {
			e.level(name, nil)
		}
		return true
	}
	// An exclusive lock (prune, or a repair) is in the repository: come back later.
	locks, err := e.listLocks(ctx)
	if err == nil {
		for _, lk := range locks {
			if lk.Exclusive && e.now().Sub(lk.Time) < lockFresh {
				e.res.postpone = fmt.Sprintf("an exclusive lock (%s@%s, pid %d, since %s) is in the repository: a prune or repair is running",
					lk.Username, lk.Hostname, lk.PID, lk.Time.UTC().Format(time.RFC3339))
				return false
			}
		}
	}

	var snaps []restic.Snapshot
	var listed *listing // the newest snapshot's files, when freshness listed them
	e.level(LevelFreshness, func(l *LevelResult) {
		if err != nil { // listing locks already failed: same cause
			fail(l, "open the repository", err)
			return
		}
		var m map[string]time.Time
		if m, listed, err = e.listNewest(ctx); m != nil || err != nil {
			if err != nil {
				fail(l, "list snapshots", err)
				return
			}
			e.freshness(l, m, "time of the newest snapshot (restic snapshots)", nil)
			return
		}
		snaps, err = e.restic.Snapshots(ctx, e.repo)
		if err != nil {
			fail(l, "list snapshots", err)
			return
		}
		m = make(map[string]time.Time, len(snaps))
		for _, s := range snaps {
			m[s.ID] = s.Time.UTC()
		}
		e.freshness(l, m, "time of the newest snapshot (restic snapshots)", func() (map[string]time.Time, error) {
			return listSnapshotObjects(ctx, e.t.creds, e.t.prefix)
		})
	})
	e.level(LevelDeletions, func(l *LevelResult) { e.deletions(l, e.res.snapshots) })
	e.level(LevelIntegrity, func(l *LevelResult) { e.integrity(ctx, l) })

	// The sample and the canary come from the newest snapshot, in one restore.
	var files []restic.Node
	var canary *restic.Node
	var sample []restic.Node
	var sampleDir string
	e.level(LevelSample, func(l *LevelResult) {
		if e.res.snapshotID == "" {
			l.Outcome, l.Summary = OutcomeSkipped, "no snapshot to restore"
			return
		}
		var size int64
		if listed != nil && listed.snapshotID == e.res.snapshotID {
			files, size = listed.files, listed.size
		} else {
			_, err := e.restic.Ls(ctx, e.repo, e.res.snapshotID, func(n restic.Node) error {
				if n.Type == "file" {
					files = append(files, n)
					size += int64(n.Size)
				}
				return nil
			})
			if err != nil {
				fail(l, "list the files of snapshot "+e.res.snapshotID[:8], err)
				return
			}
		}
		listed = nil
		e.res.repoSize = size
		canary = findCanary(files, e.t.policy.CanaryPath)
		sample = pickSample(files, e.t.policy.SampleFiles, e.t.policy.SampleBytes, e.t.seed)
		all := len(sample) == len(files)
		var include []string
		if !all {
			for _, n := range sample {
				include = append(include, escapePattern(n.Path))
			}
			if canary != nil && !slices.ContainsFunc(sample, func(n restic.Node) bool { return n.Path == canary.Path }) {
				include = append(include, escapePattern(canary.Path))
			}
		}
		var want int64
		for _, n := range sample {
			want += int64(n.Size)
		}
		if len(include) == 0 && !all {
			l.Outcome, l.Summary = OutcomePassed, "nothing to restore: the sample size is 0"
			return
		}
		sampleDir = filepath.Join(e.t.scratch, "sample")
		rr := e.restic.WithProgress(func(p restic.Progress) {
			e.progress(Progress{Level: LevelSample, Phase: "restoring a sample", Percent: p.PercentDone * 100,
				BytesDone: p.BytesDone, BytesTotal: p.TotalBytes, FilesDone: p.FilesDone, FilesTotal: p.TotalFiles})
		})
		start := time.Now()
		opts := restic.RestoreOptions{SnapshotID: e.res.snapshotID, Target: sampleDir, Include: include, Verify: true}
		res, err := rr.Restore(ctx, e.repo, opts)
		elapsed := time.Since(start)
		if err != nil && restic.Classify(err) == restic.FaultRepository {
			if why := e.confirmRestore(ctx, opts); why != "" {
				islandFault(l, "restore a sample of snapshot "+e.res.snapshotID[:8], why, err)
				if res != nil {
					l.Details["files_with_errors_reported"] = restoreErrorItems(res)
				}
				return
			}
		}
		if err != nil {
			fail(l, "restore a sample of snapshot "+e.res.snapshotID[:8], err)
			if res != nil {
				l.Details["files_with_errors"] = restoreErrorItems(res)
				if items := restoreErrorItems(res); len(items) > 0 {
					l.Summary = fmt.Sprintf("restoring from snapshot %s failed for %d files (%s): the repository is damaged",
						e.res.snapshotID[:8], len(items), strings.Join(items[:min(3, len(items))], ", "))
				}
			}
			return
		}
		e.res.measured = true
		e.res.sampleFiles, e.res.sampleBytes = int64(len(sample)), want
		e.res.restoreSeconds = elapsed.Seconds()
		e.res.throughput = float64(want) / max(elapsed.Seconds(), 0.001)
		e.res.rtoEstimate = projectRTO(size, want, elapsed)
		rto := time.Duration(e.t.policy.RTOSeconds) * time.Second
		l.Details["files"], l.Details["bytes"] = len(sample), want
		l.Details["snapshot_files"], l.Details["snapshot_bytes"] = len(files), size
		l.Details["seconds"], l.Details["throughput_bps"] = elapsed.Seconds(), e.res.throughput
		l.Details["rto_estimate_seconds"] = e.res.rtoEstimate
		l.Details["verified_files"] = res.FilesRestored
		est := time.Duration(e.res.rtoEstimate) * time.Second
		if est > rto {
			l.Outcome = OutcomeWarning
			l.Summary = fmt.Sprintf("restored and verified %d files (%s) in %s; a full restore (%s) would take about %s, more than the %s target",
				len(sample), quota.Bytes(want), human(elapsed), quota.Bytes(size), human(est), human(rto))
			return
		}
		l.Outcome = OutcomePassed
		l.Summary = fmt.Sprintf("restored and verified %d files (%s) in %s (%s/s); a full restore of %s would take about %s (target %s)",
			len(sample), quota.Bytes(want), human(elapsed), quota.Bytes(int64(e.res.throughput)), quota.Bytes(size), human(est), human(rto))
	})
	e.level(LevelCanary, func(l *LevelResult) {
		l.Details["canary_path"] = e.t.policy.CanaryPath
		switch {
		case e.res.snapshotID == "":
			l.Outcome, l.Summary = OutcomeSkipped, "no snapshot to look into"
			return
		case canary == nil:
			l.Outcome = OutcomeFailed
			l.Summary = fmt.Sprintf("the canary file %q is not in snapshot %s: put a file of that name holding the repository's canary token into the backed-up data",
				e.t.policy.CanaryPath, e.res.snapshotID[:8])
			return
		case sampleDir == "":
			l.Outcome, l.Summary = OutcomeSkipped, "not restored"
			return
		}
		l.Details["file"] = canary.Path
		b, err := os.ReadFile(filepath.Join(sampleDir, filepath.FromSlash(canary.Path)))
		if errors.Is(err, os.ErrNotExist) && !e.res.measured {
			// The sample level already said why (a damaged repository, an island failing):
			// the canary is missing because of it, not because the verifier failed here.
			l.Outcome, l.Summary = OutcomeSkipped, "not restored: the sample restore did not complete"
			return
		}
		if err != nil {
			l.Outcome, l.Summary = OutcomeError, "the restored canary could not be read here: "+short(err)
			return
		}
		if !bytes.Contains(b, []byte(e.t.canaryToken)) {
			l.Outcome = OutcomeFailed
			l.Summary = fmt.Sprintf("the canary file %s in snapshot %s does not hold this repository's token: write the token shown on the repository page into it",
				canary.Path, e.res.snapshotID[:8])
			return
		}
		l.Outcome, l.Summary = OutcomePassed, fmt.Sprintf("canary %s restored and its token matches", canary.Path)
	})
	// The restored sample goes before the outcome is recorded (the worker waits for it,
	// result.removal). When a full restore follows, first, to free its space; otherwise
	// while the last levels run and the outcome is written (the removal of a large sample,
	// its blocks discarded by the file system, took 0.1–0.8 s).
	if sampleDir != "" {
		if !e.halted && e.fullDue() {
			_ = e.removeSample(sampleDir)
		} else {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = e.removeSample(sampleDir)
			}()
			e.res.removal = done
		}
	}
	e.level(LevelFull, func(l *LevelResult) { e.fullRestore(ctx, l) })
	// Content-hash integrity runs in every mode; here after restic's levels, which judge the
	// same objects first (an island fault is then attributed where restic met it).
	e.level(LevelContentHash, func(l *LevelResult) { e.contentHash(ctx, l) })
	return true
}

// listing is the file list of one snapshot.
type listing struct {
	snapshotID string
	files      []restic.Node // regular files only
	size       int64         // their bytes
}

// listNewest lists the snapshots and the newest one's files in one restic run: `restic ls
// latest` loads every snapshot to find the newest (any that cannot be read fails it), and
// then lists that one's files, where `restic snapshots` then `restic ls` open the
// repository twice (restic's start, its key derivation and index loading, each time).
// `ls` prints the newest snapshot only, so it answers only when that is the whole news:
// the snapshot objects under snapshots/ (listed with the verifier key) are those earlier
// tests recorded, which keep their recorded times, plus at most the newest one, and the
// newest is not dated beyond the clock tolerance. Otherwise it returns nil and no error,
// and the test lists the snapshots with `restic snapshots` (the first test of a repository
// holding several snapshots, several backups since the last test, a clock ahead, a
// snapshot recorded in blind mode dated after it). A failure of restic also returns nil
// (the two runs then report it as they always have), except a storage that kept failing,
// which is returned: running restic again would wait as long a second time.
func (e *executor) listNewest(ctx context.Context) (map[string]time.Time, *listing, error) {
	objs, err := listSnapshotObjects(ctx, e.t.creds, e.t.prefix)
	if err != nil || len(objs) == 0 {
		return nil, nil, nil
	}
	fresh := 0
	for id := range objs {
		if _, ok := e.t.known[id]; !ok {
			fresh++
		}
	}
	if fresh > 1 {
		return nil, nil, nil
	}
	lst := &listing{}
	snap, err := e.restic.Ls(ctx, e.repo, "latest", func(n restic.Node) error {
		if n.Type == "file" {
			lst.files = append(lst.files, n)
			lst.size += int64(n.Size)
		}
		return nil
	})
	if errors.Is(err, restic.ErrStorageUnavailable) {
		return nil, nil, err
	}
	if err != nil || snap == nil || !snapshotObject.MatchString(snap.ID) || snap.Time.After(e.now().Add(e.t.clockTolerance)) {
		return nil, nil, nil
	}
	newest := snap.Time.UTC()
	m := make(map[string]time.Time, len(objs)+1)
	for id := range objs {
		if id == snap.ID {
			continue
		}
		ts, ok := e.t.known[id]
		if !ok || !ts.Before(newest) {
			return nil, nil, nil // a new snapshot other than the newest, or a recorded time not older
		}
		m[id] = ts
	}
	m[snap.ID] = newest // also when it was uploaded after the objects were listed
	lst.snapshotID = snap.ID
	return m, lst, nil
}

// listLocks lists the repository's locks. The lock objects are listed with the verifier
// key first (one S3 request): restic, which costs opening the repository (its key
// derivation) and one more run per lock, only reads them when there are any.
func (e *executor) listLocks(ctx context.Context) ([]restic.Lock, error) {
	n, err := countLockObjects(ctx, e.t.creds, e.t.prefix)
	if err == nil && n == 0 {
		return nil, nil
	}
	return e.restic.ListLocks(ctx, e.repo)
}

// integrity runs restic check when due, reading one rotating subset of the data packs, and
// re-checks before calling anything corrupt (a pack removed by a concurrent prune).
func (e *executor) integrity(ctx context.Context, l *LevelResult) {
	if e.t.runsSinceCheck+1 < e.t.policy.CheckEveryRuns {
		l.Outcome = OutcomeSkipped
		l.Summary = fmt.Sprintf("not due: check runs every %d tests", e.t.policy.CheckEveryRuns)
		return
	}
	t := int64(max(e.t.policy.CheckSubsets, 1))
	n := e.t.checkCount%t + 1
	subset := fmt.Sprintf("%d/%d", n, t)
	e.res.checkSubset = subset
	l.Details["subset"] = subset
	res, err := e.restic.Check(ctx, e.repo, restic.CheckOptions{ReadDataSubset: subset})
	if err != nil && restic.Classify(err) == restic.FaultRepository {
		first := res
		l.Details["first_findings"] = capList(first.Findings, 20)
		time.Sleep(e.recheckDelay())
		if e.beforeRecheck != nil {
			e.beforeRecheck(first)
		}
		res, err = e.restic.Check(ctx, e.repo, restic.CheckOptions{ReadDataSubset: subset})
		if err == nil {
			e.res.checkDone = true
			l.Outcome = OutcomeWarning
			l.Summary = fmt.Sprintf("check of data subset %s first reported %d errors, the re-check none: a pack likely vanished during the check (a concurrent prune)",
				subset, max(first.NumErrors, len(first.Findings)))
			return
		}
	}
	if err != nil && restic.Classify(err) == restic.FaultRepository && res != nil {
		// Damage is only believed once the island answers again and the named packs read
		// back damaged.
		damaged, why := e.confirmPacks(ctx, res.BrokenPacks)
		if why != "" {
			islandFault(l, "restic check (data subset "+subset+")", why, err)
			l.Details["broken_packs_reported"] = res.BrokenPacks
			l.Details["findings"] = capList(res.Findings, 50)
			return
		}
		if len(res.BrokenPacks) > 0 {
			res.BrokenPacks = damaged
		}
	}
	if err != nil {
		fail(l, "restic check (data subset "+subset+")", err)
		if res != nil {
			e.res.checkDone = true
			l.Details["broken_packs"] = res.BrokenPacks
			l.Details["findings"] = capList(res.Findings, 50)
			l.Summary = checkSummary(subset, res)
		}
		return
	}
	e.res.checkDone = true
	l.Outcome = OutcomePassed
	l.Summary = fmt.Sprintf("restic check found no error; data subset %s read (every pack is read once every %d checks)", subset, t)
}

func (e *executor) recheckDelay() time.Duration { return 2 * time.Second }

func checkSummary(subset string, res *restic.CheckResult) string {
	if len(res.BrokenPacks) > 0 {
		packs := res.BrokenPacks[:min(3, len(res.BrokenPacks))]
		more := ""
		if len(res.BrokenPacks) > 3 {
			more = fmt.Sprintf(" and %d more", len(res.BrokenPacks)-3)
		}
		return fmt.Sprintf("restic check (data subset %s) found damaged data: broken pack %s%s; the files whose data is in it cannot be restored — run `restic repair packs` and make a new backup",
			subset, strings.Join(packs, ", "), more)
	}
	f := "errors"
	if len(res.Findings) > 0 {
		f = res.Findings[0]
	}
	return fmt.Sprintf("restic check (data subset %s) found %d errors in the repository: %s", subset, max(res.NumErrors, len(res.Findings)), f)
}

// fullDue says whether the full-restore level restores (fullRestore's rules).
func (e *executor) fullDue() bool {
	days := e.t.policy.FullRestoreDays
	return days != nil && (e.t.lastFull == nil || e.now().Sub(*e.t.lastFull) >= time.Duration(*days)*24*time.Hour) &&
		e.res.snapshotID != ""
}

// fullRestore restores the whole newest snapshot when the policy's cadence says so.
func (e *executor) fullRestore(ctx context.Context, l *LevelResult) {
	days := e.t.policy.FullRestoreDays
	switch {
	case days == nil:
		l.Outcome, l.Summary = OutcomeSkipped, "no full restore in this repository's policy"
		return
	case e.t.lastFull != nil && e.now().Sub(*e.t.lastFull) < time.Duration(*days)*24*time.Hour:
		l.Outcome = OutcomeSkipped
		l.Summary = fmt.Sprintf("not due: last full restore %s, every %d days", e.t.lastFull.UTC().Format("2006-01-02"), *days)
		return
	case e.res.snapshotID == "":
		l.Outcome, l.Summary = OutcomeSkipped, "no snapshot to restore"
		return
	}
	dir := filepath.Join(e.t.scratch, "full")
	defer os.RemoveAll(dir)
	rr := e.restic.WithProgress(func(p restic.Progress) {
		e.progress(Progress{Level: LevelFull, Phase: "full restore", Percent: p.PercentDone * 100,
			BytesDone: p.BytesDone, BytesTotal: p.TotalBytes, FilesDone: p.FilesDone, FilesTotal: p.TotalFiles})
	})
	start := time.Now()
	opts := restic.RestoreOptions{SnapshotID: e.res.snapshotID, Target: dir, Verify: true}
	res, err := rr.Restore(ctx, e.repo, opts)
	elapsed := time.Since(start)
	if err != nil && restic.Classify(err) == restic.FaultRepository {
		_ = os.RemoveAll(dir)
		if why := e.confirmRestore(ctx, opts); why != "" {
			islandFault(l, "full restore of snapshot "+e.res.snapshotID[:8], why, err)
			return
		}
	}
	if err != nil {
		fail(l, "full restore of snapshot "+e.res.snapshotID[:8], err)
		if res != nil {
			e.res.fullDone = true
			l.Details["files_with_errors"] = restoreErrorItems(res)
		}
		return
	}
	e.res.fullDone = true
	e.res.rtoEstimate = int64(elapsed.Seconds() + 0.5)
	l.Details["bytes"], l.Details["seconds"] = res.BytesRestored, elapsed.Seconds()
	rto := time.Duration(e.t.policy.RTOSeconds) * time.Second
	if elapsed > rto {
		l.Outcome = OutcomeWarning
		l.Summary = fmt.Sprintf("full restore of %s verified, but took %s, more than the %s target", quota.Bytes(int64(res.BytesRestored)), human(elapsed), human(rto))
		return
	}
	l.Outcome = OutcomePassed
	l.Summary = fmt.Sprintf("full restore of %s (%d files) verified in %s", quota.Bytes(int64(res.BytesRestored)), res.FilesRestored, human(elapsed))
}

// outcome combines the levels: failed when a level proved the backup bad, else error when
// the verifier could not do a level, else warning, else passed. The reason is the first
// summary of the deciding kind.
func outcome(levels []LevelResult) (status, reason string) {
	for _, want := range []string{OutcomeFailed, OutcomeError, OutcomeWarning} {
		var reasons []string
		for _, l := range levels {
			if l.Outcome == want {
				reasons = append(reasons, l.Summary)
			}
		}
		if len(reasons) > 0 {
			st := map[string]string{OutcomeFailed: StatusFailed, OutcomeError: StatusError, OutcomeWarning: StatusWarning}[want]
			return st, strings.Join(reasons, "; ")
		}
	}
	return StatusPassed, "every level passed"
}

// projectRTO projects the time of a full restore of size bytes from a sample of want
// bytes restored in elapsed. restic's fixed cost (opening the repository, loading the
// index) is not proportional to size: it is estimated as at most a second of elapsed.
func projectRTO(size, want int64, elapsed time.Duration) int64 {
	if want <= 0 || size <= 0 {
		return int64(elapsed.Seconds() + 0.5)
	}
	fixed := min(elapsed/2, time.Second)
	variable := elapsed - fixed
	return int64((fixed.Seconds() + variable.Seconds()*float64(size)/float64(want)) + 0.5)
}

// findCanary finds the canary file: an absolute path names the file exactly; a bare name
// matches a file of that name anywhere (the shallowest one wins).
func findCanary(files []restic.Node, canaryPath string) *restic.Node {
	var best *restic.Node
	for i, n := range files {
		switch {
		case strings.HasPrefix(canaryPath, "/"):
			if n.Path == canaryPath {
				return &files[i]
			}
		case n.Name == canaryPath || strings.HasSuffix(n.Path, "/"+canaryPath):
			if best == nil || strings.Count(n.Path, "/") < strings.Count(best.Path, "/") {
				best = &files[i]
			}
		}
	}
	return best
}

// pickSample picks up to count random files whose sizes add up to at most budget bytes.
func pickSample(files []restic.Node, count int, budget int64, seed uint64) []restic.Node {
	if count <= 0 {
		return nil
	}
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	var out []restic.Node
	var used int64
	for _, i := range idx {
		if len(out) == count {
			break
		}
		if used+int64(files[i].Size) > budget {
			continue
		}
		used += int64(files[i].Size)
		out = append(out, files[i])
	}
	slices.SortFunc(out, func(a, b restic.Node) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// escapePattern makes a path a literal restic include pattern.
func escapePattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// restoreErrorItems are the files a restore reported errors for, each once, in the order
// restic named them: restic reports a file once per damaged blob, and a reason that named
// the same file twice read as two files.
func restoreErrorItems(res *restic.RestoreResult) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range res.Errors {
		item := cmp.Or(e.Item, e.Message)
		if !seen[item] {
			seen[item] = true
			out = append(out, item)
		}
	}
	return capList(out, 50)
}

func capList(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}

// human prints a duration for people: 3d4h, 26h, 4m10s, 1.2s.
func human(d time.Duration) string {
	switch {
	case d >= 72*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%dh%02dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}
