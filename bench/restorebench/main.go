// Command restorebench measures Archipelago's restore tests against plain restic on the
// same repositories, and prints the ratios and their goals (issue 7, point 12):
//
//	sample    a sample restore of every file of a ~500 MiB snapshot, as a whole restore test,
//	          vs `restic restore --verify` of that snapshot (goal ≤ 1.05 × plain + 2 s);
//	parallel  20 repositories verified by the River workers: makespan vs a plain parallel
//	          loop of the same restic commands with the same parallelism (goal ≤ 1.10);
//	contenthash  content-hash integrity (every object's SHA-256 against its name) of a ~500 MiB
//	          blind repository vs plain SHA-256 of the same objects streamed from the same S3
//	          server (goal: plain / level ≥ 0.8; issue 15).
//
// It needs PostgreSQL and MinIO from `archipelago testenv` (ARCHIPELAGO_TEST_* variables):
// run it through bench/restore-sample.sh and bench/restore-parallel.sh, or `make bench`.
// Repositories live in MinIO, as members' repositories live on islands; the plain side runs
// the restic binary directly (the baseline a person would type), Archipelago's side goes
// through internal/verify, River and internal/restic like production.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/riverqueue/river"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/jobs"
	"github.com/chatons/archipelago/internal/restic"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
	"github.com/chatons/archipelago/internal/verify"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: restorebench sample|parallel|contenthash [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	sizeMiB := fs.Int("size-mib", 500, "sample, contenthash: size of the snapshot")
	repos := fs.Int("repos", 20, "parallel: repositories")
	repoMiB := fs.Int("repo-mib", 16, "parallel: size of each repository")
	par := fs.Int("parallel", 2, "parallel: tests at once (restore workers = island concurrency = plain loop width)")
	rounds := fs.Int("rounds", 0, "paired measurements of both sides (default 5 for sample, 3 for parallel)")
	_ = fs.Parse(os.Args[2:])

	ctx := audit.WithActor(context.Background(), audit.System("restorebench"))
	r, err := newRig(ctx, max(*par, 1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(1)
	}
	switch os.Args[1] {
	case "sample":
		err = r.sample(ctx, *sizeMiB, cmp.Or(*rounds, 5))
	case "parallel":
		err = r.parallel(ctx, *repos, *repoMiB, *par, cmp.Or(*rounds, 3))
	case "contenthash":
		err = r.contentHash(ctx, *sizeMiB, cmp.Or(*rounds, 3))
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	r.close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "restorebench:", err)
		os.Exit(1)
	}
}

// rig is a migrated database of its own, a bucket in MinIO registered as a vault, and the
// verify service with River workers.
type rig struct {
	pool    *pgxpool.Pool
	admin   string // URL of the cluster's maintenance database
	dbName  string
	s3      minioInfo
	root    *minio.Client
	bucket  string
	vaultID int64
	member  int64
	restic  *restic.Runner
	svc     *verify.Service
	dir     string
	stop    func()
}

type minioInfo struct{ Endpoint, AccessKey, SecretKey, Region string }

