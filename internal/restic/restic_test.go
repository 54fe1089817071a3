package restic

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	ctx := testContext(t)
	sum := b.backup(t)
	if len(sum.SnapshotID) != 64 || sum.FilesNew != 2 || sum.TotalBytesProcessed == 0 || sum.BackupEnd.Before(sum.BackupStart) {
		t.Errorf("backup summary looks wrong: %+v", sum)
	}

	snaps, err := b.r.Snapshots(ctx, b.repo)
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	if len(snaps) != 1 || snaps[0].ID != sum.SnapshotID || snaps[0].Hostname != "test-host" ||
		!slices.Equal(snaps[0].Tags, []string{"t1"}) || snaps[0].Summary == nil ||
		snaps[0].ProgramVersion != "restic "+b.r.Version() {
		t.Fatalf("snapshots = %+v, want the one snapshot %s", snaps, sum.SnapshotID)
	}

	var files []Node
	head, err := b.r.Ls(ctx, b.repo, sum.SnapshotID[:8], func(n Node) error {
		if n.Type == "file" {
			files = append(files, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ls: %v", err)
	}
	if head.ID != sum.SnapshotID {
		t.Errorf("ls snapshot = %s, want %s", head.ID, sum.SnapshotID)
	}
	var bin, txt Node
	for _, n := range files {
		switch n.Name {
		case "a.bin":
			bin = n
		case "b.txt":
			txt = n
		}
	}
	if bin.Size != 1<<20 || txt.Size != uint64(len(b.content["sub/b.txt"])) || !strings.HasSuffix(txt.Path, "/src/sub/b.txt") {
		t.Fatalf("ls files = %+v", files)
	}

	// Full restore with --verify.
	target := filepath.Join(t.TempDir(), "restore")
	res, err := b.r.Restore(ctx, b.repo, RestoreOptions{SnapshotID: sum.SnapshotID, Target: target, Verify: true})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.TotalBytes != res.BytesRestored || res.BytesRestored < 1<<20 || res.FilesRestored == 0 || res.Duration <= 0 {
		t.Errorf("restore result = %+v", res)
	}
	restoredRoot := filepath.Join(target, b.src)
	for rel, want := range b.content {
		got, err := os.ReadFile(filepath.Join(restoredRoot, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("restored %s differs (err %v)", rel, err)
		}
	}

	// Restore of a single path, as the sampler does.
	target2 := filepath.Join(t.TempDir(), "one")
	res, err = b.r.Restore(ctx, b.repo, RestoreOptions{SnapshotID: "latest", Target: target2, Include: []string{txt.Path}, Verify: true})
	if err != nil {
		t.Fatalf("restore one file: %v", err)
	}
	if res.BytesRestored != txt.Size {
		t.Errorf("restored %d bytes, want %d", res.BytesRestored, txt.Size)
	}
	if _, err := os.Stat(filepath.Join(target2, bin.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a.bin restored although not included: %v", err)
	}

	cfg, err := b.r.CatConfig(ctx, b.repo)
	if err != nil || cfg.Version != 2 || len(cfg.ID) != 64 {
		t.Errorf("cat config = %+v, %v", cfg, err)
	}
	check, err := b.r.Check(ctx, b.repo, CheckOptions{ReadDataSubset: "1/1"})
	if err != nil || !check.OK() {
		t.Errorf("check = %+v, %v", check, err)
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	bad := b.repo
	bad.Password = "not the password"
	_, err := b.r.Snapshots(testContext(t), bad)
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 12 || e.Command != "snapshots" || !strings.Contains(e.Message, "wrong password") {
		t.Errorf("error = %#v", e)
	}
	if f := Classify(err); f != FaultAccess {
		t.Errorf("Classify = %v, want access", f)
	}
	t.Logf("error: %v", err)
	// check must not call a repository damaged when it could not open it.
	res, err := b.r.Check(testContext(t), bad, CheckOptions{})
	if !errors.Is(err, ErrWrongPassword) || res != nil || IsRepositoryFault(err) {
		t.Errorf("check with wrong password = %+v, %v", res, err)
	}
}

func TestRepositoryNotFound(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	repo := Repo{URL: filepath.Join(t.TempDir(), "nothing-here"), Password: "whatever"}
	_, err := r.Snapshots(testContext(t), repo)
	if !errors.Is(err, ErrRepositoryNotFound) {
		t.Fatalf("err = %v, want ErrRepositoryNotFound", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 10 {
		t.Errorf("error = %#v", e)
	}
	if Classify(err) != FaultAccess {
		t.Errorf("Classify = %v, want access", Classify(err))
	}
}

func TestSnapshotNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	_, err := b.r.Restore(testContext(t), b.repo, RestoreOptions{SnapshotID: "deadbeef", Target: t.TempDir()})
	if !errors.Is(err, ErrSnapshotNotFound) || !errors.Is(err, ErrFatal) || Classify(err) != FaultAccess {
		t.Fatalf("err = %v, want ErrSnapshotNotFound (exit 1)", err)
	}
}

func TestCheckFindsDamagedPack(t *testing.T) {
	t.Parallel()
	b := setup(t, 2<<20)
	sum := b.backup(t)
	ctx := testContext(t)

	// The 2 MiB random file lands in the largest data pack.
	var pack string
	var size int64
	err := filepath.WalkDir(filepath.Join(b.repo.URL, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Size() > size {
			pack, size = p, fi.Size()
		}
		return nil
	})
	if err != nil || pack == "" {
		t.Fatalf("find a data pack: %v", err)
	}
	if err := os.Chmod(pack, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(pack, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("X"), 64), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	packID := filepath.Base(pack)

	res, err := b.r.Check(ctx, b.repo, CheckOptions{ReadDataSubset: "1/1"})
	if !errors.Is(err, ErrRepositoryDamaged) || !IsRepositoryFault(err) {
		t.Fatalf("check err = %v, want ErrRepositoryDamaged", err)
	}
	t.Logf("error: %v", err)
	if res == nil || !slices.Contains(res.BrokenPacks, packID) || res.OK() || len(res.Findings) == 0 {
		t.Fatalf("check result = %+v, want broken pack %s", res, packID)
	}
	for _, f := range res.Findings {
		if strings.HasPrefix(f, "restic repair") {
			t.Errorf("advice kept as a finding: %q", f)
		}
	}

	// A restore of the damaged file reports it, and is a repository fault.
	rres, err := b.r.Restore(ctx, b.repo, RestoreOptions{SnapshotID: sum.SnapshotID, Target: t.TempDir(), Verify: true})
	if !errors.Is(err, ErrRestoreErrors) || Classify(err) != FaultRepository {
		t.Fatalf("restore err = %v, want ErrRestoreErrors", err)
	}
	if rres == nil || len(rres.Errors) == 0 || !strings.HasSuffix(rres.Errors[0].Item, "/a.bin") {
		t.Errorf("restore result = %+v", rres)
	}
}

func TestKeyAdd(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	ctx := testContext(t)
	newPassword := "second key " + b.repo.Password[len(b.repo.Password)-8:]
	id, err := b.r.WithOutput(&testenv.Logs{}).KeyAdd(ctx, b.repo, newPassword, KeyAddOptions{User: "verifier", Host: "archipelago"})
	if err != nil {
		t.Fatalf("key add: %v", err)
	}
	withNew := b.repo
	withNew.Password = newPassword
	if _, err := b.r.CatConfig(ctx, withNew); err != nil {
		t.Fatalf("cat config with the new password: %v", err)
	}
	keys, err := b.r.KeyList(ctx, withNew)
	if err != nil {
		t.Fatalf("key list: %v", err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys = %+v, want 2", keys)
	}
	for _, k := range keys {
		if k.ID == id && (!k.Current || k.UserName != "verifier" || k.HostName != "archipelago") {
			t.Errorf("new key = %+v", k)
		}
		if k.ID != id && k.Current {
			t.Errorf("old key %s is current with the new password", k.ID)
		}
		if time.Since(k.Created) > time.Hour || time.Since(k.Created) < -time.Minute {
			t.Errorf("key created %v, want about now", k.Created)
		}
	}
	for _, args := range b.execs.args {
		if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, newPassword) }) {
			t.Errorf("new password in argv %q", args)
		}
	}
}

func TestSecretsStayOutOfArgvAndLogs(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	ctx := testContext(t)
	repo := b.repo
	repo.S3AccessKey = "AKIAEXAMPLEACCESS"
	repo.S3SecretKey = "example-secret-key-value"
	var out testenv.Logs
	r := b.r.WithOutput(&out)
	if _, err := r.Backup(ctx, repo, BackupOptions{Paths: []string{b.src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.KeyAdd(ctx, repo, "another secret password", KeyAddOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := repo
	bad.Password = "wrong secret password"
	_, _ = r.Snapshots(ctx, bad)

	secrets := []string{repo.Password, repo.S3AccessKey, repo.S3SecretKey, "another secret password", bad.Password}
	if len(b.execs.args) < 4 {
		t.Fatalf("only %d runs recorded", len(b.execs.args))
	}
	for i, args := range b.execs.args {
		for _, a := range args {
			for _, s := range secrets {
				if strings.Contains(a, s) {
					t.Errorf("secret %q in argv %q", s, args)
				}
			}
			if strings.Contains(a, repo.URL) {
				t.Errorf("repository URL in argv %q (it travels in the environment)", args)
			}
		}
		env := b.execs.envs[i]
		if !slices.Contains(env, "TZ=UTC") {
			t.Errorf("env %d lacks TZ=UTC", i)
		}
	}
	// The password did reach restic, through the environment.
	if !slices.ContainsFunc(b.execs.envs[1], func(kv string) bool { return kv == "RESTIC_PASSWORD="+repo.Password }) {
		t.Errorf("RESTIC_PASSWORD not in the child's environment")
	}
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %q in captured output", s)
		}
		if strings.Contains(b.logs.String(), s) {
			t.Errorf("secret %q in the slog output", s)
		}
	}
	if !strings.Contains(out.String(), "$ restic --json backup") || !strings.Contains(out.String(), `"message_type":"summary"`) ||
		!strings.Contains(out.String(), "# exit code 12") {
		t.Errorf("captured output lacks the runs:\n%s", out.String())
	}
	if !strings.Contains(b.logs.String(), "password=[REDACTED]") {
		t.Errorf("slog output does not show the redacted repository:\n%s", b.logs.String())
	}
}

func TestProgressCallback(t *testing.T) {
	t.Parallel()
	b := setup(t, 96<<20)
	var mu sync.Mutex
	var got []Progress
	r := b.r.WithProgress(func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
	})
	sum, err := r.Backup(testContext(t), b.repo, BackupOptions{Paths: []string{b.src}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(testContext(t), b.repo, RestoreOptions{SnapshotID: sum.SnapshotID, Target: t.TempDir(), Verify: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	commands := map[string]int{}
	for _, p := range got {
		commands[p.Command]++
		if p.PercentDone < 0 || p.PercentDone > 1 {
			t.Errorf("percent_done %v", p.PercentDone)
		}
	}
	if commands["backup"] == 0 && commands["restore"] == 0 {
		t.Fatalf("progress callback never called (backup took %.2fs)", sum.TotalDuration)
	}
	t.Logf("progress events: %v", commands)
}

func TestCancelInterruptsRestic(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{KillGrace: 10 * time.Second})
	// Nothing listens on port 1: restic retries for up to 15 minutes.
	repo := Repo{URL: "s3:http://127.0.0.1:1/bucket/prefix", Password: "pw", S3AccessKey: "a", S3SecretKey: "b"}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var out testenv.Logs
	start := time.Now()
	_, err := r.WithOutput(&out).Check(ctx, repo, CheckOptions{})
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("cancel took %v: SIGINT did not stop restic", took)
	}
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.DeadlineExceeded) || Classify(err) != FaultOperational {
		t.Fatalf("err = %v, want ErrInterrupted and DeadlineExceeded", err)
	}
	t.Logf("error: %v", err)
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 130 {
		t.Errorf("exit code = %d, want 130 (SIGINT, not a kill): %v", e.ExitCode, err)
	}
	if !strings.Contains(out.String(), "connection refused") {
		t.Errorf("captured output lacks the retries:\n%s", out.String())
	}
}

func TestLsStopsEarlyWithoutClosingThePipe(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	sum := b.backup(t)
	stop := errors.New("enough")
	n := 0
	_, err := b.r.Ls(testContext(t), b.repo, sum.SnapshotID, func(Node) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("ls = %v after %d nodes, want the callback's error after 1", err, n)
	}
}

func TestListLocksAndUnlock(t *testing.T) {
	t.Parallel()
	b := setup(t, 8<<20)
	b.backup(t)
	ctx := testContext(t)

	// Leave a lock behind the way a crash would: a restic holding an
	// exclusive lock, stopped, then killed.
	cmd := exec.Command(b.r.Binary(), "check", "--read-data")
	cmd.Env = childEnv(os.Environ(), "", time.Second, "", &b.repo)
	cmd.Env = append(cmd.Env, "RESTIC_CACHE_DIR="+b.repo.CacheDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	locksDir := filepath.Join(b.repo.URL, "locks")
	// Generous: opening the repository (scrypt) takes seconds on a busy machine.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		entries, _ := os.ReadDir(locksDir)
		if slices.ContainsFunc(entries, func(e os.DirEntry) bool { return lockID.MatchString(e.Name()) }) {
			_ = cmd.Process.Signal(syscall.SIGSTOP)
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("restic check ended (%v) before its lock was seen", err)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("restic check never created a lock")
		}
		time.Sleep(2 * time.Millisecond)
	}
	locks, err := b.r.ListLocks(ctx, b.repo)
	_ = cmd.Process.Kill()
	<-exited
	if err != nil {
		t.Fatalf("list locks: %v", err)
	}
	if len(locks) != 1 || !locks[0].Exclusive || locks[0].PID != cmd.Process.Pid || len(locks[0].ID) != 64 {
		t.Fatalf("locks = %+v, want one exclusive lock of pid %d", locks, cmd.Process.Pid)
	}

	if err := b.r.Unlock(ctx, b.repo, UnlockOptions{}); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	locks, err = b.r.ListLocks(ctx, b.repo)
	if err != nil || len(locks) != 0 {
		t.Fatalf("after unlock: locks = %+v, %v", locks, err)
	}
}

// TestBackupTime records a snapshot at a given time (--time), as the demo
// seeder does to make a stale backup.
func TestBackupTime(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<10)
	ctx := testContext(t)
	when := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	sum, err := b.r.Backup(ctx, b.repo, BackupOptions{Paths: []string{b.src}, Time: when})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	snaps, err := b.r.Snapshots(ctx, b.repo)
	if err != nil {
		t.Fatalf("snapshots: %v", err)
	}
	if len(snaps) != 1 || snaps[0].ID != sum.SnapshotID || !snaps[0].Time.Equal(when) {
		t.Fatalf("snapshots = %+v, want one snapshot at %s", snaps, when)
	}
	if got := b.execs.args[len(b.execs.args)-2]; !slices.Contains(got, "--time="+when.UTC().Format(time.DateTime)) {
		t.Errorf("backup argv = %q, want --time in UTC", got)
	}
}

// TestRoutineRunsLogAtDebug: serve and the workers run restic for every test: a run that
// succeeded is logged at DEBUG, one that failed still at INFO.
func TestRoutineRunsLogAtDebug(t *testing.T) {
	t.Parallel()
	b := setup(t, 1024)
	b.backup(t) // logged at DEBUG (the bundle's logger shows it)
	var logs testenv.Logs
	r := *b.r
	r.logger = testenv.LoggerTo(&logs, slog.LevelInfo)
	if _, err := r.Snapshots(testContext(t), b.repo); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "restic finished") {
		t.Errorf("a routine run logged at INFO:\n%s", logs.String())
	}
	if !strings.Contains(b.logs.String(), `level=DEBUG msg="restic finished"`) {
		t.Errorf("the routine run is not logged at DEBUG:\n%s", b.logs.String())
	}
	bad := b.repo
	bad.Password = "not the password"
	if _, err := r.Snapshots(testContext(t), bad); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
	if !strings.Contains(logs.String(), `level=INFO msg="restic finished"`) || !strings.Contains(logs.String(), "exit_code=12") {
		t.Errorf("a failed run is not logged at INFO:\n%s", logs.String())
	}
}
