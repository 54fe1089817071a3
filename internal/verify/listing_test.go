package verify

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/restic"
)

// resticCommands are the restic commands a run ran, in order, from its log ("ls latest").
func resticCommands(t *testing.T, b *bundle, runID int64) []string {
	t.Helper()
	var log string
	if err := b.pool.QueryRow(b.ctx, `SELECT log FROM restore_test_runs WHERE id = $1`, runID).Scan(&log); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ln := range strings.Split(log, "\n") {
		rest, ok := strings.CutPrefix(ln, "$ restic ")
		if !ok {
			continue
		}
		var words []string
		for _, w := range strings.Fields(rest) {
			if !strings.HasPrefix(w, "-") {
				words = append(words, w)
			}
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

// TestOneResticListingServesFreshnessAndTheSample: when the snapshot objects are those
// earlier tests recorded plus at most the newest, one `restic ls latest` gives freshness
// its snapshots and the sample its file list (no `restic snapshots`, no second `ls`), with
// the same verdicts; several new snapshots take `restic snapshots` and `ls`, as before.
func TestOneResticListingServesFreshnessAndTheSample(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.worker(nil)
	f := b.newRepo("restic/onelisting", false, false, Policy{CheckEveryRuns: ptr(1000)})
	commands := func(run Run) string { return strings.Join(resticCommands(t, b, run.ID), ", ") }
	files := func(run Run) any { return level(run, LevelSample).Details["snapshot_files"] }

	// The first test of a repository holding one snapshot: one listing.
	run := b.test(f)
	if run.Status != StatusPassed || ptrInt(run.SnapshotCount) != 1 || files(run) != float64(6) {
		t.Fatalf("first test: %s; sample details %v", describe(run), level(run, LevelSample).Details)
	}
	if got := commands(run); got != "ls latest, restore "+ptrString(run.SnapshotID) {
		t.Errorf("first test ran restic %q, want one listing then the restore (ls latest, restore)", got)
	}

	// One backup since: still one listing, of the new snapshot.
	f.src.write(t, "docs/new.txt", []byte("new\n"))
	sum, err := b.restic.Backup(b.ctx, f.member, restic.BackupOptions{Paths: []string{f.src.dir}, Host: "member-host"})
	if err != nil {
		t.Fatal(err)
	}
	run = b.test(f)
	if run.Status != StatusPassed || ptrString(run.SnapshotID) != sum.SnapshotID || ptrInt(run.SnapshotCount) != 2 || files(run) != float64(7) {
		t.Fatalf("after one backup (newest %.8s): %s; sample details %v", sum.SnapshotID, describe(run), level(run, LevelSample).Details)
	}
	if got := commands(run); got != "ls latest, restore "+sum.SnapshotID {
		t.Errorf("after one backup restic ran %q, want ls latest, restore", got)
	}

	// Two backups since: `restic snapshots`, then `ls` of the newest.
	b.backup(f)
	f.src.write(t, "docs/newer.txt", []byte("newer\n"))
	sum, err = b.restic.Backup(b.ctx, f.member, restic.BackupOptions{Paths: []string{f.src.dir}, Host: "member-host"})
	if err != nil {
		t.Fatal(err)
	}
	run = b.test(f)
	if run.Status != StatusPassed || ptrString(run.SnapshotID) != sum.SnapshotID || ptrInt(run.SnapshotCount) != 4 || files(run) != float64(8) {
		t.Fatalf("after two backups (newest %.8s): %s; sample details %v", sum.SnapshotID, describe(run), level(run, LevelSample).Details)
	}
	if got := commands(run); got != "snapshots, ls "+sum.SnapshotID+", restore "+sum.SnapshotID {
		t.Errorf("after two backups restic ran %q, want snapshots, ls <newest>, restore", got)
	}
}

func ptrInt(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// TestCachesOfRemovedRepositoriesGo: the sweeper removes the restic cache of a repository
// that is gone (or no longer in full mode) at once, not after CacheKeep; a repository in
// full mode keeps its warm cache.
func TestCachesOfRemovedRepositoriesGo(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	f := b.newRepo("restic/cached", false, false, Policy{})
	kept := filepath.Join(b.svc.cfg.CacheDir, "repository-"+strconv.FormatInt(f.repo.ID, 10))
	gone := filepath.Join(b.svc.cfg.CacheDir, "repository-"+strconv.FormatInt(f.repo.ID+1000000, 10))
	other := filepath.Join(b.svc.cfg.CacheDir, "not-a-repository")
	for _, d := range []string{kept, gone, other} {
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.svc.Sweep(b.ctx); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{kept: true, gone: false, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists = %v after the sweep, want %v", filepath.Base(d), err == nil, want)
		}
	}
	// The repository is removed: its cache goes at the next sweep.
	if err := b.svc.RepositoryDelete(b.ctx, f.repo.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Sweep(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept); err == nil {
		t.Errorf("the cache of a removed repository is still there after the sweep")
	}
}