func newRig(ctx context.Context, workers int) (*rig, error) {
	r := &rig{admin: os.Getenv(testenv.EnvPGURL), stop: func() {}}
	r.s3 = minioInfo{os.Getenv(testenv.EnvS3Endpoint), os.Getenv(testenv.EnvS3AccessKey), os.Getenv(testenv.EnvS3SecretKey), os.Getenv(testenv.EnvS3Region)}
	if r.admin == "" || r.s3.Endpoint == "" {
		return nil, errors.New("no PostgreSQL/MinIO: run through `bin/archipelago testenv -- …` (bench/*.sh do)")
	}
	var err error
	if r.dir, err = os.MkdirTemp("", "restorebench-"); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, r.admin)
	if err != nil {
		return nil, err
	}
	r.dbName = "restorebench_" + strings.ToLower(rand.Text()[:10])
	_, err = conn.Exec(ctx, "CREATE DATABASE "+r.dbName)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(r.admin)
	if err != nil {
		return nil, err
	}
	cfg.Database = r.dbName
	if r.pool, err = pgxpool.New(ctx, cfg.ConnString()); err != nil {
		return nil, err
	}
	if err := database.MigrateUp(ctx, r.pool, nil); err != nil {
		return nil, err
	}
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	kr, err := seal.NewKeyring(key)
	if err != nil {
		return nil, err
	}
	if r.restic, err = restic.New(ctx, restic.Config{}); err != nil {
		return nil, err
	}
	if r.root, err = minio.New(r.s3.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(r.s3.AccessKey, r.s3.SecretKey, ""), Region: r.s3.Region}); err != nil {
		return nil, err
	}
	r.bucket = "restorebench-" + strings.ToLower(rand.Text()[:10])
	if err := r.root.MakeBucket(ctx, r.bucket, minio.MakeBucketOptions{Region: r.s3.Region}); err != nil {
		return nil, err
	}
	// A member, an island (this MinIO) and a vault (the bucket), as internal/vaults makes them.
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO members (slug, name) VALUES ('bench', 'Bench') RETURNING id`).Scan(&r.member); err != nil {
			return err
		}
		var island int64
		if err := tx.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
			replication_factor) VALUES ('bench', 'http://127.0.0.1:1', 'x', $1, $2, 1) RETURNING id`,
			"http://"+r.s3.Endpoint, r.s3.Region).Scan(&island); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO vaults (member_id, island_id, name, bucket_name, garage_bucket_id, quota_bytes,
			status, placement) VALUES ($1, $2, $3, $3, $4, 1099511627776, 'active', 'automatic') RETURNING id`,
			r.member, island, r.bucket, strings.Repeat("ab", 32)).Scan(&r.vaultID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE restore_settings SET island_concurrency = $1`, workers)
		return err
	})
	if err != nil {
		return nil, err
	}
	creds := verify.Credentials{Endpoint: "http://" + r.s3.Endpoint, Region: r.s3.Region, Bucket: r.bucket,
		AccessKeyID: r.s3.AccessKey, SecretAccessKey: r.s3.SecretKey}
	r.svc = verify.New(r.pool, kr, verify.Config{Restic: r.restic, ScratchDir: filepath.Join(r.dir, "scratch"),
		Credentials: func(context.Context, int64) (verify.Credentials, error) { return creds, nil }})
	jr, err := jobs.New(r.pool, jobs.Config{Work: true, RestoreWorkers: workers, Register: []func(*river.Workers){r.svc.Register}})
	if err != nil {
		return nil, err
	}
	r.svc.UseQueue(jr.Client())
	jctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = jr.Run(jctx, 10*time.Second) })
	r.stop = func() { cancel(); wg.Wait() }
	return r, nil
}

func (r *rig) close() {
	r.stop()
	ctx := context.Background()
	if r.root != nil && r.bucket != "" {
		_ = r.root.RemoveBucketWithOptions(ctx, r.bucket, minio.RemoveBucketOptions{ForceDelete: true})
	}
	if r.pool != nil {
		r.pool.Close()
		if conn, err := pgx.Connect(ctx, r.admin); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+r.dbName+" WITH (FORCE)")
			conn.Close(ctx)
		}
	}
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

// repo is the restic view of a path in the bench bucket.
func (r *rig) repo(path, password string) restic.Repo {
	return restic.Repo{URL: "s3:http://" + r.s3.Endpoint + "/" + r.bucket + "/" + path, Password: password,
		S3AccessKey: r.s3.AccessKey, S3SecretKey: r.s3.SecretKey, S3Region: r.s3.Region}
}

