package verify

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/chatons/archipelago/internal/testenv"
)

// TestLiveLevelLogAndProgressEndingAt100: while a test runs, its progress carries the
// levels finished so far (the run page's live level log) and the level now running with
// its phase — a level's start is never dropped behind the once-a-second throttle, so the
// page never shows a level that has ended — with a rate and an ETA once bytes move; a
// finished test's progress is 100 %.
func TestLiveLevelLogAndProgressEndingAt100(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	f := b.newRepo("progress", false, false, Policy{})
	// An insert-only client: the run is queued, no worker runs it yet.
	inserter, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.UseQueue(inserter)
	run, _, err := b.svc.RunNow(b.ctx, f.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	read := func() Progress {
		t.Helper()
		p, _, err := RunProgressGet(b.ctx, b.pool, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		return p.Progress
	}

	pw := newProgressWriter(b.svc, run.ID, ModeFull)
	pw.report(Progress{Level: LevelFreshness, Phase: "listing snapshots"})
	pw.report(Progress{Level: LevelFreshness, done: &LevelDone{Level: LevelFreshness, Outcome: OutcomePassed, Summary: "fresh", DurationMS: 12}})
	pw.report(Progress{Level: LevelIntegrity, Phase: "restic check"}) // at once: within the throttle's second
	pw.wait()
	p := read()
	if p.Level != LevelIntegrity || p.Phase != "restic check" {
		t.Errorf("running level = %q (%q), want integrity (restic check): a level's start was dropped", p.Level, p.Phase)
	}
	if len(p.LevelsDone) != 1 || p.LevelsDone[0].Level != LevelFreshness || p.LevelsDone[0].Outcome != OutcomePassed {
		t.Errorf("levels done = %+v, want freshness passed", p.LevelsDone)
	}
	if p.Percent != fullSpans[LevelIntegrity][0] {
		t.Errorf("percent at the start of integrity = %v, want %v", p.Percent, fullSpans[LevelIntegrity][0])
	}

	pw.report(Progress{Level: LevelSample, Phase: "restoring a sample", BytesTotal: 1000})
	time.Sleep(1100 * time.Millisecond) // past the throttle: the next report is written
	pw.report(Progress{Level: LevelSample, Phase: "restoring a sample", Percent: 50, BytesDone: 500, BytesTotal: 1000})
	pw.wait()
	p = read()
	if p.RateBps <= 0 || p.ETASeconds == nil {
		t.Errorf("half-way through the sample: rate %v, ETA %v; want both", p.RateBps, p.ETASeconds)
	}
	if want := fullSpans[LevelSample][0] + fullSpans[LevelSample][1]/2; p.Percent != want {
		t.Errorf("percent half-way through the sample = %v, want %v", p.Percent, want)
	}

	b.worker(nil)
	final := b.wait(run.ID, 5*time.Minute)
	if final.Status != StatusPassed {
		t.Fatalf("the test itself: %s", describe(final))
	}
	if p := read(); p.Percent != 100 {
		t.Errorf("a finished test's progress = %v %%, want 100", p.Percent)
	}
}