// writeFiles writes n files of size bytes of random data (which does not compress or
// deduplicate) under dir.
func writeFiles(dir string, n, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	buf := make([]byte, size)
	for i := range n {
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%03d.bin", i)), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// enqueue enqueues a new test of the repository. River completes a job shortly after its
// test recorded the outcome; until then RunNow answers with that finished run, so enqueue
// tries again. It returns the run and when it was enqueued.
func (r *rig) enqueue(ctx context.Context, id int64) (verify.Run, time.Time, error) {
	for {
		t0 := time.Now()
		run, created, err := r.svc.RunNow(ctx, id)
		if err != nil || created {
			return run, t0, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runTest enqueues a test of the repository and waits for its outcome; it returns the
// time from enqueue to outcome.
func (r *rig) runTest(ctx context.Context, id int64) (verify.Run, time.Duration, error) {
	run, t0, err := r.enqueue(ctx, id)
	if err != nil {
		return run, 0, err
	}
	run, err = r.wait(ctx, run.ID)
	return run, time.Since(t0), err
}

func (r *rig) wait(ctx context.Context, runID int64) (verify.Run, error) {
	for {
		run, err := verify.RunGetByID(ctx, r.pool, runID)
		if err != nil || run.Final() {
			return run, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// plain runs the restic binary as a person would, with the repository in the environment.
func (r *rig) plain(ctx context.Context, repo restic.Repo, cacheDir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.restic.Binary(), append([]string{"--cache-dir", cacheDir}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo.URL, "RESTIC_PASSWORD="+repo.Password,
		"AWS_ACCESS_KEY_ID="+repo.S3AccessKey, "AWS_SECRET_ACCESS_KEY="+repo.S3SecretKey, "AWS_DEFAULT_REGION="+repo.S3Region)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("restic %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return out, err
	}
	return out, nil
}

// resticRuns summarises a run's log: each restic command it ran and how long it took
// ("snapshots 0.71s, ls 0.64s, restore 2.60s"), from the lines internal/restic writes.
func resticRuns(log string) string {
	var out []string
	cmd := ""
	for _, ln := range strings.Split(log, "\n") {
		switch {
		case strings.HasPrefix(ln, "$ restic "):
			cmd = "?"
			for _, f := range strings.Fields(strings.TrimPrefix(ln, "$ restic ")) {
				if !strings.HasPrefix(f, "-") {
					cmd = f
					break
				}
			}
		case strings.HasPrefix(ln, "# exit code ") && cmd != "":
			if i := strings.LastIndex(ln, " after "); i >= 0 {
				if d, err := time.ParseDuration(ln[i+len(" after "):]); err == nil {
					out = append(out, fmt.Sprintf("%s %.2fs", cmd, d.Seconds()))
				}
			}
			cmd = ""
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func secs(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(parts, " ")
}

// sample: one repository holding a snapshot of sizeMiB in 10 MiB files; its policy samples
// every file, so the test's sample restore is a restore of the whole snapshot.
func (r *rig) sample(ctx context.Context, sizeMiB, rounds int) error {
	fmt.Printf("== restore-sample: a sample restore of all files of a %d MiB snapshot vs plain restic restore --verify\n", sizeMiB)
	src := filepath.Join(r.dir, "src")
	if err := writeFiles(src, max(sizeMiB/10, 1), 10<<20); err != nil {
		return err
	}
	pw := rand.Text() + rand.Text()
	repo := r.repo("restic/sample", pw)
	if _, err := r.restic.Init(ctx, repo); err != nil {
		return err
	}
	reg, err := r.svc.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: r.member, VaultID: r.vaultID, Name: "sample",
		Path: "restic/sample", Password: pw, FullModeConsent: verify.FullModeStatementVersion, Policy: verify.Policy{SampleFiles: ptr(100000), SampleBytes: ptr(int64(1) << 40),
			// The comparison is the restore: restic check (level 3) is not due in this test.
			CheckEveryRuns: ptr(1000)}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "archipelago-canary.txt"), []byte(reg.CanaryToken+"\n"), 0o644); err != nil {
		return err
	}
	start := time.Now()
	sum, err := r.restic.Backup(ctx, repo, restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		return err
	}
	fmt.Printf("setup: backup of %d MiB in %.1fs, snapshot %s\n", sizeMiB, time.Since(start).Seconds(), sum.SnapshotID[:8])
	_ = os.RemoveAll(src)

	plainOnce := func() (time.Duration, error) {
		dir, err := os.MkdirTemp(r.dir, "plain-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		t0 := time.Now()
		_, err = r.plain(ctx, repo, filepath.Join(dir, "cache"), "restore", "--no-lock", "--verify", "--quiet",
			"--target", filepath.Join(dir, "target"), sum.SnapshotID)
		return time.Since(t0), err
	}
	if _, err := plainOnce(); err != nil { // warm-up: MinIO's files into the page cache
		return err
	}
	// Archipelago's warm-up: the repository's first test. Its content-hash level reads every
	// object once (later tests read only new objects and a thirtieth of the repository per
	// day, ContentHashCycle) and it fills the repository's restic cache: a repository tested
	// daily is past it, and so are the timed tests. Printed, not counted.
	if run, d, err := r.runTest(ctx, reg.ID); err != nil {
		return err
	} else if run.Status != verify.StatusPassed {
		return fmt.Errorf("the first test did not pass: %s %s", run.Status, run.Reason)
	} else {
		var lv []string
		for _, l := range run.Levels {
			lv = append(lv, fmt.Sprintf("%s %.2fs", l.Level, float64(l.DurationMS)/1000))
		}
		fmt.Printf("warm-up: the repository's first test, enqueue→outcome %.2fs (%s), not counted\n", d.Seconds(), strings.Join(lv, ", "))
	}
	var plainT, archT, runT, restoreT []time.Duration
	var levels, waits []string
	archOnce := func(i int) error {
		run, t0, err := r.enqueue(ctx, reg.ID)
		if err != nil {
			return err
		}
		if run, err = r.wait(ctx, run.ID); err != nil {
			return err
		}
		seen := time.Now()
		d := seen.Sub(t0)
		archT = append(archT, d)
		// Where the time outside the levels went: enqueue → the worker's start (River's pick-up,
		// the slot, the scratch), and the worker's end → seen here (the bench polls).
		if run.StartedAt != nil && run.FinishedAt != nil {
			w := fmt.Sprintf("queue→start %.2fs", run.StartedAt.Sub(t0).Seconds())
			var picked *time.Time // when River handed the job to the worker
			if err := r.pool.QueryRow(ctx, `SELECT j.attempted_at FROM river_job j JOIN restore_test_runs t ON t.river_job_id = j.id
				WHERE t.id = $1`, run.ID).Scan(&picked); err == nil && picked != nil {
				w += fmt.Sprintf(" (River's pick-up %.2fs, the worker's preparation %.2fs)", picked.Sub(t0).Seconds(), run.StartedAt.Sub(*picked).Seconds())
			}
			if n := len(run.Levels); n > 0 {
				last := run.Levels[n-1]
				end := last.StartedAt.Add(time.Duration(last.DurationMS) * time.Millisecond)
				w += fmt.Sprintf(", start→first level %.2fs, last level→finished %.2fs",
					run.Levels[0].StartedAt.Sub(*run.StartedAt).Seconds(), run.FinishedAt.Sub(end).Seconds())
			}
			w += fmt.Sprintf(", finished→seen %.2fs", seen.Sub(*run.FinishedAt).Seconds())
			var log string
			if err := r.pool.QueryRow(ctx, `SELECT log FROM restore_test_runs WHERE id = $1`, run.ID).Scan(&log); err == nil {
				w += "; restic runs: " + resticRuns(log)
			}
			waits = append(waits, w)
		}
		if run.Status != verify.StatusPassed || run.SampleBytes == nil || *run.SampleBytes < int64(sizeMiB)<<20 {
			return fmt.Errorf("round %d: the test did not restore the whole snapshot: %s %s", i+1, run.Status, run.Reason)
		}
		runT = append(runT, time.Duration(*run.DurationMS)*time.Millisecond)
		var lv []string
		for _, l := range run.Levels {
			lv = append(lv, fmt.Sprintf("%s %.2fs", l.Level, float64(l.DurationMS)/1000))
		}
		levels = append(levels, strings.Join(lv, ", "))
		restoreT = append(restoreT, time.Duration(*run.RestoreSeconds*float64(time.Second)))
		return nil
	}
	// Paired rounds, the order alternating: the machine's load changes between rounds more
	// than between the two halves of one.
	var goal []float64 // per round: Archipelago ÷ (1.05 × plain + 2 s)
	for i := range rounds {
		if i%2 == 1 {
			if err := archOnce(i); err != nil {
				return err
			}
		}
		d, err := plainOnce()
		if err != nil {
			return err
		}
		plainT = append(plainT, d)
		if i%2 == 0 {
			if err := archOnce(i); err != nil {
				return err
			}
		}
		goal = append(goal, archT[i].Seconds()/(1.05*d.Seconds()+2))
	}
	p, a := median(plainT), median(archT)
	fmt.Printf("plain restic restore --verify (s):           %s  median %.2f\n", secs(plainT), p.Seconds())
	fmt.Printf("Archipelago test, enqueue→outcome (s):       %s  median %.2f\n", secs(archT), a.Seconds())
	fmt.Printf("  of which the worker's run (s):             %s\n", secs(runT))
	fmt.Printf("  of which its restic restore --verify (s):  %s  median %.2f\n", secs(restoreT), median(restoreT).Seconds())
	var fixed []time.Duration // everything but the restore: the fixed cost the goal allows 2 s for
	for i := range archT {
		fixed = append(fixed, archT[i]-restoreT[i])
	}
	fmt.Printf("  the rest, enqueue→outcome − restore (s):   %s  median %.2f\n", secs(fixed), median(fixed).Seconds())
	for i, l := range levels {
		fmt.Printf("  levels of test %d: %s\n", i+1, l)
		if i < len(waits) {
			fmt.Printf("    outside the levels and per restic run: %s\n", waits[i])
		}
	}
	ratio := a.Seconds() / p.Seconds()
	adj := (a - 2*time.Second).Seconds() / p.Seconds()
	g := medianF(goal)
	holding := 0
	for _, x := range goal {
		if x <= 1 {
			holding++
		}
	}
	fmt.Printf("  per round, Archipelago ÷ (1.05 × plain + 2 s): %s — ≤ 1.0 in %d of %d rounds\n", floats(goal), holding, len(goal))
	fmt.Printf("RESULT restore-sample: ratio %.3f (Archipelago/plain, medians); without a 2 s fixed cost %.3f; restore step alone %.3f; median of Archipelago ÷ (1.05 × plain + 2 s) per round %.3f — goal ≤ 1.05 plus at most 2 s fixed cost (≤ 1.000): %s\n",
		ratio, adj, median(restoreT).Seconds()/p.Seconds(), g, verdict(g <= 1))
	return nil
}

// parallel: n repositories of repoMiB each (one made with restic, copied server-side to the
// other paths: each is a complete repository), default policy (check of a 1/30 subset,
// sample of up to 20 files, canary).
func (r *rig) parallel(ctx context.Context, n, repoMiB, width, rounds int) error {
	fmt.Printf("== restore-parallel: %d repositories of %d MiB verified, %d at a time: Archipelago's makespan vs a plain parallel loop of the same restic commands\n",
		n, repoMiB, width)
	src := filepath.Join(r.dir, "src")
	if err := writeFiles(src, max(repoMiB/2, 1), 2<<20); err != nil {
		return err
	}
	token := verify.NewCanaryToken()
	if err := os.WriteFile(filepath.Join(src, "archipelago-canary.txt"), []byte(token+"\n"), 0o644); err != nil {
		return err
	}
	pw := rand.Text() + rand.Text()
	first := "restic/r00"
	if _, err := r.restic.Init(ctx, r.repo(first, pw)); err != nil {
		return err
	}
	sum, err := r.restic.Backup(ctx, r.repo(first, pw), restic.BackupOptions{Paths: []string{src}})
	if err != nil {
		return err
	}
	var objects []string
	for o := range r.root.ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Prefix: first + "/", Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		objects = append(objects, strings.TrimPrefix(o.Key, first+"/"))
	}
	paths := []string{first}
	for i := 1; i < n; i++ {
		p := fmt.Sprintf("restic/r%02d", i)
		for _, o := range objects {
			if _, err := r.root.CopyObject(ctx, minio.CopyDestOptions{Bucket: r.bucket, Object: p + "/" + o},
				minio.CopySrcOptions{Bucket: r.bucket, Object: first + "/" + o}); err != nil {
				return err
			}
		}
		paths = append(paths, p)
	}
	var ids []int64
	for i, p := range paths {
		reg, err := r.svc.RepositoryCreate(ctx, verify.RepositoryInput{MemberID: r.member, VaultID: r.vaultID,
			Name: fmt.Sprintf("r%02d", i), Path: p, Password: pw, FullModeConsent: verify.FullModeStatementVersion})
		if err != nil {
			return err
		}
		// One token in all the copies' canary file: every test can pass.
		if _, err := r.pool.Exec(ctx, `UPDATE restic_repositories SET canary_token = $2 WHERE id = $1`, reg.ID, token); err != nil {
			return err
		}
		ids = append(ids, reg.ID)
	}
	fmt.Printf("setup: %d repositories (%d objects each), snapshot %s\n", n, len(objects), sum.SnapshotID[:8])

	// The plain loop: what a test runs (execute.go, full mode, default policy), per repository:
	// no lock objects, so no `list locks`; one snapshot, so `ls latest` serves freshness and
	// the sample (listNewest).
	plainRepo := func(p string, scratch string) error {
		repo := r.repo(p, pw)
		cache := filepath.Join(scratch, "cache")
		for _, args := range [][]string{
			{"ls", "--no-lock", "--json", "latest"},
			{"check", "--no-lock", "--json", "--read-data-subset=1/30"},
			{"restore", "--no-lock", "--json", "--verify", "--target", filepath.Join(scratch, "sample"), sum.SnapshotID},
		} {
			if _, err := r.plain(ctx, repo, cache, args...); err != nil {
				return err
			}
		}
		return os.RemoveAll(scratch)
	}
	plainOnce := func() (time.Duration, error) {
		t0 := time.Now()
		sem := make(chan struct{}, width)
		errs := make([]error, len(paths))
		var wg sync.WaitGroup
		for i, p := range paths {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				errs[i] = plainRepo(p, filepath.Join(r.dir, "plain", fmt.Sprint(i)))
			})
		}
		wg.Wait()
		return time.Since(t0), errors.Join(errs...)
	}
	archOnce := func() (time.Duration, error) {
		// The previous round's jobs are completed first, so that every test is new.
		for _, id := range ids {
			for {
				var busy bool
				if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job WHERE kind = 'restore_test'
					AND state NOT IN ('completed', 'cancelled', 'discarded') AND (args->>'repository_id')::bigint = $1)`, id).Scan(&busy); err != nil {
					return 0, err
				}
				if !busy {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		t0 := time.Now()
		var runs []int64
		for _, id := range ids {
			run, _, err := r.enqueue(ctx, id)
			if err != nil {
				return 0, err
			}
			runs = append(runs, run.ID)
		}
		for _, id := range runs {
			run, err := r.wait(ctx, id)
			if err != nil {
				return 0, err
			}
			if run.Status != verify.StatusPassed {
				return 0, fmt.Errorf("test of repository %d: %s: %s", run.RepositoryID, run.Status, run.Reason)
			}
		}
		return time.Since(t0), nil
	}
	var plainT, archT []time.Duration
	// Paired rounds, the order alternating (see sample).
	var ratios []float64
	for i := range rounds {
		sides := []func() (time.Duration, error){plainOnce, archOnce}
		if i%2 == 1 {
			slices.Reverse(sides)
		}
		var got [2]time.Duration
		for j, side := range sides {
			d, err := side()
			if err != nil {
				return err
			}
			got[j] = d
		}
		if i%2 == 1 {
			got[0], got[1] = got[1], got[0]
		}
		plainT, archT = append(plainT, got[0]), append(archT, got[1])
		ratios = append(ratios, got[1].Seconds()/got[0].Seconds())
	}
	var snoozed int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'restore_test' AND metadata ? 'snoozes'`).Scan(&snoozed); err != nil {
		return err
	}
	fmt.Printf("tests snoozed at least once, waiting for a free island slot: %d of %d\n", snoozed, n*rounds)
	p, a := median(plainT), median(archT)
	fmt.Printf("plain parallel loop, makespan (s):        %s  median %.2f\n", secs(plainT), p.Seconds())
	fmt.Printf("Archipelago (River workers), makespan (s): %s  median %.2f\n", secs(archT), a.Seconds())
	fmt.Printf("  per round, Archipelago ÷ plain: %s\n", floats(ratios))
	g := medianF(ratios)
	fmt.Printf("RESULT restore-parallel: ratio %.3f (median of the rounds' ratios; of the medians %.3f) — goal ≤ 1.10: %s\n",
		g, a.Seconds()/p.Seconds(), verdict(g <= 1.10))
	return nil
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func floats(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(parts, " ")
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "NOT MET"
}

func ptr[T any](v T) *T { return &v }
